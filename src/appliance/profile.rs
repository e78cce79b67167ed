//! Scan profiles: what to scan, how fast, with which analyses, and when.
//!
//! A profile is configuration an operator writes once and the appliance
//! runs unattended for months, so it is parsed strictly (`deny_unknown_fields`)
//! and every mistake is reported with the file, the line, the field and the
//! fix, before anything runs: a typo must never silently widen or narrow a
//! scan. Parsing is pure (text in, [`Profile`] out); only [`load`] reads a file.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::discover::targets::{PortSet, Shard, TargetSpec};
use crate::probe::starttls::dialogue::{Starttls, StarttlsMode};

/// A validated scan profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub name: String,
    pub targets: Vec<TargetSpec>,
    pub exclude: Vec<TargetSpec>,
    pub ports: PortSet,
    /// Names to send as SNI to every TLS endpoint found, besides the
    /// target's own: one more record per (address, port, name).
    pub sni: Vec<String>,
    /// Which in-band upgrades to try: the mode `sensor scan --starttls` takes.
    pub starttls: StarttlsMode,
    /// Probes per second; `None` keeps the scanner's default.
    pub rate: Option<u32>,
    /// Discovery engine (`scan_type = "syn" | "connect" | "auto"`); `None` keeps the sensor's.
    pub scan_type: Option<crate::discover::syn::ScanType>,
    /// Host discovery before the port list (`host_discovery = true | false`);
    /// `None` keeps the rule (on for ranges of more than 256 addresses where
    /// it saves probes, [`crate::discover::hosts::rule`]).
    pub host_discovery: Option<bool>,
    pub max_concurrency: Option<usize>,
    pub per_host_connections: Option<usize>,
    pub connect_timeout: Option<Duration>,
    pub handshake_timeout: Option<Duration>,
    /// Time budget of one endpoint's examination (`endpoint_budget`); `None`
    /// keeps the sensor's ([`crate::scan::DEFAULT_ENDPOINT_BUDGET`]).
    pub endpoint_budget: Option<Duration>,
    pub analyses: Analyses,
    pub schedule: Option<Schedule>,
    pub shard: Option<Shard>,
    /// Attached to every endpoint this profile finds.
    pub tags: Vec<String>,
    /// Check each graded leaf's revocation live (OCSP, then CRL).
    pub revocation: bool,
    /// Where those fetches may go (`revocation_allow`): networks, addresses, host names.
    pub revocation_allow: crate::grade::revocation::Allowlist,
}

/// Which analyses run on what is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Analyses {
    /// The certificate chain in the record, and what is judged from it.
    /// Without it (`discovery_only`) a record says only that the port is
    /// open and what it speaks (transport, service, the one handshake).
    pub certificates: bool,
    /// Every protocol, suite, group and feature.
    pub enumeration: bool,
    /// Active vulnerability checks (on what the enumeration found; their
    /// verdicts are part of the grade).
    pub vulnerabilities: bool,
    /// One `GET /` for the security headers (judged by the grade).
    pub http_headers: bool,
    /// Rating and findings.
    pub grade: bool,
    /// The TLS extras: client authentication, resumption, early data,
    /// certificate compression, TLS 1.3 signature schemes, certificate deployments.
    pub tls_extras: bool,
}

impl Analyses {
    pub const FULL: Analyses = Analyses {
        certificates: true,
        enumeration: true,
        vulnerabilities: true,
        http_headers: true,
        grade: true,
        tls_extras: true,
    };
    pub const DISCOVERY: Analyses = Analyses {
        certificates: false,
        enumeration: false,
        vulnerabilities: false,
        http_headers: false,
        grade: false,
        tls_extras: false,
    };
}

/// When a profile runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub when: When,
    /// Daily window (UTC minutes since midnight) during which scans may run;
    /// may wrap midnight (`22:00-06:00`).
    pub window: Option<(u16, u16)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    Every(Duration),
    /// A five-field cron expression (validated), evaluated in UTC.
    Cron(String),
}

impl std::fmt::Display for Schedule {
    /// `every 6h within 22:00-06:00 UTC`, `cron "0 2 * * *" UTC`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.when {
            When::Every(d) => write!(f, "every {}", crate::output::human::duration(*d))?,
            When::Cron(c) => write!(f, "cron \"{c}\" UTC")?,
        }
        if let Some((a, b)) = self.window {
            write!(f, " within {:02}:{:02}-{:02}:{:02} UTC", a / 60, a % 60, b / 60, b % 60)?;
        }
        Ok(())
    }
}

impl Profile {
    /// One line for logs: name, targets, ports, schedule.
    pub fn summary(&self) -> String {
        let when = self
            .schedule
            .as_ref()
            .map_or_else(|| "once per start".to_string(), Schedule::to_string);
        format!(
            "`{}`: {} target(s), ports {}, {when}",
            self.name,
            self.targets.len(),
            self.ports
        )
    }
}

/// A profile error, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {}{message}{}", line.map(|l| format!(":{l}")).unwrap_or_default(), field.as_deref().map(|f| format!("`{f}`: ")).unwrap_or_default(), fix.as_deref().map(|f| format!(" (fix: {f})")).unwrap_or_default())]
pub struct ProfileError {
    pub file: String,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
    pub fix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    targets: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default = "default_ports")]
    ports: String,
    #[serde(default)]
    sni: Vec<String>,
    starttls: Option<String>,
    rate: Option<u32>,
    scan_type: Option<String>,
    host_discovery: Option<bool>,
    max_concurrency: Option<usize>,
    per_host_connections: Option<usize>,
    connect_timeout: Option<String>,
    handshake_timeout: Option<String>,
    endpoint_budget: Option<String>,
    analyses: Option<Vec<String>>,
    schedule: Option<RawSchedule>,
    shard: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    revocation: bool,
    #[serde(default)]
    revocation_allow: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    every: Option<String>,
    cron: Option<String>,
    window: Option<String>,
    timezone: Option<String>,
}

fn default_ports() -> String {
    "default".into()
}

/// Read and validate a profile file.
pub fn load(path: &Path) -> Result<Profile, ProfileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
        file: file.clone(),
        line: None,
        field: None,
        message: format!("cannot read the profile: {e}"),
        fix: None,
    })?;
    parse(&text, &file)
}

/// Validate a profile's text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Profile, ProfileError> {
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let mut pe = toml_error(text, file, &e);
        if pe.message.contains("unknown field") {
            pe.fix = Some("remove it or correct its spelling; see scan-profiles/README.md for every field".into());
        } else if pe.message.contains("missing field") {
            pe.fix = Some("add it: `name` and `targets` are required".into());
        }
        pe
    })?;
    let err = |field: &str, message: String, fix: &str| ProfileError {
        file: file.into(),
        line: line_of_key(text, field.rsplit('.').next().unwrap_or(field)),
        field: Some(field.into()),
        message,
        fix: Some(fix.into()),
    };
    if raw.name.trim().is_empty() {
        return Err(err("name", "is empty".into(), "give the profile a name"));
    }
    if raw.targets.is_empty() {
        return Err(err(
            "targets",
            "lists no targets".into(),
            "list addresses, CIDRs, ranges or host names",
        ));
    }
    let parse_specs = |field: &str, items: &[String]| -> Result<Vec<TargetSpec>, ProfileError> {
        items
            .iter()
            .map(|t| t.parse::<TargetSpec>())
            .collect::<Result<_, _>>()
            .map_err(|e| {
                err(
                    field,
                    e.to_string(),
                    "use an address, a CIDR, a range a.b.c.d-e or a host name",
                )
            })
    };
    let targets = parse_specs("targets", &raw.targets)?;
    let exclude = parse_specs("exclude", &raw.exclude)?;
    if let Some(TargetSpec::Host(h)) = exclude.iter().find(|s| matches!(s, TargetSpec::Host(_))) {
        return Err(err(
            "exclude",
            format!("`{h}` is a name"),
            "exclusions take addresses, CIDRs or ranges",
        ));
    }
    let ports: PortSet = raw.ports.parse().map_err(|e: crate::discover::targets::TargetError| {
        err("ports", e.to_string(), "e.g. \"443,8443\", \"1-1024\" or \"default\"")
    })?;
    let starttls = match raw.starttls.as_deref() {
        None => StarttlsMode::Auto,
        Some(p) => p.parse::<StarttlsMode>().map_err(|_| {
            err(
                "starttls",
                format!("`{p}` is not a STARTTLS protocol"),
                &format!("use auto, none or one of {}", starttls_names()),
            )
        })?,
    };
    let scan_type = raw
        .scan_type
        .as_deref()
        .map(|t| {
            t.parse::<crate::discover::syn::ScanType>()
                .map_err(|e| err("scan_type", e, "use syn, connect or auto"))
        })
        .transpose()?;
    if raw.rate == Some(0) {
        // 0 means "unlimited" on the command line; in an unattended profile it must be explicit.
        return Err(err(
            "rate",
            "0 would remove the rate limit".into(),
            "give probes per second, e.g. 1000",
        ));
    }
    if raw.max_concurrency == Some(0) || raw.per_host_connections == Some(0) {
        let f = if raw.max_concurrency == Some(0) {
            "max_concurrency"
        } else {
            "per_host_connections"
        };
        return Err(err(f, "must be at least 1".into(), "use a positive number"));
    }
    let duration = |field: &str, v: &Option<String>| -> Result<Option<Duration>, ProfileError> {
        v.as_deref()
            .map(|s| {
                parse_duration_within(s, MAX_TIMEOUT)
                    .map_err(|m| err(field, m, "e.g. \"1500ms\", \"5s\"; at most \"10m\""))
            })
            .transpose()
    };
    let connect_timeout = duration("connect_timeout", &raw.connect_timeout)?;
    let handshake_timeout = duration("handshake_timeout", &raw.handshake_timeout)?;
    let endpoint_budget = raw
        .endpoint_budget
        .as_deref()
        .map(|s| {
            parse_duration_within(s, MAX_ENDPOINT_BUDGET)
                .map_err(|m| err("endpoint_budget", m, "e.g. \"60s\", \"5m\"; at most \"1h\""))
        })
        .transpose()?;
    let analyses = match &raw.analyses {
        None => Analyses::FULL,
        Some(list) => {
            let mut a = Analyses::DISCOVERY;
            for item in list {
                match item.as_str() {
                    "discovery_only" => {}
                    "certificates" => a.certificates = true,
                    "full" => a = Analyses::FULL,
                    "enumeration" => (a.certificates, a.enumeration) = (true, true),
                    // The checks' verdicts and the headers' findings are
                    // part of the grade: without it they would not be run.
                    "vulnerabilities" => {
                        (a.certificates, a.enumeration, a.vulnerabilities, a.grade) = (true, true, true, true)
                    }
                    "http_headers" => (a.certificates, a.http_headers, a.grade) = (true, true, true),
                    "grade" => (a.certificates, a.grade) = (true, true),
                    "tls_extras" => (a.certificates, a.tls_extras) = (true, true),
                    other => {
                        return Err(err(
                            "analyses",
                            format!("`{other}` is not an analysis"),
                            "use discovery_only, certificates, enumeration, vulnerabilities, http_headers, grade, tls_extras or full",
                        ));
                    }
                }
            }
            a
        }
    };
    let schedule = raw.schedule.as_ref().map(|s| parse_schedule(s, &err)).transpose()?;
    let shard = raw
        .shard
        .as_deref()
        .map(str::parse::<Shard>)
        .transpose()
        .map_err(|e| err("shard", e.to_string(), "e.g. \"1/4\""))?;
    let revocation_allow = crate::grade::revocation::Allowlist::parse(&raw.revocation_allow).map_err(|e| {
        err(
            "revocation_allow",
            e.to_string(),
            "e.g. [\"10.0.0.0/8\", \"ocsp.pki.internal\"]",
        )
    })?;
    if !raw.revocation && !raw.revocation_allow.is_empty() {
        return Err(err(
            "revocation_allow",
            "is set but `revocation` is not on".into(),
            "add `revocation = true`, or remove `revocation_allow`",
        ));
    }
    Ok(Profile {
        name: raw.name,
        targets,
        exclude,
        ports,
        sni: raw.sni,
        starttls,
        rate: raw.rate,
        scan_type,
        host_discovery: raw.host_discovery,
        max_concurrency: raw.max_concurrency,
        per_host_connections: raw.per_host_connections,
        connect_timeout,
        handshake_timeout,
        endpoint_budget,
        analyses,
        schedule,
        shard,
        tags: raw.tags,
        revocation: raw.revocation,
        revocation_allow,
    })
}

/// The protocol names `starttls` takes, for the fix of a wrong one.
fn starttls_names() -> String {
    Starttls::ALL.map(Starttls::name).join(", ")
}

fn parse_schedule(s: &RawSchedule, err: &dyn Fn(&str, String, &str) -> ProfileError) -> Result<Schedule, ProfileError> {
    let when = match (&s.every, &s.cron) {
        (Some(_), Some(_)) => {
            return Err(err(
                "schedule.cron",
                "both `every` and `cron` are set".into(),
                "keep one of them",
            ));
        }
        (None, None) => {
            return Err(err(
                "schedule",
                "says neither `every` nor `cron`".into(),
                "add every = \"6h\" or cron = \"0 2 * * *\"",
            ));
        }
        (Some(e), None) => {
            let d = parse_duration(e).map_err(|m| err("schedule.every", m, "e.g. \"30m\", \"6h\", \"1d\""))?;
            if d < Duration::from_secs(1) {
                return Err(err(
                    "schedule.every",
                    format!("`{e}` is shorter than a second"),
                    "use at least \"1s\"",
                ));
            }
            When::Every(d)
        }
        (None, Some(c)) => {
            c.parse::<croner::Cron>().map_err(|e| {
                err(
                    "schedule.cron",
                    format!("`{c}`: {e}"),
                    "five fields: minute hour day month weekday",
                )
            })?;
            When::Cron(c.clone())
        }
    };
    if let Some(tz) = s.timezone.as_deref()
        && tz != "UTC"
    {
        return Err(err(
            "schedule.timezone",
            format!("`{tz}` is not supported"),
            "use \"UTC\" (windows and cron run in UTC)",
        ));
    }
    let window = s
        .window
        .as_deref()
        .map(|w| {
            parse_window(w).ok_or_else(|| {
                err(
                    "schedule.window",
                    format!("`{w}` is not HH:MM-HH:MM"),
                    "e.g. \"22:00-06:00\"",
                )
            })
        })
        .transpose()?;
    Ok(Schedule { when, window })
}

/// The longest duration any key takes: a schedule may say "yearly", nothing
/// waits longer (and an unbounded one overflows the clock's arithmetic).
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);

/// The longest connect or handshake deadline a profile may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// The longest time budget of one endpoint (`endpoint_budget`,
/// `--endpoint-budget`).
pub const MAX_ENDPOINT_BUDGET: Duration = Duration::from_secs(3600);

/// `1500ms`, `90s`, `30m`, `6h`, `1d`; at most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_duration_within(s, MAX_DURATION)
}

/// [`parse_duration`], at most `max`.
pub fn parse_duration_within(s: &str, max: Duration) -> Result<Duration, String> {
    let d = parse_duration_unbounded(s)?;
    if d > max {
        return Err(format!(
            "`{}` is longer than {}, the most this key takes",
            s.trim(),
            crate::output::human::duration(max)
        ));
    }
    Ok(d)
}

fn parse_duration_unbounded(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` does not start with a number"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("`{s}` has no unit (ms, s, m, h or d)")),
    };
    if n == 0 {
        return Err(format!("`{s}` is zero"));
    }
    Ok(Duration::from_secs(secs))
}

fn parse_window(w: &str) -> Option<(u16, u16)> {
    let (a, b) = w.split_once('-')?;
    let hm = |t: &str| -> Option<u16> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (a, b) = (hm(a)?, hm(b)?);
    (a != b).then_some((a, b))
}

/// A TOML error as a [`ProfileError`]: the line, and for a value of the
/// wrong type the field it was written for (`[section]` prefix included),
/// what it should be and how to write it.
pub(crate) fn toml_error(text: &str, file: &str, e: &toml::de::Error) -> ProfileError {
    let at = e.span().map(|s| s.start);
    let message = e.message().to_string();
    let mut out = ProfileError {
        file: file.into(),
        line: at.map(|a| line_at(text, a)),
        field: None,
        message: message.clone(),
        fix: None,
    };
    if let (Some(rest), Some(at)) = (message.strip_prefix("invalid type: "), at) {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "another type"));
        let (field, key) = field_at(text, at);
        let (what, how) = expected_type(expected);
        out.message = format!("is {found}, expected {what}");
        out.fix = Some(match key {
            Some(k) => format!("write {how}, e.g. {k} = {}", example(expected)),
            None => format!("write {how}"),
        });
        out.field = field;
    }
    out
}

/// The dotted name of the key written at byte `at`, and the bare key.
fn field_at(text: &str, at: usize) -> (Option<String>, Option<String>) {
    let before = text.get(..at.min(text.len())).unwrap_or(text);
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(start..).and_then(|l| l.lines().next()).unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let section = before[..start].lines().rev().find_map(|l| {
        let l = l.trim();
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    });
    let field = key.as_ref().map(|k| match &section {
        Some(s) => format!("{s}.{k}"),
        None => k.clone(),
    });
    (field, key)
}

/// serde's name of a type, as a person says it, and how to write one.
fn expected_type(expected: &str) -> (&'static str, &'static str) {
    if expected.contains("string") {
        ("a string", "it in quotes")
    } else if ["u8", "u16", "u32", "u64", "usize", "i32", "i64", "integer"]
        .iter()
        .any(|t| expected.split_whitespace().any(|w| w == *t))
    {
        ("a whole number", "a number without quotes")
    } else if expected.contains("bool") {
        ("true or false", "true or false without quotes")
    } else if expected.contains("sequence") {
        ("a list", "a list in brackets")
    } else if expected.contains("map") || expected.contains("struct") {
        ("a table", "a table")
    } else {
        ("another type", "the value as docs/configuration.md shows")
    }
}

fn example(expected: &str) -> &'static str {
    match expected_type(expected).0 {
        "a string" => "\"…\"",
        "a whole number" => "1000",
        "true or false" => "true",
        "a list" => "[\"…\"]",
        _ => "…",
    }
}

pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |t| t.matches('\n').count() + 1)
}

/// The line where `key = …` is written (first occurrence), for errors that
/// come from validation rather than from the TOML parser.
pub(crate) fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "lab"
targets = ["127.0.2.0/29", "localhost"]
exclude = ["127.0.2.7"]
ports = "8080,8443"
rate = 500
analyses = ["certificates", "grade"]
tags = ["lab"]

[schedule]
every = "6h"
window = "22:00-06:00"
"#;

    #[test]
    fn parses_a_complete_profile() {
        let p = parse(GOOD, "lab.toml").unwrap();
        assert_eq!(p.name, "lab");
        assert_eq!(p.targets.len(), 2);
        assert_eq!(p.ports.as_slice(), &[8080, 8443]);
        assert_eq!(p.rate, Some(500));
        assert!(p.analyses.grade && p.analyses.certificates && !p.analyses.enumeration);
        let s = p.schedule.unwrap();
        assert_eq!(s.when, When::Every(Duration::from_secs(6 * 3600)));
        assert_eq!(s.window, Some((22 * 60, 6 * 60)));
    }

    #[test]
    fn defaults_are_full_analysis_on_the_default_ports() {
        let p = parse("name = \"x\"\ntargets = [\"::1\"]\n", "x.toml").unwrap();
        assert_eq!(p.analyses, Analyses::FULL);
        assert_eq!(p.ports.len(), 12);
        assert_eq!(p.starttls, StarttlsMode::Auto);
        assert!(p.schedule.is_none());
        assert_eq!(p.scan_type, None);
    }

    #[test]
    fn host_discovery_is_a_boolean() {
        let p = parse("name = \"x\"\ntargets = [\"::1\"]\nhost_discovery = false\n", "x.toml").unwrap();
        assert_eq!(p.host_discovery, Some(false));
        let p = parse("name = \"x\"\ntargets = [\"::1\"]\n", "x.toml").unwrap();
        assert_eq!(p.host_discovery, None);
        let e = error("name = \"x\"\ntargets = [\"::1\"]\nhost_discovery = \"no\"\n");
        assert!(e.contains("`host_discovery`"), "{e}");
    }

    #[test]
    fn scan_type_is_parsed_strictly() {
        let p = parse("name = \"x\"\ntargets = [\"::1\"]\nscan_type = \"syn\"\n", "x.toml").unwrap();
        assert_eq!(p.scan_type, Some(crate::discover::syn::ScanType::Syn));
        let e = error("name = \"x\"\ntargets = [\"::1\"]\nscan_type = \"udp\"\n");
        assert!(e.contains("`scan_type`") && e.contains("`udp`"), "{e}");
    }

    #[test]
    fn starttls_takes_what_the_command_line_takes() {
        let with = |v: &str| {
            parse(
                &format!("name = \"x\"\ntargets = [\"::1\"]\nstarttls = \"{v}\"\n"),
                "x.toml",
            )
        };
        assert_eq!(with("auto").unwrap().starttls, StarttlsMode::Auto);
        assert_eq!(with("none").unwrap().starttls, StarttlsMode::Off);
        for p in Starttls::ALL {
            assert_eq!(with(p.name()).unwrap().starttls, StarttlsMode::Only(p), "{p}");
            assert_eq!(
                with(p.name()).unwrap().starttls,
                p.name().parse::<StarttlsMode>().unwrap()
            );
        }
        let e = with("smtps").unwrap_err().to_string();
        assert!(
            e.starts_with("x.toml:3: `starttls`: `smtps` is not a STARTTLS protocol")
                && e.contains("(fix: use auto, none or one of smtp, imap, pop3, ftp, ldap, postgres, xmpp, xmpp-server, mysql, rdp)"),
            "{e}"
        );
    }

    fn error(text: &str) -> String {
        parse(text, "p.toml").unwrap_err().to_string()
    }

    #[test]
    fn every_mistake_names_file_line_field_and_fix() {
        let e = error("name = \"x\"\ntargets = [\"127.0.0.1\"]\nprots = \"443\"\n");
        assert!(
            e.starts_with("p.toml:3: ") && e.contains("unknown field `prots`") && e.contains("fix:"),
            "{e}"
        );
        let e = error("name = \"x\"\ntargets = [\"127.0.0.300\"]\n");
        assert!(
            e.starts_with("p.toml:2: `targets`: ") && e.contains("`127.0.0.300`") && e.contains("fix:"),
            "{e}"
        );
        let e = error("name = \"x\"\ntargets = [\"::1\"]\nports = \"70000\"\n");
        assert!(e.starts_with("p.toml:3: `ports`: "), "{e}");
        let e = error("name = \"x\"\ntargets = [\"::1\"]\n[schedule]\ncron = \"not a cron\"\n");
        assert!(e.starts_with("p.toml:4: `schedule.cron`: "), "{e}");
        let e = error("name = \"x\"\ntargets = [\"::1\"]\n[schedule]\nevery = \"6h\"\ncron = \"0 2 * * *\"\n");
        assert!(e.contains("both `every` and `cron`"), "{e}");
        let e = error("name = \"x\"\ntargets = [\"::1\"]\n[schedule]\nevery = \"6\"\n");
        assert!(e.contains("no unit"), "{e}");
        let e = error("name = \"x\"\ntargets = [\"::1\"]\n[schedule]\nevery = \"1h\"\nwindow = \"25:00-06:00\"\n");
        assert!(e.contains("`schedule.window`"), "{e}");
        let e = error("name = \"x\"\ntargets = [\"::1\"]\nanalyses = [\"everything\"]\n");
        assert!(e.contains("`everything` is not an analysis"), "{e}");
        let e = error("name = \"x\"\ntargets = [\"::1\"]\nrate = 0\n");
        assert!(e.contains("`rate`"), "{e}");
        let e = error("name = \"x\"\ntargets = [\"::1\"]\n[schedule]\nevery = \"1h\"\nmoon = \"full\"\n");
        assert!(e.starts_with("p.toml:5: ") && e.contains("unknown field `moon`"), "{e}");
        let e = error("targets = [\"::1\"]\n");
        assert!(e.contains("missing field `name`"), "{e}");
    }

    /// Issue 17, defect 4: a value of the wrong type names its field, the
    /// type it takes and how to write it; every duration is bounded.
    #[test]
    fn type_errors_name_the_field_and_the_type() {
        let e = error("name = \"x\"\ntargets = [\"::1\"]\nports = 443\n");
        assert!(
            e.starts_with("p.toml:3: `ports`: is integer `443`, expected a string")
                && e.contains("fix: write it in quotes"),
            "{e}"
        );
        let e = error("name = \"x\"\ntargets = [\"::1\"]\nrate = \"fast\"\n");
        assert!(
            e.starts_with("p.toml:3: `rate`: is string \"fast\", expected a whole number") && e.contains("rate = 1000"),
            "{e}"
        );
        let e = error("name = \"x\"\ntargets = \"::1\"\n");
        assert!(
            e.starts_with("p.toml:2: `targets`: ") && e.contains("expected a list"),
            "{e}"
        );
        let e = error("name = \"x\"\ntargets = [\"::1\"]\n[schedule]\nevery = 6\n");
        assert!(e.starts_with("p.toml:4: `schedule.every`: is integer"), "{e}");
    }

    #[test]
    fn every_duration_is_bounded() {
        let e = error("name = \"x\"\ntargets = [\"::1\"]\nhandshake_timeout = \"99999999999d\"\n");
        assert!(
            e.starts_with("p.toml:3: `handshake_timeout`: ") && e.contains("longer than"),
            "{e}"
        );
        let e = error("name = \"x\"\ntargets = [\"::1\"]\nconnect_timeout = \"11m\"\n");
        assert!(e.contains("`connect_timeout`") && e.contains("longer than 10m"), "{e}");
        let e = error("name = \"x\"\ntargets = [\"::1\"]\n[schedule]\nevery = \"400d\"\n");
        assert!(e.contains("`schedule.every`") && e.contains("longer than"), "{e}");
        assert_eq!(parse_duration("366d"), Ok(MAX_DURATION));
        assert!(parse_duration("18446744073709551615d").is_err());
        assert!(parse_duration("99999999999999999999999s").is_err());
    }

    #[test]
    fn endpoint_budget_is_read_and_bounded() {
        let p = parse(
            "name = \"x\"\ntargets = [\"::1\"]\nendpoint_budget = \"90s\"\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(p.endpoint_budget, Some(Duration::from_secs(90)));
        let p = parse("name = \"x\"\ntargets = [\"::1\"]\n", "x.toml").unwrap();
        assert_eq!(p.endpoint_budget, None);
        let e = error("name = \"x\"\ntargets = [\"::1\"]\nendpoint_budget = \"2h\"\n");
        assert!(
            e.starts_with("p.toml:3: `endpoint_budget`: ") && e.contains("longer than 1h") && e.contains("fix:"),
            "{e}"
        );
        let e = error("name = \"x\"\ntargets = [\"::1\"]\nendpoint_budget = \"0s\"\n");
        assert!(e.contains("`endpoint_budget`") && e.contains("zero"), "{e}");
    }

    #[test]
    fn durations_and_windows() {
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_window("00:00-23:59"), Some((0, 1439)));
        assert_eq!(parse_window("10:00-10:00"), None);
    }

    fn shipped() -> Vec<(std::path::PathBuf, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scan-profiles");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
        assert!(out.len() >= 2, "shipped profiles: {out:?}");
        out
    }

    #[test]
    fn every_shipped_profile_parses_and_targets_loopback_only() {
        for (path, _) in shipped() {
            let p = load(&path).unwrap_or_else(|e| panic!("{e}"));
            for t in &p.targets {
                let loopback = match t {
                    TargetSpec::Net(n) => n.network().is_loopback() && n.broadcast().is_loopback(),
                    TargetSpec::Range { first, last } => first.is_loopback() && last.is_loopback(),
                    TargetSpec::Host(h) => h == "localhost",
                };
                assert!(loopback, "{}: {t:?} is not loopback", path.display());
            }
        }
    }

    #[test]
    fn the_readmes_example_profile_starts_at_once_and_says_its_schedule_in_hours() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scan-profiles");
        let p = load(&dir.join("loopback-scheduled.toml")).unwrap();
        // The appliance example checks revocation, and only on loopback.
        assert!(p.revocation);
        assert_eq!(
            p.revocation_allow,
            crate::grade::revocation::Allowlist::parse(&["127.0.0.0/8", "::1"]).unwrap()
        );
        let s = p.schedule.as_ref().unwrap();
        assert_eq!(s.to_string(), "every 6h");
        for now in [
            time::macros::datetime!(2026-11-24 12:00 UTC),
            time::macros::datetime!(2026-11-24 23:00 UTC),
        ] {
            assert_eq!(
                crate::appliance::schedule::due(s, None, now),
                crate::appliance::schedule::Due::Now,
                "a first start at {now} runs it"
            );
        }
        let night = Schedule {
            window: Some((22 * 60, 6 * 60)),
            ..s.clone()
        };
        assert_eq!(night.to_string(), "every 6h within 22:00-06:00 UTC");
    }

    #[test]
    fn an_unknown_key_in_any_shipped_profile_is_refused() {
        for (path, text) in shipped() {
            let bogus = format!("{text}\nbogus_key = 1\n");
            let e = parse(&bogus, &path.display().to_string()).unwrap_err();
            assert!(e.message.contains("unknown field `bogus_key`"), "{e}");
            assert!(e.line.is_some(), "{e}");
        }
    }
}
