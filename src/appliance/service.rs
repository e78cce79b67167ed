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

use axum::extract::{ConnectInfo, OriginalUri, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use std::time::Duration;

use crate::appliance::config::{self, ConfigError};
use crate::appliance::console;
use crate::appliance::metrics;
use crate::appliance::profile;
use crate::appliance::proxy::{self as proxy_settings, ProxySettingsError};
use crate::appliance::settings::Settings;
use crate::appliance::state::{RunNow, Shared};
use crate::appliance::status;
use crate::fleet::api::{Api, FleetConfig};
use crate::fleet::definition::FieldError;
use crate::fleet::route;
use crate::model::timestamp::rfc3339;
use crate::report::intake::{self, Intake, IntakeConfig};
use crate::serve::auth::{self, Scope, Tokens};
use crate::serve::proxy::ProxyConfig;
use crate::serve::{Routes, answer, query, router as routes};
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
    let (routes, fleet) = router(settings, shared)?;
    config.service = Some(routes.finish(config.max_body));
    let listener =
        crate::serve::listener::bind(listen).map_err(|source| ServiceError::Listen { addr: listen, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServiceError::Listen { addr: listen, source })?;
    shared.set_listen(local);
    if settings.config.console.enabled {
        let scheme = if settings.config.service.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!("console: {scheme}://{local}/ (log in with an administrator token, --admin-token)");
    }
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

/// Health, status and metrics, run-now, the intake when report or
/// administrator tokens are configured (intake tokens may also read), and
/// the fleet API with its sensors' credentials when administrator tokens are.
fn router(settings: &Settings, shared: &Arc<Shared>) -> Result<(Routes, Option<Arc<Api>>), ServiceError> {
    let c = &settings.config;
    let mut intake_tokens: BTreeMap<String, String> = c.intake.tokens.clone();
    if let Some(f) = &c.intake.tokens_file {
        intake_tokens.extend(config::read_tokens(f)?);
    }
    let serves_reports = !intake_tokens.is_empty() || !settings.admin_tokens.is_empty();
    // The merged inventory the intake writes, the fleet keeps and the console
    // reads: the embedded store, or PostgreSQL for a fleet's central sensor.
    let store: Option<Arc<dyn CentralStore>> = match (&c.inventory.url, serves_reports || c.console.enabled) {
        (_, false) => None,
        (None, true) => Some(shared.inventory.clone()),
        (Some(url), true) => {
            let store = PgInventory::connect_off_runtime(url).map_err(ServiceError::Central)?;
            tracing::info!("reports from other sensors go to {}", central::redact(url));
            Some(Arc::new(store))
        }
    };
    let fleet = match &store {
        Some(store) if !settings.admin_tokens.is_empty() => Some(Arc::new(Api::new(
            store.clone(),
            FleetConfig {
                admin_tokens: settings.admin_tokens.clone(),
                silence: c.fleet.offline_after,
                enrollment_ttl: c.fleet.enrollment_ttl,
            },
            Arc::new(profile_check),
        ))),
        _ => None,
    };
    let mut tokens = Tokens::new();
    tokens.add_intake(&intake_tokens);
    tokens.add_admin(&settings.admin_tokens);
    if let Some(api) = &fleet {
        // Enrolled sensors' credentials live in the central store.
        tokens = tokens.with_lookup(route::lookup(api.clone()));
    }
    let tokens = Arc::new(tokens);
    if c.service.status_access == auth::Access::Token && !tokens.any_with(Scope::Read) {
        tracing::info!("no read token is configured: /api/v1/status answers loopback callers only");
    }
    let (for_status, for_metrics) = (shared.clone(), shared.clone());
    let status = get(move || blocking(move || answer::json(StatusCode::OK, &status::document(&for_status))))
        .route_layer(auth::gate(&tokens, Scope::Read, c.service.status_access))
        .fallback(routes::not_allowed_get);
    let metrics = get(move || {
        blocking(move || {
            answer::bytes(
                StatusCode::OK,
                metrics::CONTENT_TYPE,
                metrics::series::page(&for_metrics),
            )
        })
    })
    .route_layer(auth::gate(&tokens, Scope::Read, c.service.metrics_access))
    .fallback(routes::not_allowed_get);
    let own = axum::Router::new()
        .route("/api/v1/status", status)
        .route("/metrics", metrics)
        .merge(run_now_route(shared.clone()));
    let mut routes = Routes::new().merge(own);
    if c.console.enabled
        && let Some(store) = &store
    {
        routes = routes.merge(console::routes(
            store.clone(),
            shared.inventory.clone(),
            &settings.admin_tokens,
            &intake_tokens,
            c.service.tls_cert.is_some(),
        ));
    }
    if serves_reports && let Some(store) = store {
        let intake = Intake::new(
            store,
            IntakeConfig {
                tokens: intake_tokens,
                max_decoded: intake::DEFAULT_MAX_DECODED,
            },
        );
        routes = routes.merge(intake.routes(&tokens));
    }
    if let Some(api) = &fleet {
        routes = routes.merge(route::routes(api.clone(), &tokens));
    }
    Ok((routes, fleet))
}

/// An answer that reads a store (SQLite, a lock a long write may hold):
/// computed on a blocking thread, never on the runtime's workers.
async fn blocking(answer: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(answer)
        .await
        .unwrap_or_else(|e| answer::error(StatusCode::INTERNAL_SERVER_ERROR, &format!("route failed: {e}")))
}

// ---- POST /api/v1/profiles/{name}/run-now ---------------------------------

/// `POST /api/v1/profiles/{name}/run-now`: run a profile now, outside its
/// schedule and window (`sensor scans run-now NAME`). Answers `202` when
/// queued, `404` for an unknown profile, `409` while it runs, `403` to a
/// peer off loopback: the service port may face the network for agents,
/// and starting scans is for the machine's operator. The decision is
/// [`Shared::request_run`]; this is only its HTTP.
fn run_now_route(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().route(
        "/api/v1/profiles/{name}/run-now",
        post(run_now).fallback(routes::not_allowed_post).with_state(shared),
    )
}

async fn run_now(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
) -> Response {
    // The raw segment, decoded once here (a profile name may hold any character).
    let raw = uri
        .path()
        .strip_prefix("/api/v1/profiles/")
        .and_then(|p| p.strip_suffix("/run-now"))
        .unwrap_or_default();
    let name = query::percent_decode(raw, false);
    if !peer.ip().is_loopback() {
        return answer::error(
            StatusCode::FORBIDDEN,
            "runs are started from the sensor's own machine (loopback) only",
        );
    }
    match shared.request_run(&name) {
        RunNow::Queued => answer::json(
            StatusCode::ACCEPTED,
            &serde_json::json!({"profile": name, "status": "queued"}),
        ),
        RunNow::Running => answer::error(StatusCode::CONFLICT, &format!("profile `{name}` is running already")),
        RunNow::Unknown => answer::error(StatusCode::NOT_FOUND, &format!("no profile `{name}` is loaded")),
    }
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
            if let Err(e) =
                crate::serve::listener::run(self.listener, self.config, counters, stop.cancelled_owned()).await
            {
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

    #[test]
    fn fleet_definitions_take_host_discovery_as_profiles_do() {
        use serde_json::json;
        let body = |v: serde_json::Value| json!({"name": "lab", "targets": ["127.0.0.0/16"], "sensors": ["a"], "host_discovery": v});
        let d = crate::fleet::definition::parse(&body(json!(false)), &profile_check).unwrap();
        assert_eq!(d.profile["host_discovery"], json!(false));
        let e = crate::fleet::definition::parse(&body(json!("off")), &profile_check).unwrap_err();
        assert_eq!(e.field, "host_discovery", "{e:?}");
    }

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

    async fn call(route: &axum::Router, method: &str, path: &str, peer: &str) -> Option<(u16, String)> {
        use tower::ServiceExt;
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-length", "0")
            .body(axum::body::Body::empty())
            .unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        let answer = Routes::new()
            .merge(route.clone())
            .finish(1024)
            .oneshot(req)
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let body = axum::body::to_bytes(answer.into_body(), 1 << 20).await.unwrap();
        (status != 404 || body.starts_with(b"{\"error\":\"no profile"))
            .then(|| (status, String::from_utf8_lossy(&body).into_owned()))
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
        assert_eq!(crate::probe::sensor_port::PORT, crate::serve::proxy::DEFAULT_PORT);
    }
}
