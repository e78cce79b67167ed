//! What the probes saw beside the handshake and the enumeration: the HTTP
//! response head and the active vulnerability probes' answers. Probes
//! produce these and `grade` judges them, so they live below both.

use serde::{Deserialize, Serialize};
/// Results of the active vulnerability probes: `None` = not tested,
/// `Some(true)` = vulnerable, `Some(false)` = tested and not vulnerable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vulnerabilities {
    pub heartbleed: Option<bool>,
    pub ccs_injection: Option<bool>,
    pub ticketbleed: Option<bool>,
    pub robot: Option<bool>,
    /// Client-initiated renegotiation without RFC 5746 protection accepted.
    pub insecure_renegotiation: Option<bool>,
}

/// The answer to the HTTP probe's request, as received.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpHeaders {
    pub status: u16,
    /// In the order received; names as sent (compared case-insensitively).
    pub headers: Vec<(String, String)>,
}

impl HttpHeaders {
    /// Every value of header `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn first(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
