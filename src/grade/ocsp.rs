//! OCSP responses (RFC 6960): the verdict of a stapled response, and the
//! parts a live check needs (every SingleResponse with its CertID, times and
//! reason; the signed bytes, the signature and the responder's certificates).
//!
//! A server that staples a "revoked" response is telling every client its
//! own certificate is revoked; that is worth an F. For a stapled response only
//! the certificate status is read (the first SingleResponse): checking the
//! responder's signature needs the issuer and is the client's business, and a
//! forged "good" would not change a grade that is already bounded by the
//! chain. The live check ([`super::revocation`]) checks the signature and
//! the CertID with [`parse`]. Pure, with a minimal DER walker: bounded by the
//! input, never panics.

use crate::grade::OcspStatus;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OcspError {
    #[error("OCSP response is truncated or not DER ({0})")]
    Malformed(&'static str),
    #[error("OCSP responder answered with status {0} (not successful)")]
    NotSuccessful(u8),
    #[error("OCSP response is not a basic response")]
    NotBasic,
}

/// One DER element: tag byte, contents, and the whole encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    /// Tag, length and contents, as they were on the wire (what a signature covers).
    pub raw: &'a [u8],
}

/// Read one element from the front of `input`, returning it and the rest.
pub(crate) fn tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), OcspError> {
    let all = input;
    let (&tag, rest) = input.split_first().ok_or(OcspError::Malformed("empty"))?;
    if tag & 0x1f == 0x1f {
        return Err(OcspError::Malformed("multi-byte tag"));
    }
    let (&first, rest) = rest.split_first().ok_or(OcspError::Malformed("no length"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(OcspError::Malformed("bad length"));
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(OcspError::Malformed("length beyond the input"));
    }
    let header = all.len() - rest.len();
    Ok((
        Tlv {
            tag,
            value: &rest[..len],
            raw: &all[..header + len],
        },
        &rest[len..],
    ))
}

pub(crate) fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<(Tlv<'a>, &'a [u8]), OcspError> {
    let (t, rest) = tlv(input)?;
    if t.tag != tag {
        return Err(OcspError::Malformed(what));
    }
    Ok((t, rest))
}

pub(crate) const SEQUENCE: u8 = 0x30;
const GENERALIZED_TIME: u8 = 0x18;
pub(crate) const ID_PKIX_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

/// One SingleResponse: which certificate (CertID) and what about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Single<'a> {
    /// The CertID's hash algorithm (AlgorithmIdentifier, whole encoding).
    pub hash_algorithm: &'a [u8],
    pub issuer_name_hash: &'a [u8],
    pub issuer_key_hash: &'a [u8],
    /// The serial number's INTEGER contents.
    pub serial: &'a [u8],
    pub status: OcspStatus,
    /// GeneralizedTime text (`YYYYMMDDHHMMSSZ`) when revoked.
    pub revoked_at: Option<&'a str>,
    /// CRLReason code when revoked and given.
    pub reason: Option<u8>,
    pub this_update: &'a str,
    pub next_update: Option<&'a str>,
}

/// A parsed BasicOCSPResponse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Basic<'a> {
    /// The encoded ResponseData: what the signature covers.
    pub tbs: &'a [u8],
    /// The signature's AlgorithmIdentifier, whole encoding.
    pub signature_algorithm: &'a [u8],
    /// The signature BIT STRING, whole encoding.
    pub signature: &'a [u8],
    /// Certificates the responder sent (a delegated responder's own), DER.
    pub certs: Vec<&'a [u8]>,
    pub responses: Vec<Single<'a>>,
}

fn time_text<'a>(t: &Tlv<'a>, what: &'static str) -> Result<&'a str, OcspError> {
    if t.tag != GENERALIZED_TIME {
        return Err(OcspError::Malformed(what));
    }
    std::str::from_utf8(t.value).map_err(|_| OcspError::Malformed(what))
}

fn single(input: &[u8]) -> Result<Single<'_>, OcspError> {
    let (cert_id, after) = expect(input, SEQUENCE, "CertID")?;
    let (alg, rest) = expect(cert_id.value, SEQUENCE, "hashAlgorithm")?;
    let (name_hash, rest) = expect(rest, 0x04, "issuerNameHash")?;
    let (key_hash, rest) = expect(rest, 0x04, "issuerKeyHash")?;
    let (serial, _) = expect(rest, 0x02, "serialNumber")?;
    let (cert_status, after) = tlv(after)?;
    let (mut revoked_at, mut reason) = (None, None);
    let status = match cert_status.tag {
        0x80 => OcspStatus::Good,
        0xa1 => {
            let (time, rest) = tlv(cert_status.value)?;
            revoked_at = Some(time_text(&time, "revocationTime")?);
            if let Ok((r, _)) = expect(rest, 0xa0, "revocationReason") {
                let (code, _) = expect(r.value, 0x0a, "CRLReason")?;
                reason = code.value.first().copied();
            }
            OcspStatus::Revoked
        }
        0x82 => OcspStatus::Unknown,
        _ => return Err(OcspError::Malformed("certStatus")),
    };
    let (this, after) = tlv(after)?;
    let this_update = time_text(&this, "thisUpdate")?;
    let next_update = match expect(after, 0xa0, "nextUpdate") {
        Ok((n, _)) => Some(time_text(&tlv(n.value)?.0, "nextUpdate")?),
        Err(_) => None,
    };
    Ok(Single {
        hash_algorithm: alg.raw,
        issuer_name_hash: name_hash.value,
        issuer_key_hash: key_hash.value,
        serial: serial.value,
        status,
        revoked_at,
        reason,
        this_update,
        next_update,
    })
}

/// Parse a DER `OCSPResponse` down to its BasicOCSPResponse.
pub fn parse(der: &[u8]) -> Result<Basic<'_>, OcspError> {
    let (resp, _) = expect(der, SEQUENCE, "OCSPResponse")?;
    let (status, rest) = expect(resp.value, 0x0a, "responseStatus")?;
    match status.value {
        [0] => {}
        [s] => return Err(OcspError::NotSuccessful(*s)),
        _ => return Err(OcspError::Malformed("responseStatus")),
    }
    let (bytes, _) = expect(rest, 0xa0, "responseBytes")?;
    let (rb, _) = expect(bytes.value, SEQUENCE, "ResponseBytes")?;
    let (oid, rest) = expect(rb.value, 0x06, "responseType")?;
    if oid.value != ID_PKIX_OCSP_BASIC {
        return Err(OcspError::NotBasic);
    }
    let (octets, _) = expect(rest, 0x04, "response")?;
    let (basic, _) = expect(octets.value, SEQUENCE, "BasicOCSPResponse")?;
    let (tbs, rest) = expect(basic.value, SEQUENCE, "ResponseData")?;
    // The signature and certificates are optional for a stapled verdict:
    // a response cut after its data still says what it says.
    let (signature_algorithm, signature, certs) = match expect(rest, SEQUENCE, "signatureAlgorithm") {
        Ok((alg, rest)) => {
            let (sig, rest) = expect(rest, 0x03, "signature")?;
            let mut certs = Vec::new();
            if let Ok((c, _)) = expect(rest, 0xa0, "certs") {
                let (seq, _) = expect(c.value, SEQUENCE, "certs")?;
                let mut rest = seq.value;
                while !rest.is_empty() {
                    let (cert, after) = expect(rest, SEQUENCE, "Certificate")?;
                    certs.push(cert.raw);
                    rest = after;
                }
            }
            (alg.raw, sig.raw, certs)
        }
        Err(_) => (&[][..], &[][..], Vec::new()),
    };
    // ResponseData: [0] version (optional), responderID ([1] or [2]), producedAt, responses.
    let mut rest = tbs.value;
    let (mut t, mut after) = tlv(rest)?;
    if t.tag == 0xa0 {
        rest = after;
        (t, after) = tlv(rest)?;
    }
    if t.tag != 0xa1 && t.tag != 0xa2 {
        return Err(OcspError::Malformed("responderID"));
    }
    let (_produced_at, after) = expect(after, GENERALIZED_TIME, "producedAt")?;
    let (list, _) = expect(after, SEQUENCE, "responses")?;
    let mut responses = Vec::new();
    let mut rest = list.value;
    while !rest.is_empty() {
        let (one, after) = expect(rest, SEQUENCE, "SingleResponse")?;
        responses.push(single(one.value)?);
        rest = after;
    }
    Ok(Basic {
        tbs: tbs.raw,
        signature_algorithm,
        signature,
        certs,
        responses,
    })
}

/// The status of the first certificate in a DER `OCSPResponse` (RFC 6960).
pub fn status(der: &[u8]) -> Result<OcspStatus, OcspError> {
    parse(der)?
        .responses
        .first()
        .map(|s| s.status)
        .ok_or(OcspError::Malformed("no SingleResponse"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wrap `body` in a DER element.
    fn der(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if body.len() < 0x80 {
            out.push(body.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(body);
        out
    }

    fn response(cert_status: &[u8]) -> Vec<u8> {
        let sha1 = der(
            SEQUENCE,
            &[der(0x06, &[0x2b, 0x0e, 0x03, 0x02, 0x1a]), vec![5, 0]].concat(),
        );
        let cert_id = der(
            SEQUENCE,
            &[sha1, der(0x04, &[1; 20]), der(0x04, &[2; 20]), der(0x02, &[0x10, 0x01])].concat(),
        );
        let single = der(
            SEQUENCE,
            &[cert_id, cert_status.to_vec(), der(0x18, b"20261124000000Z")].concat(),
        );
        let responses = der(SEQUENCE, &single);
        let tbs = der(
            SEQUENCE,
            &[
                der(0xa2, &der(0x04, &[2; 20])),
                der(0x18, b"20261124000000Z"),
                responses,
            ]
            .concat(),
        );
        let basic = der(SEQUENCE, &[tbs, der(SEQUENCE, &[]), der(0x03, &[0])].concat());
        let rb = der(SEQUENCE, &[der(0x06, ID_PKIX_OCSP_BASIC), der(0x04, &basic)].concat());
        der(SEQUENCE, &[der(0x0a, &[0]), der(0xa0, &rb)].concat())
    }

    #[test]
    fn reads_each_certificate_status() {
        assert_eq!(status(&response(&[0x80, 0])), Ok(OcspStatus::Good));
        assert_eq!(
            status(&response(&der(0xa1, &der(0x18, b"20261101000000Z")))),
            Ok(OcspStatus::Revoked)
        );
        assert_eq!(status(&response(&[0x82, 0])), Ok(OcspStatus::Unknown));
    }

    #[test]
    fn reads_cert_id_times_and_reason() {
        let revoked = der(
            0xa1,
            &[der(0x18, b"20261101000000Z"), der(0xa0, &der(0x0a, &[1]))].concat(),
        );
        let r = response(&revoked);
        let b = parse(&r).unwrap();
        let s = &b.responses[0];
        assert_eq!(s.serial, &[0x10, 0x01]);
        assert_eq!(s.issuer_key_hash, &[2; 20]);
        assert_eq!(s.revoked_at, Some("20261101000000Z"));
        assert_eq!(s.reason, Some(1));
        assert_eq!(s.this_update, "20261124000000Z");
        assert_eq!(s.next_update, None);
        assert_eq!(b.signature, &[0x03, 1, 0]);
    }

    #[test]
    fn rejects_unsuccessful_and_malformed_responses() {
        assert_eq!(
            status(&der(SEQUENCE, &der(0x0a, &[6]))),
            Err(OcspError::NotSuccessful(6))
        );
        assert!(status(&[]).is_err());
        let good = response(&[0x80, 0]);
        for n in 0..good.len() {
            assert!(status(&good[..n]).is_err(), "prefix {n} accepted");
        }
        assert!(status(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    proptest::proptest! {
        /// Any byte changed, dropped or appended in a valid response: the
        /// parser answers or refuses, never panics, and the stapled verdict
        /// agrees with the full parse.
        #[test]
        fn mutated_responses_never_panic(at in 0usize..400, byte in proptest::num::u8::ANY, cut in 0usize..400, tail in proptest::collection::vec(proptest::num::u8::ANY, 0..8)) {
            let revoked = der(0xa1, &[der(0x18, b"20261101000000Z"), der(0xa0, &der(0x0a, &[1]))].concat());
            let mut r = response(&revoked);
            let at = at % r.len();
            r[at] = byte;
            r.truncate(r.len() - cut % r.len());
            r.extend_from_slice(&tail);
            match parse(&r) {
                Ok(b) => proptest::prop_assert_eq!(status(&r).ok(), b.responses.first().map(|s| s.status)),
                Err(_) => proptest::prop_assert!(status(&r).is_err()),
            }
        }
    }
}
