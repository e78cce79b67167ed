//! The verdict of a stapled OCSP response: good, revoked or unknown.
//!
//! A server that staples a "revoked" response is telling every client its
//! own certificate is revoked; that is worth a T. Only the certificate
//! status is read (the first SingleResponse): checking the responder's
//! signature needs the issuer and is the client's business, and a forged
//! "good" would not change a grade that is already bounded by the chain.
//! Pure, with a minimal DER walker: bounded by the input, never panics.

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

/// One DER element: tag byte and contents.
struct Tlv<'a> {
    tag: u8,
    value: &'a [u8],
}

/// Read one element from the front of `input`, returning it and the rest.
fn tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), OcspError> {
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
    Ok((
        Tlv {
            tag,
            value: &rest[..len],
        },
        &rest[len..],
    ))
}

fn expect<'a>(input: &'a [u8], tag: u8, what: &'static str) -> Result<(Tlv<'a>, &'a [u8]), OcspError> {
    let (t, rest) = tlv(input)?;
    if t.tag != tag {
        return Err(OcspError::Malformed(what));
    }
    Ok((t, rest))
}

const SEQUENCE: u8 = 0x30;
const ID_PKIX_OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

/// The status of the first certificate in a DER `OCSPResponse` (RFC 6960).
pub fn status(der: &[u8]) -> Result<OcspStatus, OcspError> {
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
    let (tbs, _) = expect(basic.value, SEQUENCE, "ResponseData")?;
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
    let (_produced_at, after) = expect(after, 0x18, "producedAt")?;
    let (responses, _) = expect(after, SEQUENCE, "responses")?;
    let (single, _) = expect(responses.value, SEQUENCE, "SingleResponse")?;
    let (_cert_id, after) = expect(single.value, SEQUENCE, "CertID")?;
    let (cert_status, _) = tlv(after)?;
    match cert_status.tag {
        0x80 => Ok(OcspStatus::Good),
        0xa1 => Ok(OcspStatus::Revoked),
        0x82 => Ok(OcspStatus::Unknown),
        _ => Err(OcspError::Malformed("certStatus")),
    }
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
        let cert_id = der(SEQUENCE, &der(0x04, &[1; 20]));
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
}
