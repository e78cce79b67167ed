//! OCSP responses from arbitrary bytes (stapled by a server or fetched from
//! a responder by the live revocation check): never panics, every part it
//! returns lies inside the input, and the stapled verdict agrees with the
//! full parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsensor::grade::ocsp;

fn inside(data: &[u8], part: &[u8]) -> bool {
    part.is_empty() || data.as_ptr_range().contains(&part.as_ptr()) && part.len() <= data.len()
}

fuzz_target!(|data: &[u8]| {
    match ocsp::parse(data) {
        Ok(b) => {
            assert!(inside(data, b.tbs) && inside(data, b.signature) && inside(data, b.signature_algorithm));
            for s in &b.responses {
                assert!(inside(data, s.serial) && inside(data, s.issuer_key_hash));
            }
            assert_eq!(ocsp::status(data).ok(), b.responses.first().map(|s| s.status));
        }
        Err(_) => assert!(ocsp::status(data).is_err()),
    }
});
