//! The report intake and the endpoints API on the service port (48999).
//!
//! A sensor can be another sensor's upstream: segment sensors in closed
//! networks report to a central one, which keeps the merged inventory and
//! serves it. So this module answers, as a [`service::Handler`]:
//!
//! - `POST /api/v1/reports`: a report (`docs/schema/report.schema.json`,
//!   gzip'd or not) from a sensor presenting an accepted bearer token. The
//!   batch is applied in one transaction by [`Inventory::apply_report`], at
//!   most once per `batch_id` (a re-send is acknowledged, not re-applied),
//!   each endpoint tagged with the reporting sensor. Bodies are capped before
//!   (by the listener) and after decompression (here); malformed JSON is a
//!   400 saying why; an unknown token a 401; a token bound to another sensor
//!   id a 403. Nothing is half-applied: everything is checked before the
//!   transaction starts.
//! - `GET /api/v1/endpoints?category=discovered|unsecured|automatable&limit=&offset=`
//!   and `GET /api/v1/endpoints/{id}`: the merged inventory in the upstream
//!   inventory's terms (the categories of its Inventory > Endpoints views).
//!   Reading needs an accepted token too.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use serde::Serialize;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::cpu;
use crate::model::record::Category;
use crate::report::check;
use crate::report::wire::{Report, SCHEMA_VERSION};
use crate::serve::auth::{self, Principal, Scope, Tokens};
use crate::serve::{answer, query, router};
use crate::store::central::CentralStore;
use crate::store::inventory::{self, Filter, Stored};

/// Largest report after decompression (a gzip bomb stops here).
pub const DEFAULT_MAX_DECODED: usize = 64 << 20;
/// Default and largest page of the endpoints API.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// The intake's settings.
#[derive(Clone, Debug)]
pub struct IntakeConfig {
    /// Sensor id → the token it presents. An id starting with `*` accepts
    /// any sensor id (tokens given with `--accept-token`). They go into the
    /// port's token registry (`serve::auth::Tokens::add_intake`).
    pub tokens: BTreeMap<String, String>,
    pub max_decoded: usize,
}

/// The handler: reports in, endpoints out.
pub struct Intake {
    /// The embedded SQLite store or PostgreSQL (`[inventory] url`).
    inventory: Arc<dyn CentralStore>,
    config: IntakeConfig,
}

/// What the intake answers to an applied (or recognised) batch.
#[derive(Debug, Serialize)]
pub struct Ack {
    pub batch_id: String,
    /// False: this batch_id had been applied before; nothing was applied now.
    pub applied: bool,
    pub events: usize,
}

/// One endpoint in the API.
#[derive(Debug, Serialize)]
pub struct EndpointView<'a> {
    pub id: &'a str,
    pub category: &'a str,
    /// The sensor that reported it; null for this sensor's own scans.
    pub sensor: Option<&'a str>,
    pub address: &'a str,
    pub port: u16,
    pub sni: Option<&'a str>,
    pub profile: &'a str,
    pub first_seen: &'a str,
    pub last_seen: &'a str,
    pub gone_at: Option<&'a str>,
    pub tags: &'a [String],
    pub endpoint: &'a crate::model::record::EndpointRecord,
}

impl<'a> EndpointView<'a> {
    pub fn of(s: &'a Stored) -> EndpointView<'a> {
        EndpointView {
            id: &s.id,
            category: s.category.as_str(),
            sensor: (!s.key.sensor.is_empty()).then_some(s.key.sensor.as_str()),
            address: &s.key.address,
            port: s.key.port,
            sni: (!s.key.sni.is_empty()).then_some(s.key.sni.as_str()),
            profile: &s.profile,
            first_seen: &s.first_seen,
            last_seen: &s.last_seen,
            gone_at: s.gone_at.as_deref(),
            tags: &s.tags,
            endpoint: &s.record,
        }
    }
}

#[derive(Debug, Serialize)]
struct Page<'a> {
    total: usize,
    offset: usize,
    limit: usize,
    items: Vec<EndpointView<'a>>,
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A sensor id as reports carry it (`docs/schema/report.schema.json`).
pub fn is_sensor_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// What [`parse`] needs of a request, owned, so it can run on the CPU pool.
struct Upload {
    body: Vec<u8>,
    encoding: Option<String>,
    content_type: Option<String>,
    idempotency_key: Option<String>,
    max_decoded: usize,
}

/// Decompresses (capped), parses and checks a report; every refusal is the
/// answer to send. Pure computation, and on a large batch the longest step
/// of the intake (20–50 ms for a 500-event batch): it runs on the CPU pool.
fn parse(up: Upload) -> Result<Report, Box<Response>> {
    let body = match up.encoding.map(|v| v.trim().to_ascii_lowercase()) {
        None => up.body,
        Some(e) if e == "identity" => up.body,
        Some(e) if e == "gzip" => {
            let mut out = Vec::new();
            let cap = up.max_decoded;
            flate2::read::GzDecoder::new(&up.body[..])
                .take(cap as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| refuse(400, &format!("body is not valid gzip: {e}")))?;
            if out.len() > cap {
                return Err(refuse(413, &format!("report exceeds {cap} bytes decompressed")));
            }
            out
        }
        Some(e) => {
            return Err(refuse(415, &format!("Content-Encoding `{e}`: send gzip or identity")));
        }
    };
    if let Some(ct) = up.content_type.as_deref()
        && !ct.to_ascii_lowercase().starts_with("application/json")
    {
        return Err(refuse(415, &format!("Content-Type `{ct}`: send application/json")));
    }
    let mut report: Report =
        serde_json::from_slice(&body).map_err(|e| refuse(400, &format!("malformed report: {e}")))?;
    if report.schema_version != SCHEMA_VERSION {
        return Err(refuse(
            400,
            &format!(
                "schema_version `{}` is not supported (this sensor reads {SCHEMA_VERSION})",
                report.schema_version
            ),
        ));
    }
    if !is_hex32(&report.batch_id) {
        return Err(refuse(400, "batch_id must be 32 lower-case hex digits"));
    }
    if let Some(key) = up.idempotency_key.as_deref()
        && key != report.batch_id
    {
        return Err(refuse(400, "Idempotency-Key differs from batch_id"));
    }
    if !is_sensor_id(&report.sensor.id) {
        return Err(refuse(
            400,
            "sensor.id must be 1-64 characters of letters, digits, `.`, `_`, `-`",
        ));
    }
    if report.events.is_empty() {
        return Err(refuse(400, "a report needs at least one event"));
    }
    if let Some(e) = report.events.iter().find(|e| !is_hex32(&e.event_id)) {
        return Err(refuse(
            400,
            &format!("event_id `{}` must be 32 lower-case hex digits", e.event_id),
        ));
    }
    check::check(&mut report, time::OffsetDateTime::now_utc()).map_err(|e| refuse(400, &e.to_string()))?;
    Ok(report)
}

/// What identifies a batch's content: SHA-256 over its events (not
/// `sent_at`, which a re-send changes). A replayed `batch_id` with another
/// digest is refused (`409`), not acknowledged.
pub fn digest(report: &Report) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(&report.events).unwrap_or_default();
    crate::model::ids::hex(&sha2::Sha256::digest(&bytes))
}

/// A refusal as `parse` returns it (boxed: a response is large).
fn refuse(status: u16, message: &str) -> Box<Response> {
    Box::new(err(status, message))
}

/// `{"error": message}` with `status`.
fn err(status: u16, message: &str) -> Response {
    answer::error(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        message,
    )
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

impl Intake {
    pub fn new(inventory: Arc<dyn CentralStore>, config: IntakeConfig) -> Intake {
        Intake { inventory, config }
    }

    /// The intake's routes: reports need the `Report` scope, reading the
    /// endpoints `Read`, both checked by `tokens` before anything else.
    pub fn routes(self, tokens: &Arc<Tokens>) -> axum::Router {
        let reports = post(post_report)
            .route_layer(auth::require(tokens, Scope::Report))
            .fallback(router::not_allowed_post);
        let list = get(get_endpoints)
            .route_layer(auth::require(tokens, Scope::Read))
            .fallback(router::not_allowed_get);
        let one = get(get_endpoint)
            .route_layer(auth::require(tokens, Scope::Read))
            .fallback(router::not_allowed_get);
        axum::Router::new()
            .route(crate::report::wire::REPORTS_PATH, reports)
            .route("/api/v1/endpoints", list.clone())
            .route("/api/v1/endpoints/", list)
            .route("/api/v1/endpoints/{id}", one)
            .with_state(Arc::new(self))
    }
}

async fn post_report(
    State(intake): State<Arc<Intake>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let upload = Upload {
        body: body.to_vec(),
        encoding: header_str(&headers, header::CONTENT_ENCODING),
        content_type: header_str(&headers, header::CONTENT_TYPE),
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        max_decoded: intake.config.max_decoded,
    };
    drop(body);
    let report = match cpu::run(move || parse(upload)).await {
        Ok(Ok(r)) => r,
        Ok(Err(refusal)) => return *refusal,
        Err(e) => {
            tracing::error!("report not read: {e}");
            return err(500, &format!("report not read: {e}"));
        }
    };
    if let Some(id) = &principal.sensor
        && *id != report.sensor.id
    {
        return err(
            403,
            &format!(
                "this token belongs to sensor `{id}`, the report names `{}`",
                report.sensor.id
            ),
        );
    }
    let inventory = intake.inventory.clone();
    let received = crate::model::timestamp::rfc3339(time::OffsetDateTime::now_utc());
    let sensor = report.sensor.id.clone();
    let batch_id = report.batch_id.clone();
    let digest = digest(&report);
    let event_ids: Vec<String> = report.events.iter().map(|e| e.event_id.clone()).collect();
    let events: Vec<(inventory::EventKind, crate::model::record::EndpointRecord)> =
        report.events.into_iter().map(|e| (e.kind, e.endpoint)).collect();
    let (s2, b2) = (sensor.clone(), batch_id.clone());
    let applied = tokio::task::spawn_blocking(move || {
        inventory
            .apply_report(&s2, &b2, &digest, &received, &events)
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    match applied {
        Ok(a) if a.conflict => {
            tracing::warn!(sensor = %sensor, batch = %batch_id, "report refused: batch_id applied before with other content");
            err(
                409,
                &format!(
                    "batch_id {batch_id} was applied before with other content: send new events under a new batch_id"
                ),
            )
        }
        Ok(a) => {
            if a.applied {
                tracing::info!(sensor = %sensor, batch = %batch_id, events = a.events, "report applied");
                for id in &event_ids {
                    tracing::debug!(target: "netsensor::report::intake::events", sensor = %sensor, batch = %batch_id, event = %id, "event applied");
                }
            } else {
                tracing::info!(sensor = %sensor, batch = %batch_id, "report re-sent; applied before, acknowledged again");
            }
            answer::json(
                StatusCode::OK,
                &Ack {
                    batch_id,
                    applied: a.applied,
                    events: a.events,
                },
            )
        }
        Err(e) => {
            tracing::error!(sensor = %sensor, batch = %batch_id, error = %e, "report not applied");
            err(500, &format!("report not applied: {e}"))
        }
    }
}

async fn get_endpoints(State(intake): State<Arc<Intake>>, RawQuery(q): RawQuery) -> Response {
    let mut filter = Filter::default();
    let (mut limit, mut offset) = (DEFAULT_LIMIT, 0usize);
    for (k, v) in query::pairs(q.as_deref()) {
        match k.as_str() {
            "category" => {
                filter.category = Some(match v.as_str() {
                    "discovered" => Category::Discovered,
                    "unsecured" => Category::Unsecured,
                    "automatable" => Category::Automatable,
                    other => {
                        return err(
                            400,
                            &format!("category `{other}`: use discovered, unsecured or automatable"),
                        );
                    }
                })
            }
            "limit" => match query::digits(&v) {
                Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => limit = n as usize,
                _ => return err(400, &format!("limit `{v}`: give 1 to {MAX_LIMIT}")),
            },
            "offset" => match query::digits(&v).and_then(|n| usize::try_from(n).ok()) {
                Some(n) => offset = n,
                _ => return err(400, &format!("offset `{v}`: give a number from 0")),
            },
            "sensor" => filter.sensor = Some(v),
            other => return err(400, &format!("unknown query parameter `{other}`")),
        }
    }
    let inventory = intake.inventory.clone();
    let rows = tokio::task::spawn_blocking(move || inventory.query(&filter).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    match rows {
        Ok(rows) => answer::json(
            StatusCode::OK,
            &Page {
                total: rows.len(),
                offset,
                limit,
                items: rows.iter().skip(offset).take(limit).map(EndpointView::of).collect(),
            },
        ),
        Err(e) => err(500, &format!("inventory: {e}")),
    }
}

async fn get_endpoint(State(intake): State<Arc<Intake>>, Path(id): Path<String>) -> Response {
    if !is_hex32(&id) {
        return err(404, "no such endpoint (ids are 32 hex digits)");
    }
    let inventory = intake.inventory.clone();
    let id2 = id.clone();
    let row = tokio::task::spawn_blocking(move || inventory.get(&id2).map_err(|e| e.to_string()))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    match row {
        Ok(Some(s)) => answer::json(StatusCode::OK, &EndpointView::of(&s)),
        Ok(None) => err(404, &format!("no endpoint {id}")),
        Err(e) => err(500, &format!("inventory: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::model::record::EndpointRecord;
    use crate::report::wire::{Event, EventKind, SensorInfo};

    use axum::body::Body;
    use tower::ServiceExt;

    type Request = axum::http::Request<Body>;

    struct Under {
        router: axum::Router,
        inventory: Arc<dyn CentralStore>,
    }

    fn intake() -> (tempfile::TempDir, Under) {
        let dir = tempfile::tempdir().unwrap();
        let inv = crate::store::inventory::Inventory::open(&dir.path().join("i.sqlite")).unwrap();
        let mut tokens = BTreeMap::new();
        tokens.insert("seg-1".to_string(), "token-of-seg-1-xxxx".to_string());
        tokens.insert("*0".to_string(), "token-for-anyone-xx".to_string());
        let inventory: Arc<dyn CentralStore> = Arc::new(std::sync::Mutex::new(inv));
        let mut registry = Tokens::new();
        registry.add_intake(&tokens);
        let i = Intake::new(
            inventory.clone(),
            IntakeConfig {
                tokens,
                max_decoded: 1 << 20,
            },
        );
        let router = crate::serve::Routes::new()
            .merge(i.routes(&Arc::new(registry)))
            .finish(16 << 20);
        (dir, Under { router, inventory })
    }

    fn report(sensor: &str, batch: &str, n: u16) -> Report {
        // Times near the receiver's clock: reports are checked against it.
        let now = crate::model::timestamp::rfc3339(time::OffsetDateTime::now_utc());
        let events = (0..n)
            .map(|i| {
                let mut r = EndpointRecord::new(
                    "127.0.0.1".parse().unwrap(),
                    8000 + i,
                    None,
                    Category::Discovered,
                    now.clone(),
                );
                r.port_reason = "syn-ack".into();
                Event::new(EventKind::New, &now, Vec::new(), r)
            })
            .collect();
        Report::new(
            SensorInfo {
                id: sensor.into(),
                name: sensor.into(),
                version: "0".into(),
            },
            batch.into(),
            now.clone(),
            events,
        )
    }

    fn post(token: Option<&str>, body: Vec<u8>, gzip: bool) -> Request {
        let mut b = axum::http::Request::builder()
            .method("POST")
            .uri("/api/v1/reports")
            .header("content-type", "application/json")
            .header("content-length", body.len().to_string());
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if gzip {
            b = b.header("content-encoding", "gzip");
        }
        b.body(Body::from(body)).unwrap()
    }

    fn get(path: &str, token: &str) -> Request {
        axum::http::Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    }

    async fn call(i: &Under, r: Request) -> (u16, serde_json::Value) {
        let resp = i.router.clone().oneshot(r).await.unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 24).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    const B1: &str = "0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn a_batch_is_applied_once_and_served() {
        let (_d, i) = intake();
        let body = crate::report::delivery::encode(&report("seg-1", B1, 3)).unwrap();
        let (s, v) = call(&i, post(Some("token-of-seg-1-xxxx"), body.clone(), true)).await;
        assert_eq!(
            (s, v["applied"].as_bool(), v["events"].as_u64()),
            (200, Some(true), Some(3)),
            "{v}"
        );
        let (s, v) = call(&i, post(Some("token-of-seg-1-xxxx"), body, true)).await;
        assert_eq!(
            (s, v["applied"].as_bool()),
            (200, Some(false)),
            "a re-send is acknowledged, not applied"
        );
        let (s, v) = call(
            &i,
            get("/api/v1/endpoints?category=discovered&limit=2", "token-for-anyone-xx"),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(v["total"], 3);
        assert_eq!(v["items"].as_array().unwrap().len(), 2);
        assert_eq!(v["items"][0]["sensor"], "seg-1");
        let id = v["items"][0]["id"].as_str().unwrap().to_string();
        let (s, one) = call(&i, get(&format!("/api/v1/endpoints/{id}"), "token-for-anyone-xx")).await;
        assert_eq!((s, one["id"].as_str()), (200, Some(id.as_str())));
        let (s, _) = call(
            &i,
            get(
                "/api/v1/endpoints/00000000000000000000000000000000",
                "token-for-anyone-xx",
            ),
        )
        .await;
        assert_eq!(s, 404);
        let (s, v) = call(&i, get("/api/v1/endpoints?category=unsecured", "token-for-anyone-xx")).await;
        assert_eq!((s, v["total"].as_u64()), (200, Some(0)));
        let (s, _) = call(&i, get("/api/v1/endpoints?category=closed", "token-for-anyone-xx")).await;
        assert_eq!(s, 400);
    }

    #[tokio::test]
    async fn refusals_apply_nothing() {
        let (_d, i) = intake();
        let json = serde_json::to_vec(&report("seg-1", B1, 2)).unwrap();
        assert_eq!(call(&i, post(None, json.clone(), false)).await.0, 401);
        assert_eq!(call(&i, post(Some("nope"), json.clone(), false)).await.0, 401);
        // A token bound to another sensor.
        let other = serde_json::to_vec(&report("seg-2", B1, 2)).unwrap();
        assert_eq!(call(&i, post(Some("token-of-seg-1-xxxx"), other, false)).await.0, 403);
        // Malformed JSON: 400 with the reason.
        let (s, v) = call(
            &i,
            post(
                Some("token-for-anyone-xx"),
                b"{\"schema_version\": \"1\",".to_vec(),
                false,
            ),
        )
        .await;
        assert_eq!(s, 400);
        assert!(v["error"].as_str().unwrap().contains("malformed report"), "{v}");
        // One bad record in the middle refuses the whole batch.
        let mut bad: serde_json::Value = serde_json::from_slice(&json).unwrap();
        bad["events"][1]["endpoint"]["port"] = serde_json::json!("eighty");
        let (s, _) = call(
            &i,
            post(Some("token-for-anyone-xx"), serde_json::to_vec(&bad).unwrap(), false),
        )
        .await;
        assert_eq!(s, 400);
        // A gzip bomb stops at the cap.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 2 << 20]).unwrap();
        let (s, _) = call(&i, post(Some("token-for-anyone-xx"), gz.finish().unwrap(), true)).await;
        assert_eq!(s, 413);
        let (s, v) = call(&i, get("/api/v1/endpoints", "token-for-anyone-xx")).await;
        assert_eq!((s, v["total"].as_u64()), (200, Some(0)), "nothing applied: {v}");
        assert!(
            i.inventory.query(&Filter::default()).unwrap().is_empty(),
            "nothing half-applied"
        );
        // The same batch, well-formed, goes in whole.
        let (s, _) = call(&i, post(Some("token-for-anyone-xx"), json, false)).await;
        assert_eq!(s, 200);
        let (_, v) = call(&i, get("/api/v1/endpoints", "token-for-anyone-xx")).await;
        assert_eq!(v["total"], 2);
    }

    /// Issue 17, defect 2: a far-future time, markup for a time and a
    /// claimed `automatable` are refused naming the field; nothing is stored.
    #[tokio::test]
    async fn poison_is_refused_naming_the_field() {
        let (_d, i) = intake();
        let mut r = report("seg-1", B1, 1);
        r.events[0].endpoint.scanned_at = "9999-12-31T23:59:59Z".into();
        let (s, v) = call(
            &i,
            post(Some("token-of-seg-1-xxxx"), serde_json::to_vec(&r).unwrap(), false),
        )
        .await;
        assert_eq!(s, 400);
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .starts_with("events[0].endpoint.scanned_at: "),
            "{v}"
        );
        r.events[0].endpoint.scanned_at = "<script>alert(1)</script>".into();
        let (s, v) = call(
            &i,
            post(Some("token-of-seg-1-xxxx"), serde_json::to_vec(&r).unwrap(), false),
        )
        .await;
        assert!(s == 400 && v["error"].as_str().unwrap().contains("scanned_at"), "{v}");
        let mut r = report("seg-1", B1, 1);
        r.events[0].endpoint.category = Category::Automatable;
        let (s, v) = call(
            &i,
            post(Some("token-of-seg-1-xxxx"), serde_json::to_vec(&r).unwrap(), false),
        )
        .await;
        assert!(
            s == 400 && v["error"].as_str().unwrap().contains("endpoint.category"),
            "{v}"
        );
        assert!(i.inventory.query(&Filter::default()).unwrap().is_empty());
    }

    /// A replayed batch_id: the same content is acknowledged, other content is a 409.
    #[tokio::test]
    async fn a_replayed_batch_id_with_other_content_is_a_conflict() {
        let (_d, i) = intake();
        let first = report("seg-1", B1, 2);
        let body = serde_json::to_vec(&first).unwrap();
        assert_eq!(
            call(&i, post(Some("token-of-seg-1-xxxx"), body.clone(), false)).await.0,
            200
        );
        let mut resent = first.clone();
        resent.sent_at = crate::model::timestamp::rfc3339(time::OffsetDateTime::now_utc());
        let (s, v) = call(
            &i,
            post(Some("token-of-seg-1-xxxx"), serde_json::to_vec(&resent).unwrap(), false),
        )
        .await;
        assert_eq!((s, v["applied"].as_bool()), (200, Some(false)), "a re-send: {v}");
        let other = report("seg-1", B1, 3);
        let (s, v) = call(
            &i,
            post(Some("token-of-seg-1-xxxx"), serde_json::to_vec(&other).unwrap(), false),
        )
        .await;
        assert_eq!(s, 409, "{v}");
        assert!(v["error"].as_str().unwrap().contains("other content"), "{v}");
        assert_eq!(i.inventory.query(&Filter::default()).unwrap().len(), 2);
    }

    /// `limit=+5` is not a number (strict digits).
    #[tokio::test]
    async fn signed_numbers_in_the_query_are_refused() {
        let (_d, i) = intake();
        let (s, _) = call(&i, get("/api/v1/endpoints?limit=+5", "token-for-anyone-xx")).await;
        assert_eq!(s, 400);
        let (s, _) = call(&i, get("/api/v1/endpoints?limit=5", "token-for-anyone-xx")).await;
        assert_eq!(s, 200);
    }
}
