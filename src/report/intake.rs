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

use crate::cpu;
use crate::model::record::Category;
use crate::report::wire::{Report, SCHEMA_VERSION};
use crate::serve::{BoxFuture, Handler, Request, Response};
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
    /// any sensor id (tokens given with `--accept-token`).
    pub tokens: BTreeMap<String, String>,
    pub max_decoded: usize,
}

/// The handler: reports in, endpoints out.
pub struct Intake {
    /// The embedded SQLite store or PostgreSQL (`[inventory] url`).
    inventory: Arc<dyn CentralStore>,
    config: IntakeConfig,
    /// Tokens beyond the configured ones: the fleet's (enrolled sensors'
    /// credentials, administrator tokens). Blocking: run off the runtime.
    others: Option<OtherTokens>,
}

/// Asks about tokens the configuration does not hold (blocking).
pub type OtherTokens = Arc<dyn Fn(&str) -> OtherToken + Send + Sync>;

/// What the fleet says of a token the intake does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OtherToken {
    Unknown,
    /// An enrolled sensor: may report as this sensor id, not read.
    Sensor(String),
    /// An administrator: may read the endpoints, not report.
    Reader,
    /// Known and refused (a voided credential, a suspended sensor): the answer.
    Refused(u16, String),
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

/// Why an authenticated caller is who it is.
enum Auth {
    /// The token is bound to this sensor id.
    Sensor(String),
    /// A token that accepts any sensor id.
    Any,
    /// An enrolled sensor's credential: reports as this id, reads nothing.
    Enrolled(String),
    /// An administrator: reads, never reports.
    Reader,
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A sensor id as reports carry it (`docs/schema/report.schema.json`).
pub fn is_sensor_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Equal in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
fn parse(up: Upload) -> Result<Report, Response> {
    let body = match up.encoding.map(|v| v.trim().to_ascii_lowercase()) {
        None => up.body,
        Some(e) if e == "identity" => up.body,
        Some(e) if e == "gzip" => {
            let mut out = Vec::new();
            let cap = up.max_decoded;
            flate2::read::GzDecoder::new(&up.body[..])
                .take(cap as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| Response::error(400, &format!("body is not valid gzip: {e}")))?;
            if out.len() > cap {
                return Err(Response::error(
                    413,
                    &format!("report exceeds {cap} bytes decompressed"),
                ));
            }
            out
        }
        Some(e) => {
            return Err(Response::error(
                415,
                &format!("Content-Encoding `{e}`: send gzip or identity"),
            ));
        }
    };
    if let Some(ct) = up.content_type.as_deref()
        && !ct.to_ascii_lowercase().starts_with("application/json")
    {
        return Err(Response::error(
            415,
            &format!("Content-Type `{ct}`: send application/json"),
        ));
    }
    let report: Report =
        serde_json::from_slice(&body).map_err(|e| Response::error(400, &format!("malformed report: {e}")))?;
    if report.schema_version != SCHEMA_VERSION {
        return Err(Response::error(
            400,
            &format!(
                "schema_version `{}` is not supported (this sensor reads {SCHEMA_VERSION})",
                report.schema_version
            ),
        ));
    }
    if !is_hex32(&report.batch_id) {
        return Err(Response::error(400, "batch_id must be 32 lower-case hex digits"));
    }
    if let Some(key) = up.idempotency_key.as_deref()
        && key != report.batch_id
    {
        return Err(Response::error(400, "Idempotency-Key differs from batch_id"));
    }
    if !is_sensor_id(&report.sensor.id) {
        return Err(Response::error(
            400,
            "sensor.id must be 1-64 characters of letters, digits, `.`, `_`, `-`",
        ));
    }
    if report.events.is_empty() {
        return Err(Response::error(400, "a report needs at least one event"));
    }
    if let Some(e) = report.events.iter().find(|e| !is_hex32(&e.event_id)) {
        return Err(Response::error(
            400,
            &format!("event_id `{}` must be 32 lower-case hex digits", e.event_id),
        ));
    }
    Ok(report)
}

impl Intake {
    pub fn new(inventory: Arc<dyn CentralStore>, config: IntakeConfig) -> Intake {
        Intake {
            inventory,
            config,
            others: None,
        }
    }

    /// Asks `others` about tokens the intake's configuration does not hold.
    pub fn with_other_tokens(mut self, others: OtherTokens) -> Intake {
        self.others = Some(others);
        self
    }

    async fn authenticate(&self, req: &Request) -> Result<Auth, Response> {
        let unauthorized = |msg: &str| Response::error(401, msg).with_header("WWW-Authenticate", "Bearer");
        match self.configured(req) {
            Ok(a) => Ok(a),
            Err(refusal) => {
                let (Some(others), Some(token)) = (self.others.clone(), req.bearer()) else {
                    return Err(refusal);
                };
                let token = token.to_string();
                let said = tokio::task::spawn_blocking(move || others(&token))
                    .await
                    .unwrap_or(OtherToken::Unknown);
                match said {
                    OtherToken::Unknown => Err(refusal),
                    OtherToken::Sensor(id) => Ok(Auth::Enrolled(id)),
                    OtherToken::Reader => Ok(Auth::Reader),
                    OtherToken::Refused(401, why) => Err(unauthorized(&why)),
                    OtherToken::Refused(status, why) => Err(Response::error(status, &why)),
                }
            }
        }
    }

    fn configured(&self, req: &Request) -> Result<Auth, Response> {
        let unauthorized = |msg: &str| Response::error(401, msg).with_header("WWW-Authenticate", "Bearer");
        let Some(token) = req.bearer() else {
            return Err(unauthorized("send Authorization: Bearer TOKEN"));
        };
        let mut found = None;
        for (id, t) in &self.config.tokens {
            if same(t, token) && found.is_none() {
                found = Some(if id.starts_with('*') {
                    Auth::Any
                } else {
                    Auth::Sensor(id.clone())
                });
            }
        }
        found.ok_or_else(|| unauthorized("unknown token"))
    }

    async fn post_report(&self, req: &Request) -> Response {
        if req.method != "POST" {
            return Response::error(405, "use POST").with_header("Allow", "POST");
        }
        let auth = match self.authenticate(req).await {
            Ok(Auth::Reader) => return Response::error(403, "an administrator token does not report"),
            Ok(a) => a,
            Err(r) => return r,
        };
        let upload = Upload {
            body: req.body.clone(),
            encoding: req.header("content-encoding").map(str::to_string),
            content_type: req.header("content-type").map(str::to_string),
            idempotency_key: req.header("idempotency-key").map(str::to_string),
            max_decoded: self.config.max_decoded,
        };
        let report = match cpu::run(move || parse(upload)).await {
            Ok(Ok(r)) => r,
            Ok(Err(refusal)) => return refusal,
            Err(e) => {
                tracing::error!("report not read: {e}");
                return Response::error(500, &format!("report not read: {e}"));
            }
        };
        if let Auth::Sensor(id) | Auth::Enrolled(id) = &auth
            && *id != report.sensor.id
        {
            return Response::error(
                403,
                &format!(
                    "this token belongs to sensor `{id}`, the report names `{}`",
                    report.sensor.id
                ),
            );
        }
        let inventory = self.inventory.clone();
        let received = crate::model::timestamp::rfc3339(time::OffsetDateTime::now_utc());
        let sensor = report.sensor.id.clone();
        let batch_id = report.batch_id.clone();
        let event_ids: Vec<String> = report.events.iter().map(|e| e.event_id.clone()).collect();
        let events: Vec<(inventory::EventKind, crate::model::record::EndpointRecord)> =
            report.events.into_iter().map(|e| (e.kind, e.endpoint)).collect();
        let (s2, b2) = (sensor.clone(), batch_id.clone());
        let applied = tokio::task::spawn_blocking(move || {
            inventory
                .apply_report(&s2, &b2, &received, &events)
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match applied {
            Ok(a) => {
                if a.applied {
                    tracing::info!(sensor = %sensor, batch = %batch_id, events = a.events, "report applied");
                    for id in &event_ids {
                        tracing::debug!(target: "netsensor::report::intake::events", sensor = %sensor, batch = %batch_id, event = %id, "event applied");
                    }
                } else {
                    tracing::info!(sensor = %sensor, batch = %batch_id, "report re-sent; applied before, acknowledged again");
                }
                Response::json(
                    200,
                    &Ack {
                        batch_id,
                        applied: a.applied,
                        events: a.events,
                    },
                )
            }
            Err(e) => {
                tracing::error!(sensor = %sensor, batch = %batch_id, error = %e, "report not applied");
                Response::error(500, &format!("report not applied: {e}"))
            }
        }
    }

    async fn get_endpoints(&self, req: &Request) -> Response {
        if req.method != "GET" && req.method != "HEAD" {
            return Response::error(405, "use GET").with_header("Allow", "GET");
        }
        match self.authenticate(req).await {
            Err(r) => return r,
            Ok(Auth::Enrolled(_)) => {
                return Response::error(403, "a sensor credential may report and read its own assignments only");
            }
            Ok(_) => {}
        }
        let mut filter = Filter::default();
        let (mut limit, mut offset) = (DEFAULT_LIMIT, 0usize);
        for (k, v) in req.query_pairs() {
            match k.as_str() {
                "category" => {
                    filter.category = Some(match v.as_str() {
                        "discovered" => Category::Discovered,
                        "unsecured" => Category::Unsecured,
                        "automatable" => Category::Automatable,
                        other => {
                            return Response::error(
                                400,
                                &format!("category `{other}`: use discovered, unsecured or automatable"),
                            );
                        }
                    })
                }
                "limit" => match v.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                    _ => return Response::error(400, &format!("limit `{v}`: give 1 to {MAX_LIMIT}")),
                },
                "offset" => match v.parse::<usize>() {
                    Ok(n) => offset = n,
                    _ => return Response::error(400, &format!("offset `{v}`: give a number from 0")),
                },
                "sensor" => filter.sensor = Some(v),
                other => return Response::error(400, &format!("unknown query parameter `{other}`")),
            }
        }
        let inventory = self.inventory.clone();
        let rows = tokio::task::spawn_blocking(move || inventory.query(&filter).map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match rows {
            Ok(rows) => Response::json(
                200,
                &Page {
                    total: rows.len(),
                    offset,
                    limit,
                    items: rows.iter().skip(offset).take(limit).map(EndpointView::of).collect(),
                },
            ),
            Err(e) => Response::error(500, &format!("inventory: {e}")),
        }
    }

    async fn get_endpoint(&self, req: &Request, id: &str) -> Response {
        if req.method != "GET" && req.method != "HEAD" {
            return Response::error(405, "use GET").with_header("Allow", "GET");
        }
        match self.authenticate(req).await {
            Err(r) => return r,
            Ok(Auth::Enrolled(_)) => {
                return Response::error(403, "a sensor credential may report and read its own assignments only");
            }
            Ok(_) => {}
        }
        if !is_hex32(id) {
            return Response::error(404, "no such endpoint (ids are 32 hex digits)");
        }
        let inventory = self.inventory.clone();
        let id2 = id.to_string();
        let row = tokio::task::spawn_blocking(move || inventory.get(&id2).map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match row {
            Ok(Some(s)) => Response::json(200, &EndpointView::of(&s)),
            Ok(None) => Response::error(404, &format!("no endpoint {id}")),
            Err(e) => Response::error(500, &format!("inventory: {e}")),
        }
    }
}

impl Handler for Intake {
    fn handle<'a>(&'a self, req: &'a Request) -> Option<BoxFuture<'a, Response>> {
        let path = req.path_only();
        if path == crate::report::wire::REPORTS_PATH {
            return Some(Box::pin(self.post_report(req)));
        }
        if path == "/api/v1/endpoints" || path == "/api/v1/endpoints/" {
            return Some(Box::pin(self.get_endpoints(req)));
        }
        if let Some(id) = path.strip_prefix("/api/v1/endpoints/") {
            return Some(Box::pin(self.get_endpoint(req, id)));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::model::record::EndpointRecord;
    use crate::report::wire::{Event, EventKind, SensorInfo};

    fn intake() -> (tempfile::TempDir, Intake) {
        let dir = tempfile::tempdir().unwrap();
        let inv = crate::store::inventory::Inventory::open(&dir.path().join("i.sqlite")).unwrap();
        let mut tokens = BTreeMap::new();
        tokens.insert("seg-1".to_string(), "token-of-seg-1-xxxx".to_string());
        tokens.insert("*0".to_string(), "token-for-anyone-xx".to_string());
        let i = Intake::new(
            Arc::new(std::sync::Mutex::new(inv)),
            IntakeConfig {
                tokens,
                max_decoded: 1 << 20,
            },
        );
        (dir, i)
    }

    fn report(sensor: &str, batch: &str, n: u16) -> Report {
        let events = (0..n)
            .map(|i| {
                let mut r = EndpointRecord::new(
                    "127.0.0.1".parse().unwrap(),
                    8000 + i,
                    None,
                    Category::Discovered,
                    "2026-11-24T12:00:00Z".into(),
                );
                r.port_reason = "syn-ack".into();
                Event::new(EventKind::New, "2026-11-24T12:00:00Z", Vec::new(), r)
            })
            .collect();
        Report::new(
            SensorInfo {
                id: sensor.into(),
                name: sensor.into(),
                version: "0".into(),
            },
            batch.into(),
            "2026-11-24T12:00:01Z".into(),
            events,
        )
    }

    fn post(token: Option<&str>, body: Vec<u8>, gzip: bool) -> Request {
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(t) = token {
            headers.push(("authorization".into(), format!("Bearer {t}")));
        }
        if gzip {
            headers.push(("content-encoding".into(), "gzip".into()));
        }
        Request {
            method: "POST".into(),
            path: "/api/v1/reports".into(),
            headers,
            body,
            peer: "127.0.0.1:1".parse().unwrap(),
        }
    }

    fn get(path: &str, token: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            headers: vec![("authorization".into(), format!("Bearer {token}"))],
            body: Vec::new(),
            peer: "127.0.0.1:1".parse().unwrap(),
        }
    }

    async fn call(i: &Intake, r: &Request) -> (u16, serde_json::Value) {
        let resp = i.handle(r).expect("my route").await;
        (
            resp.status,
            serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null),
        )
    }

    const B1: &str = "0123456789abcdef0123456789abcdef";

    #[tokio::test]
    async fn a_batch_is_applied_once_and_served() {
        let (_d, i) = intake();
        let body = crate::report::delivery::encode(&report("seg-1", B1, 3)).unwrap();
        let (s, v) = call(&i, &post(Some("token-of-seg-1-xxxx"), body.clone(), true)).await;
        assert_eq!(
            (s, v["applied"].as_bool(), v["events"].as_u64()),
            (200, Some(true), Some(3)),
            "{v}"
        );
        let (s, v) = call(&i, &post(Some("token-of-seg-1-xxxx"), body, true)).await;
        assert_eq!(
            (s, v["applied"].as_bool()),
            (200, Some(false)),
            "a re-send is acknowledged, not applied"
        );
        let (s, v) = call(
            &i,
            &get("/api/v1/endpoints?category=discovered&limit=2", "token-for-anyone-xx"),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(v["total"], 3);
        assert_eq!(v["items"].as_array().unwrap().len(), 2);
        assert_eq!(v["items"][0]["sensor"], "seg-1");
        let id = v["items"][0]["id"].as_str().unwrap().to_string();
        let (s, one) = call(&i, &get(&format!("/api/v1/endpoints/{id}"), "token-for-anyone-xx")).await;
        assert_eq!((s, one["id"].as_str()), (200, Some(id.as_str())));
        let (s, _) = call(
            &i,
            &get(
                "/api/v1/endpoints/00000000000000000000000000000000",
                "token-for-anyone-xx",
            ),
        )
        .await;
        assert_eq!(s, 404);
        let (s, v) = call(&i, &get("/api/v1/endpoints?category=unsecured", "token-for-anyone-xx")).await;
        assert_eq!((s, v["total"].as_u64()), (200, Some(0)));
        let (s, _) = call(&i, &get("/api/v1/endpoints?category=closed", "token-for-anyone-xx")).await;
        assert_eq!(s, 400);
    }

    #[tokio::test]
    async fn refusals_apply_nothing() {
        let (_d, i) = intake();
        let json = serde_json::to_vec(&report("seg-1", B1, 2)).unwrap();
        assert_eq!(call(&i, &post(None, json.clone(), false)).await.0, 401);
        assert_eq!(call(&i, &post(Some("nope"), json.clone(), false)).await.0, 401);
        // A token bound to another sensor.
        let other = serde_json::to_vec(&report("seg-2", B1, 2)).unwrap();
        assert_eq!(call(&i, &post(Some("token-of-seg-1-xxxx"), other, false)).await.0, 403);
        // Malformed JSON: 400 with the reason.
        let (s, v) = call(
            &i,
            &post(
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
            &post(Some("token-for-anyone-xx"), serde_json::to_vec(&bad).unwrap(), false),
        )
        .await;
        assert_eq!(s, 400);
        // A gzip bomb stops at the cap.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 2 << 20]).unwrap();
        let (s, _) = call(&i, &post(Some("token-for-anyone-xx"), gz.finish().unwrap(), true)).await;
        assert_eq!(s, 413);
        let (s, v) = call(&i, &get("/api/v1/endpoints", "token-for-anyone-xx")).await;
        assert_eq!((s, v["total"].as_u64()), (200, Some(0)), "nothing applied: {v}");
        assert!(
            i.inventory.query(&Filter::default()).unwrap().is_empty(),
            "nothing half-applied"
        );
        // The same batch, well-formed, goes in whole.
        let (s, _) = call(&i, &post(Some("token-for-anyone-xx"), json, false)).await;
        assert_eq!(s, 200);
        let (_, v) = call(&i, &get("/api/v1/endpoints", "token-for-anyone-xx")).await;
        assert_eq!(v["total"], 2);
    }
}
