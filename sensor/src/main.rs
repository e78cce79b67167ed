//! `sensor`: the netsensor appliance binary. Thin by design: argument
//! parsing, logging, terminal progress and wiring; the engine is `netsensor`.

mod assets;
mod cli;
mod config;
mod demo;
mod grade;
mod inventory;
mod outbox;
mod profiles;
mod proxy;
mod reporting;
mod run;
mod status;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes scripts can rely on.
pub mod exit {
    /// The scan ran to the end (failed handshakes are results, not errors).
    pub const OK: u8 = 0;
    /// Something went wrong while running (I/O, TLS set-up, output file).
    pub const RUNTIME: u8 = 1;
    /// The command line or a target/port list is invalid; nothing was scanned.
    pub const USAGE: u8 = 2;
}

fn main() -> ExitCode {
    let args = cli::Cli::parse_from(cli::normalise_args(std::env::args_os()));
    // The daemon sets up its own logging from its configuration (text or JSON).
    if !matches!(args.command, cli::Command::Run(_)) {
        cli::init_logging(args.verbose);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sensor: cannot start the async runtime: {e}");
            return ExitCode::from(exit::RUNTIME);
        }
    };
    let result = runtime.block_on(async {
        match args.command {
            cli::Command::Scan(scan) => cli::scan(*scan).await,
            cli::Command::Demo(demo) => demo::run(demo).await,
            cli::Command::Grade(g) => grade::run(g).await,
            cli::Command::Run(r) => run::run(r).await,
            cli::Command::Inventory(i) => inventory::run(i),
            cli::Command::Status(s) => status::run(s).await,
            cli::Command::Config(c) => config::run(c),
            cli::Command::Profiles(p) => profiles::run(p),
            cli::Command::Proxy(p) => proxy::run(p).await,
            cli::Command::Outbox(o) => outbox::run(o),
            cli::Command::GenerateAssets(a) => assets::run(a),
        }
    });
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            let code = if e.downcast_ref::<cli::UsageError>().is_some() {
                exit::USAGE
            } else {
                exit::RUNTIME
            };
            eprintln!("sensor: {e:#}");
            ExitCode::from(code)
        }
    }
}
