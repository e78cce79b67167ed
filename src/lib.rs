//! netsensor: the engine behind the `sensor` appliance.
//!
//! The pipeline, one module per stage: [`targets`] (what to scan, in what
//! order) → [`portscan`] (which ports are open) → [`probe`] (handshakes and
//! banners, the only network I/O) → [`detect`] and [`cert`] (pure judgement
//! of what came back) → [`record`] (the endpoint record every output reads)
//! → [`output`]. [`scan`] wires the stages for one job. See ARCHITECTURE.md.

#![forbid(unsafe_code)]

pub mod central;
pub mod cert;
pub mod checkpoint;
pub mod config;
pub mod detect;
pub mod enumerate;
pub mod grade;
pub mod intake;
pub mod inventory;
pub mod job;
pub mod metrics;
pub mod ocsp;
pub mod outbox;
pub mod output;
pub mod permute;
pub mod portscan;
pub mod probe;
pub mod profile;
pub mod proxy;
pub mod record;
pub mod report;
pub mod scan;
pub mod schedule;
pub mod service;
pub mod starttls;
pub mod syn;
pub mod targets;
pub mod testbed;
pub mod wire;
