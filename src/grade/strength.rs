//! How strong a key, a key-exchange group or a bulk cipher is, each on one
//! scale the rating can compare.
//!
//! Asymmetric strength is measured in RSA-equivalent bits, the unit of the
//! SSL Labs key-exchange bands. Elliptic-curve sizes map to RSA sizes by the
//! NIST SP 800-57 Part 1 table (security strength 80/112/128/192/256 bits ↔
//! RSA 1024/2048/3072/7680/15360 ↔ EC 160/224/256/384/512), taking the largest
//! row the curve reaches. Symmetric strength is the key size a cipher really
//! gives: 3DES counts as 112 bits (meet-in-the-middle), ChaCha20 as 256 (the
//! registry data says 128, the key is 256 bits).

use crate::model::cert::CertInfo;
use crate::model::record::CipherEntry;

/// RSA-equivalent bits of an elliptic-curve (or Edwards) key of `ec_bits`.
pub fn ec_rsa_equivalent(ec_bits: u32) -> u32 {
    match ec_bits {
        b if b >= 512 => 15360,
        b if b >= 384 => 7680,
        b if b >= 256 => 3072,
        b if b >= 224 => 2048,
        b if b >= 160 => 1024,
        // Below the table: 112-bit curves were broken like RSA-512.
        b if b >= 112 => 512,
        _ => 256,
    }
}

/// A key's strength in RSA-equivalent bits with a description of the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Strength {
    pub rsa_equivalent: u32,
    /// e.g. `RSA 2048-bit certificate key`, `ECDH secp256r1 (≈ RSA 3072)`.
    pub evidence: String,
}

/// The certificate key's strength, when the key type is one we can judge.
pub fn certificate_key(c: &CertInfo) -> Option<Strength> {
    let bits = c.key_size?;
    let (eq, what) = match c.key_algorithm.as_str() {
        "RSA" => (bits, format!("RSA {bits}-bit certificate key")),
        "DSA" => (bits, format!("DSA {bits}-bit certificate key")),
        "EC" => {
            let curve = c.key_curve.clone().unwrap_or_else(|| format!("{bits}-bit curve"));
            let eq = ec_rsa_equivalent(bits);
            (eq, format!("EC {curve} certificate key (≈ RSA {eq})"))
        }
        "Ed25519" | "Ed448" => {
            let eq = ec_rsa_equivalent(bits);
            (eq, format!("{} certificate key (≈ RSA {eq})", c.key_algorithm))
        }
        _ => return None,
    };
    Some(Strength {
        rsa_equivalent: eq,
        evidence: what,
    })
}

/// RSA-equivalent bits of a named key-exchange group. Hybrid post-quantum
/// groups count as their strongest component (that is what a hybrid is for):
/// ML-KEM-512/768/1024 as NIST categories 1/3/5 (≈ RSA 3072/7680/15360).
pub fn group(name: &str) -> Option<u32> {
    let n = name.to_ascii_lowercase();
    if n.contains("mlkem") || n.contains("ml-kem") || n.contains("kyber") {
        return Some(if n.contains("1024") {
            15360
        } else if n.contains("768") {
            7680
        } else {
            3072
        });
    }
    if let Some(bits) = n.strip_prefix("ffdhe").and_then(|b| b.parse::<u32>().ok()) {
        return Some(bits);
    }
    let ec_bits = match n.as_str() {
        "x25519" => 256,
        "x448" => 448,
        "curvesm2" => 256,
        "prime256v1" | "p-256" => 256,
        "p-384" => 384,
        "p-521" => 521,
        _ => {
            // secp256r1, secp384r1, sect571k1, brainpoolP512r1, brainpoolP256r1tls13, GC256A, …
            let rest = ["secp", "sect", "brainpoolp", "gc"]
                .iter()
                .find_map(|p| n.strip_prefix(p))?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()?
        }
    };
    Some(ec_rsa_equivalent(ec_bits))
}

/// What the `kex_info` of a cipher entry says about ephemeral parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KexParams {
    /// Finite-field DH with a prime of this many bits.
    Dh(u32),
    /// (EC)DH over a named group.
    Group(String),
    /// Ephemeral or static (EC)DH whose parameters were not observed.
    Unobserved,
    /// Static RSA, PSK, … : no ephemeral parameters.
    None,
}

/// Read `kex_info` as written by the enumeration: `ECDH x25519`, `DH 2048`,
/// `DH ffdhe2048`, `RSA`, `ECDH`, `DH`.
pub fn kex_params(kex_info: &str) -> KexParams {
    let mut words = kex_info.split_whitespace();
    let kind = words.next().unwrap_or("");
    let param = words.next();
    match (kind, param) {
        ("DH" | "DHE", Some(p)) => match p.parse::<u32>() {
            Ok(bits) => KexParams::Dh(bits),
            Err(_) => KexParams::Group(p.to_string()),
        },
        ("ECDH" | "ECDHE", Some(p)) => KexParams::Group(p.to_string()),
        ("DH" | "DHE" | "ECDH" | "ECDHE", None) => KexParams::Unobserved,
        _ => KexParams::None,
    }
}

/// Symmetric strength in bits as the rating counts it.
pub fn cipher_bits(e: &CipherEntry) -> u16 {
    let enc = e.encryption.to_ascii_uppercase();
    if is_null_encryption(e) {
        0
    } else if enc.starts_with("3DES") {
        112
    } else if enc.starts_with("CHACHA20") {
        256
    } else {
        e.bits
    }
}

pub fn is_null_encryption(e: &CipherEntry) -> bool {
    e.encryption.eq_ignore_ascii_case("NULL") || (e.bits == 0 && !e.encryption.eq_ignore_ascii_case("unknown"))
}

pub fn is_rc4(e: &CipherEntry) -> bool {
    e.encryption.to_ascii_uppercase().starts_with("RC4")
}

/// Block ciphers with 64-bit blocks (SWEET32): 3DES, DES, IDEA, RC2.
pub fn is_64bit_block(e: &CipherEntry) -> bool {
    let enc = e.encryption.to_ascii_uppercase();
    ["3DES", "DES", "IDEA", "RC2"].iter().any(|p| enc.starts_with(p))
}

pub fn is_cbc(e: &CipherEntry) -> bool {
    e.encryption.to_ascii_uppercase().ends_with("-CBC")
}

/// AEAD as the rating means it. The registry data marks AEGIS (an AEAD) with
/// an HMAC, so it is recognised by name here.
pub fn is_aead(e: &CipherEntry) -> bool {
    e.aead || e.encryption.to_ascii_uppercase().starts_with("AEGIS")
}

/// The suite authenticates records with HMAC-MD5.
pub fn has_md5_mac(e: &CipherEntry) -> bool {
    let registry = registry_info(e).map(|i| i.mac);
    registry == Some("HMAC-MD5") || e.name.ends_with("_MD5")
}

/// The IANA registry entry of a TLS suite (SSLv2 cipher kinds, 24-bit, have none).
pub fn registry_info(e: &CipherEntry) -> Option<&'static crate::wire::SuiteInfo> {
    u16::try_from(e.code)
        .ok()
        .and_then(|c| crate::wire::CipherSuite(c).info())
}

/// The entry carries strength data: a registry suite, or an SSLv2 cipher
/// kind the enumeration described. `unknown` is what the enumeration writes
/// for a value it could not name.
pub fn is_known(e: &CipherEntry) -> bool {
    !e.encryption.eq_ignore_ascii_case("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_sizes_map_to_sp800_57_rsa_equivalents() {
        assert_eq!(ec_rsa_equivalent(160), 1024);
        assert_eq!(ec_rsa_equivalent(192), 1024);
        assert_eq!(ec_rsa_equivalent(224), 2048);
        assert_eq!(ec_rsa_equivalent(256), 3072);
        assert_eq!(ec_rsa_equivalent(384), 7680);
        assert_eq!(ec_rsa_equivalent(521), 15360);
        assert_eq!(ec_rsa_equivalent(112), 512);
    }

    #[test]
    fn groups_by_name() {
        assert_eq!(group("x25519"), Some(3072));
        assert_eq!(group("secp256r1"), Some(3072));
        assert_eq!(group("secp384r1"), Some(7680));
        assert_eq!(group("secp521r1"), Some(15360));
        assert_eq!(group("secp192r1"), Some(1024));
        assert_eq!(group("x448"), Some(7680));
        assert_eq!(group("ffdhe2048"), Some(2048));
        assert_eq!(group("brainpoolP256r1"), Some(3072));
        assert_eq!(group("X25519MLKEM768"), Some(7680));
        assert_eq!(group("SecP256r1MLKEM768"), Some(7680));
        assert_eq!(group("MLKEM1024"), Some(15360));
        assert_eq!(group("sect163k1"), Some(1024));
        assert_eq!(group("brainpoolP256r1tls13"), Some(3072));
        assert_eq!(group("GC512A"), Some(15360));
        assert_eq!(group("0x1234"), None);
        assert_eq!(group("mystery"), None);
    }

    #[test]
    fn kex_info_is_read_as_written_by_the_enumeration() {
        assert_eq!(kex_params("DH 1024"), KexParams::Dh(1024));
        assert_eq!(kex_params("ECDH x25519"), KexParams::Group("x25519".into()));
        assert_eq!(kex_params("DH ffdhe3072"), KexParams::Group("ffdhe3072".into()));
        assert_eq!(kex_params("ECDH"), KexParams::Unobserved);
        assert_eq!(kex_params("RSA"), KexParams::None);
    }
}
