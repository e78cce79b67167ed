//! `[alerts]`, `[[alerts.channel]]` and `[[alerts.rule]]` of the sensor
//! configuration, read as strictly as the rest of it.
//!
//! An alerting rule that is silently misread is worse than none: the
//! operator believes they will be told, and are not. So an unknown key, a
//! threshold that is not a whole number of days, a rule naming a channel
//! that does not exist, or a key that means nothing for a rule's kind is an
//! error naming the field (`alerts.rule[2].days`) and where it is written
//! (a byte offset the caller turns into `file:line`), and the daemon does
//! not start. Pure: secrets named by `*_file` keys are read when the daemon
//! starts ([`crate::alert::channel`]).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnetwork::IpNetwork;
use serde::Deserialize;
use toml::Spanned;

use crate::model::assessment::Letter;
use crate::model::record::Category;

/// The default expiry thresholds, in days (the certificate-lifecycle
/// service's own schedule).
pub const DEFAULT_DAYS: [u32; 5] = [90, 60, 30, 7, 3];
/// The longest threshold accepted (ten years).
const MAX_DAYS: i64 = 3650;

/// Everything `[alerts]` configures. Empty (the default) means no alerting.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertsConfig {
    /// How often the rules are evaluated besides after each run (expiry
    /// advances while no scan runs).
    pub every: Duration,
    /// The longest wait between two delivery attempts of a channel.
    pub retry_max: Duration,
    pub channels: Vec<Channel>,
    pub rules: Vec<Rule>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            every: Duration::from_secs(24 * 3600),
            retry_max: Duration::from_secs(600),
            channels: Vec::new(),
            rules: Vec::new(),
        }
    }
}

impl AlertsConfig {
    /// No channel and no rule: nothing to open or run.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.rules.is_empty()
    }
}

/// Where notices go.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    pub name: String,
    /// One message per pass (a run, or the periodic pass) with every notice
    /// waiting, instead of one message per notice.
    pub digest: bool,
    /// At most this many notices in one digest; the rest follow in the next.
    pub digest_max: usize,
    pub kind: ChannelKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChannelKind {
    Webhook(Webhook),
    Email(Email),
    /// A line in the sensor's log (journald under systemd).
    Log,
}

impl ChannelKind {
    pub fn name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook(_) => "webhook",
            ChannelKind::Email(_) => "email",
            ChannelKind::Log => "log",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    pub url: String,
    /// Shared secret of the HMAC-SHA256 signature header.
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// Verify an `https://` receiver only against these PEM CAs.
    pub ca_bundle: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    Starttls,
    /// TLS from the first byte (port 465).
    Wrapper,
    /// No TLS at all: closed lab segments and tests only; no credentials.
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
    pub ca_bundle: Option<PathBuf>,
    pub timeout: Duration,
}

/// What a rule watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A certificate within `days` of its expiry, or expired.
    Expiring,
    /// An endpoint without TLS.
    Unsecured,
    /// A grade worse than the one seen before.
    GradeDrop,
    /// SSLv2, SSLv3, TLS 1.0, RC4, NULL or export suites offered.
    WeakProtocol,
    /// A chain that was trusted and is not any more.
    ChainInvalid,
    /// An endpoint reported gone.
    Gone,
    /// A reporting sensor silent for `after` (on a central sensor).
    SensorOffline,
    /// `sensor alerts test`.
    Test,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Expiring => "expiring",
            RuleKind::Unsecured => "unsecured",
            RuleKind::GradeDrop => "grade_drop",
            RuleKind::WeakProtocol => "weak_protocol",
            RuleKind::ChainInvalid => "chain_invalid",
            RuleKind::Gone => "gone",
            RuleKind::SensorOffline => "sensor_offline",
            RuleKind::Test => "test",
        }
    }

    const CONFIGURABLE: [RuleKind; 7] = [
        RuleKind::Expiring,
        RuleKind::Unsecured,
        RuleKind::GradeDrop,
        RuleKind::WeakProtocol,
        RuleKind::ChainInvalid,
        RuleKind::Gone,
        RuleKind::SensorOffline,
    ];
}

/// Which endpoints a rule looks at; every part given must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleFilter {
    /// Any of these tags.
    pub tags: Vec<String>,
    /// Reported by one of these sensors (`""`: this sensor's own scans).
    pub sensors: Vec<String>,
    pub addresses: Vec<IpNetwork>,
    pub categories: Vec<Category>,
}

impl RuleFilter {
    pub fn matches_address(&self, a: IpAddr) -> bool {
        self.addresses.is_empty() || self.addresses.iter().any(|n| n.contains(a))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Part of every idempotency key: renaming a rule starts its memory afresh.
    pub name: String,
    pub kind: RuleKind,
    pub channels: Vec<String>,
    pub filter: RuleFilter,
    /// `expiring`: thresholds in days, descending.
    pub days: Vec<u32>,
    /// `expiring`: one more notice once the certificate has expired.
    pub expired: bool,
    /// `grade_drop`: only drops to one of these letters (empty: any drop).
    pub to: Vec<Letter>,
    /// `sensor_offline`: silence longer than this.
    pub after: Duration,
}

/// A mistake in `[alerts]`: the field, what is wrong, the fix, and the byte
/// offset where it is written (the caller names the file and the line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {message} (fix: {fix})")]
pub struct AlertConfigError {
    pub at: Option<usize>,
    pub field: String,
    pub message: String,
    pub fix: String,
}

/// `[alerts]` as written; kept apart from its validation so the
/// configuration's own parser reads it in the same pass as everything else
/// (unknown keys are TOML errors with their line).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    every: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
    #[serde(default)]
    channel: Vec<Spanned<RawChannel>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: Spanned<String>,
    kind: Spanned<String>,
    digest: Option<bool>,
    digest_max: Option<Spanned<i64>>,
    timeout: Option<Spanned<String>>,
    ca_bundle: Option<PathBuf>,
    // webhook
    url: Option<Spanned<String>>,
    secret: Option<Spanned<String>>,
    secret_file: Option<PathBuf>,
    // email
    smtp: Option<Spanned<String>>,
    tls: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    password_file: Option<PathBuf>,
    from: Option<Spanned<String>>,
    to: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<Spanned<String>>,
    kind: Spanned<String>,
    channels: Option<Spanned<Vec<String>>>,
    days: Option<Spanned<Vec<i64>>>,
    expired: Option<Spanned<bool>>,
    to: Option<Spanned<Vec<String>>>,
    after: Option<Spanned<String>>,
    tags: Option<Vec<String>>,
    sensors: Option<Vec<String>>,
    addresses: Option<Spanned<Vec<String>>>,
    categories: Option<Spanned<Vec<String>>>,
}

/// Reads a duration value, naming its field in the error.
type DurationOf<'a> = &'a dyn Fn(&str, &Spanned<String>) -> Result<Duration, AlertConfigError>;

fn fail(at: Option<usize>, field: String, message: impl Into<String>, fix: &str) -> AlertConfigError {
    AlertConfigError {
        at,
        field,
        message: message.into(),
        fix: fix.into(),
    }
}

/// A name usable in idempotency keys and logs.
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Validates `[alerts]`; `duration` reads `30s`/`5m`/`1d` as every other
/// duration of the configuration does.
pub fn validate(
    raw: RawAlerts,
    duration: impl Fn(&str) -> Result<Duration, String>,
) -> Result<AlertsConfig, AlertConfigError> {
    let mut out = AlertsConfig::default();
    let dur = |field: &str, v: &Spanned<String>| {
        duration(v.get_ref()).map_err(|m| {
            fail(
                Some(v.span().start),
                field.into(),
                m,
                "write a number and a unit: `30s`, `5m`, `6h`, `1d`",
            )
        })
    };
    if let Some(e) = &raw.every {
        out.every = dur("alerts.every", e)?;
    }
    if let Some(r) = &raw.retry_max {
        out.retry_max = dur("alerts.retry_max", r)?;
    }
    for (i, c) in raw.channel.into_iter().enumerate() {
        let at = c.span().start;
        let field = |k: &str| format!("alerts.channel[{}].{k}", i + 1);
        let ch = channel(c.into_inner(), &field, &dur)?;
        if out.channels.iter().any(|x| x.name == ch.name) {
            return Err(fail(
                Some(at),
                field("name"),
                format!("two channels are named `{}`", ch.name),
                "give every channel its own name",
            ));
        }
        out.channels.push(ch);
    }
    let names: BTreeSet<&str> = out.channels.iter().map(|c| c.name.as_str()).collect();
    let mut rules = Vec::new();
    for (i, r) in raw.rule.into_iter().enumerate() {
        let at = r.span().start;
        let field = |k: &str| format!("alerts.rule[{}].{k}", i + 1);
        let rule = rule(r.into_inner(), &field, &names, &dur)?;
        if rules.iter().any(|x: &Rule| x.name == rule.name) {
            return Err(fail(
                Some(at),
                field("name"),
                format!("two rules are named `{}`", rule.name),
                "give each rule of the same kind a `name` of its own",
            ));
        }
        rules.push(rule);
    }
    out.rules = rules;
    Ok(out)
}

fn channel(c: RawChannel, field: &dyn Fn(&str) -> String, dur: DurationOf<'_>) -> Result<Channel, AlertConfigError> {
    let name = c.name.get_ref().clone();
    if !is_name(&name) {
        return Err(fail(
            Some(c.name.span().start),
            field("name"),
            format!("`{name}` is not a channel name"),
            "use 1 to 64 letters, digits, `-`, `_` or `.`",
        ));
    }
    let timeout = match &c.timeout {
        Some(t) => dur(&field("timeout"), t)?,
        None => Duration::from_secs(30),
    };
    let digest_max = match &c.digest_max {
        None => 50,
        Some(n) if (1..=1000).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            return Err(fail(
                Some(n.span().start),
                field("digest_max"),
                format!("{} is out of range", n.get_ref()),
                "give 1 to 1000 notices per digest",
            ));
        }
    };
    let digest = c.digest.unwrap_or(false);
    let kind = c.kind.get_ref().as_str();
    // Keys that belong to another kind are mistakes, not decoration.
    let foreign: &[(&str, bool)] = match kind {
        "webhook" => &[
            ("smtp", c.smtp.is_some()),
            ("tls", c.tls.is_some()),
            ("username", c.username.is_some()),
            ("password", c.password.is_some()),
            ("password_file", c.password_file.is_some()),
            ("from", c.from.is_some()),
            ("to", c.to.is_some()),
        ],
        "email" => &[
            ("url", c.url.is_some()),
            ("secret", c.secret.is_some()),
            ("secret_file", c.secret_file.is_some()),
        ],
        "log" => &[
            ("url", c.url.is_some()),
            ("secret", c.secret.is_some()),
            ("secret_file", c.secret_file.is_some()),
            ("smtp", c.smtp.is_some()),
            ("from", c.from.is_some()),
            ("to", c.to.is_some()),
            ("ca_bundle", c.ca_bundle.is_some()),
        ],
        other => {
            return Err(fail(
                Some(c.kind.span().start),
                field("kind"),
                format!("`{other}` is not a channel kind"),
                "use \"webhook\", \"email\" or \"log\"",
            ));
        }
    };
    if let Some((key, _)) = foreign.iter().find(|(_, set)| *set) {
        return Err(fail(
            Some(c.kind.span().start),
            field(key),
            format!("means nothing for a {kind} channel"),
            "remove it, or change the channel's kind",
        ));
    }
    let kind = match kind {
        "webhook" => {
            let Some(url) = c.url else {
                return Err(fail(
                    Some(c.name.span().start),
                    field("url"),
                    "a webhook needs a url",
                    "add url = \"https://receiver.example/hook\"",
                ));
            };
            let ok = reqwest::Url::parse(url.get_ref())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            if ok.is_none() {
                return Err(fail(
                    Some(url.span().start),
                    field("url"),
                    format!("`{}` is not an http(s) URL", url.get_ref()),
                    "write e.g. \"https://receiver.example/hook\"",
                ));
            }
            if let Some(s) = &c.secret {
                if c.secret_file.is_some() {
                    return Err(fail(
                        Some(s.span().start),
                        field("secret"),
                        "both secret and secret_file are set",
                        "keep one (secret_file keeps the secret out of this file)",
                    ));
                }
                if s.get_ref().len() < 16 {
                    return Err(fail(
                        Some(s.span().start),
                        field("secret"),
                        "is shorter than 16 characters",
                        "use a long random secret, e.g. `openssl rand -hex 32`",
                    ));
                }
            }
            ChannelKind::Webhook(Webhook {
                url: url.into_inner(),
                secret: c.secret.map(Spanned::into_inner),
                secret_file: c.secret_file,
                ca_bundle: c.ca_bundle,
                timeout,
            })
        }
        "email" => ChannelKind::Email(email(c, field, timeout)?),
        _ => ChannelKind::Log,
    };
    Ok(Channel {
        name,
        digest,
        digest_max,
        kind,
    })
}

fn email(c: RawChannel, field: &dyn Fn(&str) -> String, timeout: Duration) -> Result<Email, AlertConfigError> {
    let RawChannel {
        name,
        smtp,
        tls,
        username,
        password,
        password_file,
        from,
        to,
        ca_bundle,
        ..
    } = c;
    let at = Some(name.span().start);
    let Some(smtp) = smtp else {
        return Err(fail(
            at,
            field("smtp"),
            "an email channel needs an SMTP server",
            "add smtp = \"mail.example:587\"",
        ));
    };
    let (host, port) = smtp
        .get_ref()
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_start_matches('[').trim_end_matches(']'), p.parse::<u16>().ok()?)))
        .filter(|(h, p)| !h.is_empty() && *p != 0)
        .ok_or_else(|| {
            fail(
                Some(smtp.span().start),
                field("smtp"),
                format!("`{}` is not HOST:PORT", smtp.get_ref()),
                "write e.g. \"mail.example:587\"",
            )
        })?;
    let tls_mode = match tls.as_ref().map(|t| t.get_ref().as_str()) {
        None | Some("starttls") => SmtpTls::Starttls,
        Some("tls") => SmtpTls::Wrapper,
        Some("none") => SmtpTls::None,
        Some(other) => {
            return Err(fail(
                tls.as_ref().map(|t| t.span().start),
                field("tls"),
                format!("`{other}` is not a TLS mode"),
                "use \"starttls\" (default), \"tls\" (port 465) or \"none\" (labs only)",
            ));
        }
    };
    if password.is_some() && password_file.is_some() {
        return Err(fail(
            password.as_ref().map(|p| p.span().start),
            field("password"),
            "both password and password_file are set",
            "keep one (password_file keeps the secret out of this file)",
        ));
    }
    let has_password = password.is_some() || password_file.is_some();
    if username.is_some() != has_password {
        return Err(fail(
            username.as_ref().map_or(at, |u| Some(u.span().start)),
            field("username"),
            "username and password go together",
            "set both (password or password_file), or neither",
        ));
    }
    if tls_mode == SmtpTls::None && username.is_some() {
        return Err(fail(
            tls.as_ref().map(|t| t.span().start),
            field("tls"),
            "credentials would travel in the clear",
            "use tls = \"starttls\" or \"tls\" with a username",
        ));
    }
    let mailbox = |f: &str, at: usize, v: &str| {
        v.parse::<lettre::message::Mailbox>().map(|_| ()).map_err(|e| {
            fail(
                Some(at),
                field(f),
                format!("`{v}` is not an e-mail address: {e}"),
                "write e.g. \"sensor@example.org\" or \"Sensor <sensor@example.org>\"",
            )
        })
    };
    let Some(from) = from else {
        return Err(fail(
            at,
            field("from"),
            "an email channel needs a sender",
            "add from = \"sensor@example.org\"",
        ));
    };
    mailbox("from", from.span().start, from.get_ref())?;
    let to_at = to.as_ref().map_or(at, |t| Some(t.span().start));
    let to = to.map(Spanned::into_inner).unwrap_or_default();
    if to.is_empty() {
        return Err(fail(
            to_at,
            field("to"),
            "an email channel needs at least one recipient",
            "add to = [\"ops@example.org\"]",
        ));
    }
    for t in &to {
        mailbox("to", to_at.unwrap_or(0), t)?;
    }
    Ok(Email {
        host: host.to_string(),
        port,
        tls: tls_mode,
        username: username.map(Spanned::into_inner),
        password: password.map(Spanned::into_inner),
        password_file,
        from: from.into_inner(),
        to,
        ca_bundle,
        timeout,
    })
}

fn rule(
    r: RawRule,
    field: &dyn Fn(&str) -> String,
    channels: &BTreeSet<&str>,
    dur: DurationOf<'_>,
) -> Result<Rule, AlertConfigError> {
    let kind = RuleKind::CONFIGURABLE
        .into_iter()
        .find(|k| k.as_str() == r.kind.get_ref())
        .ok_or_else(|| {
            fail(
                Some(r.kind.span().start),
                field("kind"),
                format!("`{}` is not a rule kind", r.kind.get_ref()),
                "use expiring, unsecured, grade_drop, weak_protocol, chain_invalid, gone or sensor_offline",
            )
        })?;
    let kind_at = Some(r.kind.span().start);
    let name = match &r.name {
        None => kind.as_str().to_string(),
        Some(n) if is_name(n.get_ref()) => n.get_ref().clone(),
        Some(n) => {
            return Err(fail(
                Some(n.span().start),
                field("name"),
                format!("`{}` is not a rule name", n.get_ref()),
                "use 1 to 64 letters, digits, `-`, `_` or `.`",
            ));
        }
    };
    let foreign = [
        (
            "days",
            r.days.as_ref().map(|d| d.span().start),
            kind == RuleKind::Expiring,
        ),
        (
            "expired",
            r.expired.as_ref().map(|d| d.span().start),
            kind == RuleKind::Expiring,
        ),
        ("to", r.to.as_ref().map(|d| d.span().start), kind == RuleKind::GradeDrop),
        (
            "after",
            r.after.as_ref().map(|d| d.span().start),
            kind == RuleKind::SensorOffline,
        ),
    ];
    if let Some((key, at, _)) = foreign.iter().find(|(_, at, ok)| at.is_some() && !ok) {
        return Err(fail(
            *at,
            field(key),
            format!("means nothing for a `{}` rule", kind.as_str()),
            "remove it, or change the rule's kind",
        ));
    }
    let chan = match &r.channels {
        Some(c) if !c.get_ref().is_empty() => c,
        _ => {
            return Err(fail(
                r.channels.as_ref().map_or(kind_at, |c| Some(c.span().start)),
                field("channels"),
                "a rule needs at least one channel",
                "add channels = [\"NAME\"] naming an [[alerts.channel]]",
            ));
        }
    };
    for c in chan.get_ref() {
        if !channels.contains(c.as_str()) {
            return Err(fail(
                Some(chan.span().start),
                field("channels"),
                format!("no channel is named `{c}`"),
                "name an [[alerts.channel]] defined in this file",
            ));
        }
    }
    let days = match &r.days {
        None => DEFAULT_DAYS.to_vec(),
        Some(d) => {
            let bad = |m: String| {
                fail(
                    Some(d.span().start),
                    field("days"),
                    m,
                    "list whole numbers of days from 1 to 3650, e.g. [90, 60, 30, 7, 3]",
                )
            };
            if d.get_ref().is_empty() {
                return Err(bad("is empty".into()));
            }
            let mut out = Vec::new();
            for n in d.get_ref() {
                if !(1..=MAX_DAYS).contains(n) {
                    return Err(bad(format!("{n} is not a threshold")));
                }
                let n = *n as u32;
                if out.contains(&n) {
                    return Err(bad(format!("{n} is listed twice")));
                }
                out.push(n);
            }
            out.sort_unstable_by(|a, b| b.cmp(a));
            out
        }
    };
    let to = match &r.to {
        None => Vec::new(),
        Some(t) => t
            .get_ref()
            .iter()
            .map(|s| {
                Letter::parse(s).ok_or_else(|| {
                    fail(
                        Some(t.span().start),
                        field("to"),
                        format!("`{s}` is not a grade"),
                        "list grades: A+, A, A-, B, C, D, E, F, T, M",
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let after = match &r.after {
        Some(a) => dur(&field("after"), a)?,
        None => Duration::from_secs(24 * 3600),
    };
    let mut filter = RuleFilter {
        tags: r.tags.unwrap_or_default(),
        sensors: r.sensors.unwrap_or_default(),
        ..RuleFilter::default()
    };
    if let Some(a) = &r.addresses {
        for s in a.get_ref() {
            let net = s.parse::<IpNetwork>().map_err(|e| {
                fail(
                    Some(a.span().start),
                    field("addresses"),
                    format!("`{s}` is not an address or CIDR range: {e}"),
                    "write e.g. \"10.0.0.0/8\" or \"192.0.2.7\"",
                )
            })?;
            filter.addresses.push(net);
        }
    }
    if let Some(c) = &r.categories {
        for s in c.get_ref() {
            let cat = [Category::Discovered, Category::Unsecured, Category::Automatable]
                .into_iter()
                .find(|x| x.as_str() == s)
                .ok_or_else(|| {
                    fail(
                        Some(c.span().start),
                        field("categories"),
                        format!("`{s}` is not a category of the inventory"),
                        "use discovered, unsecured or automatable",
                    )
                })?;
            filter.categories.push(cat);
        }
    }
    Ok(Rule {
        name,
        kind,
        channels: chan.get_ref().clone(),
        filter,
        days,
        expired: r.expired.is_none_or(Spanned::into_inner),
        to,
        after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AlertsConfig, String> {
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            alerts: RawAlerts,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        validate(doc.alerts, crate::appliance::profile::parse_duration).map_err(|e| {
            let line = e.at.map(|o| text[..o].matches('\n').count() + 1).unwrap_or(0);
            format!("{line}: {e}")
        })
    }

    const MINIMAL: &str = r#"
[[alerts.channel]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:8080/hook"
[[alerts.rule]]
kind = "expiring"
days = [90, 60, 30, 7, 3]
channels = ["hook"]
"#;

    #[test]
    fn the_minimal_form_reads() {
        let a = parse(MINIMAL).unwrap();
        assert_eq!(a.channels.len(), 1);
        assert_eq!(a.channels[0].name, "hook");
        assert!(!a.channels[0].digest);
        let r = &a.rules[0];
        assert_eq!((r.name.as_str(), r.kind), ("expiring", RuleKind::Expiring));
        assert_eq!(r.days, vec![90, 60, 30, 7, 3]);
        assert!(r.expired);
        assert_eq!(a.every, Duration::from_secs(86_400));
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn every_kind_and_key_reads() {
        let text = r#"
[alerts]
every = "1h"
retry_max = "2s"
[[alerts.channel]]
name = "mail"
kind = "email"
smtp = "[::1]:2525"
username = "sensor"
password_file = "/etc/sensor/smtp.secret"
from = "Sensor <sensor@example.org>"
to = ["ops@example.org", "pki@example.org"]
digest = true
digest_max = 10
[[alerts.channel]]
name = "journal"
kind = "log"
[[alerts.rule]]
kind = "expiring"
days = [3, 30]
expired = false
channels = ["mail", "journal"]
tags = ["prod"]
addresses = ["10.0.0.0/8", "192.0.2.7"]
categories = ["discovered"]
[[alerts.rule]]
kind = "grade_drop"
to = ["F", "t", "M"]
channels = ["mail"]
[[alerts.rule]]
name = "segments-silent"
kind = "sensor_offline"
after = "2h"
sensors = ["seg-a"]
channels = ["journal"]
"#;
        let a = parse(text).unwrap();
        assert_eq!(a.retry_max, Duration::from_secs(2));
        let ChannelKind::Email(m) = &a.channels[0].kind else {
            panic!()
        };
        assert_eq!((m.host.as_str(), m.port, m.tls), ("::1", 2525, SmtpTls::Starttls));
        assert_eq!(a.channels[0].digest_max, 10);
        assert_eq!(a.rules[0].days, vec![30, 3], "sorted, tightest last");
        assert!(!a.rules[0].expired);
        assert!(a.rules[0].filter.matches_address("10.1.2.3".parse().unwrap()));
        assert!(!a.rules[0].filter.matches_address("192.0.2.8".parse().unwrap()));
        assert_eq!(a.rules[1].to, vec![Letter::F, Letter::T, Letter::M]);
        assert_eq!(a.rules[2].after, Duration::from_secs(7200));
    }

    #[test]
    fn mistakes_name_the_line_and_the_field() {
        let hook = "[[alerts.channel]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\n";
        let cases: Vec<(String, &str, &str)> = vec![
            (format!("{hook}[[alerts.rule]]\nkind = \"expiring\"\ndayz = [7]\nchannels = [\"hook\"]\n"), "7:", "unknown field `dayz`"),
            (format!("{hook}[[alerts.rule]]\nkind = \"expiring\"\ndays = [7, 0]\nchannels = [\"hook\"]\n"), "7:", "`alerts.rule[1].days`: 0 is not a threshold"),
            (format!("{hook}[[alerts.rule]]\nkind = \"expiring\"\ndays = [-3]\nchannels = [\"hook\"]\n"), "7:", "alerts.rule[1].days"),
            (format!("{hook}[[alerts.rule]]\nkind = \"expiring\"\ndays = [7, 7]\nchannels = [\"hook\"]\n"), "7:", "listed twice"),
            (format!("{hook}[[alerts.rule]]\nkind = \"expiring\"\ndays = [\"7d\"]\nchannels = [\"hook\"]\n"), "7:", "invalid type"),
            (format!("{hook}[[alerts.rule]]\nkind = \"expiring\"\nchannels = [\"hook\"]\n[[alerts.rule]]\nkind = \"expirng\"\nchannels = [\"hook\"]\n"), "9:", "`alerts.rule[2].kind`"),
            (format!("{hook}[[alerts.rule]]\nkind = \"expiring\"\nchannels = [\"pager\"]\n"), "7:", "no channel is named `pager`"),
            (format!("{hook}[[alerts.rule]]\nkind = \"unsecured\"\ndays = [7]\nchannels = [\"hook\"]\n"), "7:", "`alerts.rule[1].days`: means nothing"),
            (format!("{hook}[[alerts.rule]]\nkind = \"gone\"\n"), "6:", "`alerts.rule[1].channels`"),
            (format!("{hook}[[alerts.rule]]\nkind = \"gone\"\nchannels = [\"hook\"]\n[[alerts.rule]]\nkind = \"gone\"\nchannels = [\"hook\"]\n"), "", "two rules are named `gone`"),
            (format!("{hook}[[alerts.rule]]\nkind = \"grade_drop\"\nto = [\"Z\"]\nchannels = [\"hook\"]\n"), "7:", "`Z` is not a grade"),
            (format!("{hook}[[alerts.rule]]\nkind = \"gone\"\naddresses = [\"10.0.0.0/33\"]\nchannels = [\"hook\"]\n"), "7:", "alerts.rule[1].addresses"),
            ("[[alerts.channel]]\nname = \"h\"\nkind = \"pager\"\n".into(), "3:", "`alerts.channel[1].kind`"),
            ("[[alerts.channel]]\nname = \"h\"\nkind = \"webhook\"\nurl = \"ftp://x\"\n".into(), "4:", "`alerts.channel[1].url`"),
            ("[[alerts.channel]]\nname = \"h\"\nkind = \"webhook\"\nurl = \"https://x\"\nsecret = \"short\"\n".into(), "5:", "shorter than 16"),
            ("[[alerts.channel]]\nname = \"h\"\nkind = \"webhook\"\nurl = \"https://x\"\nto = [\"a@b.c\"]\n".into(), "", "`alerts.channel[1].to`: means nothing"),
            ("[[alerts.channel]]\nname = \"m\"\nkind = \"email\"\nsmtp = \"mail\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\n".into(), "4:", "`alerts.channel[1].smtp`"),
            ("[[alerts.channel]]\nname = \"m\"\nkind = \"email\"\nsmtp = \"mail:25\"\nfrom = \"a@b.c\"\nto = [\"not an address\"]\n".into(), "6:", "`alerts.channel[1].to`"),
            ("[[alerts.channel]]\nname = \"m\"\nkind = \"email\"\nsmtp = \"mail:25\"\ntls = \"none\"\nusername = \"u\"\npassword = \"p\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\n".into(), "5:", "in the clear"),
            ("[[alerts.channel]]\nname = \"m\"\nkind = \"email\"\nsmtp = \"mail:25\"\nfrom = \"a@b.c\"\n".into(), "", "at least one recipient"),
            ("[[alerts.channel]]\nname = \"a b\"\nkind = \"log\"\n".into(), "2:", "not a channel name"),
            ("[alerts]\nevery = \"5\"\n".into(), "2:", "`alerts.every`"),
            ("[alerts]\nevry = \"5m\"\n".into(), "2:", "unknown field `evry`"),
        ];
        for (text, line, expect) in &cases {
            let e = parse(text).expect_err(text);
            assert!(e.contains(expect), "{text}\n=> {e}");
            if line.is_empty() {
                continue;
            }
            // TOML errors carry their own "line N" text; ours start with it.
            let toml_line = format!("line {}", line.trim_end_matches(':'));
            assert!(e.starts_with(line) || e.contains(&toml_line), "{text}\n=> {e}");
        }
    }
}
