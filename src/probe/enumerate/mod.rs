//! Protocol and cipher-suite enumeration with hand-built ClientHellos.
//! [`strategy`] decides what to offer and how to read the answers (pure),
//! [`result`] is what an enumeration found and the record fields made from
//! it (pure), and the driver re-exported here runs the strategy against a
//! server under a per-host connection cap; [`pq`] reads the post-quantum
//! groups and preference from the group probes (pure).

mod driver;
pub mod pq;
pub mod result;
pub mod strategy;

pub use driver::*;
pub use result::*;
