//! `sensor generate-assets --out DIR` (hidden): the man pages and shell
//! completions the Debian package ships, generated from the clap definition so
//! they never drift from the binary. `packaging/build-deb.sh` runs it.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Args, Debug)]
pub struct AssetsArgs {
    /// Directory to write into: `man/sensor.1`, `man/sensor-SUBCOMMAND.1`, `completions/{sensor.bash,_sensor,sensor.fish}`.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: AssetsArgs) -> anyhow::Result<()> {
    let man = args.out.join("man");
    let completions = args.out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // One page for `sensor` and one per visible subcommand (sensor-scan.1, sensor-profiles-check.1 …).
    clap_mangen::generate_to(crate::cli::Cli::command(), &man)
        .with_context(|| format!("cannot write man pages into {}", man.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = visible(crate::cli::Cli::command());
        clap_complete::generate_to(shell, &mut cmd, "sensor", &completions)
            .with_context(|| format!("cannot write {shell} completions into {}", completions.display()))?;
    }
    println!("{}", args.out.display());
    Ok(())
}

/// The command without its hidden subcommands (clap_complete would offer them;
/// clap_mangen already skips them). Unbuilt, so `--help`/`--version` come back
/// when the generator builds it.
fn visible(cmd: clap::Command) -> clap::Command {
    let subcommands: Vec<clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned().collect();
    // The name and version are those of `#[command(name = "sensor", version)]`.
    let mut out = clap::Command::new("sensor")
        .version(env!("CARGO_PKG_VERSION"))
        .args(cmd.get_arguments().cloned())
        .subcommands(subcommands)
        .subcommand_required(true);
    if let Some(a) = cmd.get_about() {
        out = out.about(a.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn completions_leave_out_hidden_commands() {
        use clap::CommandFactory;
        let cmd = super::visible(crate::cli::Cli::command());
        assert!(cmd.find_subcommand("generate-assets").is_none());
        assert!(cmd.find_subcommand("scan").is_some());
        assert!(cmd.get_arguments().any(|a| a.get_id() == "verbose"));
        let mut out = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut super::visible(crate::cli::Cli::command()),
            "sensor",
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("profiles") && !text.contains("generate-assets"));
    }
}
