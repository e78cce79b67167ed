//! The values every stage speaks: what was observed at an endpoint, the
//! judgement on it, and the record assembled from both at the end.
//!
//! Lowest layer above `wire`: everything may read it, it reads nothing but
//! `wire` (for suite names), so a type that two stages exchange lives here
//! and neither stage has to import the other.

pub mod assessment;
pub mod cert;
pub mod ids;
pub mod observed;
pub mod record;
pub mod timestamp;
