//! The fleet's reads and writes, written once over [`Exec`]: statements use
//! `?N` parameters, turned into `$N` for PostgreSQL.

use super::{Redeem, RunRow, ScanRow, ScanState, SensorRow, SensorState};
use crate::store::exec::Exec;
use crate::store::inventory::InventoryError;
use crate::store::row::Value;
use crate::store::sql::Dialect;

/// A statement or transaction of either store.
pub type Tx<'a> = dyn Exec<Error = InventoryError> + 'a;

fn sql(tx: &Tx<'_>, text: &str) -> String {
    match tx.dialect() {
        Dialect::Sqlite => text.to_string(),
        Dialect::Postgres => text.replace('?', "$"),
    }
}

fn exec(tx: &mut Tx<'_>, text: &str, params: &[Value]) -> Result<u64, InventoryError> {
    let s = sql(tx, text);
    tx.execute(&s, params)
}

fn fetch(tx: &mut Tx<'_>, text: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, InventoryError> {
    let s = sql(tx, text);
    tx.fetch(&s, params)
}

fn t(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn opt(s: Option<&str>) -> Value {
    s.map_or(Value::Null, t)
}

fn bad(what: &str, cells: &[Value]) -> InventoryError {
    InventoryError::Store(format!("fleet row unreadable ({what}): {cells:?}"))
}

fn text(cells: &[Value], i: usize, what: &str) -> Result<String, InventoryError> {
    match cells.get(i) {
        Some(Value::Text(s)) => Ok(s.clone()),
        _ => Err(bad(what, cells)),
    }
}

fn opt_text(cells: &[Value], i: usize, what: &str) -> Result<Option<String>, InventoryError> {
    match cells.get(i) {
        Some(Value::Text(s)) => Ok(Some(s.clone())),
        Some(Value::Null) => Ok(None),
        _ => Err(bad(what, cells)),
    }
}

fn int(cells: &[Value], i: usize, what: &str) -> Result<i64, InventoryError> {
    match cells.get(i) {
        Some(Value::Int(n)) => Ok(*n),
        Some(Value::Bool(b)) => Ok(i64::from(*b)),
        _ => Err(bad(what, cells)),
    }
}

// ---- enrollment tokens ----------------------------------------------------

/// Stores a new one-time token (its hash) valid until `expires_at`.
pub fn add_enrollment_token(tx: &mut Tx<'_>, hash: &str, now: &str, expires_at: &str) -> Result<(), InventoryError> {
    exec(
        tx,
        "INSERT INTO fleet_enrollment_tokens (token_hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
        &[t(hash), t(now), t(expires_at)],
    )?;
    Ok(())
}

/// Marks the token used by `sensor` if it is unused and unexpired at `now`:
/// one statement, so two centrals racing on one token redeem it once.
pub fn redeem_enrollment_token(tx: &mut Tx<'_>, hash: &str, now: &str, sensor: &str) -> Result<Redeem, InventoryError> {
    let n = exec(
        tx,
        "UPDATE fleet_enrollment_tokens SET used_at = ?2, used_by = ?3
         WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
        &[t(hash), t(now), t(sensor)],
    )?;
    if n == 1 {
        return Ok(Redeem::Redeemed);
    }
    let rows = fetch(
        tx,
        "SELECT used_at FROM fleet_enrollment_tokens WHERE token_hash = ?1",
        &[t(hash)],
    )?;
    Ok(match rows.first().map(|r| r.first()) {
        None => Redeem::Unknown,
        Some(Some(Value::Text(_))) => Redeem::Used,
        Some(_) => Redeem::Expired,
    })
}

// ---- sensors --------------------------------------------------------------

const SENSOR_COLUMNS: &str = "id, name, state, version, enrolled_at, last_seen, heartbeat, offline";

fn sensor_row(cells: &[Value]) -> Result<SensorRow, InventoryError> {
    let state = text(cells, 2, "sensor state")?;
    Ok(SensorRow {
        id: text(cells, 0, "sensor id")?,
        name: text(cells, 1, "sensor name")?,
        state: SensorState::parse(&state).ok_or_else(|| bad("sensor state", cells))?,
        version: opt_text(cells, 3, "version")?,
        enrolled_at: text(cells, 4, "enrolled_at")?,
        last_seen: opt_text(cells, 5, "last_seen")?,
        heartbeat: opt_text(cells, 6, "heartbeat")?
            .map(|h| serde_json::from_str(&h))
            .transpose()?,
        offline: int(cells, 7, "offline")? != 0,
    })
}

/// Adds an enrolled sensor; `false` when its name is taken.
pub fn add_sensor(
    tx: &mut Tx<'_>,
    id: &str,
    name: &str,
    credential_hash: &str,
    now: &str,
) -> Result<bool, InventoryError> {
    if sensor_named(tx, name)?.is_some() {
        return Ok(false);
    }
    exec(
        tx,
        "INSERT INTO fleet_sensors (id, name, credential_hash, enrolled_at) VALUES (?1, ?2, ?3, ?4)",
        &[t(id), t(name), t(credential_hash), t(now)],
    )?;
    Ok(true)
}

/// Every enrolled sensor, by name.
pub fn sensors(tx: &mut Tx<'_>) -> Result<Vec<SensorRow>, InventoryError> {
    fetch(
        tx,
        &format!("SELECT {SENSOR_COLUMNS} FROM fleet_sensors ORDER BY name"),
        &[],
    )?
    .iter()
    .map(|c| sensor_row(c))
    .collect()
}

fn one_sensor(tx: &mut Tx<'_>, column: &str, value: &str) -> Result<Option<SensorRow>, InventoryError> {
    fetch(
        tx,
        &format!("SELECT {SENSOR_COLUMNS} FROM fleet_sensors WHERE {column} = ?1"),
        &[t(value)],
    )?
    .first()
    .map(|c| sensor_row(c))
    .transpose()
}

pub fn sensor(tx: &mut Tx<'_>, id: &str) -> Result<Option<SensorRow>, InventoryError> {
    one_sensor(tx, "id", id)
}

pub fn sensor_named(tx: &mut Tx<'_>, name: &str) -> Result<Option<SensorRow>, InventoryError> {
    one_sensor(tx, "name", name)
}

/// The sensor whose credential hashes to `hash`, whatever its state.
pub fn sensor_by_credential(tx: &mut Tx<'_>, hash: &str) -> Result<Option<SensorRow>, InventoryError> {
    one_sensor(tx, "credential_hash", hash)
}

/// Sets a sensor's state; `false` for an unknown id or a voided sensor
/// (voiding is final).
pub fn set_sensor_state(tx: &mut Tx<'_>, id: &str, state: SensorState) -> Result<bool, InventoryError> {
    Ok(exec(
        tx,
        "UPDATE fleet_sensors SET state = ?2 WHERE id = ?1 AND state <> 'voided'",
        &[t(id), t(state.as_str())],
    )? == 1)
}

/// Records a heartbeat: when, the version, the body; the sensor is online.
pub fn heartbeat(
    tx: &mut Tx<'_>,
    id: &str,
    now: &str,
    version: Option<&str>,
    body: &serde_json::Value,
) -> Result<(), InventoryError> {
    exec(
        tx,
        "UPDATE fleet_sensors SET last_seen = ?2, version = coalesce(?3, version), heartbeat = ?4 WHERE id = ?1",
        &[t(id), t(now), opt(version), t(&body.to_string())],
    )?;
    Ok(())
}

/// Notes that a sensor was seen (a report or an assignment fetch).
pub fn seen(tx: &mut Tx<'_>, id: &str, now: &str) -> Result<(), InventoryError> {
    exec(
        tx,
        "UPDATE fleet_sensors SET last_seen = ?2 WHERE id = ?1",
        &[t(id), t(now)],
    )?;
    Ok(())
}

/// Records the liveness last logged; `true` when it changed (the caller
/// logs the transition: with several centrals, only one sees the change).
pub fn mark_offline(tx: &mut Tx<'_>, id: &str, offline: bool) -> Result<bool, InventoryError> {
    Ok(exec(
        tx,
        "UPDATE fleet_sensors SET offline = ?2 WHERE id = ?1 AND offline <> ?2",
        &[t(id), Value::Int(i64::from(offline))],
    )? == 1)
}

// ---- scan definitions -----------------------------------------------------

const SCAN_COLUMNS: &str = "id, name, definition, state, revision, created_at, updated_at";

fn scan_row(cells: &[Value]) -> Result<ScanRow, InventoryError> {
    Ok(ScanRow {
        id: text(cells, 0, "scan id")?,
        name: text(cells, 1, "scan name")?,
        definition: serde_json::from_str(&text(cells, 2, "definition")?)?,
        state: match text(cells, 3, "scan state")?.as_str() {
            "active" => ScanState::Active,
            "suspended" => ScanState::Suspended,
            _ => return Err(bad("scan state", cells)),
        },
        revision: int(cells, 4, "revision")?,
        created_at: text(cells, 5, "created_at")?,
        updated_at: text(cells, 6, "updated_at")?,
    })
}

/// Adds a definition; `false` when its name is taken.
pub fn add_scan(
    tx: &mut Tx<'_>,
    id: &str,
    name: &str,
    definition: &serde_json::Value,
    now: &str,
) -> Result<bool, InventoryError> {
    if !fetch(tx, "SELECT id FROM fleet_scans WHERE name = ?1", &[t(name)])?.is_empty() {
        return Ok(false);
    }
    exec(
        tx,
        "INSERT INTO fleet_scans (id, name, definition, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        &[t(id), t(name), t(&definition.to_string()), t(now)],
    )?;
    Ok(true)
}

pub fn scans(tx: &mut Tx<'_>) -> Result<Vec<ScanRow>, InventoryError> {
    fetch(
        tx,
        &format!("SELECT {SCAN_COLUMNS} FROM fleet_scans ORDER BY name"),
        &[],
    )?
    .iter()
    .map(|c| scan_row(c))
    .collect()
}

pub fn scan(tx: &mut Tx<'_>, id: &str) -> Result<Option<ScanRow>, InventoryError> {
    fetch(
        tx,
        &format!("SELECT {SCAN_COLUMNS} FROM fleet_scans WHERE id = ?1"),
        &[t(id)],
    )?
    .first()
    .map(|c| scan_row(c))
    .transpose()
}

/// Replaces a definition (a new revision); `false` for an unknown id.
pub fn update_scan(
    tx: &mut Tx<'_>,
    id: &str,
    name: &str,
    definition: &serde_json::Value,
    now: &str,
) -> Result<bool, InventoryError> {
    Ok(exec(
        tx,
        "UPDATE fleet_scans SET name = ?2, definition = ?3, revision = revision + 1, updated_at = ?4 WHERE id = ?1",
        &[t(id), t(name), t(&definition.to_string()), t(now)],
    )? == 1)
}

/// Suspends or resumes a definition; `false` for an unknown id.
pub fn set_scan_state(tx: &mut Tx<'_>, id: &str, state: ScanState, now: &str) -> Result<bool, InventoryError> {
    Ok(exec(
        tx,
        "UPDATE fleet_scans SET state = ?2, updated_at = ?3 WHERE id = ?1",
        &[t(id), t(state.as_str()), t(now)],
    )? == 1)
}

/// Deletes a definition and its runs; `false` for an unknown id.
pub fn delete_scan(tx: &mut Tx<'_>, id: &str) -> Result<bool, InventoryError> {
    exec(tx, "DELETE FROM fleet_runs WHERE scan = ?1", &[t(id)])?;
    Ok(exec(tx, "DELETE FROM fleet_scans WHERE id = ?1", &[t(id)])? == 1)
}

// ---- runs -----------------------------------------------------------------

/// Records a sensor's run state of a definition (its last one replaces the
/// previous).
pub fn record_run(tx: &mut Tx<'_>, run: &RunRow) -> Result<(), InventoryError> {
    exec(
        tx,
        "INSERT INTO fleet_runs (scan, sensor, revision, state, reason, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (scan, sensor) DO UPDATE SET revision = excluded.revision, state = excluded.state,
            reason = excluded.reason, at = excluded.at",
        &[
            t(&run.scan),
            t(&run.sensor),
            Value::Int(run.revision),
            t(&run.state),
            opt(run.reason.as_deref()),
            t(&run.at),
        ],
    )?;
    Ok(())
}

/// Every sensor's last run of `scan`, by sensor id.
pub fn runs(tx: &mut Tx<'_>, scan: &str) -> Result<Vec<RunRow>, InventoryError> {
    fetch(
        tx,
        "SELECT scan, sensor, revision, state, reason, at FROM fleet_runs WHERE scan = ?1 ORDER BY sensor",
        &[t(scan)],
    )?
    .iter()
    .map(|c| {
        Ok(RunRow {
            scan: text(c, 0, "run scan")?,
            sensor: text(c, 1, "run sensor")?,
            revision: int(c, 2, "run revision")?,
            state: text(c, 3, "run state")?,
            reason: opt_text(c, 4, "run reason")?,
            at: text(c, 5, "run at")?,
        })
    })
    .collect()
}
