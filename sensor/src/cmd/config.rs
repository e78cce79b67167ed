//! `sensor config check FILE`: validate the appliance's configuration (and
//! the secrets and certificates it names) without starting anything.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use netsensor::appliance::config;
use netsensor::appliance::preflight::{self, Problems};
use netsensor::appliance::settings::{self, Overrides};

use crate::cli::UsageError;

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Parse and validate a configuration file; print what it sets or every error.
    Check {
        /// The configuration file [default: /etc/sensor/sensor.toml].
        file: Option<PathBuf>,
    },
}

pub fn run(args: ConfigArgs) -> anyhow::Result<()> {
    let ConfigCommand::Check { file } = args.command;
    let file = file.unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    // Exactly what `sensor run --config FILE` would check before starting.
    let overrides = Overrides {
        config: Some(file.clone()),
        ..Overrides::default()
    };
    let settings = settings::load(&overrides).map_err(|e| UsageError(e.to_string()))?;
    let checked = match preflight::check(&settings) {
        Ok(checked) => checked,
        Err(Problems(problems)) => {
            for p in &problems {
                eprintln!("error  {p}");
            }
            return Err(UsageError(format!(
                "{}: {} problem(s); nothing was changed",
                file.display(),
                problems.len()
            ))
            .into());
        }
    };
    let c = &settings.config;
    println!("ok  {}", file.display());
    println!(
        "  sensor {} state {} profiles {}",
        c.sensor.id.as_deref().unwrap_or("(id from machine-id)"),
        c.sensor.state_dir.display(),
        c.sensor.profiles_dir.display()
    );
    println!("  {} scan profile(s)", checked.profiles.len());
    println!(
        "  service {}{}",
        c.service.listen.map_or("off".to_string(), |a| a.to_string()),
        if c.service.tls_cert.is_some() {
            " (TLS and plain)"
        } else {
            ""
        }
    );
    println!(
        "  upstream {}",
        c.upstream.as_ref().map_or("none".to_string(), |u| u.url.clone())
    );
    println!(
        "  proxy allows {} destination(s); intake accepts {} sensor token(s)",
        c.proxy.allow.len(),
        c.intake.tokens.len()
    );
    println!(
        "  alerts: {} channel(s), {} rule(s)",
        c.alerts.channels.len(),
        c.alerts.rules.len()
    );
    Ok(())
}
