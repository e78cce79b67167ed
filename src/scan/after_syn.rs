//! After a SYN-ACK: the connection the TLS stages use.
//!
//! The SYN engine's half-open connection belongs to no socket (the kernel
//! resets it), so an open port is connected again before it is examined.
//! What that connect says is not a second port scan: the port has already
//! answered SYN-ACK. A service that accepts and then resets at once (a
//! full accept queue, a TCP wrapper, `SO_LINGER 0`) makes that connect end
//! in `ECONNRESET` or succeed, by a race between the RST and the moment the
//! connect is observed; both mean an open port (issue 17, defect 3), never
//! "no response". [`verdict`] is that judgement, pure; [`connect`] does it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::discover::connect::Connect;
use crate::discover::targets::Target;

/// How the follow-up connect ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    Connected,
    Failed(io::ErrorKind),
    /// Nothing within the deadline.
    TimedOut,
}

/// What the port is, given that it answered SYN-ACK and then `attempt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Connected: examine on this socket.
    Open,
    /// Accepted and reset: open, with no socket to examine on.
    OpenReset,
    Closed(&'static str),
    Filtered(&'static str),
}

/// The port's state after a SYN-ACK and a follow-up connect. Pure.
pub fn verdict(attempt: Attempt) -> Verdict {
    match attempt {
        Attempt::Connected => Verdict::Open,
        Attempt::Failed(io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted) => Verdict::OpenReset,
        // Something listened a moment ago and no longer does.
        Attempt::Failed(io::ErrorKind::ConnectionRefused) => Verdict::Closed("syn-ack, then conn-refused"),
        Attempt::Failed(_) => Verdict::Filtered("syn-ack, then error"),
        Attempt::TimedOut => Verdict::Filtered("syn-ack, then no-response"),
    }
}

/// The reason an open port that reset the follow-up connect carries.
pub const RESET_REASON: &str = "syn-ack, then reset";

/// Connect to a port the SYN engine found open, within `deadline`.
pub async fn connect(target: &Target, deadline: Duration) -> Connect {
    let addr = SocketAddr::new(target.addr, target.port);
    let attempt = tokio::time::timeout(deadline, tokio::net::TcpStream::connect(addr)).await;
    let (attempt, stream) = match attempt {
        Ok(Ok(s)) => (Attempt::Connected, Some(s)),
        Ok(Err(e)) => (Attempt::Failed(e.kind()), None),
        Err(_) => (Attempt::TimedOut, None),
    };
    match (verdict(attempt), stream) {
        (Verdict::Open, Some(s)) => match s.into_std() {
            Ok(s) => Connect::Open(s),
            Err(_) => Connect::Filtered {
                reason: "syn-ack, then local-error",
            },
        },
        (Verdict::Open, None) => Connect::Filtered {
            reason: "syn-ack, then local-error",
        },
        (Verdict::OpenReset, _) => Connect::Reset { reason: RESET_REASON },
        (Verdict::Closed(reason), _) => Connect::Closed { reason },
        (Verdict::Filtered(reason), _) => Connect::Filtered { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_after_syn_ack_is_an_open_port() {
        assert_eq!(
            verdict(Attempt::Failed(io::ErrorKind::ConnectionReset)),
            Verdict::OpenReset
        );
        assert_eq!(
            verdict(Attempt::Failed(io::ErrorKind::ConnectionAborted)),
            Verdict::OpenReset
        );
    }

    #[test]
    fn other_outcomes_keep_their_meaning() {
        assert_eq!(verdict(Attempt::Connected), Verdict::Open);
        assert_eq!(
            verdict(Attempt::Failed(io::ErrorKind::ConnectionRefused)),
            Verdict::Closed("syn-ack, then conn-refused")
        );
        assert_eq!(
            verdict(Attempt::TimedOut),
            Verdict::Filtered("syn-ack, then no-response")
        );
        assert_eq!(
            verdict(Attempt::Failed(io::ErrorKind::AddrNotAvailable)),
            Verdict::Filtered("syn-ack, then error")
        );
    }

    /// A real listener that accepts and resets (`SO_LINGER 0`): never
    /// `filtered` or `closed`, however the race between the RST and the
    /// connect's completion falls.
    #[tokio::test]
    async fn a_listener_that_accepts_and_resets_is_open_every_time() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for _ in 0..40 {
                let Ok((s, _)) = listener.accept() else { return };
                let _ = rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO));
                drop(s);
            }
        });
        let target = Target {
            addr: addr.ip(),
            port: addr.port(),
            hostname: None,
        };
        let mut reset = 0;
        for _ in 0..40 {
            let c = connect(&target, Duration::from_secs(2)).await;
            assert_eq!(c.state(), crate::discover::connect::PortState::Open, "{c:?}");
            if matches!(c, Connect::Reset { .. }) {
                reset += 1;
            }
        }
        server.join().unwrap();
        eprintln!("{reset} of 40 connects saw the reset first");
    }
}
