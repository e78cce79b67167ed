//! The proxy's requests, once hyper has read their head: check, connect,
//! answer, and hand the connection to a tunnel.
//!
//! `CONNECT host:port` is answered `200 Connection established` only after
//! the destination is allowlisted, resolved, permitted and connected; the
//! connection is then taken over from hyper (`hyper::upgrade`) and its bytes
//! copied untouched. (Absolute-form requests go to [`super::forward`] when
//! forwarding is on, anything else a proxy is sent is a `405`: the listener
//! decides.) Every refusal is counted, logged once and closes the connection.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, timeout_at};

use super::allow::Allowlist;
use super::request::{self, Authority};
use super::tunnel::{self, Agent, Opened};
use super::{Counters, ProxyConfig, Refusal};

/// The proxy's state shared by every connection.
pub struct Proxy {
    pub config: ProxyConfig,
    pub counters: Arc<Counters>,
    per_agent: Mutex<HashMap<IpAddr, usize>>,
    tunnels: Arc<Semaphore>,
}

/// One slot of an agent's own tunnel cap, given back on drop.
struct AgentSlot {
    proxy: Arc<Proxy>,
    ip: IpAddr,
}

impl Drop for AgentSlot {
    fn drop(&mut self) {
        let mut map = self.proxy.per_agent.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// A refused request: what to answer, count and log.
pub struct Refused {
    pub status: StatusCode,
    pub why: Refusal,
    pub target: String,
    pub detail: String,
}

/// The slots a tunnel holds for its whole life.
struct Held {
    _tunnel: OwnedSemaphorePermit,
    _agent: AgentSlot,
}

impl Proxy {
    pub fn new(config: ProxyConfig, counters: Arc<Counters>) -> Arc<Proxy> {
        let tunnels = Arc::new(Semaphore::new(config.max_tunnels));
        Arc::new(Proxy {
            config,
            counters,
            per_agent: Mutex::new(HashMap::new()),
            tunnels,
        })
    }

    /// Whether `req` is the proxy's (CONNECT, absolute form) rather than a route's.
    pub fn is_proxy_request<B>(req: &Request<B>) -> bool {
        req.method() == Method::CONNECT || req.uri().scheme().is_some()
    }

    pub fn refused(&self, status: StatusCode, why: Refusal, target: &str, detail: String) -> Refused {
        Refused {
            status,
            why,
            target: target.chars().take(300).collect(),
            detail,
        }
    }

    /// Counts, logs and answers a refusal (empty body, connection closed).
    pub fn refusal(&self, r: Refused, version: Version, peer: SocketAddr) -> Response<Body> {
        self.counters.refuse(r.why);
        tracing::info!(agent = %peer, target = %r.target, outcome = "refused", status = r.status.as_u16(), reason = %r.detail, "proxy request");
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = r.status;
        let h = resp.headers_mut();
        match r.status {
            StatusCode::METHOD_NOT_ALLOWED => {
                h.insert(header::ALLOW, HeaderValue::from_static("CONNECT"));
            }
            StatusCode::PROXY_AUTHENTICATION_REQUIRED => {
                h.append(
                    header::PROXY_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"netsensor\""),
                );
                h.append(
                    header::PROXY_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"netsensor\""),
                );
            }
            _ => {}
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        if version != Version::HTTP_10 {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }

    /// The credentials, when a token is configured.
    pub fn check_credentials<B>(&self, req: &Request<B>) -> Result<(), Refused> {
        let Some(token) = &self.config.auth_token else {
            return Ok(());
        };
        let sent = req
            .headers()
            .get(header::PROXY_AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if request::authorized(sent, token) {
            return Ok(());
        }
        let detail = if sent.is_some() {
            "wrong credentials"
        } else {
            "no credentials"
        };
        Err(self.refused(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            Refusal::Auth,
            &req.uri().to_string(),
            detail.into(),
        ))
    }

    fn agent_slot(self: &Arc<Self>, ip: IpAddr) -> Option<AgentSlot> {
        let mut map = self.per_agent.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.config.max_tunnels_per_agent {
            return None;
        }
        *n += 1;
        Some(AgentSlot {
            proxy: self.clone(),
            ip,
        })
    }

    /// A tunnel's slots (its agent's and the global cap), or the refusal.
    fn hold(self: &Arc<Self>, ip: IpAddr, target: &str) -> Result<Held, Refused> {
        let agent = self.agent_slot(ip).ok_or_else(|| {
            self.refused(
                StatusCode::TOO_MANY_REQUESTS,
                Refusal::AgentLimit,
                target,
                "agent tunnel limit".into(),
            )
        })?;
        let tunnel = self.tunnels.clone().try_acquire_owned().map_err(|_| {
            self.refused(
                StatusCode::SERVICE_UNAVAILABLE,
                Refusal::Busy,
                target,
                "busy: every tunnel slot is taken".into(),
            )
        })?;
        Ok(Held {
            _tunnel: tunnel,
            _agent: agent,
        })
    }

    /// Serves `CONNECT host:port` from `peer`.
    pub async fn connect(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, Refused> {
        let target = req.uri().to_string();
        self.check_credentials(&req)?;
        let authority = req
            .uri()
            .authority()
            .and_then(|a| request::parse_authority(a.as_str()))
            .filter(|_| req.uri().scheme().is_none() && req.uri().path_and_query().is_none())
            .ok_or_else(|| {
                self.refused(
                    StatusCode::BAD_REQUEST,
                    Refusal::BadRequest,
                    &target,
                    "CONNECT target is not host:port".into(),
                )
            })?;
        let held = self.hold(peer.ip(), &target)?;
        let upstream = self.open(&authority, &target).await?;
        let version = if req.version() == Version::HTTP_10 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        };
        // Only the upgrade's receiver moves into the tunnel's task, not the
        // request: the task is allocated at its largest state for the
        // tunnel's whole life.
        let on_upgrade = hyper::upgrade::on(&mut req);
        drop(req);
        let proxy = self.clone();
        tokio::spawn(async move {
            let held = held;
            let opened = Opened {
                upstream,
                target,
                version,
            };
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    proxy.counters.refuse(Refusal::Unreachable);
                    tracing::info!(agent = %peer, target = %opened.target, outcome = "failed", reason = %e, "tunnel");
                    return;
                }
            };
            let (agent, early) = agent_side(upgraded);
            let config = &proxy.config;
            tunnel::run(
                agent,
                opened,
                &early,
                peer,
                config.idle_timeout,
                &proxy.counters,
                config.on_agent.as_ref(),
            )
            .await;
            drop(held);
        });
        let mut ok = Response::new(Body::empty());
        ok.extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(b"Connection established"));
        Ok(ok)
    }

    /// Checks `authority` against the allowlist, resolves it and connects
    /// to a permitted address before the connect timeout.
    pub async fn open(&self, authority: &Authority, target: &str) -> Result<TcpStream, Refused> {
        let grant = self
            .config
            .allow
            .check(&authority.host, authority.port)
            .map_err(|d| self.refused(StatusCode::FORBIDDEN, Refusal::NotAllowed, target, d.to_string()))?;
        let deadline = Instant::now() + self.config.connect_timeout;
        let addrs = self
            .resolve(&authority.host, authority.port, deadline)
            .await
            .map_err(|e| {
                self.refused(
                    StatusCode::BAD_GATEWAY,
                    Refusal::Unreachable,
                    target,
                    format!("cannot resolve: {e}"),
                )
            })?;
        let addrs = Allowlist::permitted_addresses(grant, &addrs)
            .map_err(|d| self.refused(StatusCode::FORBIDDEN, Refusal::NotAllowed, target, d.to_string()))?;
        let mut last = String::from("no address");
        for ip in addrs {
            match timeout_at(deadline, TcpStream::connect((ip, authority.port))).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Ok(Err(e)) => last = format!("{ip}: {e}"),
                Err(_) => {
                    last = format!("{ip}: connect timed out");
                    break;
                }
            }
        }
        Err(self.refused(StatusCode::BAD_GATEWAY, Refusal::Unreachable, target, last))
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
}

/// The agent's side of an upgraded connection, and the bytes it sent behind
/// its head (usually none). Plain agents get the socket itself, for the
/// buffer-free relay. Those bytes are copied out: `read_buf` is hyper's whole
/// read buffer (8 KiB or more) frozen, and a tunnel holding it for its life
/// cost 8 MiB per 1,000 tunnels.
fn agent_side(upgraded: hyper::upgrade::Upgraded) -> (Agent<TokioIo<hyper::upgrade::Upgraded>>, Vec<u8>) {
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => (Agent::Tcp(parts.io.into_inner()), parts.read_buf.to_vec()),
        Err(upgraded) => (Agent::Stream(TokioIo::new(upgraded)), Vec::new()),
    }
}
