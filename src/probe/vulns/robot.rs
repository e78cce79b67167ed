//! ROBOT: a Bleichenbacher padding oracle on static-RSA key exchange
//! (Böck, Somorovsky, Young, 2017; CVE-2017-13099 and the vendor CVEs).
//!
//! With RSA key transport the client encrypts the premaster secret to the
//! server's certificate key (PKCS#1 v1.5). A server that answers differently
//! when the decrypted block is not `00 02 … 00 <version> <46 bytes>` lets an
//! attacker decrypt recorded sessions or sign with its key, one adaptive
//! query at a time.
//!
//! The check is sslyze's (after the ROBOT authors' robot-detect): on one
//! connection per variant, a ClientHello offering only the static-RSA suites
//! the server accepts (GCM first: some servers leak only there), its flight
//! to ServerHelloDone, then a ClientKeyExchange carrying one of five
//! premaster blocks encrypted to the key in the server's certificate,
//! followed by ChangeCipherSpec and a garbage Finished:
//!
//! | variant | block |
//! |---|---|
//! | correct | `00 02 pad 00 ver pms` |
//! | wrong first bytes | `41 17 pad 00 ver pms` |
//! | 0x00 in the wrong place | `00 02 pad 11 pms 00 11` (the 0x00 is next to last) |
//! | no 0x00 separator | `00 02 pad 11 11 11 pms` |
//! | wrong version | `00 02 pad 00 02 02 pms` |
//!
//! Every answer (first alert and what followed it, a close, a reset,
//! silence) is kept as text. A server without an oracle answers all five
//! alike — it cannot tell them apart before the Finished fails, because it
//! substitutes a random premaster secret on any padding error (RFC 5246
//! §7.4.7.1): not vulnerable. Different answers are re-run once; the same
//! differences again make an oracle (strong when the three malformed-padding
//! variants are not all answered alike, weak otherwise, as sslyze grades
//! it): vulnerable. Answers that change between the runs are inconclusive.
//!
//! RSA encryption is the one piece of arithmetic here: `m^e mod n` with the
//! public exponent, on public data. `num-bigint` does it: it is already in
//! the dependency tree (x509-parser → der-parser), pure Rust, no `unsafe`,
//! and needs no feature; nothing secret passes through it, so constant time
//! does not matter.

use num_bigint::BigUint;
use tokio::time::Instant;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::probe::enumerate::Enumeration;
use crate::wire::record::encode_records;
use crate::wire::{CipherSuite, ContentType, Event, HandshakeMessage, HandshakeType, ProtocolVersion};

use super::conversation::{Conversation, Reply, describe_alert};
use super::{Target, Verdict, VulnConfig, legacy_offer, ms};

/// The five premaster blocks sslyze sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    Correct,
    WrongFirstBytes,
    WrongZeroPosition,
    NoZero,
    WrongVersion,
}

impl Padding {
    pub const ALL: [Padding; 5] = [
        Padding::Correct,
        Padding::WrongFirstBytes,
        Padding::WrongZeroPosition,
        Padding::NoZero,
        Padding::WrongVersion,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Padding::Correct => "correct padding",
            Padding::WrongFirstBytes => "wrong first bytes (41 17)",
            Padding::WrongZeroPosition => "0x00 in the wrong position",
            Padding::NoZero => "no 0x00 separator",
            Padding::WrongVersion => "wrong version (02 02)",
        }
    }
}

/// Length of the premaster secret after its 2-byte version.
const PMS_TAIL: usize = 46;
/// The smallest modulus worked with (512 bits).
const MIN_MODULUS: usize = 64;

/// Static RSA key transport: RSA key exchange with RSA authentication, not
/// export (export suites encrypt to a temporary key) and not RSA_PSK.
pub(crate) fn is_static_rsa(s: CipherSuite) -> bool {
    s.info().is_some_and(|i| i.kx == "RSA" && i.auth == "RSA" && !i.export)
}

/// The premaster block of `k` bytes (the modulus length) for `variant`;
/// `version` is the ClientHello's client_version. `None` when `k` is too
/// small for PKCS#1 v1.5 with a 48-byte secret.
pub fn premaster_block(variant: Padding, k: usize, version: ProtocolVersion) -> Option<Vec<u8>> {
    if k < MIN_MODULUS {
        return None;
    }
    // Non-zero filler: PKCS#1 padding must not contain 0x00, and neither may
    // the secret, or the "no separator" variants would get one.
    let pad: Vec<u8> = (0..k - 48 - 3).map(|i| 0x80 | (i as u8 & 0x7f) | 1).collect();
    let pms: Vec<u8> = (0..PMS_TAIL).map(|i| 0x21 + (i as u8 % 90)).collect();
    let v = version.0.to_be_bytes();
    let block: Vec<u8> = match variant {
        Padding::Correct => [&[0, 2][..], &pad, &[0], &v, &pms].concat(),
        Padding::WrongFirstBytes => [&[0x41, 0x17][..], &pad, &[0], &v, &pms].concat(),
        Padding::WrongZeroPosition => [&[0, 2][..], &pad, &[0x11], &pms, &[0, 0x11]].concat(),
        Padding::NoZero => [&[0, 2][..], &pad, &[0x11, 0x11, 0x11], &pms].concat(),
        Padding::WrongVersion => [&[0, 2][..], &pad, &[0, 2, 2], &pms].concat(),
    };
    debug_assert_eq!(block.len(), k);
    Some(block)
}

/// `m^e mod n`, big-endian, left-padded to the modulus length.
pub fn rsa_encrypt(m: &[u8], n: &[u8], e: &[u8]) -> Vec<u8> {
    let n_int = BigUint::from_bytes_be(n);
    let k = strip_zeros(n).len();
    let c = BigUint::from_bytes_be(m).modpow(&BigUint::from_bytes_be(e), &n_int);
    let bytes = c.to_bytes_be();
    let mut out = vec![0u8; k.saturating_sub(bytes.len())];
    out.extend_from_slice(&bytes);
    out
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or_default()
}

/// The largest modulus worked with (16384 bits) and the largest public
/// exponent (64 bits; real keys use 65537). The server picks both, and a
/// hostile certificate with a huge exponent would otherwise cost hours of
/// modular exponentiation.
const MAX_MODULUS: usize = 2048;
const MAX_EXPONENT: usize = 8;

/// `(modulus, exponent)` of an RSA certificate key.
pub(crate) fn rsa_public_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("the server's certificate: {e}"))?;
    let Ok(PublicKey::RSA(rsa)) = cert.public_key().parsed() else {
        return Err("the server's certificate has no RSA key".into());
    };
    let (n, e) = (strip_zeros(rsa.modulus), strip_zeros(rsa.exponent));
    if n.len() > MAX_MODULUS || e.len() > MAX_EXPONENT || e.is_empty() {
        return Err(format!(
            "the server's RSA key is out of range ({}-byte modulus, {}-byte exponent)",
            n.len(),
            e.len()
        ));
    }
    Ok((n.to_vec(), e.to_vec()))
}

/// ClientKeyExchange with `ciphertext`, ChangeCipherSpec, and an 80-byte
/// "Finished" of filler that no key decrypts.
pub(crate) fn key_exchange_records(version: ProtocolVersion, ciphertext: &[u8]) -> Vec<u8> {
    // SSLv3 sends the encrypted secret bare; TLS prefixes its length.
    let mut body = Vec::with_capacity(ciphertext.len() + 2);
    if version > ProtocolVersion::SSLv3 {
        body.extend_from_slice(&(ciphertext.len() as u16).to_be_bytes());
    }
    body.extend_from_slice(ciphertext);
    let mut out = HandshakeMessage {
        typ: HandshakeType::ClientKeyExchange,
        body,
    }
    .to_records(version);
    encode_records(ContentType::ChangeCipherSpec, version, &[1], &mut out);
    let finished: Vec<u8> = (0..80u32)
        .map(|i| (i.wrapping_mul(37).wrapping_add(11)) as u8)
        .collect();
    encode_records(ContentType::Handshake, version, &finished, &mut out);
    out
}

pub(super) async fn check(t: &Target, e: &Enumeration, cfg: &VulnConfig) -> Verdict {
    if e.versions.is_empty() {
        return Verdict::untested("the enumeration found no protocol version the server accepts".into(), 0);
    }
    let Some((version, mut suites)) = legacy_offer(e, true, is_static_rsa) else {
        return Verdict::safe(
            "the server accepts no static-RSA key exchange (RSA key transport), so there is no \
             PKCS#1 v1.5 decryption to act as an oracle"
                .into(),
            0,
        );
    };
    suites.sort_by_key(|s| s.info().is_none_or(|i| i.mode != "GCM"));
    let deadline = Instant::now() + cfg.robot_deadline;
    let mut connections = 0;
    let first = match round(t, cfg, version, &suites, deadline, &mut connections).await {
        Ok(r) => r,
        Err(why) => return Verdict::untested(why, connections),
    };
    let offered = format!(
        "{version} ClientKeyExchange with {} premaster paddings ({})",
        Padding::ALL.len(),
        suites.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
    );
    if first.iter().all(|a| *a == first[0]) {
        return Verdict::safe(
            format!("{offered} were all answered alike ({}): no oracle", first[0]),
            connections,
        );
    }
    let second = match round(t, cfg, version, &suites, deadline, &mut connections).await {
        Ok(r) => r,
        Err(why) => {
            return Verdict::inconclusive(
                format!(
                    "{offered} drew different answers ({}), and the re-run failed: {why}",
                    table(&first)
                ),
                connections,
            );
        }
    };
    if first != second {
        return Verdict::inconclusive(
            format!(
                "{offered} drew answers that changed between two runs (first: {}; second: {})",
                table(&first),
                table(&second)
            ),
            connections,
        );
    }
    // sslyze: when the three malformed-padding variants are answered alike,
    // only a well-formed block stands out, and the oracle is weak.
    let strength = match first[1] == first[2] && first[2] == first[3] {
        true => "weak oracle",
        false => "strong oracle",
    };
    Verdict::vulnerable(
        format!(
            "{offered} drew distinguishable answers, the same in two runs ({strength}): {} (ROBOT)",
            table(&first)
        ),
        connections,
    )
}

fn table(answers: &[String; 5]) -> String {
    Padding::ALL
        .iter()
        .zip(answers)
        .map(|(p, a)| format!("{} → {a}", p.name()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One connection per variant; `Err` when the exchange could not be made.
async fn round(
    t: &Target,
    cfg: &VulnConfig,
    version: ProtocolVersion,
    suites: &[CipherSuite],
    deadline: Instant,
    connections: &mut usize,
) -> Result<[String; 5], String> {
    let mut out: [String; 5] = Default::default();
    for (slot, variant) in out.iter_mut().zip(Padding::ALL) {
        if Instant::now() >= deadline {
            return Err(format!("the ROBOT deadline ({} ms) passed", ms(cfg.robot_deadline)));
        }
        let conn_deadline = (Instant::now() + cfg.deadline).min(deadline);
        *slot = one(t, cfg, version, suites, variant, conn_deadline, connections).await?;
    }
    Ok(out)
}

async fn one(
    t: &Target,
    cfg: &VulnConfig,
    version: ProtocolVersion,
    suites: &[CipherSuite],
    variant: Padding,
    deadline: Instant,
    connections: &mut usize,
) -> Result<String, String> {
    let hello = t
        .builder(version)
        .cipher_suites(suites.iter().copied())
        .build()
        .map_err(|e| format!("cannot build the ClientHello: {e}"))?;
    let mut conv = Conversation::open(t, deadline).await?;
    *connections += 1;
    let flight = conv.hello(&hello).await?;
    let chosen = flight.server_hello.cipher_suite;
    if !is_static_rsa(chosen) {
        return Err(format!("the server chose {}, not a static-RSA suite", chosen.name()));
    }
    if flight.certificate_request {
        return Err("the server asks for a client certificate; the oracle needs a handshake without one".into());
    }
    let leaf = flight.chain.first().ok_or("the server's flight has no certificate")?;
    let (n, e) = rsa_public_key(leaf)?;
    let block = premaster_block(variant, n.len(), version)
        .ok_or_else(|| format!("the RSA modulus ({} bytes) is too small", n.len()))?;
    conv.send(&key_exchange_records(flight.version(), &rsa_encrypt(&block, &n, &e)))
        .await?;
    Ok(answer(&mut conv, cfg).await)
}

/// The server's answer to the key exchange: its first alert and what
/// followed (close, reset, silence), or how the connection ended.
async fn answer(conv: &mut Conversation, cfg: &VulnConfig) -> String {
    match conv.next(Instant::now() + cfg.reply_wait).await {
        Reply::Event(Event::Alert(a)) => {
            let after = conv
                .next(Instant::now() + cfg.reply_wait.min(std::time::Duration::from_secs(1)))
                .await;
            let then = match after {
                Reply::Closed => "then closed".to_string(),
                Reply::Reset => "then reset".to_string(),
                Reply::Timeout => "then silent".to_string(),
                other => format!("then {}", other.describe()),
            };
            format!("{}, {then}", describe_alert(&a))
        }
        Reply::Timeout => format!("no answer within {} ms", ms(cfg.reply_wait)),
        other => other.describe(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premaster_blocks_have_the_sslyze_shapes() {
        let k = 256;
        let v = ProtocolVersion::TLSv1_2;
        for p in Padding::ALL {
            let b = premaster_block(p, k, v).unwrap();
            assert_eq!(b.len(), k, "{p:?}");
            assert!(b[2..k - 51 + 2].iter().all(|&x| x != 0), "{p:?}: padding has no zero");
        }
        let correct = premaster_block(Padding::Correct, k, v).unwrap();
        assert_eq!(&correct[..2], &[0, 2]);
        assert_eq!(&correct[k - 49..k - 46], &[0, 3, 3]);
        // Exactly one zero after the header, right before the version.
        assert_eq!(correct[2..].iter().filter(|&&x| x == 0).count(), 1);

        let bad_first = premaster_block(Padding::WrongFirstBytes, k, v).unwrap();
        assert_eq!(&bad_first[..2], &[0x41, 0x17]);
        assert_eq!(&bad_first[2..], &correct[2..]);

        let wrong_pos = premaster_block(Padding::WrongZeroPosition, k, v).unwrap();
        assert_eq!(&wrong_pos[k - 2..], &[0, 0x11]);
        assert_eq!(wrong_pos[2..].iter().position(|&x| x == 0), Some(k - 4));

        let no_zero = premaster_block(Padding::NoZero, k, v).unwrap();
        assert!(no_zero[2..].iter().all(|&x| x != 0));

        let wrong_version = premaster_block(Padding::WrongVersion, k, v).unwrap();
        assert_eq!(&wrong_version[k - 49..k - 46], &[0, 2, 2]);
        assert_eq!(&wrong_version[k - 46..], &correct[k - 46..]);

        assert_eq!(premaster_block(Padding::Correct, 63, v), None);
    }

    #[test]
    fn rsa_encrypt_is_textbook_rsa_left_padded() {
        // n = 61 · 53 = 3233, e = 17, d = 2753 (the textbook example).
        let n = 3233u32.to_be_bytes();
        let e = [17u8];
        let c = rsa_encrypt(&[0, 65], &n, &e);
        assert_eq!(c, 2790u16.to_be_bytes());
        let m = BigUint::from_bytes_be(&c).modpow(&BigUint::from(2753u32), &BigUint::from(3233u32));
        assert_eq!(m, BigUint::from(65u32));
        // A small result keeps the modulus length.
        assert_eq!(rsa_encrypt(&[0, 1], &n, &e), vec![0, 1]);
    }

    #[test]
    fn reads_the_rsa_key_and_refuses_others() {
        let chain = testbed::issue_chain("robot unit", &["robot.test"], testbed::KeyKind::Rsa2048).unwrap();
        let (n, e) = rsa_public_key(&chain.leaf).unwrap();
        assert_eq!((n.len(), e), (256, vec![1, 0, 1]));
        let ec = testbed::issue_chain("robot unit", &["robot.test"], testbed::KeyKind::EcdsaP256).unwrap();
        assert_eq!(
            rsa_public_key(&ec.leaf).unwrap_err(),
            "the server's certificate has no RSA key"
        );
        assert!(rsa_public_key(b"not a certificate").is_err());
    }

    #[test]
    fn static_rsa_means_rsa_transport_only() {
        assert!(is_static_rsa(CipherSuite(0x002f)));
        assert!(is_static_rsa(CipherSuite(0x009c)));
        assert!(!is_static_rsa(CipherSuite(0xc02f)), "ECDHE_RSA");
        assert!(!is_static_rsa(CipherSuite(0x0003)), "RSA export");
        assert!(!is_static_rsa(CipherSuite(0x002e)), "RSA_PSK");
        assert!(!is_static_rsa(CipherSuite(0x1301)));
    }

    #[test]
    fn key_exchange_records_frame_cke_ccs_finished() {
        let recs = key_exchange_records(ProtocolVersion::TLSv1_2, &[9; 4]);
        assert_eq!(&recs[..5], &[22, 3, 3, 0, 10]);
        assert_eq!(&recs[5..15], &[16, 0, 0, 6, 0, 4, 9, 9, 9, 9]);
        assert_eq!(&recs[15..21], &[20, 3, 3, 0, 1, 1]);
        assert_eq!(&recs[21..26], &[22, 3, 3, 0, 80]);
        assert_eq!(recs.len(), 26 + 80);
        let ssl3 = key_exchange_records(ProtocolVersion::SSLv3, &[9; 4]);
        assert_eq!(&ssl3[5..13], &[16, 0, 0, 4, 9, 9, 9, 9]);
    }
}
