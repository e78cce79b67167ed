//! ServerHello from arbitrary bytes: never panics, and whatever parses
//! re-encodes to bytes that parse to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsensor::wire::{Codec, ServerHello};

fuzz_target!(|data: &[u8]| {
    if let Ok(sh) = ServerHello::from_bytes(data) {
        let _ = (sh.version(), sh.selected_group(), sh.downgrade_sentinel(), sh.malformed_extensions().count());
        let again = ServerHello::from_bytes(&sh.to_bytes()).expect("re-encoded ServerHello must parse");
        assert_eq!(again, sh);
    }
});
