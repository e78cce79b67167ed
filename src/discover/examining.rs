//! Open ports handed on to the TLS and plaintext stages and not finished
//! yet, counted beside the discovery counters of
//! [`Progress`](crate::discover::connect::Progress).
//!
//! Once the last probe is sent a scan can still wait a long time on
//! handshakes, enumerations and checks; without this a progress display
//! has nothing to say but a rate decaying to zero. Each examination holds
//! a [`Guard`] for its lifetime, so a display can say how many are left and
//! how long the slowest has been going. Cheap: one short lock per open
//! port, never per probe.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The examinations in flight and done.
#[derive(Debug, Default)]
pub struct Examining {
    /// Start of each examination in flight, by a number that only grows:
    /// the first entry is the oldest.
    started: Mutex<(u64, BTreeMap<u64, Instant>)>,
    done: AtomicU64,
}

impl Examining {
    /// One examination starts; it ends when the guard is dropped.
    pub fn begin(&self) -> Guard<'_> {
        let mut s = self.started.lock().unwrap_or_else(|p| p.into_inner());
        let id = s.0;
        s.0 += 1;
        s.1.insert(id, Instant::now());
        Guard { of: self, id }
    }

    /// Examinations in flight now.
    pub fn in_flight(&self) -> u64 {
        self.started.lock().unwrap_or_else(|p| p.into_inner()).1.len() as u64
    }

    /// Examinations finished so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// How long the oldest examination in flight has been going.
    pub fn oldest(&self) -> Option<Duration> {
        let s = self.started.lock().unwrap_or_else(|p| p.into_inner());
        s.1.values().next().map(Instant::elapsed)
    }
}

/// One examination in flight (see [`Examining::begin`]).
#[derive(Debug)]
pub struct Guard<'a> {
    of: &'a Examining,
    id: u64,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let mut s = self.of.started.lock().unwrap_or_else(|p| p.into_inner());
        s.1.remove(&self.id);
        self.of.done.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_in_flight_done_and_the_oldest() {
        let e = Examining::default();
        assert_eq!((e.in_flight(), e.done(), e.oldest()), (0, 0, None));
        let first = e.begin();
        std::thread::sleep(Duration::from_millis(20));
        let second = e.begin();
        assert_eq!(e.in_flight(), 2);
        assert!(e.oldest().is_some_and(|d| d >= Duration::from_millis(20)));
        drop(first);
        assert_eq!((e.in_flight(), e.done()), (1, 1));
        assert!(
            e.oldest().is_some_and(|d| d < Duration::from_millis(20)),
            "the second is the oldest now"
        );
        drop(second);
        assert_eq!((e.in_flight(), e.done(), e.oldest()), (0, 2, None));
    }
}
