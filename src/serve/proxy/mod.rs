//! The agent proxy on the sensor's service port (48999).
//!
//! Certificate-automation agents on hosts without internet access use the
//! sensor as their HTTPS proxy to the issuing service (an ACME CA, the
//! certificate-lifecycle service's endpoints). The proxy answers `CONNECT`
//! only, to allowlisted destinations only, and passes the bytes through
//! untouched: TLS stays end to end between agent and issuer, which is the only
//! way a real CA works (the signed JWS carries the URL, so nothing may rewrite
//! it). See `docs/proxy.md`.
//!
//! Layers, as elsewhere: [`request`] (targets and credentials, pure) and
//! [`allow`] (the allowlist, pure) decide; hyper reads the request head
//! (`serve::listener`); [`server`] checks, resolves and connects, [`tunnel`]
//! copies the bytes, [`forward`] sends plain-HTTP requests on through hyper's
//! client.

pub mod allow;
pub mod forward;
pub mod request;
pub mod server;
pub mod tunnel;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use allow::{Allowlist, Denied, Grant, Rule};

/// The port the vendor's sensor serves its agent proxy on.
pub const DEFAULT_PORT: u16 = 48999;

/// Called with the agent's address each time a tunnel is established (the
/// inventory marks that host `automatable`).
pub type AgentHook = Arc<dyn Fn(IpAddr) + Send + Sync>;

/// Everything the proxy needs, validated before any port is bound.
#[derive(Clone)]
pub struct ProxyConfig {
    pub allow: Allowlist,
    /// Names answered before DNS (`--resolve NAME=ADDR`, as curl's), lower case.
    pub resolve: HashMap<String, Vec<IpAddr>>,
    /// When set, agents must send `Proxy-Authorization: Bearer T` or `Basic` with password T.
    pub auth_token: Option<String>,
    /// Tunnels (and connections still sending their head) at once.
    pub max_tunnels: usize,
    pub max_tunnels_per_agent: usize,
    pub max_head: usize,
    /// Time to receive the whole request head.
    pub head_timeout: Duration,
    pub connect_timeout: Duration,
    /// A tunnel with no byte either way for this long is closed.
    pub idle_timeout: Duration,
    /// Serve TLS to agents whose first byte is a handshake record (0x16).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub on_agent: Option<AgentHook>,
    /// Forward plain-HTTP absolute-form requests (`GET http://host/path`)
    /// to allowlisted destinations too; off by default (405).
    pub forward_http: bool,
    /// The sensor's own routes (`/healthz`, `/metrics`, the API; built with
    /// `serve::router::Routes`): origin-form requests go there; without it
    /// they are answered 405 like any non-CONNECT.
    pub service: Option<axum::Router>,
    /// Requests served at once by the routes, per class (API, health): one
    /// class never waits for the other's slots, nor for the tunnels'.
    pub max_api: usize,
    pub max_health: usize,
    /// Connections still sending their head, from all sources; when full,
    /// the oldest head of the busiest source is shed (`serve::slots`).
    pub max_heads: usize,
    /// Largest request body the service routes accept (413 beyond).
    pub max_body: usize,
    /// Time to receive a service request's body once its head arrived.
    pub body_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            allow: Allowlist::default(),
            resolve: HashMap::new(),
            auth_token: None,
            max_tunnels: 1024,
            max_tunnels_per_agent: 256,
            max_head: 8 * 1024,
            head_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            tls: None,
            on_agent: None,
            forward_http: false,
            service: None,
            max_api: 64,
            max_health: 32,
            max_heads: 1024,
            max_body: 16 * 1024 * 1024,
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// Invalid proxy configuration (caught before binding).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Allow(#[from] allow::RuleError),
    #[error("resolve entry {0:?}: expected NAME=ADDR")]
    Resolve(String),
    #[error("{name} must be at least {min}")]
    TooSmall { name: &'static str, min: u64 },
    #[error("the auth token must not be empty")]
    EmptyToken,
}

impl ProxyConfig {
    /// Adds a `NAME=ADDR` (or `NAME:PORT:ADDR`, curl's form; the port is ignored) entry.
    pub fn add_resolve(&mut self, entry: &str) -> Result<(), ConfigError> {
        let err = || ConfigError::Resolve(entry.to_string());
        let (name, addr) = match entry.split_once('=') {
            Some(pair) => pair,
            None => {
                let mut parts = entry.splitn(3, ':');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(n), Some(_port), Some(a)) => (n, a),
                    _ => return Err(err()),
                }
            }
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if name.is_empty() || name.contains(['/', ' ', ':']) {
            return Err(err());
        }
        self.resolve.entry(name).or_default().push(addr);
        Ok(())
    }

    /// Checks the limits; called by [`run`] callers before they bind.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let checks: [(&'static str, u64, u64); 9] = [
            ("max API requests", self.max_api as u64, 1),
            ("max health requests", self.max_health as u64, 1),
            ("max heads", self.max_heads as u64, 1),
            ("max tunnels", self.max_tunnels as u64, 1),
            ("max tunnels per agent", self.max_tunnels_per_agent as u64, 1),
            ("max head size", self.max_head as u64, 256),
            ("head timeout (ms)", self.head_timeout.as_millis() as u64, 1),
            ("connect timeout (ms)", self.connect_timeout.as_millis() as u64, 1),
            ("idle timeout (ms)", self.idle_timeout.as_millis() as u64, 1),
        ];
        for (name, value, min) in checks {
            if value < min {
                return Err(ConfigError::TooSmall { name, min });
            }
        }
        if self.auth_token.as_deref() == Some("") {
            return Err(ConfigError::EmptyToken);
        }
        Ok(())
    }
}

/// Why a request was refused; one counter each (keep `Unreachable` last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadRequest,
    TooLarge,
    HeadTimeout,
    Method,
    Auth,
    NotAllowed,
    AgentLimit,
    /// Every slot of the request's class taken (`503`).
    Busy,
    Unreachable,
}

const REFUSALS: usize = Refusal::Unreachable as usize + 1;

/// Counters for the metrics endpoint: plain atomics, read with [`Counters::snapshot`].
#[derive(Debug, Default)]
pub struct Counters {
    pub tunnels_open: AtomicU64,
    pub tunnels_total: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    refused: [AtomicU64; REFUSALS],
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    pub tunnels_open: u64,
    pub tunnels_total: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub refused_bad_request: u64,
    pub refused_too_large: u64,
    pub refused_head_timeout: u64,
    pub refused_method: u64,
    pub refused_auth: u64,
    pub refused_not_allowed: u64,
    pub refused_agent_limit: u64,
    pub refused_busy: u64,
    pub refused_unreachable: u64,
}

impl Counters {
    pub fn refuse(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let r = |w: Refusal| self.refused[w as usize].load(Ordering::Relaxed);
        CountersSnapshot {
            tunnels_open: self.tunnels_open.load(Ordering::Relaxed),
            tunnels_total: self.tunnels_total.load(Ordering::Relaxed),
            bytes_up: self.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.bytes_down.load(Ordering::Relaxed),
            refused_bad_request: r(Refusal::BadRequest),
            refused_too_large: r(Refusal::TooLarge),
            refused_head_timeout: r(Refusal::HeadTimeout),
            refused_method: r(Refusal::Method),
            refused_auth: r(Refusal::Auth),
            refused_not_allowed: r(Refusal::NotAllowed),
            refused_agent_limit: r(Refusal::AgentLimit),
            refused_busy: r(Refusal::Busy),
            refused_unreachable: r(Refusal::Unreachable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resolve_entries() {
        let mut c = ProxyConfig::default();
        c.add_resolve("ACME.test=127.0.0.5").unwrap();
        c.add_resolve("acme.test:443:[::1]").unwrap();
        assert_eq!(
            c.resolve["acme.test"],
            vec!["127.0.0.5".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]
        );
        assert!(c.add_resolve("acme.test").is_err());
        assert!(c.add_resolve("acme.test=nowhere").is_err());
        assert!(c.add_resolve("=127.0.0.1").is_err());
    }

    #[test]
    fn validates_limits() {
        assert!(ProxyConfig::default().validate().is_ok());
        let c = ProxyConfig {
            max_tunnels: 0,
            ..ProxyConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::TooSmall {
                name: "max tunnels",
                ..
            })
        ));
        let c = ProxyConfig {
            auth_token: Some(String::new()),
            ..ProxyConfig::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::EmptyToken)));
    }

    #[test]
    fn counts_refusals() {
        let c = Counters::default();
        c.refuse(Refusal::Auth);
        c.refuse(Refusal::Auth);
        c.refuse(Refusal::Unreachable);
        let s = c.snapshot();
        assert_eq!((s.refused_auth, s.refused_unreachable, s.refused_method), (2, 1, 0));
    }
}
