//! Logging for every command: tracing to stderr, filtered by `SENSOR_LOG`
//! when set, else by the level the command asks for.
//!
//! One set-up so that the filter, the rustls quieting and the writer are the
//! same everywhere; commands differ only in their default level (`-v`, or
//! the daemon's configured level) and in how lines look (colour for a
//! person, plain text or JSON lines for journald).

use netsensor::appliance::config::LogFormat;

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// For a person at a terminal: text with colour.
    Terminal,
    /// The daemon's text or JSON lines (journald keeps them).
    Daemon(LogFormat),
}

/// The default level of an interactive command: warnings, `-v` info, `-vv` debug.
pub fn level(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    }
}

/// Installs the subscriber (once; later calls do nothing). `level` is a
/// tracing filter (`info`, `netsensor=debug,info`).
pub fn init_logging(level: &str, style: Style) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SENSOR_LOG")
        // rustls warns about every odd message our probes send on purpose (the
        // demo's servers run in this process): keep it to errors.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},rustls=error")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match style {
        Style::Terminal => builder.try_init(),
        Style::Daemon(LogFormat::Json) => builder.json().flatten_event(true).with_current_span(false).try_init(),
        Style::Daemon(LogFormat::Text) => builder.with_ansi(false).try_init(),
    };
}

/// Logs each deprecation warning (call after [`init_logging`]).
pub fn warn_deprecated(warnings: &[String]) {
    for w in warnings {
        tracing::warn!("{w}");
    }
}
