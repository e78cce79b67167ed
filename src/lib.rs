//! netsensor: the engine behind the `sensor` appliance.
//!
//! One folder per stage, data flowing one way (ARCHITECTURE.md draws it):
//! [`model`] (the records every stage speaks) ← [`wire`] (bytes, no I/O) ←
//! [`discover`] (which ports are open) ← [`probe`] (handshakes, banners and
//! enumeration: the network I/O of a scan) ← [`grade`] (pure judgement) ←
//! [`scan`] (one job wired end to end) ← [`output`] ← [`store`] (inventory,
//! central merge) ← [`serve`] (the service port's router and the agent
//! proxy) ← [`report`] (outbox, delivery, and the intake route) ←
//! [`alert`] (expiry and risk notices, delivered durably) ← [`fleet`] (the
//! central's enrolled sensors, scan definitions and health) ← [`appliance`]
//! (profiles, schedules, the daemon). A module never imports from a folder
//! to its right: `tools/invariants.py` and `tools/modcycles.py` check it in
//! CI. [`cpu`] stands apart, left of everything: the pool that pure
//! computation (grading, report validation) runs on so that the async
//! runtime's workers stay free for I/O.

#![forbid(unsafe_code)]

pub mod alert;
pub mod appliance;
pub mod console;
pub mod cpu;
pub mod discover;
pub mod fleet;
pub mod grade;
pub mod model;
pub mod output;
pub mod probe;
pub mod report;
pub mod scan;
pub mod serve;
pub mod store;
pub mod wire;
