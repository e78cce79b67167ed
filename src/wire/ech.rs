//! Encrypted Client Hello configurations (RFC 9849 §4), the bytes behind an
//! HTTPS record's `ech` parameter and a server's `retry_configs`.
//!
//! The probe offers ECH under a configuration the server cannot know (see
//! [`made_up_config_list`]); a server that supports ECH then completes the
//! outer handshake and sends its real configurations as `retry_configs` in
//! EncryptedExtensions. This module encodes the made-up list and decodes
//! what comes back, so the public name, config ids and HPKE suites can be
//! reported. Pure, and bounded by the input: a list is at most 65535 bytes.

use super::codec::{Reader, WireError, put_u8, put_u16};

/// The ECHConfig version of RFC 9849 (draft-ietf-tls-esni-13 onward).
pub const ECH_VERSION: u16 = 0xfe0d;

/// One ECHConfig as the server sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchConfig {
    pub version: u16,
    pub config_id: u8,
    /// HPKE KEM id (0x0020: DHKEM(X25519, HKDF-SHA256)).
    pub kem_id: u16,
    pub public_key: Vec<u8>,
    /// (KDF id, AEAD id) pairs the server accepts.
    pub cipher_suites: Vec<(u16, u16)>,
    pub maximum_name_length: u8,
    /// The name a client puts in the outer ClientHello's SNI.
    pub public_name: String,
    /// Extension types in the config.
    pub extensions: Vec<u16>,
}

/// A config of a version this module does not read: kept so a list mixing
/// versions still yields the ones it can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EchConfigEntry {
    Known(EchConfig),
    Unknown { version: u16, len: usize },
}

/// Decode an ECHConfigList (`ECHConfig ECHConfigList<4..2^16-1>`), the
/// two-byte length included.
pub fn parse_config_list(bytes: &[u8]) -> Result<Vec<EchConfigEntry>, WireError> {
    let mut outer = Reader::complete(bytes, "ECHConfigList");
    let mut list = outer.sub_u16("ECHConfigList")?;
    outer.expect_end()?;
    if !list.any_left() {
        return Err(WireError::Empty("ECHConfigList"));
    }
    let mut out = Vec::new();
    while list.any_left() {
        let version = list.u16()?;
        let mut body = list.sub_u16("ECHConfig")?;
        if version != ECH_VERSION {
            out.push(EchConfigEntry::Unknown {
                version,
                len: body.rest().len(),
            });
            continue;
        }
        out.push(EchConfigEntry::Known(parse_contents(version, &mut body)?));
    }
    Ok(out)
}

fn parse_contents(version: u16, r: &mut Reader<'_>) -> Result<EchConfig, WireError> {
    let config_id = r.u8()?;
    let kem_id = r.u16()?;
    let public_key = r.sub_u16("ECH public key")?.rest().to_vec();
    if public_key.is_empty() {
        return Err(WireError::Empty("ECH public key"));
    }
    let mut suites = r.sub_u16("ECH cipher suites")?;
    if suites.left() == 0 || suites.left() % 4 != 0 {
        return Err(WireError::Invalid("ECH cipher suites length"));
    }
    let mut cipher_suites = Vec::new();
    while suites.any_left() {
        cipher_suites.push((suites.u16()?, suites.u16()?));
    }
    let maximum_name_length = r.u8()?;
    let name = r.sub_u8("ECH public name")?.rest();
    let public_name = public_name(name)?;
    let mut exts = r.sub_u16("ECH extensions")?;
    let mut extensions = Vec::new();
    while exts.any_left() {
        extensions.push(exts.u16()?);
        exts.sub_u16("ECH extension")?;
    }
    r.expect_end()?;
    Ok(EchConfig {
        version,
        config_id,
        kem_id,
        public_key,
        cipher_suites,
        maximum_name_length,
        public_name,
        extensions,
    })
}

/// RFC 9849 §4: a non-empty DNS name (LDH labels separated by dots). IP
/// addresses are not allowed, but a server sending one is reported as is.
fn public_name(name: &[u8]) -> Result<String, WireError> {
    if name.is_empty() {
        return Err(WireError::Empty("ECH public name"));
    }
    let ok = name
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.');
    if !ok {
        return Err(WireError::Invalid("ECH public name"));
    }
    Ok(String::from_utf8_lossy(name).into_owned())
}

/// Encode one ECHConfig (version 0xfe0d) as a one-entry ECHConfigList.
pub fn encode_config_list(c: &EchConfig) -> Vec<u8> {
    let mut body = Vec::new();
    put_u8(&mut body, c.config_id);
    put_u16(&mut body, c.kem_id);
    put_u16(&mut body, len16(c.public_key.len()));
    body.extend_from_slice(&c.public_key);
    put_u16(&mut body, len16(c.cipher_suites.len() * 4));
    for (kdf, aead) in &c.cipher_suites {
        put_u16(&mut body, *kdf);
        put_u16(&mut body, *aead);
    }
    put_u8(&mut body, c.maximum_name_length);
    let name = c.public_name.as_bytes();
    put_u8(&mut body, u8::try_from(name.len()).unwrap_or(u8::MAX));
    body.extend_from_slice(&name[..name.len().min(255)]);
    put_u16(&mut body, 0); // no extensions
    let mut config = Vec::new();
    put_u16(&mut config, c.version);
    put_u16(&mut config, len16(body.len()));
    config.extend_from_slice(&body);
    let mut list = Vec::new();
    put_u16(&mut list, len16(config.len()));
    list.extend_from_slice(&config);
    list
}

fn len16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// A configuration no server holds: DHKEM(X25519, HKDF-SHA256) with
/// `public_key` (32 bytes, any value is a valid X25519 key), HKDF-SHA256 and
/// AES-128-GCM, `config_id`, and `public_name` for the outer SNI. Offered
/// with it, a server that supports ECH cannot decrypt the inner hello and
/// answers the outer one with its retry configs.
pub fn made_up_config_list(config_id: u8, public_key: [u8; 32], public_name: &str) -> Vec<u8> {
    encode_config_list(&EchConfig {
        version: ECH_VERSION,
        config_id,
        kem_id: 0x0020,
        public_key: public_key.to_vec(),
        cipher_suites: vec![(0x0001, 0x0001)],
        maximum_name_length: 0,
        public_name: public_name.to_string(),
        extensions: Vec::new(),
    })
}

/// HPKE KEM names (RFC 9180 §7.1).
pub fn kem_name(id: u16) -> String {
    match id {
        0x0010 => "DHKEM(P-256, HKDF-SHA256)".into(),
        0x0011 => "DHKEM(P-384, HKDF-SHA384)".into(),
        0x0012 => "DHKEM(P-521, HKDF-SHA512)".into(),
        0x0020 => "DHKEM(X25519, HKDF-SHA256)".into(),
        0x0021 => "DHKEM(X448, HKDF-SHA512)".into(),
        other => format!("KEM {other:#06x}"),
    }
}

/// An HPKE (KDF, AEAD) pair as `HKDF-SHA256/AES-128-GCM` (RFC 9180 §7.2, §7.3).
pub fn suite_name((kdf, aead): (u16, u16)) -> String {
    let kdf = match kdf {
        0x0001 => "HKDF-SHA256".to_string(),
        0x0002 => "HKDF-SHA384".to_string(),
        0x0003 => "HKDF-SHA512".to_string(),
        other => format!("KDF {other:#06x}"),
    };
    let aead = match aead {
        0x0001 => "AES-128-GCM".to_string(),
        0x0002 => "AES-256-GCM".to_string(),
        0x0003 => "ChaCha20Poly1305".to_string(),
        0xffff => "export-only".to_string(),
        other => format!("AEAD {other:#06x}"),
    };
    format!("{kdf}/{aead}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BoringSSL's `bssl generate-ech -public-name ech.com -config-id 1`
    /// output (the ECHConfig the boring crate tests with), as a list.
    const BORING: &str = "003efe0d003a00002000 20bb2f29e3e3057e0419d52fc5f44118776f8db61cea4fdf76079b93606c5a6248 0008000100010001000300 07 6563682e636f6d 0000";

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn decodes_a_boringssl_config() {
        let list = parse_config_list(&hex(BORING)).expect("list");
        let [EchConfigEntry::Known(c)] = list.as_slice() else {
            panic!("{list:?}")
        };
        assert_eq!((c.version, c.config_id, c.kem_id), (ECH_VERSION, 0, 0x0020));
        assert_eq!(c.public_key.len(), 32);
        assert_eq!(c.cipher_suites, vec![(1, 1), (1, 3)]);
        assert_eq!(c.public_name, "ech.com");
        assert_eq!(c.maximum_name_length, 0);
        assert!(c.extensions.is_empty());
        assert_eq!(kem_name(c.kem_id), "DHKEM(X25519, HKDF-SHA256)");
        let names: Vec<String> = c.cipher_suites.iter().copied().map(suite_name).collect();
        assert_eq!(names, ["HKDF-SHA256/AES-128-GCM", "HKDF-SHA256/ChaCha20Poly1305"]);
    }

    #[test]
    fn made_up_config_round_trips() {
        let bytes = made_up_config_list(0x42, [7; 32], "public.example");
        let list = parse_config_list(&bytes).expect("list");
        let [EchConfigEntry::Known(c)] = list.as_slice() else {
            panic!("{list:?}")
        };
        assert_eq!(c.config_id, 0x42);
        assert_eq!(c.public_key, vec![7; 32]);
        assert_eq!(c.cipher_suites, vec![(1, 1)]);
        assert_eq!(c.public_name, "public.example");
        assert_eq!(encode_config_list(c), bytes);
    }

    #[test]
    fn unknown_versions_are_skipped_and_known_ones_kept() {
        let known = made_up_config_list(1, [1; 32], "a.test");
        let mut body = vec![0xfe, 0x0a, 0x00, 0x02, 0xaa, 0xbb];
        body.extend_from_slice(&known[2..]);
        let mut list = (body.len() as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&body);
        let parsed = parse_config_list(&list).expect("list");
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed[0],
            EchConfigEntry::Unknown {
                version: 0xfe0a,
                len: 2
            }
        );
        assert!(matches!(&parsed[1], EchConfigEntry::Known(c) if c.public_name == "a.test"));
    }

    #[test]
    fn malformed_lists_are_errors_not_panics() {
        let good = made_up_config_list(1, [1; 32], "a.test");
        assert!(parse_config_list(&[]).is_err());
        assert_eq!(parse_config_list(&[0, 0]), Err(WireError::Empty("ECHConfigList")));
        for cut in 1..good.len() {
            assert!(parse_config_list(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse_config_list(&trailing).is_err());
        // A public name with a byte a DNS name cannot hold.
        let mut bad = good.clone();
        let at = bad.len() - 3;
        bad[at] = b'/';
        assert_eq!(parse_config_list(&bad), Err(WireError::Invalid("ECH public name")));
    }

    #[test]
    fn registry_names() {
        assert_eq!(kem_name(0x0010), "DHKEM(P-256, HKDF-SHA256)");
        assert_eq!(kem_name(0x9999), "KEM 0x9999");
        assert_eq!(suite_name((2, 2)), "HKDF-SHA384/AES-256-GCM");
        assert_eq!(suite_name((9, 9)), "KDF 0x0009/AEAD 0x0009");
    }
}
