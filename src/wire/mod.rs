//! Bytes on the wire, with no I/O and no async runtime.
//!
//! Everything a probe learns about a server comes through here, so this layer
//! is pure, bounded and total: it can be fed any bytes from the network and
//! answers with a value or a typed error, never a panic.

pub mod suites;

pub use suites::{CipherSuite, SuiteInfo};
