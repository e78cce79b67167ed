//! `sensor scans run-now NAME`: ask a running daemon to run a profile now,
//! outside its schedule and window (`POST /api/v1/profiles/{name}/run-now`
//! on its service port, from this machine).

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::cli::usage;
use crate::cmd::status;

#[derive(Args, Debug)]
pub struct ScansArgs {
    #[command(subcommand)]
    pub command: ScansCommand,
}

#[derive(Subcommand, Debug)]
pub enum ScansCommand {
    /// Run the profile NAME now on the running daemon (its schedule and window aside).
    RunNow {
        /// The profile's `name`.
        name: String,
        /// The daemon's service address [default: the config's service.listen, else 127.0.0.1:48999].
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
        /// Configuration file to read service.listen from [default: /etc/sensor/sensor.toml when it exists].
        #[arg(long, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
    },
}

/// A path segment with everything but unreserved characters escaped.
fn escaped(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub async fn run(args: ScansArgs) -> anyhow::Result<()> {
    match args.command {
        ScansCommand::RunNow { name, listen, config } => {
            let addr = status::target(listen.as_deref(), config.as_deref())?;
            let path = format!("/api/v1/profiles/{}/run-now", escaped(&name));
            let (code, line, body) = status::call(addr, "POST", &path, None).await?;
            let said = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| line.clone());
            match code {
                202 => {
                    println!("profile `{name}`: run started (follow it with `sensor status`)");
                    Ok(())
                }
                404 => Err(usage(said)),
                _ => anyhow::bail!("{addr}: {said}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_escaped_for_the_path() {
        assert_eq!(super::escaped("lab-1"), "lab-1");
        assert_eq!(super::escaped("lab net/a"), "lab%20net%2Fa");
    }
}
