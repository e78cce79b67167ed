//! Every random value the sensor draws, in one place: batch and event ids
//! (unique across restarts and outbox resets, which a counter is not), scan
//! seeds (the order of a scan) and keys (the SYN cookie key). All come from
//! the operating system's generator through `rand`, so no module reads
//! `/dev/urandom` or hashes the clock by hand.

use rand::RngExt;

/// A fresh random id: 128 bits as 32 lowercase hex digits.
pub fn random_id() -> String {
    let b: [u8; 16] = rand::rng().random();
    hex(&b)
}

/// Bytes as lowercase hex digits: how ids, digests and hashes are written.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A fresh 64-bit value for a scan seed or a key half.
pub fn random_u64() -> u64 {
    rand::rng().random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let a = random_id();
        let b = random_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_ne!(random_u64(), random_u64());
    }
}
