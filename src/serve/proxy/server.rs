//! The proxy's I/O: accept, read the head, decide, connect, copy.
//!
//! Shaped like mini-redis's server: the caller binds the listener and owns
//! shutdown; a permit of the global tunnel cap is taken *before* `accept`, so
//! a flood waits in the kernel's backlog instead of costing memory here. Every
//! wait has a deadline (head, connect, idle) and every buffer a cap, so a slow,
//! silent or hostile agent costs one connection slot for a bounded time and
//! never delays the others.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout, timeout_at};

use super::allow::Allowlist;
use super::request::{self, HeadError, RequestHead};
use super::{Counters, ProxyConfig, Refusal};

/// How long a refused agent's leftover bytes are read after the answer, so
/// the close does not reset the connection before the answer is read.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 2 * 1024 * 1024;
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds the service port with a deep accept queue: agents arrive in bursts
/// (a fleet renewing at once), and with the usual 128 the kernel drops SYNs
/// and clients wait out a one-second retransmission (measured by
/// benches/proxy.py).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Serves agents on `listener` until `shutdown` completes. Tunnels already
/// open keep running until they close or go idle.
pub async fn run(
    listener: TcpListener,
    config: ProxyConfig,
    counters: Arc<Counters>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let limit = Arc::new(Semaphore::new(config.max_tunnels));
    let shared = Arc::new(Shared {
        config,
        counters,
        per_agent: Mutex::new(HashMap::new()),
    });
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
            () = &mut shutdown => return Ok(()),
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.serve(stream, peer).await;
            drop(permit);
        });
    }
}

struct Shared {
    config: ProxyConfig,
    counters: Arc<Counters>,
    per_agent: Mutex<HashMap<IpAddr, usize>>,
}

/// One slot of an agent's own tunnel cap, given back on drop.
struct AgentSlot<'a> {
    shared: &'a Shared,
    ip: IpAddr,
}

impl Drop for AgentSlot<'_> {
    fn drop(&mut self) {
        let mut map = self.shared.per_agent.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// A destination connected for a request.
struct Opened {
    upstream: TcpStream,
    /// As the agent wrote it, for the log line.
    target: String,
    /// For a forwarded plain-HTTP request: the head to send the origin.
    forward: Option<Vec<u8>>,
}

/// Where a request ended, for the log line and the counters.
enum Outcome {
    Refused {
        status: u16,
        why: Refusal,
        target: String,
        detail: String,
    },
    /// The agent went away before a complete head; nothing to answer.
    Gone,
}

impl Shared {
    fn agent_slot(&self, ip: IpAddr) -> Option<AgentSlot<'_>> {
        let mut map = self.per_agent.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.config.max_tunnels_per_agent {
            return None;
        }
        *n += 1;
        Some(AgentSlot { shared: self, ip })
    }

    async fn serve(&self, mut stream: TcpStream, peer: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let Some(_slot) = self.agent_slot(peer.ip()) else {
            self.counters.refuse(Refusal::AgentLimit);
            tracing::info!(agent = %peer, outcome = "refused", status = 429, reason = "agent tunnel limit", "proxy request");
            let _ = answer(&mut stream, 429, "Too Many Requests", "HTTP/1.1", &[]).await;
            return;
        };
        let deadline = Instant::now() + self.config.head_timeout;
        if let Some(tls) = &self.config.tls {
            let mut first = [0u8; 1];
            match timeout_at(deadline, stream.peek(&mut first)).await {
                Ok(Ok(1)) if first[0] == 0x16 => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                    match timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => self.handle(tls_stream, peer, deadline).await,
                        Ok(Err(e)) => {
                            self.counters.refuse(Refusal::BadRequest);
                            tracing::info!(agent = %peer, outcome = "refused", reason = %e, "proxy TLS handshake failed");
                        }
                        Err(_) => {
                            self.counters.refuse(Refusal::HeadTimeout);
                            tracing::info!(agent = %peer, outcome = "refused", reason = "timeout", "proxy TLS handshake failed");
                        }
                    }
                    return;
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    self.counters.refuse(Refusal::HeadTimeout);
                    tracing::info!(agent = %peer, outcome = "refused", reason = "head timeout", "proxy request");
                    return;
                }
            }
        }
        self.handle(stream, peer, deadline).await;
    }

    async fn handle<S>(&self, mut agent: S, peer: SocketAddr, deadline: Instant)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + AsTcp,
    {
        let mut buf = Vec::with_capacity(1024);
        let outcome = match self.read_head(&mut agent, &mut buf, deadline).await {
            Ok(head) if head.target.starts_with('/') && self.config.service.is_some() => {
                self.route(agent, &head, buf, peer).await;
                return;
            }
            Ok(head) => match self.open(&head).await {
                Ok(opened) => {
                    self.tunnel(agent, opened, &head, &buf[head.head_len..], peer).await;
                    return;
                }
                Err(outcome) => outcome,
            },
            Err(outcome) => outcome,
        };
        let Outcome::Refused {
            status,
            why,
            target,
            detail,
        } = outcome
        else {
            return;
        };
        self.counters.refuse(why);
        tracing::info!(agent = %peer, target = %target, outcome = "refused", status, reason = %detail, "proxy request");
        let (reason, extra): (&str, &[&str]) = match status {
            400 => ("Bad Request", &[]),
            403 => ("Forbidden", &[]),
            405 => ("Method Not Allowed", &["Allow: CONNECT"]),
            407 => (
                "Proxy Authentication Required",
                &[
                    "Proxy-Authenticate: Basic realm=\"netsensor\"",
                    "Proxy-Authenticate: Bearer realm=\"netsensor\"",
                ],
            ),
            408 => ("Request Timeout", &[]),
            431 => ("Request Header Fields Too Large", &[]),
            _ => ("Bad Gateway", &[]),
        };
        let version = if buf.starts_with(b"CONNECT") && buf.windows(8).any(|w| w == b"HTTP/1.0") {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        };
        if answer(&mut agent, status, reason, version, extra).await.is_ok() {
            linger(&mut agent).await;
        }
    }

    /// Serves one request of the sensor's own routes: reads the body (capped,
    /// with a deadline), dispatches, answers and closes.
    async fn route<S>(&self, mut agent: S, head: &RequestHead, mut buf: Vec<u8>, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let Some(router) = &self.config.service else {
            return;
        };
        let answer = match crate::serve::body_framing(&head.headers, &head.method, self.config.max_body) {
            Err(refusal) => refusal,
            Ok(framing) => {
                let want = match framing {
                    crate::serve::BodyFraming::None => 0,
                    crate::serve::BodyFraming::Length(n) => n,
                };
                let mut body = buf.split_off(head.head_len);
                drop(buf);
                let deadline = Instant::now() + self.config.body_timeout;
                // On the heap: an array here would sit in every connection's task for its whole life.
                let mut chunk = vec![0u8; 8192];
                let mut complete = true;
                while body.len() < want {
                    match timeout_at(deadline, agent.read(&mut chunk)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => return,
                        Ok(Ok(n)) => body.extend_from_slice(&chunk[..n]),
                        Err(_) => {
                            complete = false;
                            break;
                        }
                    }
                }
                if complete {
                    body.truncate(want);
                    let req = crate::serve::Request {
                        method: head.method.clone(),
                        path: head.target.clone(),
                        headers: head.headers.clone(),
                        body,
                        peer,
                    };
                    router.dispatch(&req).await
                } else {
                    crate::serve::Response::error(408, "request body not received in time")
                }
            }
        };
        tracing::debug!(agent = %peer, method = %head.method, path = %head.target.chars().take(200).collect::<String>(), status = answer.status, "service request");
        let bytes = answer.to_bytes(&head.version);
        let sent = timeout(WRITE_TIMEOUT, async {
            agent.write_all(&bytes).await?;
            agent.flush().await
        })
        .await;
        if matches!(sent, Ok(Ok(()))) {
            linger(&mut agent).await;
        }
    }

    /// Reads until the head is complete, at most `max_head` bytes (plus one
    /// read), before `deadline`.
    async fn read_head<S>(&self, agent: &mut S, buf: &mut Vec<u8>, deadline: Instant) -> Result<RequestHead, Outcome>
    where
        S: AsyncRead + Unpin,
    {
        let refused = |status, why, detail: &str| Outcome::Refused {
            status,
            why,
            target: String::new(),
            detail: detail.to_string(),
        };
        let mut chunk = vec![0u8; 4096];
        loop {
            match request::parse_head(buf, self.config.max_head) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e @ HeadError::TooLarge { .. }) => return Err(refused(431, Refusal::TooLarge, &e.to_string())),
                Err(e) => return Err(refused(400, Refusal::BadRequest, &e.to_string())),
            }
            match timeout_at(deadline, agent.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Err(Outcome::Gone),
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Err(_) => return Err(refused(408, Refusal::HeadTimeout, "request head not received in time")),
            }
        }
    }

    /// Checks the request and connects to its destination. For a forwarded
    /// plain-HTTP request, also returns the head to send the origin.
    async fn open(&self, head: &RequestHead) -> Result<Opened, Outcome> {
        let refused = |status, why, detail: String| Outcome::Refused {
            status,
            why,
            target: head.target.chars().take(300).collect(),
            detail,
        };
        let absolute = if head.method == "CONNECT" {
            None
        } else if self.config.forward_http
            && let Some(pair) = request::parse_absolute(&head.target)
        {
            Some(pair)
        } else {
            return Err(refused(405, Refusal::Method, format!("method {}", head.method)));
        };
        if let Some(token) = &self.config.auth_token
            && !request::authorized(head.proxy_authorization.as_deref(), token)
        {
            let detail = if head.proxy_authorization.is_some() {
                "wrong credentials"
            } else {
                "no credentials"
            };
            return Err(refused(407, Refusal::Auth, detail.into()));
        }
        let (authority, forward) = match absolute {
            Some((authority, path)) => {
                let forward = request::forward_head(head, &authority, &path);
                (authority, Some(forward))
            }
            None => match request::parse_authority(&head.target) {
                Some(a) => (a, None),
                None => {
                    return Err(refused(
                        400,
                        Refusal::BadRequest,
                        "CONNECT target is not host:port".into(),
                    ));
                }
            },
        };
        let grant = self
            .config
            .allow
            .check(&authority.host, authority.port)
            .map_err(|d| refused(403, Refusal::NotAllowed, d.to_string()))?;
        let deadline = Instant::now() + self.config.connect_timeout;
        let addrs = self
            .resolve(&authority.host, authority.port, deadline)
            .await
            .map_err(|e| refused(502, Refusal::Unreachable, format!("cannot resolve: {e}")))?;
        let addrs = Allowlist::permitted_addresses(grant, &addrs)
            .map_err(|d| refused(403, Refusal::NotAllowed, d.to_string()))?;
        let mut last = String::from("no address");
        for ip in addrs {
            match timeout_at(deadline, TcpStream::connect((ip, authority.port))).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Ok(Opened {
                        upstream: s,
                        target: head.target.clone(),
                        forward,
                    });
                }
                Ok(Err(e)) => last = format!("{ip}: {e}"),
                Err(_) => {
                    last = format!("{ip}: connect timed out");
                    break;
                }
            }
        }
        Err(refused(502, Refusal::Unreachable, last))
    }

    /// The static map first, then the system resolver, within `deadline`.
    async fn resolve(&self, host: &str, port: u16, deadline: Instant) -> io::Result<Vec<IpAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if let Some(addrs) = self.config.resolve.get(host) {
            return Ok(addrs.clone());
        }
        let found = timeout_at(deadline, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "lookup timed out"))??;
        let addrs: Vec<IpAddr> = found.map(|a| a.ip()).collect();
        if addrs.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no address"));
        }
        Ok(addrs)
    }

    async fn tunnel<S>(&self, mut agent: S, opened: Opened, head: &RequestHead, early: &[u8], peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + AsTcp,
    {
        let Opened {
            mut upstream,
            target,
            forward,
        } = opened;
        let started = Instant::now();
        let established = format!("{} 200 Connection established\r\n\r\n", head.version);
        let ok = timeout(WRITE_TIMEOUT, async {
            match &forward {
                // Plain HTTP: the origin gets the rewritten head, the agent its answer.
                Some(head) => upstream.write_all(head).await?,
                None => {
                    agent.write_all(established.as_bytes()).await?;
                    agent.flush().await?;
                }
            }
            // Bytes the agent sent right behind its head (a ClientHello, a body) belong to the tunnel.
            upstream.write_all(early).await
        })
        .await;
        if !matches!(ok, Ok(Ok(()))) {
            self.counters.refuse(Refusal::Unreachable);
            tracing::info!(agent = %peer, target = %target, outcome = "failed", reason = "could not start the tunnel", "tunnel");
            return;
        }
        if let Some(hook) = &self.config.on_agent {
            hook(peer.ip());
        }
        self.counters.tunnels_open.fetch_add(1, Ordering::Relaxed);
        self.counters.tunnels_total.fetch_add(1, Ordering::Relaxed);

        let activity = Arc::new(AtomicU64::new(0));
        let up = Arc::new(AtomicU64::new(early.len() as u64));
        let down = Arc::new(AtomicU64::new(0));
        let idle = self.config.idle_timeout;
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
        let copied = match agent.as_tcp() {
            // Plain agents: no buffer per tunnel while it idles (most ACME tunnels do).
            Some(tcp) => {
                let (m_up, m_down) = (meter(&up), meter(&down));
                let both = async {
                    tokio::try_join!(relay(tcp, &upstream, &m_up), relay(&upstream, tcp, &m_down)).map(|_| ())
                };
                tokio::select! {
                    r = both => Some(r),
                    () = watchdog => None,
                }
            }
            None => {
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
        self.counters.tunnels_open.fetch_sub(1, Ordering::Relaxed);
        self.counters.bytes_up.fetch_add(up, Ordering::Relaxed);
        self.counters.bytes_down.fetch_add(down, Ordering::Relaxed);
        tracing::info!(
            agent = %peer,
            target = %target,
            http = %head.version,
            mode = if forward.is_some() { "forward" } else { "connect" },
            bytes_up = up,
            bytes_down = down,
            duration_ms = started.elapsed().as_millis() as u64,
            outcome = %outcome,
            "tunnel"
        );
    }
}

/// Writes one status line (and headers) with a deadline.
async fn answer<S: AsyncWrite + Unpin>(
    agent: &mut S,
    status: u16,
    reason: &str,
    version: &str,
    headers: &[&str],
) -> io::Result<()> {
    let mut text = format!("{version} {status} {reason}\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    timeout(WRITE_TIMEOUT, async {
        agent.write_all(text.as_bytes()).await?;
        agent.flush().await
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?
}

/// Reads and drops what the agent still sends, briefly and boundedly, then
/// closes: closing with unread bytes would reset the connection and could
/// destroy the answer before the agent reads it.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(agent: &mut S) {
    let _ = timeout(LINGER, agent.shutdown()).await;
    let mut sink = vec![0u8; 8192];
    let mut total = 0;
    let _ = timeout(LINGER, async {
        while total < LINGER_BYTES {
            match agent.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
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

/// The plain TCP socket under an agent connection, when there is one.
pub(crate) trait AsTcp {
    fn as_tcp(&self) -> Option<&TcpStream>;
}

impl AsTcp for TcpStream {
    fn as_tcp(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl AsTcp for tokio_rustls::server::TlsStream<TcpStream> {
    fn as_tcp(&self) -> Option<&TcpStream> {
        None
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
