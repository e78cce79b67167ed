//! The appliance around the engine: what an operator configures (the sensor
//! configuration and scan profiles), when each profile runs (schedules,
//! windows), and one run of one profile as a job.

pub mod config;
pub mod job;
pub mod metrics;
pub mod profile;
pub mod schedule;
