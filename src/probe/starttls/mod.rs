//! STARTTLS: the plaintext dialogue before TLS. [`dialogue`] is the pure
//! script of each protocol (what to send, how to read each reply); the
//! driver re-exported here runs it on a socket under one deadline.

pub mod dialogue;
mod driver;

pub use driver::*;
