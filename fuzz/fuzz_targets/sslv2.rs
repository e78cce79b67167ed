//! SSLv2 records and messages: never panic; a parsed message re-encodes to
//! bytes that parse to the same message (not always the same bytes: any
//! non-zero session-id-hit byte reads as `true`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsensor::wire::sslv2::{read_message, read_record};
use netsensor::wire::{Codec, Reader};

fn check(body: &[u8]) {
    if let Ok(msg) = read_message(body) {
        assert_eq!(read_message(&msg.to_bytes()), Ok(msg));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    while let Ok(body) = read_record(&mut r) {
        check(body);
    }
    check(data);
});
