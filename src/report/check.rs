//! A received report checked field by field before anything of it is stored.
//!
//! The intake used to store whatever a reporter sent once it parsed as JSON:
//! a `scanned_at` of `9999-12-31T23:59:59Z` pinned `last_seen` forever (the
//! store keeps the later of two times, comparing strings), `<script>…` was
//! stored and printed, and `category: "automatable"` claimed what only this
//! sensor's proxy can see (issue 17, defect 2). Here every time must be RFC
//! 3339 within a sane window of the receiver's clock and is rewritten in the
//! one stored form (`model::timestamp`, UTC, seconds: comparing two of them
//! as strings compares the times); a reporter may claim `discovered` or
//! `unsecured` only; names are names and no string carries control
//! characters. A refusal names the field (`events[3].endpoint.scanned_at`).
//! Pure: the clock is an argument.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::record::Category;
use crate::model::timestamp::rfc3339;
use crate::report::wire::Report;

/// How far ahead of the receiver's clock a time may be (clock skew).
pub const MAX_AHEAD: time::Duration = time::Duration::hours(1);
/// How far back a time may be (a batch parked for months and requeued).
pub const MAX_BEHIND: time::Duration = time::Duration::days(400);
/// Longest string accepted in a record (a PEM certificate fits).
pub const MAX_STRING: usize = 64 * 1024;

/// A field that does not hold what the schema says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Its path in the report (`events[0].endpoint.scanned_at`).
    pub field: String,
    pub reason: String,
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// `value` as the stored time, if it is RFC 3339 within the window around `now`.
pub fn time_field(field: &str, value: &str, now: OffsetDateTime) -> Result<String, FieldError> {
    let shown: String = value.chars().take(40).collect();
    let t =
        OffsetDateTime::parse(value, &Rfc3339).map_err(|_| bad(field, format!("`{shown}` is not an RFC 3339 time")))?;
    if t > now + MAX_AHEAD {
        return Err(bad(field, format!("`{shown}` is in the future of this sensor's clock")));
    }
    if t < now - MAX_BEHIND {
        return Err(bad(field, format!("`{shown}` is more than 400 days old")));
    }
    Ok(rfc3339(t))
}

/// A host name as records carry it: letters, digits, `-`, `_`, `.`, at most 253.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Every string in `value` free of control characters (line breaks and tabs
/// allowed: PEM) and within [`MAX_STRING`].
fn plain_strings(path: &str, value: &serde_json::Value) -> Result<(), FieldError> {
    match value {
        serde_json::Value::String(s) => {
            if s.len() > MAX_STRING {
                return Err(bad(path, format!("longer than {MAX_STRING} bytes")));
            }
            if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
                return Err(bad(path, "holds control characters"));
            }
            Ok(())
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| plain_strings(&format!("{path}[{i}]"), v)),
        serde_json::Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| plain_strings(&format!("{path}.{k}"), v)),
        _ => Ok(()),
    }
}

/// Checks `report` against the schema's formats at `now` and rewrites its
/// times in the stored form; the first bad field is the error.
pub fn check(report: &mut Report, now: OffsetDateTime) -> Result<(), FieldError> {
    report.sent_at = time_field("sent_at", &report.sent_at, now)?;
    for (name, value) in [
        ("sensor.name", &report.sensor.name),
        ("sensor.version", &report.sensor.version),
    ] {
        if value.len() > 256 || value.chars().any(char::is_control) {
            return Err(bad(name, "at most 256 characters, no control characters"));
        }
    }
    for (i, event) in report.events.iter_mut().enumerate() {
        let at = |f: &str| format!("events[{i}].{f}");
        event.occurred_at = time_field(&at("occurred_at"), &event.occurred_at, now)?;
        for (j, reason) in event.reasons.iter().enumerate() {
            if reason.len() > 1024 || reason.chars().any(char::is_control) {
                return Err(bad(
                    at(&format!("reasons[{j}]")),
                    "at most 1024 characters, no control characters",
                ));
            }
        }
        let r = &mut event.endpoint;
        r.scanned_at = time_field(&at("endpoint.scanned_at"), &r.scanned_at, now)?;
        match r.category {
            Category::Discovered | Category::Unsecured => {}
            Category::Automatable => {
                return Err(bad(
                    at("endpoint.category"),
                    "`automatable` is set by the sensor whose proxy saw the agent, never by a report",
                ));
            }
            other => {
                return Err(bad(
                    at("endpoint.category"),
                    format!(
                        "`{}`: a report carries discovered or unsecured endpoints",
                        other.as_str()
                    ),
                ));
            }
        }
        if r.port == 0 {
            return Err(bad(at("endpoint.port"), "port 0 is not a port"));
        }
        if let Some(h) = &r.hostname
            && !is_host_name(h)
        {
            return Err(bad(at("endpoint.hostname"), "not a host name"));
        }
        let doc = serde_json::to_value(&*r).map_err(|e| bad(at("endpoint"), e.to_string()))?;
        plain_strings(&at("endpoint"), &doc)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::EndpointRecord;
    use crate::report::wire::{Event, EventKind, SensorInfo};

    fn now() -> OffsetDateTime {
        OffsetDateTime::parse("2026-12-01T12:00:00Z", &Rfc3339).unwrap()
    }

    fn report() -> Report {
        let r = EndpointRecord::new(
            "127.0.0.1".parse().unwrap(),
            443,
            Some("a.example".into()),
            Category::Discovered,
            "2026-12-01T11:00:00+01:00".into(),
        );
        Report::new(
            SensorInfo {
                id: "s".into(),
                name: "s".into(),
                version: "0".into(),
            },
            "0".repeat(32),
            "2026-12-01T12:00:00Z".into(),
            vec![Event::new(EventKind::New, "2026-12-01T11:59:00Z", Vec::new(), r)],
        )
    }

    fn field(f: impl FnOnce(&mut Report)) -> String {
        let mut r = report();
        f(&mut r);
        check(&mut r, now()).unwrap_err().field
    }

    #[test]
    fn a_good_report_passes_with_its_times_in_the_stored_form() {
        let mut r = report();
        check(&mut r, now()).unwrap();
        assert_eq!(r.events[0].endpoint.scanned_at, "2026-12-01T10:00:00Z");
    }

    #[test]
    fn rejects_each_bad_field_by_name() {
        assert_eq!(
            field(|r| r.events[0].endpoint.scanned_at = "9999-12-31T23:59:59Z".into()),
            "events[0].endpoint.scanned_at"
        );
        assert_eq!(
            field(|r| r.events[0].endpoint.scanned_at = "<script>alert(1)</script>".into()),
            "events[0].endpoint.scanned_at"
        );
        assert_eq!(
            field(|r| r.events[0].endpoint.scanned_at = "2020-01-01T00:00:00Z".into()),
            "events[0].endpoint.scanned_at"
        );
        assert_eq!(field(|r| r.sent_at = "yesterday".into()), "sent_at");
        assert_eq!(
            field(|r| r.events[0].occurred_at = "2027-06-01T00:00:00Z".into()),
            "events[0].occurred_at"
        );
        assert_eq!(
            field(|r| r.events[0].endpoint.category = Category::Automatable),
            "events[0].endpoint.category"
        );
        assert_eq!(
            field(|r| r.events[0].endpoint.category = Category::Closed),
            "events[0].endpoint.category"
        );
        assert_eq!(
            field(|r| r.events[0].endpoint.hostname = Some("a b".into())),
            "events[0].endpoint.hostname"
        );
        assert_eq!(
            field(|r| r.events[0].endpoint.port_reason = "syn\u{1b}[31m".into()),
            "events[0].endpoint.port_reason"
        );
        assert_eq!(
            field(|r| r.events[0].reasons = vec!["a\u{0}".into()]),
            "events[0].reasons[0]"
        );
        assert_eq!(field(|r| r.sensor.version = "x\n".into()), "sensor.version");
    }
}
