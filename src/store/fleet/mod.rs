//! The fleet's state in the central store: enrolled sensors, enrollment
//! tokens, scan definitions and each assigned sensor's last run.
//!
//! A central sensor keeps no fleet state in memory that another central
//! process on the same PostgreSQL could not see: every decision (is this
//! token unused, is this credential voided, what is assigned) is read from
//! here, and every change is one statement or one transaction. So two
//! central processes serve one fleet, and a restart forgets nothing.
//! The rules (who may run what, how a plan is split, when a sensor is
//! offline) are `crate::fleet`'s; this module only stores and reads, the
//! same statements on SQLite and PostgreSQL ([`crate::store::exec::Exec`]);
//! the tables are one schema step in each ([`crate::store::sql::FLEET_TABLES`]).

mod ops;

pub use ops::*;

use serde::{Deserialize, Serialize};

/// What the central decided about a sensor (its liveness is separate:
/// [`SensorRow::last_seen`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SensorState {
    Active,
    /// Runs nothing, reports nothing, until resumed.
    Suspended,
    /// Its credential is refused, for good.
    Voided,
}

impl SensorState {
    pub fn as_str(self) -> &'static str {
        match self {
            SensorState::Active => "active",
            SensorState::Suspended => "suspended",
            SensorState::Voided => "voided",
        }
    }

    pub fn parse(s: &str) -> Option<SensorState> {
        match s {
            "active" => Some(SensorState::Active),
            "suspended" => Some(SensorState::Suspended),
            "voided" => Some(SensorState::Voided),
            _ => None,
        }
    }
}

/// One enrolled sensor.
#[derive(Clone, Debug, PartialEq)]
pub struct SensorRow {
    pub id: String,
    /// As given with `--name`; unique in the fleet.
    pub name: String,
    pub state: SensorState,
    pub version: Option<String>,
    pub enrolled_at: String,
    pub last_seen: Option<String>,
    /// The last heartbeat's body, as sent.
    pub heartbeat: Option<serde_json::Value>,
    /// The liveness last logged (so a transition is logged once).
    pub offline: bool,
}

/// Whether a definition runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanState {
    Active,
    Suspended,
}

impl ScanState {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanState::Active => "active",
            ScanState::Suspended => "suspended",
        }
    }
}

/// One scan definition, as validated by `crate::fleet::definition`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScanRow {
    pub id: String,
    pub name: String,
    pub definition: serde_json::Value,
    pub state: ScanState,
    /// Raised by every change: a changed definition is a new run.
    pub revision: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A sensor's last run of a definition, as it reported it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRow {
    pub scan: String,
    pub sensor: String,
    pub revision: i64,
    /// `started`, `finished`, `paused`, `failed`.
    pub state: String,
    pub reason: Option<String>,
    pub at: String,
}

/// What redeeming an enrollment token found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redeem {
    /// Unused and in time: now used.
    Redeemed,
    Unknown,
    Used,
    Expired,
}

/// The hash under which a secret (credential, enrollment token) is stored:
/// SHA-256, hex. The secrets are 128 random bits, so no salt or stretching.
pub fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::model::ids::hex(&Sha256::digest(secret.as_bytes()))
}
