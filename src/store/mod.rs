//! Where results live between runs: the sensor's own inventory (SQLite) and
//! the central sensor's merged one (SQLite or PostgreSQL).
//!
//! The two stores of a central sensor keep one set of rules: the merge of a
//! report ([`merge`]), the filters ([`query`]) and the statements that run
//! them ([`sql`], [`exec`]) are written once, over the table row both hold
//! ([`row`]); `inventory` and `central` only run statements.

pub mod central;
pub mod endpoint;
pub mod exec;
pub mod fleet;
pub mod inventory;
pub mod merge;
pub mod print;
pub mod print_history;
pub mod query;
pub mod row;
pub mod sql;
