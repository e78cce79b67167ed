//! ClientHello from arbitrary bytes (a real client's hello is lossless, and
//! anything that parses re-encodes to a hello that parses the same).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsensor::wire::{ClientHello, Codec};

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = ClientHello::from_bytes(data) {
        let again = ClientHello::from_bytes(&hello.to_bytes()).expect("re-encoded ClientHello must parse");
        assert_eq!(again, hello);
    }
});
