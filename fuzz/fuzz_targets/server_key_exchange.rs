//! ServerKeyExchange for any suite and version: never panics, and a parsed
//! message re-encodes to exactly the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsensor::wire::{CipherSuite, ProtocolVersion, ServerKeyExchange};

fuzz_target!(|data: &[u8]| {
    // Two bytes of suite, one of version, then the message body.
    let [a, b, v, body @ ..] = data else { return };
    let suite = CipherSuite(u16::from_be_bytes([*a, *b]));
    let version = ProtocolVersion(0x0300 | u16::from(v % 4));
    if let Ok(ske) = ServerKeyExchange::read(body, suite, version) {
        let _ = (ske.dh_bits(), ske.ecdh_group());
        let mut out = Vec::new();
        ske.encode(&mut out);
        assert_eq!(out, body);
    }
});
