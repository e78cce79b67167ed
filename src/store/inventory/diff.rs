//! What a run of this sensor's own scans changed: new endpoints, changes
//! upstream cares about, endpoints gone. Pure: the store loads the rows and
//! writes what this decides.

use serde::{Deserialize, Serialize};

use crate::model::record::EndpointRecord;
use crate::store::endpoint::Key;
use crate::store::row::Row;

/// What a run changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Change {
    New { key: Key },
    Changed { key: Key, reasons: Vec<String> },
    Gone { key: Key, missed_runs: u32 },
}

/// One finished run of a profile.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    pub profile: &'a str,
    pub started_at: &'a str,
    pub finished_at: &'a str,
    pub records: &'a [EndpointRecord],
    /// The profile's tags, attached to every endpoint it found.
    pub tags: &'a [String],
    /// The run walked all its targets. A run cut short (shutdown, window
    /// closed) updates what it saw but counts nobody as missing.
    pub complete: bool,
}

/// When a difference is worth an event.
#[derive(Clone, Copy, Debug)]
pub struct DiffPolicy {
    /// Consecutive runs without an endpoint before it is reported gone.
    pub gone_after: u32,
    /// A certificate entering this many days before expiry is a change.
    pub expiry_warning_days: i64,
}

impl Default for DiffPolicy {
    fn default() -> Self {
        DiffPolicy {
            gone_after: 3,
            expiry_warning_days: 30,
        }
    }
}

/// Why `now` differs from `before` in ways upstream cares about (empty: no change).
/// `expiry_warning_days` flags a certificate that entered the warning window.
pub fn diff(before: &EndpointRecord, now: &EndpointRecord, now_rfc3339: &str, expiry_warning_days: i64) -> Vec<String> {
    let mut reasons = Vec::new();
    if before.category != now.category {
        reasons.push(format!(
            "category {} -> {}",
            before.category.as_str(),
            now.category.as_str()
        ));
    }
    let thumb = |r: &EndpointRecord| r.certificate.as_ref().map(|c| c.thumbprint.clone());
    if thumb(before) != thumb(now) {
        reasons.push("certificate replaced".into());
    }
    let letter = |r: &EndpointRecord| r.grade.as_ref().map(|g| g.letter.to_string());
    if letter(before) != letter(now) {
        reasons.push(format!(
            "grade {} -> {}",
            letter(before).unwrap_or_else(|| "-".into()),
            letter(now).unwrap_or_else(|| "-".into())
        ));
    }
    if before.protocols != now.protocols {
        reasons.push("protocols changed".into());
    }
    let suites = |r: &EndpointRecord| -> Vec<(String, Vec<u32>)> {
        r.protocol_ciphers
            .iter()
            .map(|p| (p.protocol.clone(), p.ciphers.iter().map(|c| c.code).collect()))
            .collect()
    };
    if suites(before) != suites(now) {
        reasons.push("cipher suites changed".into());
    }
    // Every certificate the server holds (RSA and ECDSA …): a change of any is
    // a change. Only when both runs looked (a record from before the extras,
    // or with them off, has none).
    let deployed = |r: &EndpointRecord| -> Vec<String> {
        let mut t: Vec<String> = r.certificate_deployments.iter().map(|d| d.thumbprint.clone()).collect();
        t.sort();
        t
    };
    let (was, is) = (deployed(before), deployed(now));
    if !was.is_empty() && !is.is_empty() && was != is {
        reasons.push(format!(
            "certificate deployments changed ({} -> {})",
            was.len(),
            is.len()
        ));
    }
    let auth = |r: &EndpointRecord| r.client_auth.as_ref().map(|a| a.mode);
    if let (Some(a), Some(b)) = (auth(before), auth(now))
        && a != b
    {
        reasons.push(format!("client authentication {a:?} -> {b:?}").to_lowercase());
    }
    if let Some(c) = now.certificate.as_ref() {
        let within = |at: &str| days_between(at, &c.valid_to).is_some_and(|d| d <= expiry_warning_days);
        let was_within = before.certificate.as_ref().is_some_and(|b| {
            b.thumbprint == c.thumbprint
                && days_between(&before.scanned_at, &b.valid_to).is_some_and(|d| d <= expiry_warning_days)
        });
        if within(now_rfc3339) && !was_within {
            reasons.push(format!(
                "certificate expires within {expiry_warning_days} days ({})",
                c.valid_to
            ));
        }
    }
    reasons
}

fn days_between(from: &str, to: &str) -> Option<i64> {
    let fmt = time::format_description::well_known::Rfc3339;
    let a = time::OffsetDateTime::parse(from, &fmt).ok()?;
    let b = time::OffsetDateTime::parse(to, &fmt).ok()?;
    Some((b - a).whole_days())
}

/// The row after a run of `profile` (tagging with `tags_json`) saw `now`,
/// and the change to report: new, changed (including back after being
/// reported gone, which upstream must hear even when nothing else
/// changed), or none.
pub(super) fn seen(
    before: Option<&Row>,
    now: &EndpointRecord,
    profile: &str,
    tags_json: &str,
    expiry_warning_days: i64,
) -> Result<(Row, Option<Change>), serde_json::Error> {
    let key = Key::of(now);
    let change = match before {
        None => Some(Change::New { key: key.clone() }),
        Some(b) => {
            let mut reasons = match serde_json::from_str::<EndpointRecord>(&b.record) {
                Ok(old) => diff(&old, now, &now.scanned_at, expiry_warning_days),
                Err(_) => vec!["stored record unreadable; replaced".into()],
            };
            if let Some(g) = &b.gone_at {
                reasons.insert(0, format!("seen again (reported gone at {g})"));
            }
            (!reasons.is_empty()).then(|| Change::Changed {
                key: key.clone(),
                reasons,
            })
        }
    };
    let row = Row {
        key,
        profile: profile.to_string(),
        category: now.category.as_str().to_string(),
        first_seen: before.map_or_else(|| now.scanned_at.clone(), |b| b.first_seen.clone()),
        last_seen: now.scanned_at.clone(),
        missed_runs: 0,
        gone_at: None,
        tags: tags_json.to_string(),
        record: serde_json::to_string(now)?,
    };
    Ok((row, change))
}

/// One complete run more without an endpoint that had missed `missed`
/// runs: its new `(missed_runs, gone_at)`, and the gone change, reported
/// once, when it reaches `gone_after`. Below the threshold it is not gone.
pub(super) fn missed(
    key: Key,
    missed: u32,
    gone_at: Option<String>,
    gone_after: u32,
    finished_at: &str,
) -> (u32, Option<String>, Option<Change>) {
    let missed = missed.saturating_add(1);
    let gone_at = (missed >= gone_after).then(|| gone_at.unwrap_or_else(|| finished_at.to_string()));
    let change = (missed == gone_after).then_some(Change::Gone {
        key,
        missed_runs: missed,
    });
    (missed, gone_at, change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::Category;
    use crate::store::inventory::tests::rec;

    #[test]
    fn diff_names_what_changed() {
        let a = rec("127.0.0.1", 443, "AA", "2026-11-24T00:00:00Z");
        assert!(diff(&a, &a, "2026-11-24T00:00:00Z", 30).is_empty());
        let mut b = rec("127.0.0.1", 443, "BB", "2026-11-25T00:00:00Z");
        b.category = Category::Unsecured;
        let reasons = diff(&a, &b, "2026-11-25T00:00:00Z", 30);
        assert_eq!(
            reasons,
            vec!["category discovered -> unsecured", "certificate replaced"]
        );
        // The same certificate entering the 30-day window.
        let late = rec("127.0.0.1", 443, "AA", "2027-05-10T00:00:00Z");
        let reasons = diff(&a, &late, "2027-05-10T00:00:00Z", 30);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].starts_with("certificate expires within 30 days"));
        // Already inside the window last time: not reported again.
        let later = rec("127.0.0.1", 443, "AA", "2027-05-11T00:00:00Z");
        assert!(diff(&late, &later, "2027-05-11T00:00:00Z", 30).is_empty());
    }

    #[test]
    fn a_second_certificate_replaced_is_a_change() {
        use crate::model::record::{CertificateDeployment, ClientAuth, ClientAuthMode};
        let deploy = |t: &str| CertificateDeployment {
            key: "RSA 2048".into(),
            thumbprint: t.into(),
            offers: vec!["TLSv1.2 RSA".into()],
            chain: Vec::new(),
        };
        let mut a = rec("127.0.0.1", 443, "AA", "2026-11-24T00:00:00Z");
        a.certificate_deployments = vec![deploy("AA"), deploy("R1")];
        let mut b = a.clone();
        b.certificate_deployments = vec![deploy("AA"), deploy("R2")];
        assert_eq!(
            diff(&a, &b, "2026-11-24T00:00:00Z", 30),
            vec!["certificate deployments changed (2 -> 2)"]
        );
        // A record without deployments (extras off, or an older sensor): no change.
        let mut c = a.clone();
        c.certificate_deployments.clear();
        assert!(diff(&a, &c, "2026-11-24T00:00:00Z", 30).is_empty());
        let auth = |mode| ClientAuth {
            mode,
            ca_names: Vec::new(),
            signature_algorithms: Vec::new(),
            protocol: None,
        };
        let mut d = a.clone();
        a.client_auth = Some(auth(ClientAuthMode::None));
        d.client_auth = Some(auth(ClientAuthMode::Required));
        assert_eq!(
            diff(&a, &d, "2026-11-24T00:00:00Z", 30),
            vec!["client authentication none -> required"]
        );
    }

    #[test]
    fn seen_keeps_first_seen_and_says_what_changed() {
        let a = rec("127.0.0.1", 443, "AA", "2026-11-01T00:00:00Z");
        let (row, change) = seen(None, &a, "lab", "[]", 30).unwrap();
        assert_eq!(change, Some(Change::New { key: Key::of(&a) }));
        assert_eq!(row.first_seen, a.scanned_at);
        let b = rec("127.0.0.1", 443, "AA", "2026-11-02T00:00:00Z");
        let (again, change) = seen(Some(&row), &b, "lab", r#"["dmz"]"#, 30).unwrap();
        assert_eq!(change, None);
        assert_eq!(
            (again.first_seen.as_str(), again.last_seen.as_str()),
            ("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")
        );
        assert_eq!(again.tags, r#"["dmz"]"#, "the profile's tags now");
        let gone = Row {
            gone_at: Some("2026-11-03T00:00:00Z".into()),
            record: "{".into(),
            ..row
        };
        let (back, change) = seen(Some(&gone), &b, "lab", "[]", 30).unwrap();
        assert_eq!(back.gone_at, None);
        assert_eq!(
            change,
            Some(Change::Changed {
                key: Key::of(&b),
                reasons: vec![
                    "seen again (reported gone at 2026-11-03T00:00:00Z)".into(),
                    "stored record unreadable; replaced".into()
                ]
            })
        );
    }

    #[test]
    fn missing_runs_count_up_and_report_gone_once() {
        let key = Key::of(&rec("127.0.0.1", 443, "AA", "t"));
        let (n, at, c) = missed(key.clone(), 0, None, 2, "t1");
        assert_eq!((n, at, c), (1, None, None));
        let (n, at, c) = missed(key.clone(), 1, None, 2, "t2");
        assert_eq!((n, at.as_deref()), (2, Some("t2")));
        assert_eq!(
            c,
            Some(Change::Gone {
                key: key.clone(),
                missed_runs: 2
            })
        );
        let (n, at, c) = missed(key, 2, Some("t2".into()), 2, "t3");
        assert_eq!((n, at.as_deref(), c), (3, Some("t2"), None));
    }
}
