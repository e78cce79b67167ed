//! The service port (48999): one listener for the agent proxy and the
//! sensor's own HTTP routes (health, metrics, status, the report intake, the
//! endpoints API, and whatever comes next).
//!
//! The vendor's sensor serves agents and its own API on one port, so ours
//! does too. The HTTP is the ecosystem's, not ours (issue 17): hyper reads
//! every request head (http1, CONNECT upgrades), axum routes, tower layers
//! authenticate from the head before any body is read. What is ours is the
//! policy around it:
//!
//! - [`listener`]: accept, per-source places for heads ([`slots`]), the head
//!   deadline (`408`), TLS or plain by the first byte, per-class slots
//!   (tunnels, API, health: `503` when a class is full);
//! - [`router`]: [`router::Routes`], where every part of the sensor adds its
//!   axum routes, and the layers every route gets (framing, body cap);
//! - [`auth`]: the token registry and its scopes, one layer per route;
//! - [`proxy`]: the agent proxy (CONNECT to allowlisted destinations only);
//! - [`answer`], [`query`]: answers in one shape, strict query parsing.

pub mod answer;
pub mod auth;
pub mod listener;
pub mod proxy;
pub mod query;
pub mod router;
pub mod slots;

pub use router::Routes;
