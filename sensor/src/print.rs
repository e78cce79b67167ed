//! What every command that prints records shares: one spelling of
//! `--output` (table, json, ndjson, csv), and how the sink prints for where
//! it goes (colour for a person at a terminal, sorted CSV for a file).

use std::io::IsTerminal;

use netsensor::output::{self, Format};

use crate::cli::usage;

/// `-o FORMAT` as every command that prints records takes it.
pub fn format(text: &str) -> anyhow::Result<Format> {
    text.parse().map_err(usage)
}

/// The sink's options: to standard output (`to_stdout`), colour when it is
/// a terminal and `NO_COLOR` is not set; to a file, CSV sorted like the
/// table. `soon_days`: expiry within this many days is coloured.
pub fn options(to_stdout: bool, soon_days: i64) -> output::Options {
    let terminal = to_stdout && std::io::stdout().is_terminal();
    output::Options {
        context: output::Context {
            soon_days,
            ..output::Context::default()
        },
        colour: output::style::wanted(terminal, std::env::var_os("NO_COLOR").as_deref()),
        sorted: !to_stdout,
    }
}
