//! `sensor`: the netsensor appliance binary. Thin by design: argument
//! parsing, logging, signals, terminal output and wiring, one file per
//! subcommand under `cmd/`; the engine and the daemon are `netsensor`.

mod bar;
mod cli;
mod cmd;
mod logging;
mod parts;
mod print;

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
    let argv = cli::normalise_args(std::env::args_os());
    let deprecated = cli::deprecations(&argv);
    let args = cli::Cli::parse_from(argv);
    // The crypto library's one-time set-up (its RNG's seeding above all) runs
    // beside the runtime's start, the trust stores' load and the port scan,
    // not inside the first handshake. Nothing waits for it.
    if matches!(
        args.command,
        cli::Command::Scan(_) | cli::Command::Grade(_) | cli::Command::Demo(_) | cli::Command::Run(_)
    ) {
        netsensor::probe::tls::warm_up();
    }
    // The daemon sets up its own logging from its configuration (text or JSON).
    if !matches!(args.command, cli::Command::Run(_)) {
        logging::init_logging(logging::level(args.verbose), logging::Style::Terminal);
        logging::warn_deprecated(&deprecated);
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
            cli::Command::Scan(scan) => cmd::scan::run(*scan).await,
            cli::Command::Demo(demo) => cmd::demo::run(demo).await,
            cli::Command::Grade(g) => cmd::grade::run(g).await,
            cli::Command::Run(r) => cmd::run::run(*r, &deprecated).await,
            cli::Command::Inventory(i) => cmd::inventory::run(i),
            cli::Command::Status(s) => cmd::status::run(s).await,
            cli::Command::Scans(s) => cmd::scans::run(s).await,
            cli::Command::Config(c) => cmd::config::run(c),
            cli::Command::Profiles(p) => cmd::profiles::run(p),
            cli::Command::Proxy(p) => cmd::proxy::run(p).await,
            cli::Command::Outbox(o) => cmd::outbox::run(o),
            cli::Command::Alerts(a) => cmd::alerts::run(a).await,
            cli::Command::Fleet(f) => cmd::fleet::run(*f).await,
            cli::Command::GenerateAssets(a) => cmd::assets::run(a),
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
