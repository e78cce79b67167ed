//! Where results live between runs: the sensor's own inventory (SQLite) and
//! the central sensor's merged one (SQLite or PostgreSQL).

pub mod central;
pub mod inventory;
