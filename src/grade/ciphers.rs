//! Per-suite classification: `safe`, `weak` or `insecure`, with the seed's
//! `unsafe` flag (1 for insecure only).
//!
//! The rules (also in `docs/grading.md`), first match wins:
//!
//! **insecure** — no confidentiality or integrity worth the name:
//! NULL encryption; anonymous key exchange (no server authentication);
//! export grade; RC4; under 112 bits of symmetric strength (DES, RC2, the
//! 40/56-bit suites); an HMAC-MD5 record MAC; finite-field DH under 1024 bits
//! (Logjam).
//!
//! **weak** — works today but falls short of current practice (SSL Labs marks
//! these WEAK, testssl.sh lists them as not recommended): no forward secrecy
//! (static RSA, static (EC)DH, plain PSK); CBC mode (the padding-oracle family:
//! Lucky 13, BEAST on TLS 1.0, POODLE on SSLv3); a 64-bit block cipher (3DES,
//! IDEA: SWEET32); DH parameters under 2048 bits; an ECDH group under 224
//! bits; a suite the registry does not know.
//!
//! **safe** — everything else: an AEAD (GCM, CCM, ChaCha20-Poly1305, AEGIS)
//! with forward secrecy and at least 128 bits, which is every TLS 1.3 suite
//! except the integrity-only ones (RFC 9150, NULL encryption: insecure).

use super::strength::{self, KexParams};
pub use crate::model::assessment::{CipherClass, ClassifiedCipher, ClassifiedProtocol};
use crate::model::record::{CipherEntry, ProtocolCiphers};

/// Class one suite.
pub fn classify(e: &CipherEntry) -> ClassifiedCipher {
    let mut insecure = Vec::new();
    let mut weak = Vec::new();
    let bits = strength::cipher_bits(e);
    let unknown = !strength::is_known(e);
    if strength::is_null_encryption(e) {
        insecure.push("NULL encryption".to_string());
    }
    if e.anonymous {
        insecure.push("anonymous key exchange (no server authentication)".to_string());
    }
    if e.export {
        insecure.push("export grade".to_string());
    }
    if strength::is_rc4(e) {
        insecure.push("RC4".to_string());
    }
    if bits > 0 && bits < 112 {
        insecure.push(format!("{bits}-bit encryption"));
    }
    if strength::has_md5_mac(e) {
        insecure.push("HMAC-MD5 record MAC".to_string());
    }
    match strength::kex_params(&e.kex_info) {
        KexParams::Dh(b) if b < 1024 => insecure.push(format!("DH {b}-bit parameters (Logjam)")),
        KexParams::Dh(b) if b < 2048 => weak.push(format!("DH {b}-bit parameters")),
        KexParams::Group(g) => match strength::group(&g) {
            Some(eq) if eq < 1024 => insecure.push(format!("key-exchange group {g} (≈ RSA {eq})")),
            Some(eq) if eq < 2048 => weak.push(format!("key-exchange group {g} (≈ RSA {eq})")),
            _ => {}
        },
        _ => {}
    }
    if !e.forward_secrecy {
        weak.push("no forward secrecy".to_string());
    }
    if strength::is_cbc(e) {
        weak.push("CBC mode".to_string());
    }
    if strength::is_64bit_block(e) {
        weak.push("64-bit block cipher (SWEET32)".to_string());
    }
    if unknown {
        weak.push("suite not in the IANA registry".to_string());
    }
    let class = if !insecure.is_empty() {
        CipherClass::Insecure
    } else if !weak.is_empty() {
        CipherClass::Weak
    } else {
        CipherClass::Safe
    };
    insecure.extend(weak);
    ClassifiedCipher {
        code: e.code,
        name: e.name.clone(),
        kex_info: e.kex_info.clone(),
        forward_secrecy: e.forward_secrecy,
        class,
        unsafe_flag: u8::from(class == CipherClass::Insecure),
        reasons: insecure,
    }
}

/// Class every suite of every protocol the enumeration found.
pub fn classify_all(protocols: &[ProtocolCiphers]) -> Vec<ClassifiedProtocol> {
    protocols
        .iter()
        .map(|p| ClassifiedProtocol {
            protocol: p.protocol.clone(),
            cipher_pref_order: p.cipher_pref_order.clone(),
            compressors: p.compressors.clone(),
            ciphers: p.ciphers.iter().map(classify).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::cipher_entry;
    use crate::wire::CipherSuite;

    fn class_of(code: u16, kex: Option<&str>) -> ClassifiedCipher {
        classify(&cipher_entry(CipherSuite(code), kex))
    }

    #[test]
    fn ecdhe_aead_and_tls13_suites_are_safe() {
        for (code, kex) in [
            (0xc02f, "ECDH x25519"),
            (0x1301, "ECDH x25519"),
            (0xcca8, "ECDH secp256r1"),
        ] {
            let c = class_of(code, Some(kex));
            assert_eq!((c.class, c.unsafe_flag), (CipherClass::Safe, 0), "{c:?}");
            assert!(c.reasons.is_empty());
        }
        let c = class_of(0x009e, Some("DH 2048"));
        assert_eq!(c.class, CipherClass::Safe, "DHE-RSA-AES128-GCM with 2048-bit DH");
    }

    #[test]
    fn cbc_and_static_rsa_are_weak_not_unsafe() {
        let c = class_of(0xc013, Some("ECDH x25519"));
        assert_eq!((c.class, c.unsafe_flag), (CipherClass::Weak, 0));
        assert_eq!(c.reasons, ["CBC mode"]);
        let c = class_of(0x009c, None);
        assert_eq!(c.class, CipherClass::Weak);
        assert_eq!(c.reasons, ["no forward secrecy"]);
        let c = class_of(0x000a, None);
        assert_eq!(c.class, CipherClass::Weak, "3DES is 112 bits: weak, not insecure");
        assert!(
            c.reasons.contains(&"64-bit block cipher (SWEET32)".to_string()),
            "{c:?}"
        );
    }

    #[test]
    fn small_dh_is_weak_and_tiny_dh_insecure() {
        let c = class_of(0x009e, Some("DH 1024"));
        assert_eq!(c.class, CipherClass::Weak);
        assert_eq!(c.reasons, ["DH 1024-bit parameters"]);
        let c = class_of(0x009e, Some("DH 768"));
        assert_eq!((c.class, c.unsafe_flag), (CipherClass::Insecure, 1));
        assert_eq!(c.reasons, ["DH 768-bit parameters (Logjam)"]);
        let c = class_of(0xc02f, Some("ECDH secp192r1"));
        assert_eq!(c.class, CipherClass::Weak);
    }

    #[test]
    fn null_anon_export_rc4_des_md5_are_insecure() {
        let cases: [(u16, &str); 7] = [
            (0x0002, "NULL encryption"),
            (0x0034, "anonymous key exchange (no server authentication)"),
            (0x0008, "export grade"),
            (0x0005, "RC4"),
            (0x0009, "56-bit encryption"),
            (0x0004, "HMAC-MD5 record MAC"),
            (0xc0b4, "NULL encryption"),
        ];
        for (code, reason) in cases {
            let c = class_of(code, None);
            assert_eq!((c.class, c.unsafe_flag), (CipherClass::Insecure, 1), "{c:?}");
            assert!(c.reasons.iter().any(|r| r == reason), "{code:#06x}: {:?}", c.reasons);
        }
    }

    #[test]
    fn unknown_suites_are_weak() {
        let c = class_of(0xfefe, None);
        assert_eq!(c.class, CipherClass::Weak);
        assert!(c.reasons.contains(&"suite not in the IANA registry".to_string()));
    }

    #[test]
    fn sslv2_cipher_kinds_are_insecure() {
        let e = CipherEntry {
            code: 0x010080,
            name: "SSL_CK_RC4_128_WITH_MD5".into(),
            kex_info: "RSA".into(),
            forward_secrecy: false,
            bits: 128,
            export: false,
            anonymous: false,
            aead: false,
            encryption: "RC4".into(),
        };
        let c = classify(&e);
        assert_eq!((c.class, c.unsafe_flag, c.code), (CipherClass::Insecure, 1, 0x010080));
        assert!(
            c.reasons.contains(&"HMAC-MD5 record MAC".to_string()),
            "{:?}",
            c.reasons
        );
        assert!(!c.reasons.contains(&"suite not in the IANA registry".to_string()));
    }
}
