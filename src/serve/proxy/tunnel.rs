//! A tunnel's bytes: copied both ways until either side ends or the tunnel
//! idles out, counted, and logged in one line.
//!
//! Plain agents go through [`relay`], which holds no buffer while a tunnel
//! idles (most ACME tunnels do); TLS agents through `copy_bidirectional`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use super::{AgentHook, Counters, Refusal};

const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// One tunnel's facts for its log line.
pub struct Opened {
    pub upstream: TcpStream,
    /// As the agent wrote it.
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: &'static str,
}

/// The agent's side of a tunnel.
pub enum Agent<S> {
    /// A plain socket: relayed without a buffer of its own.
    Tcp(TcpStream),
    /// Anything else (TLS to the proxy).
    Stream(S),
}

/// Copies between `agent` and the destination until both ends are done or
/// `idle` passes without a byte. `early` is what the agent sent behind its head.
pub async fn run<S>(
    agent: Agent<S>,
    opened: Opened,
    early: &[u8],
    peer: SocketAddr,
    idle: Duration,
    counters: &Counters,
    on_agent: Option<&AgentHook>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Opened {
        mut upstream,
        target,
        version,
    } = opened;
    let started = Instant::now();
    let sent = timeout(WRITE_TIMEOUT, upstream.write_all(early)).await;
    if !matches!(sent, Ok(Ok(()))) {
        counters.refuse(Refusal::Unreachable);
        tracing::info!(agent = %peer, target = %target, outcome = "failed", reason = "could not start the tunnel", "tunnel");
        return;
    }
    if let Some(hook) = on_agent {
        hook(peer.ip());
    }
    counters.tunnels_open.fetch_add(1, Ordering::Relaxed);
    counters.tunnels_total.fetch_add(1, Ordering::Relaxed);
    let activity = Arc::new(AtomicU64::new(0));
    let up = Arc::new(AtomicU64::new(early.len() as u64));
    let down = Arc::new(AtomicU64::new(0));
    let watchdog = async {
        loop {
            let last = started + Duration::from_millis(activity.load(Ordering::Relaxed));
            let until = last + idle;
            if Instant::now() >= until {
                return;
            }
            tokio::time::sleep_until(until).await;
        }
    };
    let meter = |bytes: &Arc<AtomicU64>| Meter {
        started,
        activity: activity.clone(),
        bytes: bytes.clone(),
    };
    let copied = match agent {
        Agent::Tcp(tcp) => {
            let tcp = &tcp;
            let (m_up, m_down) = (meter(&up), meter(&down));
            let both =
                async { tokio::try_join!(relay(tcp, &upstream, &m_up), relay(&upstream, tcp, &m_down)).map(|_| ()) };
            tokio::select! {
                r = both => Some(r),
                () = watchdog => None,
            }
        }
        Agent::Stream(mut agent) => {
            let mut a = Metered {
                inner: &mut agent,
                meter: meter(&up),
            };
            let mut b = Metered {
                inner: &mut upstream,
                meter: meter(&down),
            };
            tokio::select! {
                r = tokio::io::copy_bidirectional(&mut a, &mut b) => Some(r.map(|_| ())),
                () = watchdog => None,
            }
        }
    };
    let outcome = match copied {
        Some(Ok(())) => "closed".to_string(),
        Some(Err(e)) => format!("error: {e}"),
        None => "idle timeout".to_string(),
    };
    let (up, down) = (up.load(Ordering::Relaxed), down.load(Ordering::Relaxed));
    counters.tunnels_open.fetch_sub(1, Ordering::Relaxed);
    counters.bytes_up.fetch_add(up, Ordering::Relaxed);
    counters.bytes_down.fetch_add(down, Ordering::Relaxed);
    tracing::info!(
        agent = %peer,
        target = %target,
        http = %version,
        mode = "connect",
        bytes_up = up,
        bytes_down = down,
        duration_ms = started.elapsed().as_millis() as u64,
        outcome = %outcome,
        "tunnel"
    );
}

/// Counts the bytes moved one way and notes when anything moved (the idle watchdog reads it).
struct Meter {
    started: Instant,
    /// Milliseconds since `started` of the last read.
    activity: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl Meter {
    fn moved(&self, n: usize) {
        if n > 0 {
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
            let ms = self.started.elapsed().as_millis() as u64;
            self.activity.fetch_max(ms, Ordering::Relaxed);
        }
    }
}

thread_local! {
    /// One scratch buffer per runtime thread for [`relay`]; only borrowed
    /// between awaits, never across one.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 32 * 1024]);
}

/// Copies `from` → `to` until `from` ends, then half-closes `to`.
///
/// `copy_bidirectional` gives every tunnel two 8 KiB buffers for its whole
/// life; a fleet's ACME tunnels are idle most of the time, so here bytes go
/// through a per-thread scratch buffer and a tunnel holds memory only while
/// its receiver is slower than its sender (the unwritten rest, then freed).
async fn relay(from: &TcpStream, to: &TcpStream, meter: &Meter) -> io::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    loop {
        from.readable().await?;
        let read = SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            match from.try_read(&mut scratch[..]) {
                Ok(0) => Ok(Some(0)),
                Ok(n) => {
                    meter.moved(n);
                    let written = match to.try_write(&scratch[..n]) {
                        Ok(w) => w,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                        Err(e) => return Err(e),
                    };
                    if written < n {
                        pending.extend_from_slice(&scratch[written..n]);
                    }
                    Ok(Some(n))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        if read == Some(0) {
            // The sender is done: pass the half-close on, keep the other way open.
            let _ = rustix::net::shutdown(to, rustix::net::Shutdown::Write);
            return Ok(());
        }
        while !pending.is_empty() {
            to.writable().await?;
            match to.try_write(&pending) {
                Ok(w) => {
                    pending.drain(..w);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if pending.capacity() > 0 {
            pending = Vec::new();
        }
    }
}

/// A stream that counts the bytes read from it (TLS agents, through `copy_bidirectional`).
struct Metered<'a, S> {
    inner: &'a mut S,
    meter: Meter,
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<'_, S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut *self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.meter.moved(n);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<'_, S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}
