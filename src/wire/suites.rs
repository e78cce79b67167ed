//! The IANA cipher-suite registry, kept as data (`ciphersuites.txt`).
//!
//! rustls knows nine suites; a scanner has to name every value a server may
//! pick, including export, NULL, anonymous, RC4 and the rest, so the catalogue
//! is the full registry rather than what any TLS library implements.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

/// A cipher suite as it appears on the wire: any 16-bit value, known or not.
///
/// A server may answer with a value we have never heard of; it stays a value
/// and prints as hex instead of being lost.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CipherSuite(pub u16);

impl CipherSuite {
    /// The registry entry for this value, if IANA assigned it.
    pub fn info(self) -> Option<&'static SuiteInfo> {
        CATALOGUE.by_id.get(&self.0).map(|&i| &CATALOGUE.suites[i])
    }

    /// The IANA name, or `UNKNOWN_0xABCD` for an unassigned value.
    pub fn name(self) -> String {
        match self.info() {
            Some(info) => info.name.to_string(),
            None => format!("UNKNOWN_{:#06X}", self.0).replace("0X", "0x"),
        }
    }
}

impl fmt::Debug for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.info() {
            Some(info) => write!(f, "{}", info.name),
            None => write!(f, "CipherSuite({:#06x})", self.0),
        }
    }
}

/// One registry entry: how the suite exchanges keys, authenticates and encrypts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuiteInfo {
    pub id: u16,
    pub name: &'static str,
    /// Key exchange as in the registry: `RSA`, `DHE`, `ECDHE`, `DH`, `ECDH`, `PSK`, `TLS13`, …
    pub kx: &'static str,
    /// Authentication: `RSA`, `ECDSA`, `DSS`, `NULL` (anonymous), `PSK`, `TLS13`, …
    pub auth: &'static str,
    /// Bulk cipher: `AES`, `CHACHA20_POLY1305`, `3DES`, `RC4`, `NULL`, …
    pub enc: &'static str,
    /// Cipher mode: `CBC`, `GCM`, `CCM`, or empty for stream ciphers and NULL.
    pub mode: &'static str,
    /// Symmetric key strength in bits (0 for NULL encryption).
    pub bits: u16,
    /// `AEAD`, `HMAC-SHA1`, `HMAC-SHA256`, `HMAC-MD5`, …
    pub mac: &'static str,
    /// An export-grade suite (40/56-bit) from the 1990s US rules.
    pub export: bool,
}

impl SuiteInfo {
    /// TLS 1.3 suites are negotiated only in TLS 1.3 and never before it.
    pub fn is_tls13(&self) -> bool {
        self.kx == "TLS13"
    }

    /// Signalling values (SCSVs) are not suites a server can choose.
    pub fn is_signalling(&self) -> bool {
        self.name.ends_with("_SCSV")
    }

    /// The key exchange provides forward secrecy (ephemeral DH or ECDH).
    pub fn forward_secrecy(&self) -> bool {
        matches!(self.kx, "DHE" | "ECDHE" | "TLS13")
    }

    /// No authentication of the server at all (anonymous DH/ECDH).
    pub fn anonymous(&self) -> bool {
        self.auth == "NULL" && self.kx != "NULL"
    }

    pub fn aead(&self) -> bool {
        self.mac == "AEAD"
    }
}

struct Catalogue {
    suites: Vec<SuiteInfo>,
    by_id: HashMap<u16, usize>,
}

const DATA: &str = include_str!("ciphersuites.txt");

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    let suites: Vec<SuiteInfo> = DATA.lines().filter_map(parse_line).collect();
    let by_id = suites.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
    Catalogue { suites, by_id }
});

/// Every assigned suite, in registry order.
pub fn all() -> &'static [SuiteInfo] {
    &CATALOGUE.suites
}

fn parse_line(line: &'static str) -> Option<SuiteInfo> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let f: Vec<&'static str> = line.split(':').collect();
    if f.len() != 15 {
        return None;
    }
    Some(SuiteInfo {
        id: u16::from_str_radix(f[0], 16).ok()?,
        name: f[1],
        kx: f[2],
        auth: f[3],
        enc: f[4],
        mode: f[5],
        bits: f[6].parse().ok()?,
        mac: f[7],
        export: f[12] == "1",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_line_parses() {
        let data_lines = DATA
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        assert_eq!(all().len(), data_lines);
        assert!(all().len() > 340, "registry has {} entries", all().len());
    }

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<u16> = all().iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), all().len());
    }

    #[test]
    fn knows_modern_and_legacy_suites() {
        let s = CipherSuite(0x1302).info().unwrap();
        assert_eq!(s.name, "TLS_AES_256_GCM_SHA384");
        assert!(s.is_tls13() && s.aead() && s.forward_secrecy());
        let s = CipherSuite(0xc02f).info().unwrap();
        assert_eq!(s.name, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        assert_eq!((s.kx, s.auth, s.bits), ("ECDHE", "RSA", 128));
        let s = CipherSuite(0x0003).info().unwrap();
        assert!(s.export);
        assert_eq!(s.bits, 40);
        let s = CipherSuite(0x0018).info().unwrap();
        assert_eq!(s.name, "TLS_DH_anon_WITH_RC4_128_MD5");
        assert!(s.anonymous());
        assert!(CipherSuite(0x00ff).info().unwrap().is_signalling());
    }

    #[test]
    fn unknown_values_stay_values() {
        assert!(CipherSuite(0xfefe).info().is_none());
        assert_eq!(CipherSuite(0xfefe).name(), "UNKNOWN_0xFEFE");
        assert_eq!(format!("{:?}", CipherSuite(0xfefe)), "CipherSuite(0xfefe)");
    }
}
