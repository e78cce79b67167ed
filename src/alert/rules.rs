//! The rules: the inventory, what was already notified, what the alerts
//! remember of each endpoint, and the time, in; the notices to send out.
//! Pure, so every case (thresholds, the clock going back or leaping ahead,
//! a restart between two passes) is a unit test with a clock argument.
//!
//! Two families:
//! - *state* rules (`expiring`, `unsecured`, `weak_protocol`,
//!   `sensor_offline`) look at what is true now; their keys are the memory,
//!   so a condition is told once however many passes see it, and a pass
//!   lost to a crash is simply done by the next one;
//! - *change* rules (`grade_drop`, `chain_invalid`, `gone`) compare with
//!   what the previous pass saw ([`Seen`]), which is written in the same
//!   transaction as the notices; an endpoint the alerts have not seen
//!   before has no previous state and is not a change.
//!
//! Expiry sends one notice per threshold, and only for the tightest one
//! crossed: a certificate first seen with 5 days left gets the 7-day notice,
//! not four; and never a looser threshold after a tighter one, so a clock
//! set back does not re-announce, and one leaping ahead announces once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::alert::config::{Rule, RuleKind};
use crate::alert::notice::{self, CertRef, EndpointRef, Notice, Severity};
use crate::model::record::{Category, EndpointRecord};
use crate::model::timestamp::rfc3339;
use crate::store::endpoint::Stored;

/// What the alerts remember of an endpoint from the previous pass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub grade: Option<String>,
    pub trusted: Option<bool>,
    pub gone: bool,
}

impl Seen {
    pub fn of(s: &Stored) -> Seen {
        Seen {
            grade: s.record.grade.as_ref().map(|g| g.letter.as_str().to_string()),
            trusted: s.record.chain_report.as_ref().and_then(|c| c.trusted),
            gone: s.gone_at.is_some(),
        }
    }
}

/// Thresholds already notified, by (rule, subject).
pub type Notified = HashMap<(String, String), BTreeSet<String>>;

/// A notice and the channels it goes to.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub notice: Notice,
    pub channels: Vec<String>,
}

/// The outcome of one pass: new notices, and the memory to keep.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pass {
    pub planned: Vec<Planned>,
    pub memory: BTreeMap<String, Seen>,
}

/// Evaluates every rule on `rows` (the whole inventory) at `now`.
pub fn evaluate(
    rules: &[Rule],
    rows: &[Stored],
    memory: &BTreeMap<String, Seen>,
    notified: &Notified,
    now: OffsetDateTime,
) -> Pass {
    let mut ev = Eval {
        notified,
        now,
        at: rfc3339(now),
        planned: Vec::new(),
    };
    for rule in rules {
        let mine: Vec<&Stored> = rows.iter().filter(|s| matches(rule, s)).collect();
        match rule.kind {
            RuleKind::Expiring => ev.expiring(rule, &mine),
            RuleKind::Unsecured => ev.unsecured(rule, &mine),
            RuleKind::WeakProtocol => ev.weak(rule, &mine),
            RuleKind::GradeDrop => ev.grade_drop(rule, &mine, memory),
            RuleKind::ChainInvalid => ev.chain_invalid(rule, &mine, memory),
            RuleKind::Gone => ev.gone(rule, &mine, memory),
            RuleKind::SensorOffline => ev.offline(rule, rows),
            RuleKind::Test => {}
        }
    }
    Pass {
        planned: ev.planned,
        memory: rows.iter().map(|s| (s.id.clone(), Seen::of(s))).collect(),
    }
}

/// The notice `sensor alerts test` sends through `channel`.
pub fn test_notice(channel: &str, now: OffsetDateTime) -> Notice {
    let at = rfc3339(now);
    let threshold = format!("test@{at}");
    Notice {
        id: notice::notice_id(&notice::key("test", channel, &threshold)),
        rule: "test".into(),
        kind: RuleKind::Test,
        subject: channel.into(),
        threshold,
        severity: Severity::Info,
        title: format!("Test notice through channel `{channel}`"),
        created_at: at,
        certificate: None,
        endpoints: Vec::new(),
        details: BTreeMap::from([(
            "note".to_string(),
            "sent by `sensor alerts test`; nothing needs doing".to_string(),
        )]),
    }
}

fn matches(rule: &Rule, s: &Stored) -> bool {
    let f = &rule.filter;
    (f.tags.is_empty() || f.tags.iter().any(|t| s.tags.contains(t)))
        && (f.sensors.is_empty() || f.sensors.contains(&s.key.sensor))
        && (f.categories.is_empty() || f.categories.contains(&s.category))
        && s.key.address.parse::<IpAddr>().is_ok_and(|a| f.matches_address(a))
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// `expired` is tighter than any number of days.
fn rank(threshold: &str) -> Option<i64> {
    if threshold == "expired" {
        return Some(0);
    }
    threshold.strip_suffix('d')?.parse().ok()
}

/// What an endpoint offers that it should not.
pub fn weaknesses(r: &EndpointRecord) -> BTreeSet<String> {
    const OLD: [&str; 3] = ["SSLv2", "SSLv3", "TLSv1.0"];
    let mut out = BTreeSet::new();
    match &r.protocols {
        Some(p) => out.extend(OLD.iter().filter(|v| p.get(**v) == Some(&true)).map(|v| v.to_string())),
        None => {
            if let Some(v) = r.handshake.as_ref().and_then(|h| h.protocol.as_deref())
                && OLD.contains(&v)
            {
                out.insert(v.to_string());
            }
        }
    }
    for c in r.protocol_ciphers.iter().flat_map(|p| &p.ciphers) {
        if c.encryption.contains("RC4") || c.name.contains("_RC4_") {
            out.insert("RC4".into());
        }
        if c.encryption == "NULL" || c.name.contains("_NULL_") {
            out.insert("NULL".into());
        }
        if c.export {
            out.insert("EXPORT".into());
        }
    }
    out
}

struct Eval<'a> {
    notified: &'a Notified,
    now: OffsetDateTime,
    at: String,
    planned: Vec<Planned>,
}

impl Eval<'_> {
    fn done(&self, rule: &Rule, subject: &str) -> Option<&BTreeSet<String>> {
        self.notified.get(&(rule.name.clone(), subject.to_string()))
    }

    #[allow(clippy::too_many_arguments)]
    fn plan(
        &mut self,
        rule: &Rule,
        subject: &str,
        threshold: String,
        severity: Severity,
        title: String,
        certificate: Option<CertRef>,
        endpoints: Vec<EndpointRef>,
        details: BTreeMap<String, String>,
    ) {
        if self.done(rule, subject).is_some_and(|d| d.contains(&threshold)) {
            return;
        }
        let id = notice::notice_id(&notice::key(&rule.name, subject, &threshold));
        self.planned.push(Planned {
            notice: Notice {
                id,
                rule: rule.name.clone(),
                kind: rule.kind,
                subject: subject.to_string(),
                threshold,
                severity,
                title,
                created_at: self.at.clone(),
                certificate,
                endpoints,
                details,
            },
            channels: rule.channels.clone(),
        });
    }

    fn expiring(&mut self, rule: &Rule, rows: &[&Stored]) {
        let mut by_cert: BTreeMap<&str, Vec<&Stored>> = BTreeMap::new();
        for s in rows.iter().filter(|s| s.gone_at.is_none()) {
            if let Some(c) = &s.record.certificate
                && !c.thumbprint.is_empty()
            {
                by_cert.entry(c.thumbprint.as_str()).or_default().push(s);
            }
        }
        for (thumb, eps) in by_cert {
            let Some(cert) = eps.first().and_then(|s| s.record.certificate.as_ref()) else {
                continue;
            };
            let Some(valid_to) = parse_time(&cert.valid_to) else {
                continue;
            };
            let left = valid_to - self.now;
            let crossed = if left <= time::Duration::ZERO && rule.expired {
                Some("expired".to_string())
            } else {
                rule.days
                    .iter()
                    .filter(|d| left <= time::Duration::days(i64::from(**d)))
                    .min()
                    .map(|d| format!("{d}d"))
            };
            let Some(threshold) = crossed else { continue };
            let level = rank(&threshold).unwrap_or(0);
            // Told already at this threshold or a tighter one: a clock set
            // back, or a threshold passed while the sensor was down.
            if self
                .done(rule, thumb)
                .is_some_and(|d| d.iter().any(|t| rank(t).is_some_and(|r| r <= level)))
            {
                continue;
            }
            let secs = left.whole_seconds();
            let days_left = if secs > 0 {
                (secs + 86_399) / 86_400
            } else {
                secs / 86_400
            };
            let name = cert.common_name.clone().unwrap_or_else(|| cert.subject_dn.clone());
            let (title, severity) = if threshold == "expired" {
                (
                    format!("Certificate {name} has expired ({})", cert.valid_to),
                    Severity::Critical,
                )
            } else {
                let sev = if days_left <= 7 {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                (
                    format!(
                        "Certificate {name} expires in {days_left} day(s) ({}), within {threshold}",
                        cert.valid_to
                    ),
                    sev,
                )
            };
            let certificate = CertRef {
                thumbprint: thumb.to_string(),
                common_name: cert.common_name.clone(),
                subject_dn: cert.subject_dn.clone(),
                issuer_dn: cert.issuer_dn.clone(),
                valid_to: cert.valid_to.clone(),
                days_left,
            };
            let endpoints = eps.iter().map(|s| EndpointRef::of(s)).collect();
            self.plan(
                rule,
                thumb,
                threshold,
                severity,
                title,
                Some(certificate),
                endpoints,
                BTreeMap::new(),
            );
        }
    }

    fn unsecured(&mut self, rule: &Rule, rows: &[&Stored]) {
        for s in rows
            .iter()
            .filter(|s| s.gone_at.is_none() && s.category == Category::Unsecured)
        {
            let e = EndpointRef::of(s);
            let what = s
                .record
                .service
                .as_deref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default();
            let title = format!("Unsecured service on {}{what}", e.place());
            self.plan(
                rule,
                &s.id,
                "unsecured".into(),
                Severity::Warning,
                title,
                None,
                vec![e],
                BTreeMap::new(),
            );
        }
    }

    fn weak(&mut self, rule: &Rule, rows: &[&Stored]) {
        for s in rows.iter().filter(|s| s.gone_at.is_none()) {
            let found = weaknesses(&s.record);
            let told: BTreeSet<String> = self
                .done(rule, &s.id)
                .map(|d| d.iter().flat_map(|t| t.split('+')).map(str::to_string).collect())
                .unwrap_or_default();
            let new: Vec<String> = found.difference(&told).cloned().collect();
            if new.is_empty() {
                continue;
            }
            let e = EndpointRef::of(s);
            let title = format!("{} offers {}", e.place(), new.join(", "));
            let details = BTreeMap::from([(
                "weaknesses".to_string(),
                found.into_iter().collect::<Vec<_>>().join(", "),
            )]);
            self.plan(
                rule,
                &s.id,
                new.join("+"),
                Severity::Warning,
                title,
                None,
                vec![e],
                details,
            );
        }
    }

    fn grade_drop(&mut self, rule: &Rule, rows: &[&Stored], memory: &BTreeMap<String, Seen>) {
        for s in rows.iter().filter(|s| s.gone_at.is_none()) {
            let Some(now) = s.record.grade.as_ref().map(|g| g.letter) else {
                continue;
            };
            let Some(before) = memory
                .get(&s.id)
                .and_then(|m| m.grade.as_deref())
                .and_then(crate::model::assessment::Letter::parse)
            else {
                continue;
            };
            if now.rank() <= before.rank() || !(rule.to.is_empty() || rule.to.contains(&now)) {
                continue;
            }
            let e = EndpointRef::of(s);
            let severity = if now.rank() >= crate::model::assessment::Letter::F.rank() {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let title = format!(
                "Grade of {} dropped from {} to {}",
                e.place(),
                before.as_str(),
                now.as_str()
            );
            let details = BTreeMap::from([
                ("from".to_string(), before.as_str().to_string()),
                ("to".to_string(), now.as_str().to_string()),
            ]);
            let threshold = format!("{}->{}@{}", before.as_str(), now.as_str(), s.record.scanned_at);
            self.plan(rule, &s.id, threshold, severity, title, None, vec![e], details);
        }
    }

    fn chain_invalid(&mut self, rule: &Rule, rows: &[&Stored], memory: &BTreeMap<String, Seen>) {
        for s in rows.iter().filter(|s| s.gone_at.is_none()) {
            let Some(report) = &s.record.chain_report else { continue };
            let was = memory.get(&s.id).and_then(|m| m.trusted);
            if !(was == Some(true) && report.trusted == Some(false)) {
                continue;
            }
            let e = EndpointRef::of(s);
            let issues: Vec<String> = report
                .trust_breaking()
                .map(|i| format!("{}: {}", i.id, i.detail))
                .collect();
            let title = format!("The certificate chain of {} is no longer trusted", e.place());
            let details = BTreeMap::from([("issues".to_string(), issues.join("; "))]);
            let threshold = format!("untrusted@{}", s.record.scanned_at);
            self.plan(
                rule,
                &s.id,
                threshold,
                Severity::Critical,
                title,
                None,
                vec![e],
                details,
            );
        }
    }

    fn gone(&mut self, rule: &Rule, rows: &[&Stored], memory: &BTreeMap<String, Seen>) {
        for s in rows {
            let Some(at) = &s.gone_at else { continue };
            if memory.get(&s.id).is_none_or(|m| m.gone) {
                continue;
            }
            let e = EndpointRef::of(s);
            let title = format!("{} is gone (last seen {})", e.place(), s.last_seen);
            let details = BTreeMap::from([("last_seen".to_string(), s.last_seen.clone())]);
            self.plan(
                rule,
                &s.id,
                format!("gone@{at}"),
                Severity::Info,
                title,
                None,
                vec![e],
                details,
            );
        }
    }

    fn offline(&mut self, rule: &Rule, rows: &[Stored]) {
        let mut last: BTreeMap<&str, &str> = BTreeMap::new();
        for s in rows.iter().filter(|s| !s.key.sensor.is_empty()) {
            if !rule.filter.sensors.is_empty() && !rule.filter.sensors.contains(&s.key.sensor) {
                continue;
            }
            let e = last.entry(s.key.sensor.as_str()).or_insert(s.last_seen.as_str());
            if s.last_seen.as_str() > *e {
                *e = s.last_seen.as_str();
            }
        }
        let after = time::Duration::try_from(rule.after).unwrap_or(time::Duration::DAY);
        for (sensor, seen) in last {
            let Some(t) = parse_time(seen) else { continue };
            if self.now - t <= after {
                continue;
            }
            let title = format!("Sensor {sensor} has reported nothing since {seen}");
            let details = BTreeMap::from([("last_seen".to_string(), seen.to_string())]);
            self.plan(
                rule,
                &format!("sensor:{sensor}"),
                format!("offline@{seen}"),
                Severity::Critical,
                title,
                None,
                Vec::new(),
                details,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;
    use crate::alert::config::RuleFilter;
    use crate::model::assessment::{Grade, Letter};
    use crate::model::cert::CertInfo;
    use crate::store::endpoint::Key;

    const NOW: OffsetDateTime = datetime!(2026-11-24 12:00:00 UTC);

    fn rule(kind: RuleKind) -> Rule {
        Rule {
            name: kind.as_str().into(),
            kind,
            channels: vec!["hook".into()],
            filter: RuleFilter::default(),
            days: vec![90, 60, 30, 7, 3],
            expired: true,
            to: Vec::new(),
            after: Duration::from_secs(3600),
        }
    }

    fn stored(port: u16, category: Category) -> Stored {
        let record = EndpointRecord::new("127.0.0.1".parse().unwrap(), port, None, category, rfc3339(NOW));
        let key = Key::of(&record);
        Stored {
            id: key.id(),
            key,
            profile: "lab".into(),
            category,
            first_seen: rfc3339(NOW),
            last_seen: rfc3339(NOW),
            missed_runs: 0,
            gone_at: None,
            tags: Vec::new(),
            record,
        }
    }

    fn with_cert(port: u16, thumb: &str, valid_to: OffsetDateTime) -> Stored {
        let mut s = stored(port, Category::Discovered);
        s.record.certificate = Some(CertInfo {
            common_name: Some(format!("{thumb}.test")),
            subject: Default::default(),
            subject_dn: format!("CN={thumb}.test"),
            issuer_dn: "CN=issuer".into(),
            san: Vec::new(),
            serial_number: "01".into(),
            thumbprint: thumb.into(),
            valid_from: rfc3339(NOW - time::Duration::days(300)),
            valid_to: rfc3339(valid_to),
            key_algorithm: "EC".into(),
            key_size: Some(256),
            key_curve: None,
            rsa_exponent: None,
            signature_algorithm: "ecdsa-with-SHA256".into(),
            is_ca: false,
            self_issued: false,
            parse_error: None,
            scts: Vec::new(),
        });
        s
    }

    /// Runs passes like the daemon: each pass's notices become notified.
    struct World {
        rules: Vec<Rule>,
        notified: Notified,
        memory: BTreeMap<String, Seen>,
        sent: Vec<String>,
    }

    impl World {
        fn new(rules: Vec<Rule>) -> World {
            World {
                rules,
                notified: Notified::new(),
                memory: BTreeMap::new(),
                sent: Vec::new(),
            }
        }

        /// The thresholds notified by this pass, as `subject threshold`.
        fn pass(&mut self, rows: &[Stored], now: OffsetDateTime) -> Vec<String> {
            let p = evaluate(&self.rules, rows, &self.memory, &self.notified, now);
            let mut out = Vec::new();
            for pl in p.planned {
                let n = pl.notice;
                self.notified
                    .entry((n.rule.clone(), n.subject.clone()))
                    .or_default()
                    .insert(n.threshold.clone());
                out.push(format!("{} {}", n.subject, n.threshold));
                self.sent.push(n.key());
            }
            self.memory = p.memory;
            out
        }
    }

    #[test]
    fn first_seen_with_five_days_left_is_one_notice_then_three_days_then_expired() {
        let mut w = World::new(vec![rule(RuleKind::Expiring)]);
        let rows = [with_cert(443, "aa", NOW + time::Duration::days(5))];
        assert_eq!(
            w.pass(&rows, NOW),
            ["aa 7d"],
            "the tightest threshold crossed, not four"
        );
        assert!(w.pass(&rows, NOW).is_empty(), "once");
        assert!(
            w.pass(&rows, NOW + time::Duration::hours(23)).is_empty(),
            "the daily pass: still 7d"
        );
        assert_eq!(w.pass(&rows, NOW + time::Duration::days(2)), ["aa 3d"]);
        assert!(w.pass(&rows, NOW + time::Duration::days(3)).is_empty());
        assert_eq!(w.pass(&rows, NOW + time::Duration::days(5)), ["aa expired"]);
        assert!(
            w.pass(&rows, NOW + time::Duration::days(40)).is_empty(),
            "expired is told once"
        );
        assert_eq!(w.sent.len(), 3);
    }

    #[test]
    fn every_threshold_is_told_once_as_time_passes() {
        let mut w = World::new(vec![rule(RuleKind::Expiring)]);
        let rows = [with_cert(443, "bb", NOW + time::Duration::days(100))];
        let mut told = Vec::new();
        for day in 0..=110 {
            told.extend(w.pass(&rows, NOW + time::Duration::days(day)));
        }
        assert_eq!(told, ["bb 90d", "bb 60d", "bb 30d", "bb 7d", "bb 3d", "bb expired"]);
    }

    #[test]
    fn a_notice_says_how_many_days_are_left() {
        let mut w = World::new(vec![rule(RuleKind::Expiring)]);
        let rows = [
            with_cert(1, "two", NOW + time::Duration::days(2)),
            with_cert(2, "twenty", NOW + time::Duration::days(20)),
            with_cert(3, "far", NOW + time::Duration::days(200)),
        ];
        let p = evaluate(
            &w.rules,
            &rows,
            &w.memory,
            &w.notified,
            NOW + time::Duration::seconds(5),
        );
        let got: Vec<(String, i64, Severity)> = p
            .planned
            .iter()
            .map(|pl| {
                let n = &pl.notice;
                (
                    n.threshold.clone(),
                    n.certificate.as_ref().unwrap().days_left,
                    n.severity,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("30d".to_string(), 20, Severity::Warning),
                ("3d".to_string(), 2, Severity::Critical)
            ]
        );
        assert!(
            p.planned[1].notice.title.contains("expires in 2 day(s)"),
            "{}",
            p.planned[1].notice.title
        );
        assert_eq!(w.pass(&rows, NOW).len(), 2);
    }

    #[test]
    fn a_clock_that_jumps_back_or_ahead_sends_nothing_twice_and_nothing_looser() {
        let mut w = World::new(vec![rule(RuleKind::Expiring)]);
        let rows = [with_cert(443, "cc", NOW + time::Duration::days(5))];
        assert_eq!(w.pass(&rows, NOW), ["cc 7d"]);
        // Set back a month: 35 days left would be the 60-day threshold.
        assert!(w.pass(&rows, NOW - time::Duration::days(30)).is_empty());
        // Back to normal, then a leap of a year: one `expired`, not 3d and expired.
        assert!(w.pass(&rows, NOW).is_empty());
        assert_eq!(w.pass(&rows, NOW + time::Duration::days(365)), ["cc expired"]);
        assert!(
            w.pass(&rows, NOW + time::Duration::days(1)).is_empty(),
            "and back: nothing"
        );
        assert_eq!(w.sent, ["expiring|cc|7d", "expiring|cc|expired"]);
    }

    #[test]
    fn one_certificate_on_several_endpoints_is_one_notice() {
        let mut w = World::new(vec![rule(RuleKind::Expiring)]);
        let rows = [
            with_cert(443, "dd", NOW + time::Duration::days(2)),
            with_cert(8443, "dd", NOW + time::Duration::days(2)),
        ];
        let p = evaluate(&w.rules, &rows, &w.memory, &w.notified, NOW);
        assert_eq!(p.planned.len(), 1);
        assert_eq!(p.planned[0].notice.endpoints.len(), 2);
        assert_eq!(w.pass(&rows, NOW), ["dd 3d"]);
    }

    #[test]
    fn without_expired_the_tightest_days_are_the_last_word() {
        let mut r = rule(RuleKind::Expiring);
        r.expired = false;
        r.days = vec![30];
        let mut w = World::new(vec![r]);
        let rows = [with_cert(443, "ee", NOW - time::Duration::days(1))];
        assert_eq!(w.pass(&rows, NOW), ["ee 30d"]);
        assert!(w.pass(&rows, NOW + time::Duration::days(9)).is_empty());
    }

    #[test]
    fn unsecured_and_weak_endpoints_are_told_once_each() {
        let mut w = World::new(vec![rule(RuleKind::Unsecured), rule(RuleKind::WeakProtocol)]);
        let plain = stored(80, Category::Unsecured);
        let mut legacy = stored(4433, Category::Discovered);
        legacy.record.protocols = Some(BTreeMap::from([
            ("TLSv1.0".to_string(), true),
            ("TLSv1.1".to_string(), true),
            ("TLSv1.2".to_string(), false),
        ]));
        let modern = with_cert(443, "ff", NOW + time::Duration::days(365));
        let rows = vec![plain.clone(), legacy.clone(), modern];
        let told = w.pass(&rows, NOW);
        assert_eq!(
            told,
            [format!("{} unsecured", plain.id), format!("{} TLSv1.0", legacy.id)]
        );
        assert!(w.pass(&rows, NOW + time::Duration::days(1)).is_empty());
        // A further weakness on the same endpoint is told, the old one not again.
        let mut rows2 = rows.clone();
        rows2[1].record.protocols.as_mut().unwrap().insert("SSLv3".into(), true);
        assert_eq!(w.pass(&rows2, NOW), [format!("{} SSLv3", legacy.id)]);
        assert!(w.pass(&rows2, NOW).is_empty());
    }

    fn graded(letter: Letter, trusted: Option<bool>) -> Stored {
        let mut s = stored(443, Category::Discovered);
        s.record.grade = Some(Grade {
            letter,
            score: 0,
            protocol_score: 0,
            key_exchange_score: 0,
            cipher_score: 0,
            caps: Vec::new(),
            warnings: Vec::new(),
            if_trusted: None,
            notes: Vec::new(),
        });
        s.record.chain_report = trusted.map(|t| crate::model::assessment::ChainReport {
            trusted: Some(t),
            publicly_trusted: false,
            trusted_by: Vec::new(),
            stores: Vec::new(),
            name_check: crate::model::assessment::NameCheck {
                status: crate::model::assessment::NameStatus::NotChecked,
                expected: None,
                names: Vec::new(),
            },
            path: Vec::new(),
            chain_issues: Vec::new(),
        });
        s
    }

    #[test]
    fn changes_are_told_against_the_previous_pass_only() {
        let mut w = World::new(vec![
            rule(RuleKind::GradeDrop),
            rule(RuleKind::ChainInvalid),
            rule(RuleKind::Gone),
        ]);
        let a = graded(Letter::A, Some(true));
        assert!(
            w.pass(std::slice::from_ref(&a), NOW).is_empty(),
            "first sight is no change"
        );
        let mut b = graded(Letter::B, Some(true));
        b.record.scanned_at = "2026-11-25T12:00:00Z".into();
        assert_eq!(
            w.pass(std::slice::from_ref(&b), NOW),
            [format!("{} A->B@2026-11-25T12:00:00Z", a.id)]
        );
        assert!(w.pass(std::slice::from_ref(&b), NOW).is_empty());
        let better = graded(Letter::APlus, Some(true));
        assert!(
            w.pass(std::slice::from_ref(&better), NOW).is_empty(),
            "a rise is no drop"
        );
        let mut t = graded(Letter::T, Some(false));
        t.record.scanned_at = "2026-11-26T12:00:00Z".into();
        let told = w.pass(std::slice::from_ref(&t), NOW);
        assert_eq!(
            told,
            [
                format!("{} A+->T@2026-11-26T12:00:00Z", a.id),
                format!("{} untrusted@2026-11-26T12:00:00Z", a.id)
            ]
        );
        let mut gone = t.clone();
        gone.gone_at = Some("2026-11-27T12:00:00Z".into());
        assert_eq!(
            w.pass(std::slice::from_ref(&gone), NOW),
            [format!("{} gone@2026-11-27T12:00:00Z", a.id)]
        );
        assert!(w.pass(std::slice::from_ref(&gone), NOW).is_empty());
    }

    #[test]
    fn grade_drop_to_only_some_letters() {
        let mut r = rule(RuleKind::GradeDrop);
        r.to = vec![Letter::F, Letter::T, Letter::M];
        let mut w = World::new(vec![r]);
        w.pass(&[graded(Letter::A, None)], NOW);
        assert!(w.pass(&[graded(Letter::B, None)], NOW).is_empty(), "B is not in `to`");
        assert_eq!(w.pass(&[graded(Letter::F, None)], NOW).len(), 1);
    }

    #[test]
    fn filters_narrow_a_rule() {
        let mut r = rule(RuleKind::Unsecured);
        r.filter.tags = vec!["prod".into()];
        let mut w = World::new(vec![r.clone()]);
        let mut tagged = stored(80, Category::Unsecured);
        let untagged = stored(81, Category::Unsecured);
        tagged.tags = vec!["prod".into()];
        assert_eq!(w.pass(&[tagged.clone(), untagged.clone()], NOW).len(), 1);
        r.filter.tags.clear();
        r.filter.addresses = vec!["10.0.0.0/8".parse().unwrap()];
        let mut w = World::new(vec![r.clone()]);
        assert!(w.pass(&[tagged.clone(), untagged.clone()], NOW).is_empty());
        r.filter.addresses.clear();
        r.filter.sensors = vec!["seg-a".into()];
        let mut w = World::new(vec![r]);
        assert!(w.pass(&[tagged, untagged], NOW).is_empty(), "own scans are sensor \"\"");
    }

    #[test]
    fn a_silent_sensor_is_told_once_per_silence() {
        let mut w = World::new(vec![rule(RuleKind::SensorOffline)]);
        let mut s = stored(443, Category::Discovered);
        s.key.sensor = "seg-a".into();
        s.last_seen = "2026-11-24T10:00:00Z".into();
        let own = stored(444, Category::Discovered);
        let rows = [s.clone(), own];
        assert_eq!(w.pass(&rows, NOW), ["sensor:seg-a offline@2026-11-24T10:00:00Z"]);
        assert!(w.pass(&rows, NOW + time::Duration::days(3)).is_empty());
        s.last_seen = "2026-11-24T11:30:00Z".into();
        assert!(w.pass(&[s.clone()], NOW).is_empty(), "reported again within the hour");
        assert_eq!(w.pass(&[s], NOW + time::Duration::hours(2)).len(), 1, "silent again");
    }

    #[test]
    fn keys_are_stable_ids() {
        let p = evaluate(
            &[rule(RuleKind::Unsecured)],
            &[stored(80, Category::Unsecured)],
            &BTreeMap::new(),
            &Notified::new(),
            NOW,
        );
        let n = &p.planned[0].notice;
        assert_eq!(n.id, notice::notice_id(&n.key()));
        assert_eq!(n.id.len(), 32);
        let later = evaluate(
            &[rule(RuleKind::Unsecured)],
            &[stored(80, Category::Unsecured)],
            &BTreeMap::new(),
            &Notified::new(),
            NOW + time::Duration::days(1),
        );
        assert_eq!(later.planned[0].notice.id, n.id, "the id does not depend on the time");
    }
}
