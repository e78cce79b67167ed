//! A sensor's status as the API shows it: what the central decided
//! (suspended, voided) before what it observes (online or offline after a
//! configurable silence). Pure: the time is an argument.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::fleet::{SensorRow, SensorState};

/// The `status` of `GET /api/v1/sensors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Online,
    Offline,
    Suspended,
    Voided,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Offline => "offline",
            Status::Suspended => "suspended",
            Status::Voided => "voided",
        }
    }
}

/// Whether a sensor last seen at `last_seen` is silent for longer than
/// `silence` at `now` (never seen, or an unreadable time: silent).
pub fn is_silent(last_seen: Option<&str>, now: OffsetDateTime, silence: Duration) -> bool {
    match last_seen.and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok()) {
        Some(seen) => (now - seen).whole_milliseconds() > silence.as_millis() as i128,
        None => true,
    }
}

/// The status of `sensor` at `now`.
pub fn status(sensor: &SensorRow, now: OffsetDateTime, silence: Duration) -> Status {
    match sensor.state {
        SensorState::Voided => Status::Voided,
        SensorState::Suspended => Status::Suspended,
        SensorState::Active if is_silent(sensor.last_seen.as_deref(), now, silence) => Status::Offline,
        SensorState::Active => Status::Online,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: SensorState, last_seen: Option<&str>) -> SensorRow {
        SensorRow {
            id: "s1".into(),
            name: "a".into(),
            state,
            version: None,
            enrolled_at: "2026-01-01T00:00:00Z".into(),
            last_seen: last_seen.map(str::to_string),
            heartbeat: None,
            offline: false,
        }
    }

    #[test]
    fn offline_after_the_silence_and_decisions_first() {
        let now = OffsetDateTime::parse("2026-01-01T00:01:00Z", &Rfc3339).unwrap();
        let silence = Duration::from_secs(30);
        let s = |state, seen| status(&row(state, seen), now, silence);
        assert_eq!(s(SensorState::Active, Some("2026-01-01T00:00:40Z")), Status::Online);
        assert_eq!(
            s(SensorState::Active, Some("2026-01-01T00:00:30Z")),
            Status::Online,
            "exactly the silence"
        );
        assert_eq!(s(SensorState::Active, Some("2026-01-01T00:00:29Z")), Status::Offline);
        assert_eq!(s(SensorState::Active, None), Status::Offline, "never seen");
        assert_eq!(s(SensorState::Active, Some("yesterday")), Status::Offline);
        assert_eq!(
            s(SensorState::Suspended, Some("2026-01-01T00:00:59Z")),
            Status::Suspended
        );
        assert_eq!(s(SensorState::Voided, Some("2026-01-01T00:00:59Z")), Status::Voided);
        assert_eq!(Status::Offline.as_str(), "offline");
    }
}
