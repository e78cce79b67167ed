//! The fleet: a central sensor that enrolls sensors, assigns them scans and
//! knows their health (docs/fleet.md).
//!
//! The rules are pure and synchronous, so they are tested without sockets:
//! what a scan definition may say ([`definition`]), which share of which
//! definition a sensor runs ([`assign`]: the engine's `shard` splits one
//! plan without overlap), and when a sensor is offline ([`status`]). The
//! state they read is the central store's ([`crate::store::fleet`]).

pub mod api;
pub mod assign;
pub mod definition;
pub mod route;
pub mod status;
