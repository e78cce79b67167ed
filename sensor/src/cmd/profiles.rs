//! `sensor profiles check FILE…`: validate scan profiles without scanning.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use netsensor::appliance::profile;

use crate::cli::UsageError;

#[derive(Args, Debug)]
pub struct ProfilesArgs {
    #[command(subcommand)]
    pub command: ProfilesCommand,
}

#[derive(Subcommand, Debug)]
pub enum ProfilesCommand {
    /// Parse and validate profiles; print a summary of each or every error.
    Check {
        /// Profile files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(args: ProfilesArgs) -> anyhow::Result<()> {
    let ProfilesCommand::Check { files } = args.command;
    let mut failed = 0;
    for file in &files {
        match profile::load(file) {
            Ok(p) => println!("ok  {}: profile {}", file.display(), p.summary()),
            Err(e) => {
                failed += 1;
                eprintln!("error  {e}");
            }
        }
    }
    if failed > 0 {
        return Err(UsageError(format!(
            "{failed} of {} profile(s) invalid; nothing was changed",
            files.len()
        ))
        .into());
    }
    Ok(())
}
