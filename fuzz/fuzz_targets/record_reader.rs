//! The deframer fed hostile bytes in hostile slices: it must never panic,
//! never hold more than its cap, and never yield a message over its cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsensor::wire::{Deframer, DeframerLimits, Event, ServerHello};

fuzz_target!(|data: &[u8]| {
    // The first byte picks how the stream is sliced, as TCP would.
    let Some((&slice, stream)) = data.split_first() else { return };
    let slice = 1 + usize::from(slice);
    let limits = DeframerLimits { max_buffered: 8 * 1024, max_message: 4 * 1024, max_messages: 16, max_records: 64 };
    let mut d = Deframer::with_limits(limits);
    'feed: for chunk in stream.chunks(slice) {
        if d.feed(chunk).is_err() {
            break;
        }
        assert!(d.buffered() <= limits.max_buffered);
        loop {
            match d.next_event() {
                Ok(Some(Event::Handshake(m))) => {
                    assert!(m.body.len() <= limits.max_message);
                    let _ = <ServerHello as netsensor::wire::Codec>::from_bytes(&m.body);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
});
