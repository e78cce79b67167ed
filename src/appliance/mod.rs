//! The appliance around the engine: what an operator configures (the sensor
//! configuration, scan profiles and the flags over them), when each profile
//! runs (schedules, windows), one run of one profile as a job, and the
//! daemon that runs them all with the inventory, the service port and
//! reporting.
//!
//! Pure decisions ([`settings`], [`schedule`], [`tick`]) are kept apart from
//! the parts that do I/O ([`daemon`], [`pipeline`], [`service`]) so the
//! rules are tested without sockets or clocks; the `sensor` binary only
//! parses its command line, sets up logging and signals, and calls in here.

pub mod config;
pub mod console;
pub mod daemon;
pub mod identity;
pub mod job;
pub mod member;
pub mod metrics;
pub mod pipeline;
pub mod preflight;
pub mod profile;
pub mod profile_set;
pub mod proxy;
pub mod resume;
pub mod schedule;
pub mod service;
pub mod settings;
pub mod state;
pub mod status;
pub mod tick;
pub mod upstream;
