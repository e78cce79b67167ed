//! `sensor config check FILE`: validate the appliance's configuration (and
//! the secrets and certificates it names) without starting anything.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use netsensor::appliance::config;

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
    let c = config::load(&file).map_err(|e| UsageError(e.to_string()))?;
    let mut problems = Vec::new();
    for (field, path) in [
        (
            "upstream.token_file",
            c.upstream.as_ref().and_then(|u| u.token_file.clone()),
        ),
        ("proxy.auth_token_file", c.proxy.auth_token_file.clone()),
    ] {
        if let Some(p) = path
            && let Err(e) = config::read_secret(&p, field)
        {
            problems.push(e.to_string());
        }
    }
    if let Some(p) = &c.intake.tokens_file
        && let Err(e) = config::read_tokens(p)
    {
        problems.push(e.to_string());
    }
    if let Some(p) = &c.service.admin_token_file
        && let Err(e) = config::read_token_lines(p, "service.admin_token_file")
    {
        problems.push(e.to_string());
    }
    for (field, path) in [
        ("service.tls_cert", &c.service.tls_cert),
        ("service.tls_key", &c.service.tls_key),
    ] {
        if let Some(p) = path
            && !p.exists()
        {
            problems.push(format!("{}: `{field}`: {} does not exist", file.display(), p.display()));
        }
    }
    // Alert channels: their secret files and CA bundles (nothing is sent).
    for ch in &c.alerts.channels {
        if let Err(e) = netsensor::alert::channel::Sender::new(ch) {
            problems.push(format!("{}: {e}", file.display()));
        }
    }
    if !problems.is_empty() {
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
    println!("ok  {}", file.display());
    println!(
        "  sensor {} state {} profiles {}",
        c.sensor.id.as_deref().unwrap_or("(id from machine-id)"),
        c.sensor.state_dir.display(),
        c.sensor.profiles_dir.display()
    );
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
