//! What both stores keep of an endpoint, and the identity that makes two
//! reports of it one row.

use serde::{Deserialize, Serialize};

use crate::model::record::{Category, EndpointRecord};

/// The identity of an endpoint: (address, port, SNI, reporting sensor).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub address: String,
    pub port: u16,
    pub sni: String,
    /// The sensor that reported it; empty for this sensor's own scans.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sensor: String,
}

impl Key {
    /// The key of one of this sensor's own records.
    pub fn of(r: &EndpointRecord) -> Key {
        Key {
            address: r.address.to_string(),
            port: r.port,
            sni: r.hostname.clone().unwrap_or_default(),
            sensor: String::new(),
        }
    }

    /// A stable identifier for the API: hex of the first 16 bytes of
    /// SHA-256 over the key's parts, so ids survive restarts and merges.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.sensor.as_str(),
            self.address.as_str(),
            &self.port.to_string(),
            self.sni.as_str(),
        ] {
            h.update((part.len() as u32).to_be_bytes());
            h.update(part.as_bytes());
        }
        crate::model::ids::hex(&h.finalize()[..16])
    }
}

/// One stored endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// [`Key::id`].
    pub id: String,
    pub key: Key,
    pub profile: String,
    pub category: Category,
    pub first_seen: String,
    pub last_seen: String,
    /// Consecutive runs of its profile that did not see it.
    pub missed_runs: u32,
    /// When it was reported gone (still kept, until seen again).
    pub gone_at: Option<String>,
    pub tags: Vec<String>,
    pub record: EndpointRecord,
}
