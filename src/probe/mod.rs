//! Talking to a server: the I/O edge of the engine.
//!
//! Probes turn a connected socket into observations. They own every deadline
//! and every byte limit; what they learn is data (a failed handshake is a
//! result), and nothing here decides what the data means.

pub mod danger;
pub mod detect;
pub mod enumerate;
pub mod extras;
pub mod hello;
pub mod http;
pub mod plain;
pub mod sensor_port;
pub mod starttls;
pub mod tls;
pub mod vulns;
