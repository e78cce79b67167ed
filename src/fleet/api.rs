//! The fleet API of a central sensor, apart from any HTTP stack: a call
//! (method, path, bearer token, body) in, a reply (status, JSON, headers)
//! out, every decision read from and written to the central store, so two
//! central processes on one PostgreSQL answer alike. Blocking (the store's
//! clients are): the route runs it on a blocking thread.
//!
//! Two kinds of caller: administrators (`--admin-token`,
//! `[service] admin_token_file`) manage sensors and definitions; enrolled
//! sensors (the credential they got for an enrollment token) fetch their
//! assignments, send heartbeats and run states, and report. A sensor
//! credential on an administrator route is a 403; a voided one a 401.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::fleet::assign;
use crate::fleet::definition::{self, FieldError};
use crate::fleet::status::{self, Status};
use crate::model::ids;
use crate::model::timestamp::rfc3339;
use crate::store::central::{CentralStore, transaction};
use crate::store::fleet::{self as rows, Redeem, RunRow, ScanState, SensorRow, SensorState, secret_hash};
use crate::store::inventory::InventoryError;

/// The local profiles' validation, as the API applies it to definitions.
pub type Check = Arc<dyn Fn(&str) -> Result<(), FieldError> + Send + Sync>;

/// How the API behaves.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    pub admin_tokens: Vec<String>,
    /// A sensor silent for longer is offline.
    pub silence: Duration,
    /// How long an enrollment token can be redeemed.
    pub enrollment_ttl: Duration,
}

/// One request, as the API needs it.
#[derive(Clone, Debug, Default)]
pub struct Call {
    pub method: String,
    /// Without the query.
    pub path: String,
    pub bearer: Option<String>,
    pub if_none_match: Option<String>,
    pub body: Vec<u8>,
}

/// One answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    /// `None`: no body (204, 304).
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::json(status, json!({ "error": message.into() }))
    }

    fn field(e: &FieldError) -> Reply {
        Reply::json(400, json!({ "error": e.to_string(), "field": e.field }))
    }
}

/// Who called.
#[derive(Clone, Debug)]
pub enum Caller {
    Admin,
    Sensor(SensorRow),
}

/// The fleet API over a central store.
pub struct Api {
    store: Arc<dyn CentralStore>,
    config: FleetConfig,
    check: Check,
}

/// Equal in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now() -> (OffsetDateTime, String) {
    let t = OffsetDateTime::now_utc();
    (t, rfc3339(t))
}

fn internal(e: InventoryError) -> Reply {
    tracing::error!(error = %e, "fleet store");
    Reply::error(500, format!("fleet store: {e}"))
}

impl Api {
    pub fn new(store: Arc<dyn CentralStore>, config: FleetConfig, check: Check) -> Api {
        Api { store, config, check }
    }

    pub fn store(&self) -> &Arc<dyn CentralStore> {
        &self.store
    }

    /// The silence after which a sensor is offline.
    pub fn silence(&self) -> Duration {
        self.config.silence
    }

    /// Who presents `token`: an administrator, an enrolled sensor (any
    /// state), or nobody.
    pub fn caller(&self, token: &str) -> Result<Option<Caller>, InventoryError> {
        if self.config.admin_tokens.iter().any(|t| same(t, token)) {
            return Ok(Some(Caller::Admin));
        }
        let hash = secret_hash(token);
        Ok(transaction(&*self.store, |tx| rows::sensor_by_credential(tx, &hash))?.map(Caller::Sensor))
    }

    /// Answers one call.
    pub fn handle(&self, call: &Call) -> Reply {
        let parts: Vec<&str> = call.path.trim_end_matches('/').split('/').skip(3).collect();
        let m = call.method.as_str();
        // Enrollment carries its own secret: the one-time token.
        if parts == ["enroll"] {
            return if m == "POST" {
                self.enroll(call)
            } else {
                Reply::error(405, "use POST")
            };
        }
        let Some(token) = call.bearer.as_deref() else {
            return Reply::error(401, "send Authorization: Bearer TOKEN");
        };
        let caller = match self.caller(token) {
            Ok(Some(c)) => c,
            Ok(None) => return Reply::error(401, "unknown token"),
            Err(e) => return internal(e),
        };
        match caller {
            Caller::Sensor(s) => self.sensor_route(m, &parts, s, call),
            Caller::Admin => self.admin_route(m, &parts, call),
        }
    }

    fn sensor_route(&self, m: &str, parts: &[&str], me: SensorRow, call: &Call) -> Reply {
        if me.state == SensorState::Voided {
            return Reply::error(401, "this sensor's credential was voided");
        }
        let r = match (m, parts) {
            ("GET", ["assignments"]) => self.assignments(&me, call),
            ("POST", ["heartbeat"]) => self.heartbeat(&me, call),
            ("POST", ["runs"]) => self.run_state(&me, call),
            (_, ["assignments" | "heartbeat" | "runs"]) => Ok(Reply::error(405, "wrong method")),
            _ => Ok(Reply::error(
                403,
                "a sensor credential may report and read its own assignments only",
            )),
        };
        r.unwrap_or_else(internal)
    }

    fn admin_route(&self, m: &str, parts: &[&str], call: &Call) -> Reply {
        let r = match (m, parts) {
            ("POST", ["enrollment-tokens"]) => self.new_enrollment_token(),
            ("GET", ["sensors"]) => self.list_sensors(),
            ("POST", ["sensors", id, verb]) => self.sensor_verb(id, verb),
            ("POST", ["scans"]) => self.create_scan(call),
            ("GET", ["scans"]) => self.list_scans(),
            ("GET", ["scans", id]) => self.show_scan(id),
            ("PATCH", ["scans", id]) => self.patch_scan(id, call),
            ("DELETE", ["scans", id]) => self.delete_scan(id),
            ("POST", ["scans", id, verb]) => self.scan_verb(id, verb),
            (_, ["assignments" | "heartbeat" | "runs"]) => Ok(Reply::error(403, "this route is for enrolled sensors")),
            _ => Ok(Reply::error(404, "no such fleet route (docs/fleet.md lists them)")),
        };
        r.unwrap_or_else(internal)
    }

    // ---- enrollment ---------------------------------------------------------

    fn new_enrollment_token(&self) -> Result<Reply, InventoryError> {
        let token = format!("enr-{}", ids::random_id());
        let (t, now) = now();
        let expires = rfc3339(t + self.config.enrollment_ttl);
        let hash = secret_hash(&token);
        transaction(&*self.store, |tx| rows::add_enrollment_token(tx, &hash, &now, &expires))?;
        tracing::info!(expires_at = %expires, "enrollment token created");
        Ok(Reply::json(201, json!({ "token": token, "expires_at": expires })))
    }

    fn enroll(&self, call: &Call) -> Reply {
        let body: Value = match serde_json::from_slice(&call.body) {
            Ok(v) => v,
            Err(e) => return Reply::error(400, format!("malformed body: {e}")),
        };
        let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(token), Some(name)) = (field("token"), field("name")) else {
            return Reply::json(400, json!({"error": "send token and name", "field": "token"}));
        };
        let id = field("id").unwrap_or_else(ids::random_id);
        if !crate::report::intake::is_sensor_id(&id) || !crate::report::intake::is_sensor_id(&name) {
            return Reply::json(
                400,
                json!({"error": "id and name: 1-64 letters, digits, `.`, `_`, `-`", "field": "name"}),
            );
        }
        let credential = format!("cred-{}{}", ids::random_id(), ids::random_id());
        let (_, now) = now();
        let hash = secret_hash(&token);
        let cred_hash = secret_hash(&credential);
        let outcome = transaction(&*self.store, |tx| {
            if rows::sensor(tx, &id)?.is_some() || rows::sensor_named(tx, &name)?.is_some() {
                return Ok(Err(Reply::error(
                    409,
                    format!("a sensor named `{name}` or with id `{id}` is enrolled"),
                )));
            }
            match rows::redeem_enrollment_token(tx, &hash, &now, &id)? {
                Redeem::Redeemed => {}
                Redeem::Unknown => return Ok(Err(Reply::error(401, "unknown enrollment token"))),
                Redeem::Used => return Ok(Err(Reply::error(401, "this enrollment token was used already"))),
                Redeem::Expired => return Ok(Err(Reply::error(401, "this enrollment token has expired"))),
            }
            rows::add_sensor(tx, &id, &name, &cred_hash, &now)?;
            if let Some(v) = body.get("version").and_then(Value::as_str) {
                rows::heartbeat(tx, &id, &now, Some(v), &json!({}))?;
            }
            Ok(Ok(()))
        });
        match outcome {
            Ok(Ok(())) => {
                tracing::info!(sensor = %id, name = %name, "sensor enrolled");
                Reply::json(201, json!({ "id": id, "name": name, "credential": credential }))
            }
            Ok(Err(refusal)) => {
                tracing::warn!(name = %name, status = refusal.status, "enrollment refused");
                refusal
            }
            Err(e) => internal(e),
        }
    }

    // ---- sensors --------------------------------------------------------------

    /// Every sensor with its status now.
    pub fn sensor_views(&self) -> Result<Vec<Value>, InventoryError> {
        let (t, _) = now();
        let all = transaction(&*self.store, rows::sensors)?;
        Ok(all.iter().map(|s| self.view(s, t)).collect())
    }

    fn view(&self, s: &SensorRow, t: OffsetDateTime) -> Value {
        json!({
            "id": s.id,
            "name": s.name,
            "status": status::status(s, t, self.config.silence).as_str(),
            "version": s.version,
            "last_seen": s.last_seen,
            "enrolled_at": s.enrolled_at,
            "heartbeat": s.heartbeat,
        })
    }

    fn list_sensors(&self) -> Result<Reply, InventoryError> {
        Ok(Reply::json(200, Value::Array(self.sensor_views()?)))
    }

    fn sensor_verb(&self, id: &str, verb: &str) -> Result<Reply, InventoryError> {
        let state = match verb {
            "suspend" => SensorState::Suspended,
            "resume" => SensorState::Active,
            "void" => SensorState::Voided,
            _ => return Ok(Reply::error(404, "use suspend, resume or void")),
        };
        let changed = transaction(&*self.store, |tx| {
            let found = rows::sensor(tx, id)?.or(rows::sensor_named(tx, id)?);
            let Some(s) = found else { return Ok(None) };
            Ok(Some((rows::set_sensor_state(tx, &s.id, state)?, s)))
        })?;
        match changed {
            None => Ok(Reply::error(404, format!("no sensor `{id}`"))),
            Some((false, _)) => Ok(Reply::error(409, format!("sensor `{id}` is voided: voiding is final"))),
            Some((true, s)) => {
                tracing::info!(sensor = %s.id, name = %s.name, state = state.as_str(), "sensor state changed");
                let (t, _) = now();
                let after = SensorRow { state, ..s };
                Ok(Reply::json(200, self.view(&after, t)))
            }
        }
    }

    // ---- definitions --------------------------------------------------------

    fn parse_definition(&self, body: &Value) -> Result<definition::Definition, FieldError> {
        definition::parse(body, &*self.check)
    }

    fn create_scan(&self, call: &Call) -> Result<Reply, InventoryError> {
        let body: Value = match serde_json::from_slice(&call.body) {
            Ok(v) => v,
            Err(e) => {
                return Ok(Reply::json(
                    400,
                    json!({"error": format!("malformed JSON: {e}"), "field": "definition"}),
                ));
            }
        };
        let def = match self.parse_definition(&body) {
            Ok(d) => d,
            Err(e) => return Ok(Reply::field(&e)),
        };
        let id = ids::random_id();
        let (_, now) = now();
        if !transaction(&*self.store, |tx| rows::add_scan(tx, &id, &def.name, &body, &now))? {
            return Ok(Reply::json(
                409,
                json!({"error": format!("a definition named `{}` exists", def.name), "field": "name"}),
            ));
        }
        tracing::info!(scan = %id, name = %def.name, sensors = ?def.sensors, split = def.split, "scan defined");
        Ok(Reply::json(201, json!({ "id": id })))
    }

    fn list_scans(&self) -> Result<Reply, InventoryError> {
        let all = transaction(&*self.store, rows::scans)?;
        Ok(Reply::json(
            200,
            Value::Array(
                all.iter()
                    .map(|s| {
                        json!({"id": s.id, "name": s.name, "state": s.state.as_str(), "revision": s.revision,
                               "sensors": s.definition.get("sensors"), "split": s.definition.get("split").cloned().unwrap_or(Value::Bool(false)),
                               "updated_at": s.updated_at})
                    })
                    .collect(),
            ),
        ))
    }

    fn show_scan(&self, id: &str) -> Result<Reply, InventoryError> {
        let (t, _) = now();
        let found = transaction(&*self.store, |tx| {
            let Some(scan) = rows::scan(tx, id)? else {
                return Ok(None);
            };
            Ok(Some((rows::runs(tx, id)?, rows::sensors(tx)?, scan)))
        })?;
        let Some((runs, fleet, scan)) = found else {
            return Ok(Reply::error(404, format!("no definition `{id}`")));
        };
        let listed: Vec<String> = assign::stored(&scan.definition).map(|d| d.sensors).unwrap_or_default();
        let sensors: Vec<Value> = listed
            .iter()
            .map(|l| {
                let s = fleet.iter().find(|s| s.name == *l || s.id == *l);
                let last_run = s.and_then(|s| runs.iter().find(|r| r.sensor == s.id));
                json!({
                    "sensor": l,
                    "id": s.map(|s| s.id.clone()),
                    "status": s.map(|s| status::status(s, t, self.config.silence).as_str()),
                    "last_run": last_run,
                })
            })
            .collect();
        Ok(Reply::json(
            200,
            json!({"id": scan.id, "name": scan.name, "state": scan.state.as_str(), "revision": scan.revision,
                   "created_at": scan.created_at, "updated_at": scan.updated_at,
                   "definition": scan.definition, "sensors": sensors}),
        ))
    }

    /// A JSON merge patch (RFC 7396) of the definition, validated whole.
    fn patch_scan(&self, id: &str, call: &Call) -> Result<Reply, InventoryError> {
        let patch: Value = match serde_json::from_slice(&call.body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Ok(Reply::json(
                    400,
                    json!({"error": "send a JSON object (a merge patch)", "field": "definition"}),
                ));
            }
        };
        let Some(scan) = transaction(&*self.store, |tx| rows::scan(tx, id))? else {
            return Ok(Reply::error(404, format!("no definition `{id}`")));
        };
        let mut merged = scan.definition.clone();
        merge_patch(&mut merged, &patch);
        let def = match self.parse_definition(&merged) {
            Ok(d) => d,
            Err(e) => return Ok(Reply::field(&e)),
        };
        let (_, now) = now();
        let updated = transaction(&*self.store, |tx| {
            if def.name != scan.name && rows::scans(tx)?.iter().any(|s| s.name == def.name) {
                return Ok(None);
            }
            rows::update_scan(tx, id, &def.name, &merged, &now)?;
            rows::scan(tx, id)
        })?;
        match updated {
            None => Ok(Reply::json(
                409,
                json!({"error": format!("a definition named `{}` exists", def.name), "field": "name"}),
            )),
            Some(s) => {
                tracing::info!(scan = %id, revision = s.revision, "scan definition changed");
                Ok(Reply::json(200, json!({"id": s.id, "revision": s.revision})))
            }
        }
    }

    fn delete_scan(&self, id: &str) -> Result<Reply, InventoryError> {
        if transaction(&*self.store, |tx| rows::delete_scan(tx, id))? {
            tracing::info!(scan = %id, "scan definition deleted");
            Ok(Reply::empty(204))
        } else {
            Ok(Reply::error(404, format!("no definition `{id}`")))
        }
    }

    fn scan_verb(&self, id: &str, verb: &str) -> Result<Reply, InventoryError> {
        let state = match verb {
            "suspend" => ScanState::Suspended,
            "resume" => ScanState::Active,
            _ => return Ok(Reply::error(404, "use suspend or resume")),
        };
        let (_, now) = now();
        if transaction(&*self.store, |tx| rows::set_scan_state(tx, id, state, &now))? {
            tracing::info!(scan = %id, state = state.as_str(), "scan definition state changed");
            Ok(Reply::json(200, json!({"id": id, "state": state.as_str()})))
        } else {
            Ok(Reply::error(404, format!("no definition `{id}`")))
        }
    }

    // ---- the sensors' own routes ------------------------------------------

    fn assignments(&self, me: &SensorRow, call: &Call) -> Result<Reply, InventoryError> {
        let (_, now) = now();
        let (scans, fleet) = transaction(&*self.store, |tx| {
            rows::seen(tx, &me.id, &now)?;
            Ok((rows::scans(tx)?, rows::sensors(tx)?))
        })?;
        let mine = assign::assignments(&scans, me, &fleet);
        let etag = assign::etag(&mine);
        let tagged = |mut r: Reply| {
            r.headers.push(("ETag".into(), etag.clone()));
            r
        };
        if call.if_none_match.as_deref() == Some(etag.as_str()) {
            return Ok(tagged(Reply::empty(304)));
        }
        Ok(tagged(Reply::json(
            200,
            json!({"sensor": {"id": me.id, "name": me.name, "state": me.state.as_str()}, "etag": etag, "assignments": mine}),
        )))
    }

    fn heartbeat(&self, me: &SensorRow, call: &Call) -> Result<Reply, InventoryError> {
        let body: Value = match serde_json::from_slice(&call.body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Ok(Reply::json(
                    400,
                    json!({"error": "send a JSON object", "field": "heartbeat"}),
                ));
            }
        };
        let version = body.get("version").and_then(Value::as_str).map(str::to_string);
        let (_, now) = now();
        transaction(&*self.store, |tx| {
            rows::heartbeat(tx, &me.id, &now, version.as_deref(), &body)
        })?;
        Ok(Reply::json(200, json!({"state": me.state.as_str()})))
    }

    fn run_state(&self, me: &SensorRow, call: &Call) -> Result<Reply, InventoryError> {
        let body: Value = match serde_json::from_slice(&call.body) {
            Ok(v) => v,
            Err(e) => return Ok(Reply::error(400, format!("malformed JSON: {e}"))),
        };
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(scan), Some(state), Some(revision)) = (
            text("scan"),
            text("state"),
            body.get("revision").and_then(Value::as_i64),
        ) else {
            return Ok(Reply::json(
                400,
                json!({"error": "send scan, revision and state", "field": "state"}),
            ));
        };
        if !["started", "finished", "paused", "failed"].contains(&state.as_str()) {
            return Ok(Reply::json(
                400,
                json!({"error": "state: started, finished, paused or failed", "field": "state"}),
            ));
        }
        let (_, now) = now();
        let run = RunRow {
            scan,
            sensor: me.id.clone(),
            revision,
            state,
            reason: text("reason"),
            at: now.clone(),
        };
        transaction(&*self.store, |tx| {
            rows::seen(tx, &me.id, &now)?;
            rows::record_run(tx, &run)
        })?;
        tracing::info!(sensor = %me.name, scan = %run.scan, state = %run.state, reason = run.reason.as_deref().unwrap_or(""), "fleet run");
        Ok(Reply::empty(204))
    }

    // ---- liveness -------------------------------------------------------------

    /// Marks sensors offline or online again after `silence`, logging each
    /// transition once (the store decides who saw it first); the counts by status.
    pub fn sweep(&self) -> Result<[(Status, usize); 4], InventoryError> {
        let (t, _) = now();
        let all = transaction(&*self.store, rows::sensors)?;
        let mut counts = [
            (Status::Online, 0),
            (Status::Offline, 0),
            (Status::Suspended, 0),
            (Status::Voided, 0),
        ];
        for s in &all {
            let st = status::status(s, t, self.config.silence);
            if let Some(c) = counts.iter_mut().find(|(k, _)| *k == st) {
                c.1 += 1;
            }
            let silent = st == Status::Offline;
            if s.state == SensorState::Active && transaction(&*self.store, |tx| rows::mark_offline(tx, &s.id, silent))?
            {
                if silent {
                    tracing::warn!(sensor = %s.id, name = %s.name, last_seen = s.last_seen.as_deref().unwrap_or("never"), "sensor offline");
                } else {
                    tracing::info!(sensor = %s.id, name = %s.name, "sensor online");
                }
            }
        }
        Ok(counts)
    }
}

/// RFC 7396: objects merge, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patches_replace_and_remove() {
        let mut v = json!({"name": "a", "ports": "443", "schedule": {"every": "1h", "window": "x"}});
        merge_patch(
            &mut v,
            &json!({"ports": null, "schedule": {"window": null}, "split": true}),
        );
        assert_eq!(v, json!({"name": "a", "schedule": {"every": "1h"}, "split": true}));
    }
}
