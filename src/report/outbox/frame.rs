//! The on-disk form of one outbox record: a 16-byte header (magic, version,
//! class, event count, payload length), a SHA-256 of header and payload, the
//! payload. A torn or damaged file fails the check and is set aside, never
//! sent as garbage.

use sha2::{Digest, Sha256};

use super::{Class, HEADER, MAGIC, RECORD_PREFIX, VERSION};

pub(super) fn record_name(seq: u64) -> String {
    format!("{RECORD_PREFIX}{seq:020}")
}

pub(super) fn frame(class: Class, count: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(class.byte());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut h = Sha256::new();
    h.update(&out);
    h.update(payload);
    out.extend_from_slice(&h.finalize());
    out.extend_from_slice(payload);
    out
}

/// The framed contents back, or None when anything is off (torn, damaged).
pub(super) fn unframe(bytes: &[u8]) -> Option<(Class, u32, Vec<u8>)> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC || bytes[4] != VERSION {
        return None;
    }
    let class = Class::from_byte(bytes[5])?;
    let count = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
    let len = u32::from_le_bytes(bytes[12..16].try_into().ok()?) as usize;
    if bytes.len() != HEADER + len {
        return None;
    }
    let mut h = Sha256::new();
    h.update(&bytes[..16]);
    h.update(&bytes[HEADER..]);
    if h.finalize().as_slice() != &bytes[16..HEADER] {
        return None;
    }
    Some((class, count, bytes[HEADER..].to_vec()))
}
