//! One module per subcommand: its clap arguments and what it does with
//! them, by calling the library. Nothing here schedules, stores, reports or
//! measures; the commands print and map errors to exit codes.

pub mod alerts;
pub mod assets;
pub mod config;
pub mod demo;
pub mod fleet;
pub mod grade;
pub mod inventory;
pub mod outbox;
pub mod profiles;
pub mod proxy;
pub mod run;
pub mod scan;
pub mod scans;
pub mod status;
