//! The service port's listener: accept, admit, read the head with hyper,
//! and send each request where it belongs.
//!
//! Shaped like mini-redis's server: the caller binds the listener and owns
//! shutdown. Each connection first takes a place among the heads in waiting
//! (`slots`: per source, shed under pressure), then hyper reads its head
//! (bounded size, strict framing: `Content-Length: +2` is a 400). A head
//! not complete by the deadline is answered `408`. Once a head is in, its
//! place goes back and the request takes a slot of its own class: a tunnel
//! (`proxy::server`), an API call or a health check (the router), `503` when
//! that class is full. So no class waits for another's slots.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tower::ServiceExt;

use crate::serve::proxy::server::Proxy;
use crate::serve::proxy::{Counters, ProxyConfig, Refusal};
use crate::serve::router::{self, Class};
use crate::serve::slots::{Pending, Slots};

/// The head deadline when more than half the places for heads are taken.
const PRESSURE_HEAD_TIMEOUT: Duration = Duration::from_secs(1);
/// How many head timeouts a connection may wait for one of its source's readers.
const QUEUE_FACTOR: u32 = 3;
/// How long a refused client's leftover bytes are read after the answer, so
/// the close does not reset the connection before the answer is read.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 2 * 1024 * 1024;

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

/// What every connection shares.
struct Ctx {
    proxy: Arc<Proxy>,
    slots: Arc<Slots>,
    api: Arc<Semaphore>,
    health: Arc<Semaphore>,
}

/// Serves the port until `shutdown` completes. Tunnels already open keep
/// running until they close or go idle.
pub async fn run(
    listener: TcpListener,
    config: ProxyConfig,
    counters: Arc<Counters>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let ctx = Arc::new(Ctx {
        slots: Slots::new(config.max_heads),
        api: Arc::new(Semaphore::new(config.max_api)),
        health: Arc::new(Semaphore::new(config.max_health)),
        proxy: Proxy::new(config, counters),
    });
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "service port accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let pending = ctx.slots.admit(peer.ip());
        tokio::spawn(connection(ctx.clone(), stream, peer, pending));
    }
}

/// One connection: its turn among its source's heads, TLS or not, then hyper.
async fn connection(ctx: Arc<Ctx>, stream: TcpStream, peer: SocketAddr, pending: Pending) {
    let _ = stream.set_nodelay(true);
    let config = &ctx.proxy.config;
    // Waiting for one of its source's readers is waiting on us, not on the
    // client (a fleet behind one address opening a thousand tunnels): it
    // has its own, longer bound; shedding keeps the queue itself bounded.
    let queued_until = Instant::now() + config.head_timeout * QUEUE_FACTOR;
    let reader = tokio::select! {
        p = pending.readers.clone().acquire_owned() => p.ok(),
        () = sleep_until(queued_until) => None,
        () = pending.shed.cancelled() => None,
    };
    let Some(reader) = reader else {
        head_timed_out(&ctx.proxy.counters, peer, Some(stream)).await;
        return;
    };
    // Boxed: hyper's connection state is allocated only once the head is
    // read, so the connections waiting their turn above stay small (a
    // burst of a thousand tunnels from one address waits here).
    Box::pin(read_head(ctx, stream, peer, (pending, reader))).await;
}

/// The head and what follows it: TLS if the first byte says so, then hyper.
async fn read_head(ctx: Arc<Ctx>, stream: TcpStream, peer: SocketAddr, waiting: (Pending, OwnedSemaphorePermit)) {
    let config = &ctx.proxy.config;
    // Reading the head: the client's time, short under pressure.
    let head_timeout = if ctx.slots.under_pressure() {
        config.head_timeout.min(PRESSURE_HEAD_TIMEOUT)
    } else {
        config.head_timeout
    };
    let deadline = Instant::now() + head_timeout;
    if let Some(tls) = &config.tls {
        let mut first = [0u8; 1];
        match timeout_at(deadline, stream.peek(&mut first)).await {
            Ok(Ok(1)) if first[0] == 0x16 => {
                let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
                match timeout_at(deadline, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => serve(ctx.clone(), tls_stream, None, peer, deadline, waiting).await,
                    Ok(Err(e)) => {
                        ctx.proxy.counters.refuse(Refusal::BadRequest);
                        tracing::info!(agent = %peer, outcome = "refused", reason = %e, "proxy TLS handshake failed");
                    }
                    Err(_) => {
                        ctx.proxy.counters.refuse(Refusal::HeadTimeout);
                        tracing::info!(agent = %peer, outcome = "refused", reason = "timeout", "proxy TLS handshake failed");
                    }
                }
                return;
            }
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_) => {
                head_timed_out(&ctx.proxy.counters, peer, Some(stream)).await;
                return;
            }
        }
    }
    // A second descriptor of the socket, to answer 408 after hyper let go of it.
    let raw = stream.as_fd().try_clone_to_owned().ok();
    serve(ctx.clone(), stream, raw, peer, deadline, waiting).await;
}

/// hyper on one connection until it ends, or `408` when the first head is
/// not in by `deadline` (or the head was shed to make room).
async fn serve<S>(
    ctx: Arc<Ctx>,
    io: S,
    raw: Option<OwnedFd>,
    peer: SocketAddr,
    deadline: Instant,
    waiting: (Pending, OwnedSemaphorePermit),
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shed = waiting.0.shed.clone();
    let waiting = Arc::new(Mutex::new(Some(waiting)));
    let head_in = waiting.clone();
    let service_ctx = ctx.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        // The head is in: its place among the heads goes back.
        head_in.lock().unwrap_or_else(|e| e.into_inner()).take();
        let ctx = service_ctx.clone();
        async move { Ok::<_, Infallible>(dispatch(&ctx, req, peer).await) }
    });
    let config = &ctx.proxy.config;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Later heads on a kept-alive connection; the first is timed here (408).
        .header_read_timeout(config.head_timeout + Duration::from_secs(1))
        .max_buf_size(config.max_head.max(8192))
        .auto_date_header(false)
        // As agents and the old tests read them (`Proxy-Authenticate: …`).
        .title_case_headers(true);
    let mut conn = Box::pin(builder.serve_connection(TokioIo::new(io), svc).with_upgrades());
    let still_waiting = || waiting.lock().unwrap_or_else(|e| e.into_inner()).is_some();
    let cut_off = async {
        tokio::select! {
            () = sleep_until(deadline) => {}
            () = shed.cancelled() => {}
        }
        if !still_waiting() {
            std::future::pending::<()>().await;
        }
    };
    let ended = tokio::select! {
        r = &mut conn => Some(r),
        () = cut_off => None,
    };
    match ended {
        Some(Ok(())) => {}
        Some(Err(e)) => refused_by_hyper(&ctx.proxy.counters, peer, &e),
        None => {
            drop(conn);
            let stream = raw
                .map(std::net::TcpStream::from)
                .and_then(|s| TcpStream::from_std(s).ok());
            head_timed_out(&ctx.proxy.counters, peer, stream).await;
        }
    }
}

/// Counts what hyper refused on its own (it already answered 400 or 431).
fn refused_by_hyper(counters: &Counters, peer: SocketAddr, e: &hyper::Error) {
    let (why, status) = if e.is_parse_too_large() {
        (Refusal::TooLarge, 431)
    } else if e.is_parse() || e.is_parse_version_h2() {
        (Refusal::BadRequest, 400)
    } else {
        tracing::debug!(agent = %peer, error = %e, "connection ended");
        return;
    };
    counters.refuse(why);
    tracing::info!(agent = %peer, outcome = "refused", status, reason = %e, "proxy request");
}

/// `408` (on a plain socket) and the close, counted.
async fn head_timed_out(counters: &Counters, peer: SocketAddr, stream: Option<TcpStream>) {
    counters.refuse(Refusal::HeadTimeout);
    tracing::info!(agent = %peer, outcome = "refused", status = 408, reason = "request head not received in time", "proxy request");
    let Some(mut s) = stream else { return };
    let answer = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let sent = timeout(Duration::from_secs(5), async {
        s.write_all(answer).await?;
        s.flush().await
    })
    .await;
    if matches!(sent, Ok(Ok(()))) {
        linger(&mut s).await;
    }
}

/// Reads and drops what the client still sends, briefly and boundedly, then
/// closes: closing with unread bytes would reset the connection and could
/// destroy the answer before the client reads it.
async fn linger(s: &mut TcpStream) {
    let _ = timeout(LINGER, s.shutdown()).await;
    let mut sink = vec![0u8; 8192];
    let mut total = 0;
    let _ = timeout(LINGER, async {
        while total < LINGER_BYTES {
            match s.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// One request: the proxy's, or the routes' under their class's slots.
async fn dispatch(ctx: &Ctx, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    if Proxy::is_proxy_request(&req) {
        let version = req.version();
        let answer = if req.method() == axum::http::Method::CONNECT {
            ctx.proxy.connect(req, peer).await
        } else if ctx.proxy.config.forward_http {
            crate::serve::proxy::forward::forward(&ctx.proxy, req, peer).await
        } else {
            Err(ctx.proxy.refused(
                StatusCode::METHOD_NOT_ALLOWED,
                Refusal::Method,
                &req.uri().to_string(),
                format!("method {}", req.method()),
            ))
        };
        return answer.unwrap_or_else(|refused| ctx.proxy.refusal(refused, version, peer));
    }
    let config = &ctx.proxy.config;
    let Some(routes) = &config.service else {
        let target = req.uri().to_string();
        let refused = ctx.proxy.refused(
            StatusCode::METHOD_NOT_ALLOWED,
            Refusal::Method,
            &target,
            format!("method {}", req.method()),
        );
        return ctx.proxy.refusal(refused, req.version(), peer);
    };
    let slots = match router::class(req.uri().path()) {
        Class::Health => &ctx.health,
        Class::Api => &ctx.api,
    };
    let Ok(_slot) = slots.clone().try_acquire_owned() else {
        ctx.proxy.counters.refuse(Refusal::Busy);
        tracing::info!(agent = %peer, path = %req.uri().path(), outcome = "refused", status = 503, reason = "busy", "service request");
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    };
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut req = req.map(Body::new);
    req.extensions_mut().insert(ConnectInfo(peer));
    let mut answer = match timeout(config.body_timeout, routes.clone().oneshot(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(never)) => match never {},
        Err(_) => crate::serve::answer::error(StatusCode::REQUEST_TIMEOUT, "request not served in time"),
    };
    // Callers send one request per connection: no idle keep-alive to hold.
    answer
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    tracing::debug!(agent = %peer, method = %method, path = %path.chars().take(200).collect::<String>(), status = answer.status().as_u16(), "service request");
    answer
}
