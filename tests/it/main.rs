//! Integration tests of the engine against real servers on loopback.
//!
//! One test binary, one module per area (ripgrep's layout). Servers are
//! started by the tests on port 0 or on free ports of 127.0.0.1/::1 with
//! certificates generated on the spot; nothing leaves loopback.

mod pg;
mod support;

mod budget;
mod central;
mod ech;
mod enumeration;
mod fleet_store;
mod grading;
mod hosts;
mod modern;
mod proxy;
mod revocation;
mod scan;
mod sni;
mod starttls;
mod syn;
mod vulns;
