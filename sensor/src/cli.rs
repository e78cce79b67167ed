//! The command line: the top-level parser, the invalid-input error class,
//! and the spellings clap cannot take as they are (nmap's `-iL`, `-Pn`) or that are
//! on their way out (deprecated aliases, still accepted with a warning).

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::cmd;

#[derive(Parser, Debug)]
#[command(
    name = "sensor",
    version,
    about = "Network discovery scanner and TLS sensor appliance"
)]
pub struct Cli {
    /// More log output (-v info, -vv debug); logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan targets once: find TLS endpoints and unsecured open ports.
    Scan(Box<cmd::scan::ScanArgs>),
    /// One endpoint in depth: every protocol, cipher suite, group and feature.
    Grade(cmd::grade::GradeArgs),
    /// Start demo servers on 127.0.2.1-3 and scan them (no configuration needed).
    Demo(cmd::demo::DemoArgs),
    /// Run as the appliance: every profile on its schedule, with the inventory.
    Run(Box<cmd::run::RunArgs>),
    /// Read the inventory of a state directory (or `inventory export` it whole).
    Inventory(cmd::inventory::InventoryArgs),
    /// Ask a running daemon what it is doing (over its service port).
    Status(cmd::status::StatusArgs),
    /// Act on a running daemon's scans: `sensor scans run-now NAME`.
    Scans(cmd::scans::ScansArgs),
    /// Validate the appliance's configuration file.
    Config(cmd::config::ConfigArgs),
    /// Validate scan profiles without scanning.
    Profiles(cmd::profiles::ProfilesArgs),
    /// Serve the agent proxy alone: CONNECT tunnels to allowlisted destinations.
    Proxy(cmd::proxy::ProxyArgs),
    /// What is waiting to reach upstream: `sensor outbox status --state-dir DIR`.
    Outbox(cmd::outbox::OutboxArgs),
    /// Expiry and risk notices: `sensor alerts test --config FILE`, `sensor alerts status`.
    Alerts(cmd::alerts::AlertsArgs),
    /// A central sensor's fleet: `sensor fleet sensors|enroll-token|suspend|resume|void|scans …`.
    Fleet(Box<cmd::fleet::FleetArgs>),
    /// Write the man pages and shell completions (for packaging).
    #[command(hide = true)]
    GenerateAssets(cmd::assets::AssetsArgs),
}

/// The invalid-input error class: exit code 2, nothing was scanned.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// `e` as invalid input (exit code 2).
pub fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

/// clap has no single-dash long options; accept nmap's `-iL FILE` and
/// `-Pn` (`--no-host-discovery`) anyway.
pub fn normalise_args(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    args.map(|a| match a.to_str() {
        Some("-iL") => OsString::from("--input-list"),
        Some("-Pn") => OsString::from("--no-host-discovery"),
        _ => a,
    })
    .collect()
}

/// Old flag names that still work (as clap aliases) and the name to use
/// instead. Listed in CHANGELOG.md under "Deprecated".
const DEPRECATED: [(&str, &str); 1] = [("--auth-token", "--proxy-auth-token")];

/// One warning per deprecated flag name on the command line (clap accepts
/// the alias silently; it does not say which spelling was used).
pub fn deprecations(args: &[OsString]) -> Vec<String> {
    let mut found = Vec::new();
    for (old, new) in DEPRECATED {
        let used = args.iter().any(|a| {
            a.to_str()
                .is_some_and(|a| a == old || a.strip_prefix(old).is_some_and(|rest| rest.starts_with('=')))
        });
        if used {
            found.push(format!("{old} is deprecated and will be removed; use {new}"));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn nmaps_pn_is_no_host_discovery() {
        for spelling in ["-Pn", "--no-host-discovery"] {
            let line = normalise_args(args(&["sensor", "scan", spelling, "127.0.0.0/16"]).into_iter());
            let off = match Cli::try_parse_from(line).unwrap().command {
                Command::Scan(s) => s.no_host_discovery,
                _ => false,
            };
            assert!(off, "{spelling}");
        }
        let line = normalise_args(args(&["sensor", "scan", "127.0.0.0/16"]).into_iter());
        assert!(matches!(Cli::try_parse_from(line).unwrap().command, Command::Scan(s) if !s.no_host_discovery));
    }

    #[test]
    fn deprecated_spellings_are_named_once() {
        let w = deprecations(&args(&["sensor", "proxy", "--auth-token", "t"]));
        assert_eq!(
            w,
            ["--auth-token is deprecated and will be removed; use --proxy-auth-token"]
        );
        assert_eq!(deprecations(&args(&["sensor", "proxy", "--auth-token=t"])).len(), 1);
        assert!(deprecations(&args(&["sensor", "proxy", "--proxy-auth-token", "t"])).is_empty());
        assert!(deprecations(&args(&["sensor", "run", "--auth-tokens"])).is_empty());
    }

    #[test]
    fn both_proxy_token_spellings_reach_the_same_field_in_both_commands() {
        for command in ["proxy", "run"] {
            for flag in ["--auth-token", "--proxy-auth-token"] {
                let mut line = vec!["sensor", command, flag, "s3cret"];
                if command == "proxy" {
                    line.extend(["--listen", "127.0.0.1:0", "--allow", "a.example:443"]);
                }
                let token = match Cli::try_parse_from(line).unwrap().command {
                    Command::Proxy(p) => p.proxy.auth_token,
                    Command::Run(r) => r.proxy.auth_token,
                    _ => None,
                };
                assert_eq!(token.as_deref(), Some("s3cret"), "{command} {flag}");
            }
        }
    }
}
