//! Reporting's settings: `[upstream]` (or `--upstream`/`--token`) turned
//! into what delivery and the outbox need.
//!
//! The environment has the last word on two knobs the end-to-end tests and
//! labs turn (the outbox cap, the longest backoff), so they are read here
//! once, next to the configuration they override, rather than deep inside
//! delivery or the outbox.

use std::time::Duration;

use crate::appliance::config::{self, ConfigError, Upstream};
use crate::report::SensorInfo;
use crate::report::delivery::UpstreamConfig;
use crate::report::outbox::Limits;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(
        "sensor id `{0}` cannot go into reports: use 1-64 letters, digits, `.`, `_` or `-` (--sensor-id or [sensor] id)"
    )]
    SensorId(String),
    #[error("an upstream needs a token: --token T (or [upstream] token / token_file)")]
    NoToken,
    #[error(transparent)]
    Secret(#[from] ConfigError),
}

/// Everything reporting runs with.
#[derive(Clone, Debug)]
pub struct Reporting {
    pub upstream: UpstreamConfig,
    pub sensor: SensorInfo,
    pub limits: Limits,
    pub snapshot_every: Duration,
}

/// The reporting settings of `up` for this sensor. Reads the token file
/// and the environment (`SENSOR_UPSTREAM_BACKOFF_MAX_MS`,
/// `SENSOR_OUTBOX_MAX_*`).
pub fn reporting(up: &Upstream, sensor_id: &str, sensor_name: Option<&str>) -> Result<Reporting, UpstreamError> {
    if !crate::report::intake::is_sensor_id(sensor_id) {
        return Err(UpstreamError::SensorId(sensor_id.to_string()));
    }
    let token = match (&up.token, &up.token_file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => config::read_secret(f, "upstream.token_file")?,
        (None, None) => return Err(UpstreamError::NoToken),
    };
    let mut cfg = UpstreamConfig::new(&up.url, &token);
    cfg.ca_file = up.ca_bundle.clone();
    cfg.client_cert = up.client_cert.clone();
    cfg.client_key = up.client_key.clone();
    // The longest wait between attempts (default 5 min); tests and labs shorten it.
    if let Some(ms) = env_u64("SENSOR_UPSTREAM_BACKOFF_MAX_MS") {
        cfg.backoff_max = Duration::from_millis(ms.max(1));
        cfg.backoff_base = cfg.backoff_base.min(cfg.backoff_max);
    }
    Ok(Reporting {
        upstream: cfg,
        sensor: SensorInfo {
            id: sensor_id.to_string(),
            name: sensor_name.map_or_else(|| sensor_id.to_string(), str::to_string),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        limits: outbox_limits(Some(up), env_u64),
        snapshot_every: up.snapshot_every.max(Duration::from_secs(1)),
    })
}

/// The outbox cap: `SENSOR_OUTBOX_MAX_RECORDS`/`_BYTES` from `env` when
/// set, else `[upstream] outbox_max_*`, else the defaults (100 000
/// records, 1 GiB); see docs/reporting.md. Pure given `env`.
pub fn outbox_limits(up: Option<&Upstream>, env: impl Fn(&str) -> Option<u64>) -> Limits {
    let mut limits = Limits::default();
    let records = env("SENSOR_OUTBOX_MAX_RECORDS").or(up.and_then(|u| u.outbox_max_records));
    if let Some(n) = records {
        limits.max_records = usize::try_from(n).unwrap_or(usize::MAX).max(1);
    }
    let bytes = env("SENSOR_OUTBOX_MAX_BYTES").or(up.and_then(|u| u.outbox_max_bytes));
    if let Some(n) = bytes {
        limits.max_bytes = n.max(4096);
    }
    limits
}

/// A number from the environment (unset or unparsable: `None`).
pub fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(records: Option<u64>) -> Upstream {
        Upstream {
            url: "https://up.example".into(),
            token: Some("t".into()),
            token_file: None,
            ca_bundle: None,
            client_cert: None,
            client_key: None,
            snapshot_every: Duration::from_millis(10),
            outbox_max_records: records,
            outbox_max_bytes: Some(10),
        }
    }

    #[test]
    fn the_environment_wins_over_the_configured_cap() {
        let none = |_: &str| None;
        let l = outbox_limits(Some(&upstream(Some(5))), none);
        assert_eq!((l.max_records, l.max_bytes), (5, 4096), "bytes floored at 4 KiB");
        let env = |k: &str| (k == "SENSOR_OUTBOX_MAX_RECORDS").then_some(2);
        assert_eq!(outbox_limits(Some(&upstream(Some(5))), env).max_records, 2);
        assert_eq!(outbox_limits(None, none).max_records, Limits::default().max_records);
    }

    #[test]
    fn reporting_needs_a_usable_id_and_a_token() {
        let r = reporting(&upstream(None), "seg-1", None).unwrap();
        assert_eq!(r.sensor.name, "seg-1");
        assert_eq!(r.snapshot_every, Duration::from_secs(1), "at least a second");
        assert!(matches!(
            reporting(&upstream(None), "bad id", None),
            Err(UpstreamError::SensorId(_))
        ));
        let mut up = upstream(None);
        up.token = None;
        assert!(matches!(reporting(&up, "seg-1", None), Err(UpstreamError::NoToken)));
    }
}
