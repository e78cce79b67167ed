//! The scan's use of [`crate::probe::extras`]: which versions to probe, and
//! the record fields the answers fill. Implicit TLS only (the extras'
//! rustls handshakes do not run the STARTTLS dialogue).

use std::net::SocketAddr;

use crate::discover::targets::Target;
use crate::model::record::EndpointRecord;
use crate::probe::enumerate::{Enumeration, strategy::Version};
use crate::probe::extras::{self, Extras, ExtrasConfig, Spoken};
use crate::scan::ScanOptions;

/// Run the extras when asked, on what the enumeration (or the handshake) showed.
pub(super) async fn probe(
    opts: &ScanOptions,
    target: &Target,
    record: &EndpointRecord,
    e: Option<&Enumeration>,
) -> Option<Extras> {
    if !opts.tls_extras || !opts.certificates {
        return None;
    }
    let spoken = match e {
        Some(e) if !e.stalled => Spoken {
            tls12: e.supports(Version::Tls12),
            tls13: e.supports(Version::Tls13),
        },
        Some(_) => return None,
        None => {
            let p = record.handshake.as_ref().and_then(|h| h.protocol.as_deref());
            Spoken {
                tls12: p == Some("TLSv1.2"),
                tls13: p == Some("TLSv1.3"),
            }
        }
    };
    if !spoken.tls12 && !spoken.tls13 {
        return None;
    }
    let cfg = ExtrasConfig {
        deadline: opts.handshake_timeout,
        per_host: opts.per_host,
        ..ExtrasConfig::default()
    };
    let addr = SocketAddr::new(target.addr, target.port);
    Some(extras::probe(addr, target.hostname.as_deref(), spoken, &cfg).await)
}

/// Copy what the extras found into the record.
pub(super) fn apply(record: &mut EndpointRecord, x: Extras) {
    record.client_auth = x.client_auth;
    record.resumption = x.resumption;
    record.tls13 = x.tls13;
    record.certificate_deployments = x.deployments;
}
