//! Who may hold a connection that has not sent its request head yet.
//!
//! A head costs the sensor a socket and a buffer while it arrives, and a
//! silent client can hold one for the whole head timeout. Before issue 17,
//! one global pool of slots was shared by heads, tunnels and API calls: 1,024
//! idle sockets from 5 addresses stalled `/healthz`, the intake and the proxy.
//! Now:
//!
//! - each source reads at most [`PER_SOURCE`] heads at once; its other
//!   connections wait their turn without being read, so a source's idle
//!   sockets delay only that source;
//! - the heads in waiting are capped; when the cap is reached, the oldest
//!   waiting head of the source holding the most is shed (answered `408`),
//!   so a newcomer from elsewhere always gets in;
//! - past half the cap, new heads get a short deadline ([`under_pressure`]).
//!
//! Tunnels, API calls and health checks take their own slots once their
//! head has arrived (`serve::listener`), so no class starves another.
//!
//! [`under_pressure`]: Slots::under_pressure

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Heads one source reads at once.
pub const PER_SOURCE: usize = 16;

/// The heads in waiting, by source.
pub struct Slots {
    max_pending: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pending: usize,
    next_id: u64,
    sources: HashMap<IpAddr, Source>,
}

struct Source {
    /// Oldest first.
    waiting: VecDeque<(u64, CancellationToken)>,
    readers: Arc<Semaphore>,
}

/// A connection's place among the heads in waiting; given back on drop.
pub struct Pending {
    slots: Arc<Slots>,
    ip: IpAddr,
    id: u64,
    /// Cancelled when this head is shed to make room.
    pub shed: CancellationToken,
    /// The source's readers: acquire one before reading the head.
    pub readers: Arc<Semaphore>,
}

impl Slots {
    pub fn new(max_pending: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max_pending: max_pending.max(1),
            state: Mutex::new(State::default()),
        })
    }

    /// A place for a new connection from `ip`, shedding the oldest head of
    /// the busiest source when every place is taken.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Pending {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.pending >= self.max_pending
            && let Some(busiest) = st
                .sources
                .iter()
                .max_by_key(|(_, s)| s.waiting.len())
                .map(|(ip, _)| *ip)
            && let Some(src) = st.sources.get_mut(&busiest)
            && let Some((_, token)) = src.waiting.pop_front()
        {
            token.cancel();
            if src.waiting.is_empty() {
                st.sources.remove(&busiest);
            }
            st.pending -= 1;
        }
        st.pending += 1;
        st.next_id += 1;
        let id = st.next_id;
        let shed = CancellationToken::new();
        let src = st.sources.entry(ip).or_insert_with(|| Source {
            waiting: VecDeque::new(),
            readers: Arc::new(Semaphore::new(PER_SOURCE)),
        });
        src.waiting.push_back((id, shed.clone()));
        let readers = src.readers.clone();
        Pending {
            slots: self.clone(),
            ip,
            id,
            shed,
            readers,
        }
    }

    /// More than half the places are taken: new heads get a short deadline.
    pub fn under_pressure(&self) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.pending * 2 > self.max_pending
    }

    pub fn pending(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).pending
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut st = self.slots.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(src) = st.sources.get_mut(&self.ip) else {
            return;
        };
        let Some(i) = src.waiting.iter().position(|(id, _)| *id == self.id) else {
            return; // shed: already counted out
        };
        src.waiting.remove(i);
        if src.waiting.is_empty() {
            st.sources.remove(&self.ip);
        }
        st.pending -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn a_full_house_sheds_the_busiest_sources_oldest_head() {
        let slots = Slots::new(4);
        let a: Vec<Pending> = (0..3).map(|_| slots.admit(ip(1))).collect();
        let b = slots.admit(ip(2));
        assert_eq!(slots.pending(), 4);
        assert!(slots.under_pressure());
        let c = slots.admit(ip(3));
        assert!(a[0].shed.is_cancelled(), "the busiest source's oldest goes");
        assert!(!a[1].shed.is_cancelled() && !b.shed.is_cancelled() && !c.shed.is_cancelled());
        assert_eq!(slots.pending(), 4);
        drop(a);
        assert_eq!(slots.pending(), 2, "a shed head is not counted twice");
        drop((b, c));
        assert_eq!(slots.pending(), 0);
        assert!(slots.state.lock().unwrap().sources.is_empty());
    }

    #[test]
    fn one_source_shares_its_readers() {
        let slots = Slots::new(100);
        let x = slots.admit(ip(1));
        let y = slots.admit(ip(1));
        let z = slots.admit(ip(2));
        assert!(Arc::ptr_eq(&x.readers, &y.readers));
        assert!(!Arc::ptr_eq(&x.readers, &z.readers));
        assert_eq!(x.readers.available_permits(), PER_SOURCE);
        assert!(!slots.under_pressure());
    }
}
