//! The daemon's service port (48999): the agent proxy, with the sensor's
//! own routes (health, status, metrics, report intake) behind it, and the
//! task that marks an agent's host automatable.
//!
//! Split in two steps so the daemon can refuse to start before anything
//! runs: [`prepare`] builds and checks everything and binds the port;
//! [`Service::spawn`] starts the listener and the marker, both ending with
//! the shutdown token. The marker writes what agents did before the
//! shutdown (its queue is drained), so no agent seen is forgotten.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use std::time::Duration;

use crate::appliance::config::{self, ConfigError};
use crate::appliance::metrics;
use crate::appliance::profile;
use crate::appliance::proxy::{self as proxy_settings, ProxySettingsError};
use crate::appliance::settings::Settings;
use crate::appliance::state::{RunNow, Shared};
use crate::appliance::status;
use crate::fleet::api::{Api, FleetConfig};
use crate::fleet::definition::FieldError;
use crate::fleet::route::{self, FleetRoute};
use crate::model::timestamp::rfc3339;
use crate::report::intake::{self, Intake, IntakeConfig};
use crate::serve::proxy::{self, ProxyConfig};
use crate::serve::{self, BoxFuture, Handler, Request, Response, Router};
use crate::store::central::{self, CentralStore, PgInventory};
use crate::store::inventory::InventoryError;

/// Agents seen but not yet written: beyond this, sightings are dropped
/// (the proxy's path never waits for the store).
const AGENT_QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Proxy(#[from] ProxySettingsError),
    #[error(transparent)]
    Tokens(#[from] ConfigError),
    #[error("inventory.url: {0}")]
    Central(#[source] InventoryError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl ServiceError {
    /// The settings are at fault (not the machine): nothing was started.
    pub fn is_invalid(&self) -> bool {
        matches!(self, ServiceError::Proxy(_) | ServiceError::Tokens(_))
    }
}

/// The service port, bound, ready to serve.
pub struct Service {
    listener: TcpListener,
    config: ProxyConfig,
    agents: mpsc::Receiver<IpAddr>,
    /// A central's fleet API (administrator tokens configured).
    fleet: Option<Arc<Api>>,
}

/// The service of `settings` (`None` without `service.listen`): the proxy
/// and routes checked, the port bound, its address noted in `shared`.
pub fn prepare(settings: &Settings, shared: &Arc<Shared>) -> Result<Option<Service>, ServiceError> {
    let Some(listen) = settings.config.service.listen else {
        return Ok(None);
    };
    let mut config = proxy_settings::config(&settings.config)?;
    let (seen, agents) = mpsc::channel::<IpAddr>(AGENT_QUEUE);
    config.on_agent = Some(Arc::new(move |ip| {
        let _ = seen.try_send(ip);
    }));
    let (router, fleet) = router(settings, shared)?;
    config.service = Some(router);
    let listener = proxy::bind(listen).map_err(|source| ServiceError::Listen { addr: listen, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServiceError::Listen { addr: listen, source })?;
    shared.set_listen(local);
    Ok(Some(Service {
        listener,
        config,
        agents,
        fleet,
    }))
}

/// The local profiles' validation as the fleet applies it to definitions:
/// a profile error becomes the field it names (an unknown key's name).
fn profile_check(text: &str) -> Result<(), FieldError> {
    profile::parse(text, "definition").map(|_| ()).map_err(|e| {
        let field = e.field.clone().unwrap_or_else(|| {
            e.message
                .split('`')
                .nth(1)
                .filter(|_| e.message.contains("field"))
                .unwrap_or("definition")
                .to_string()
        });
        FieldError {
            field,
            message: format!(
                "{}{}",
                e.message,
                e.fix.map(|f| format!(" (fix: {f})")).unwrap_or_default()
            ),
        }
    })
}

/// Health, status and metrics, the intake when tokens are configured, and
/// the fleet API when administrator tokens are.
fn router(settings: &Settings, shared: &Arc<Shared>) -> Result<(Router, Option<Arc<Api>>), ServiceError> {
    let c = &settings.config;
    let mut tokens: BTreeMap<String, String> = c.intake.tokens.clone();
    if let Some(f) = &c.intake.tokens_file {
        tokens.extend(config::read_tokens(f)?);
    }
    let (for_status, for_metrics) = (shared.clone(), shared.clone());
    let mut router = Router::new()
        .with(serve::health())
        .with(serve::blocking_route("/api/v1/status", move || {
            Response::json(200, &status::document(&for_status))
        }))
        .with(serve::blocking_route("/metrics", move || {
            Response::text(200, metrics::CONTENT_TYPE, metrics::series::page(&for_metrics))
        }))
        .with(run_now_route(shared.clone()));
    let mut fleet = None;
    if !tokens.is_empty() || !settings.admin_tokens.is_empty() {
        // The merged inventory: the embedded store, or PostgreSQL for a fleet's central sensor.
        let store: Arc<dyn CentralStore> = match &c.inventory.url {
            None => shared.inventory.clone(),
            Some(url) => {
                let store = PgInventory::connect_off_runtime(url).map_err(ServiceError::Central)?;
                tracing::info!("reports from other sensors go to {}", central::redact(url));
                Arc::new(store)
            }
        };
        let mut intake = Intake::new(
            store.clone(),
            IntakeConfig {
                tokens,
                max_decoded: intake::DEFAULT_MAX_DECODED,
            },
        );
        if !settings.admin_tokens.is_empty() {
            let api = Arc::new(Api::new(
                store,
                FleetConfig {
                    admin_tokens: settings.admin_tokens.clone(),
                    silence: c.fleet.offline_after,
                    enrollment_ttl: c.fleet.enrollment_ttl,
                },
                Arc::new(profile_check),
            ));
            intake = intake.with_other_tokens(route::other_tokens(api.clone()));
            router = router.with(Arc::new(FleetRoute(api.clone())));
            fleet = Some(api);
        }
        router = router.with(Arc::new(intake));
    }
    Ok((router, fleet))
}

// ---- POST /api/v1/profiles/{name}/run-now ---------------------------------

/// `POST /api/v1/profiles/{name}/run-now`: run a profile now, outside its
/// schedule and window (`sensor scans run-now NAME`). Answers `202` when
/// queued, `404` for an unknown profile, `409` while it runs, `403` to a
/// peer off loopback: the service port may face the network for agents,
/// and starting scans is for the machine's operator. The decision is
/// [`Shared::request_run`]; this is only its HTTP.
fn run_now_route(shared: Arc<Shared>) -> Arc<dyn Handler> {
    Arc::new(RunNowRoute(shared))
}

struct RunNowRoute(Arc<Shared>);

impl Handler for RunNowRoute {
    fn handle<'a>(&'a self, req: &'a Request) -> Option<BoxFuture<'a, Response>> {
        let name = req
            .path_only()
            .strip_prefix("/api/v1/profiles/")?
            .strip_suffix("/run-now")?;
        let name = percent_decoded(name);
        let answer = if req.method != "POST" {
            Response::error(405, "use POST").with_header("Allow", "POST")
        } else if !req.peer.ip().is_loopback() {
            Response::error(403, "runs are started from the sensor's own machine (loopback) only")
        } else {
            match self.0.request_run(&name) {
                RunNow::Queued => Response::json(202, &serde_json::json!({"profile": name, "status": "queued"})),
                RunNow::Running => Response::error(409, &format!("profile `{name}` is running already")),
                RunNow::Unknown => Response::error(404, &format!("no profile `{name}` is loaded")),
            }
        };
        Some(Box::pin(std::future::ready(answer)))
    }
}

/// `%XX` escapes of a path segment decoded (a profile name may hold any character).
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Service {
    /// Serves until `shutdown`; tunnels already open run to their end.
    pub fn spawn(self, shared: &Arc<Shared>, shutdown: &CancellationToken) -> Vec<(&'static str, JoinHandle<()>)> {
        let mut tasks = Vec::new();
        if let Some(api) = self.fleet.clone() {
            tasks.push((
                "fleet liveness",
                tokio::spawn(sweep(api, shared.clone(), shutdown.clone())),
            ));
        }
        let counters = shared.proxy.clone();
        let stop = shutdown.clone();
        let listener = tokio::spawn(async move {
            if let Err(e) = proxy::run(self.listener, self.config, counters, stop.cancelled_owned()).await {
                tracing::error!(error = %e, "service listener failed");
            }
        });
        let marker = tokio::spawn(mark_agents(self.agents, shared.clone(), shutdown.clone()));
        tasks.extend([("service listener", listener), ("agent marker", marker)]);
        tasks
    }
}

/// A central's liveness pass: every few seconds (a tenth of the silence,
/// 1 to 15 s), sensors silent for longer than the silence are marked
/// offline (and back online), each transition logged once; the counts go to
/// `/metrics`.
async fn sweep(api: Arc<Api>, shared: Arc<Shared>, shutdown: CancellationToken) {
    let every = (api.silence() / 10).clamp(Duration::from_secs(1), Duration::from_secs(15));
    loop {
        let a = api.clone();
        match tokio::task::spawn_blocking(move || a.sweep()).await {
            Ok(Ok(counts)) => shared.set_fleet(counts.iter().map(|(s, n)| (s.as_str(), *n)).collect()),
            Ok(Err(e)) => tracing::warn!(error = %e, "fleet: liveness pass failed"),
            Err(e) => tracing::warn!(error = %e, "fleet: liveness pass panicked"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Marks each agent's host automatable in the inventory, off the proxy's
/// path; on shutdown, writes the sightings still queued, then ends.
async fn mark_agents(mut agents: mpsc::Receiver<IpAddr>, shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let ip = tokio::select! {
            ip = agents.recv() => match ip {
                Some(ip) => ip,
                None => return,
            },
            () = shutdown.cancelled() => break,
        };
        mark(&shared, ip).await;
    }
    while let Ok(ip) = agents.try_recv() {
        mark(&shared, ip).await;
    }
}

async fn mark(shared: &Arc<Shared>, ip: IpAddr) {
    let s = shared.clone();
    let at = rfc3339(OffsetDateTime::now_utc());
    let done = tokio::task::spawn_blocking(move || match s.inventory.lock() {
        Ok(mut inv) => inv.mark_agent(&ip.to_string(), &at).is_ok(),
        Err(_) => false,
    })
    .await;
    if !matches!(done, Ok(true)) {
        shared.error("inventory");
        tracing::warn!(agent = %ip, "cannot mark the agent's host automatable");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        let dir = tempfile::tempdir().unwrap();
        let inv = crate::store::inventory::Inventory::open(&dir.path().join("i.sqlite")).unwrap();
        let s = Arc::new(Shared::new(
            "t".into(),
            None,
            "t".into(),
            dir.path().to_path_buf(),
            Arc::new(std::sync::Mutex::new(inv)),
            None,
        ));
        s.profile("lab net", |_| ());
        s
    }

    async fn call(route: &Arc<dyn Handler>, method: &str, path: &str, peer: &str) -> Option<(u16, String)> {
        let req = Request {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            peer: peer.parse().unwrap(),
        };
        let answer = route.handle(&req)?.await;
        Some((answer.status, String::from_utf8_lossy(&answer.body).into_owned()))
    }

    #[tokio::test]
    async fn run_now_queues_a_known_idle_profile_from_loopback_only() {
        let s = shared();
        let route = run_now_route(s.clone());
        let lo = "127.0.0.1:5000";
        assert_eq!(
            call(&route, "GET", "/api/v1/status", lo).await,
            None,
            "not this route's path"
        );
        let (status, body) = call(&route, "POST", "/api/v1/profiles/lab%20net/run-now", lo)
            .await
            .unwrap();
        assert_eq!(
            (status, body.as_str()),
            (202, r#"{"profile":"lab net","status":"queued"}"#)
        );
        assert_eq!(s.take_run_requests(), ["lab net"]);
        assert_eq!(
            call(&route, "POST", "/api/v1/profiles/nope/run-now", lo)
                .await
                .unwrap()
                .0,
            404
        );
        assert_eq!(
            call(&route, "GET", "/api/v1/profiles/lab%20net/run-now", lo)
                .await
                .unwrap()
                .0,
            405
        );
        let far = "192.0.2.7:5000";
        assert_eq!(
            call(&route, "POST", "/api/v1/profiles/lab%20net/run-now", far)
                .await
                .unwrap()
                .0,
            403
        );
        s.profile("lab net", |p| p.running = true);
        assert_eq!(
            call(&route, "POST", "/api/v1/profiles/lab%20net/run-now", lo)
                .await
                .unwrap()
                .0,
            409
        );
        assert!(s.take_run_requests().is_empty());
    }

    #[test]
    fn scans_recognise_the_service_port_by_its_number() {
        assert_eq!(crate::probe::sensor_port::PORT, proxy::DEFAULT_PORT);
    }

    #[test]
    fn path_segments_are_percent_decoded() {
        assert_eq!(percent_decoded("lab%20net"), "lab net");
        assert_eq!(percent_decoded("a%2Fb%zz%"), "a/b%zz%");
    }
}
