//! A notice, and the message a channel sends: one notice, or a digest of
//! several. The JSON is the webhook body and is published as
//! `docs/schema/alert.schema.json`; [`SCHEMA_VERSION`] changes when a field
//! changes meaning, fields are only ever added.
//!
//! Every notice has an idempotency key, (rule, subject, threshold): the
//! subject is a certificate's thumbprint, an endpoint's id or a sensor, the
//! threshold what was crossed (`7d`, `expired`, `TLSv1.0`, `A->B@…`). A key
//! is notified once, ever; [`Notice::id`] is its digest, the same on every
//! attempt, so a receiver can recognise a re-send.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::alert::config::RuleKind;
use crate::store::endpoint::Stored;

pub const SCHEMA_VERSION: &str = "1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The certificate a notice is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRef {
    pub thumbprint: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub common_name: Option<String>,
    pub subject_dn: String,
    pub issuer_dn: String,
    pub valid_to: String,
    /// Whole days left when the notice was made (negative: expired).
    pub days_left: i64,
}

/// An endpoint a notice is about (or where its certificate is served).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRef {
    /// The inventory's id (`GET /api/v1/endpoints/{id}`).
    pub id: String,
    pub address: String,
    pub port: u16,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub sni: String,
    /// The reporting sensor; empty for this sensor's own scans.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub sensor: String,
    pub category: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub grade: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub tags: Vec<String>,
}

impl EndpointRef {
    pub fn of(s: &Stored) -> EndpointRef {
        EndpointRef {
            id: s.id.clone(),
            address: s.key.address.clone(),
            port: s.key.port,
            sni: s.key.sni.clone(),
            sensor: s.key.sensor.clone(),
            category: s.category.as_str().to_string(),
            grade: s.record.grade.as_ref().map(|g| g.letter.as_str().to_string()),
            tags: s.tags.clone(),
        }
    }

    /// `ADDR:PORT`, IPv6 in brackets, with the SNI when there is one.
    pub fn place(&self) -> String {
        let addr = if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        };
        if self.sni.is_empty() {
            addr
        } else {
            format!("{addr} ({})", self.sni)
        }
    }
}

/// One thing worth telling someone, once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// [`notice_id`] of the key.
    pub id: String,
    pub rule: String,
    pub kind: RuleKind,
    pub subject: String,
    pub threshold: String,
    pub severity: Severity,
    pub title: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub certificate: Option<CertRef>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub endpoints: Vec<EndpointRef>,
    /// Kind-specific facts (`from`, `to`, `weaknesses`, `last_seen` …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub details: BTreeMap<String, String>,
}

impl Notice {
    /// The idempotency key: `rule|subject|threshold`.
    pub fn key(&self) -> String {
        key(&self.rule, &self.subject, &self.threshold)
    }
}

pub fn key(rule: &str, subject: &str, threshold: &str) -> String {
    format!("{rule}|{subject}|{threshold}")
}

/// 32 hex digits of SHA-256 over `key`: stable across attempts and restarts.
pub fn notice_id(key: &str) -> String {
    crate::model::ids::hex(&Sha256::digest(key.as_bytes())[..16])
}

/// Who sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorRef {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

/// What one delivery carries: the webhook's JSON body, an e-mail's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub schema_version: String,
    /// The idempotency key of this message: the notice's id, or for a
    /// digest the digest of its notices' ids. Also `Idempotency-Key`.
    pub id: String,
    pub sensor: SensorRef,
    pub digest: bool,
    pub notices: Vec<Notice>,
    /// Digest: notices still waiting after this one (they follow).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub more: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Message {
    pub fn single(sensor: SensorRef, notice: Notice) -> Message {
        Message {
            schema_version: SCHEMA_VERSION.into(),
            id: notice.id.clone(),
            sensor,
            digest: false,
            notices: vec![notice],
            more: 0,
        }
    }

    pub fn digest(sensor: SensorRef, id: String, notices: Vec<Notice>, more: u64) -> Message {
        Message {
            schema_version: SCHEMA_VERSION.into(),
            id,
            sensor,
            digest: true,
            notices,
            more,
        }
    }

    /// One line: the notice's title, or a digest's count and worst severity.
    pub fn subject(&self) -> String {
        match self.notices.as_slice() {
            [n] if !self.digest => format!("[netsensor] {}", n.title),
            ns => {
                let worst = ns.iter().map(|n| n.severity).max().unwrap_or(Severity::Info);
                format!(
                    "[netsensor] {} notice(s) from {} ({}){}",
                    ns.len(),
                    self.sensor.name.as_deref().unwrap_or(&self.sensor.id),
                    worst.as_str(),
                    if self.more > 0 {
                        format!(", {} more to follow", self.more)
                    } else {
                        String::new()
                    }
                )
            }
        }
    }
}

/// The digest id of a set of notice ids (order-independent).
pub fn digest_id(channel: &str, ids: &[String]) -> String {
    let mut sorted: Vec<&String> = ids.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    h.update(channel.as_bytes());
    for id in sorted {
        h.update(b"|");
        h.update(id.as_bytes());
    }
    crate::model::ids::hex(&h.finalize()[..16])
}
