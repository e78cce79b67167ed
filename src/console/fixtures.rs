//! Stored endpoints for the console's unit tests, built in memory.

use time::OffsetDateTime;
use time::macros::datetime;

use crate::model::assessment::{Grade, Letter};
use crate::model::cert::CertInfo;
use crate::model::record::{Category, EndpointRecord, Transport};
use crate::model::timestamp::rfc3339;
use crate::store::endpoint::{Key, Stored};

/// The tests' clock.
pub fn now() -> OffsetDateTime {
    datetime!(2026-06-01 12:00 UTC)
}

/// An endpoint of `category`, graded `grade`, whose certificate (when
/// discovered) expires `days` after [`now`].
pub fn endpoint(address: &str, port: u16, category: Category, grade: Option<Letter>, days: i64) -> Stored {
    let Ok(ip) = address.parse() else {
        panic!("test address {address}");
    };
    let mut record = EndpointRecord::new(ip, port, None, category, rfc3339(now()));
    if category == Category::Discovered {
        record.transport = Transport::Tls;
        record.certificate = Some(CertInfo {
            common_name: Some(format!("host-{address}")),
            subject_dn: format!("CN=host-{address}"),
            issuer_dn: "CN=Test CA".into(),
            san: vec![format!("host-{address}"), address.to_string()],
            thumbprint: format!("THUMB-{address}"),
            serial_number: "01".into(),
            valid_from: rfc3339(now() - time::Duration::days(100)),
            valid_to: rfc3339(now() + time::Duration::days(days)),
            key_algorithm: "EC".into(),
            key_size: Some(256),
            signature_algorithm: "ecdsa-with-SHA256".into(),
            ..CertInfo::default()
        });
    }
    record.grade = grade.map(|letter| Grade {
        letter,
        score: 90,
        protocol_score: 100,
        key_exchange_score: 90,
        cipher_score: 90,
        caps: Vec::new(),
        warnings: Vec::new(),
        if_trusted: None,
        notes: Vec::new(),
    });
    let key = Key::of(&record);
    Stored {
        id: key.id(),
        key,
        profile: "lab".into(),
        category,
        first_seen: rfc3339(now() - time::Duration::days(10)),
        last_seen: rfc3339(now()),
        missed_runs: 0,
        gone_at: None,
        tags: vec!["lab".into()],
        record,
    }
}
