//! `sensor run`: the appliance. Parses the flags, sets up logging from the
//! merged settings, turns signals into the daemon's shutdown (SIGTERM,
//! SIGINT) and reload (SIGHUP), and runs `netsensor::appliance::daemon`,
//! which does everything else (schedules, inventory, service port 48999,
//! reporting, the drain).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use netsensor::appliance::daemon::Daemon;
use netsensor::appliance::settings::{self, Overrides};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::usage;
use crate::cmd::proxy::ProxyFlags;
use crate::logging::{self, Style};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Configuration file (TOML); flags override it. Default: /etc/sensor/sensor.toml when it exists and no --profile is given.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A scan profile (TOML); repeatable. Without any, every `*.toml` in the profiles directory.
    #[arg(long = "profile", value_name = "FILE")]
    pub profiles: Vec<PathBuf>,
    /// Where profiles live when no --profile is given [default: /etc/sensor/profiles.d].
    #[arg(long, value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// The sensor's state: the inventory database [default: /var/lib/sensor].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Trust this PEM bundle of private CAs too (repeatable; added to the config's).
    #[arg(long = "ca-bundle", value_name = "FILE")]
    pub ca_bundles: Vec<PathBuf>,
    /// Consecutive complete runs without an endpoint before it is reported gone [default: 3].
    #[arg(long, value_name = "N")]
    pub gone_after: Option<u32>,
    /// Seconds to let running scans finish after SIGTERM [default: 30].
    #[arg(long, value_name = "S")]
    pub grace: Option<u64>,
    /// Serve port 48999's services here: agent proxy, /healthz, /metrics, status, report intake.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    #[command(flatten)]
    pub proxy: ProxyFlags,
    /// Report changes to this upstream (`https://…`; `http://` only for closed segments and tests). Repeatable: a fleet's other centrals, tried in order.
    #[arg(long, value_name = "URL")]
    pub upstream: Vec<String>,
    /// Bearer token presented to the upstream.
    #[arg(long, value_name = "T", env = "SENSOR_UPSTREAM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Accept reports from sensors presenting this bearer token (repeatable).
    #[arg(long = "accept-token", value_name = "T")]
    pub accept_tokens: Vec<String>,
    /// An administrator token of the fleet API on the service port (repeatable; 16+ characters; see docs/fleet.md).
    #[arg(long = "admin-token", value_name = "T")]
    pub admin_tokens: Vec<String>,
    /// Enroll with the upstream central: exchange this one-time token for a credential kept in the state directory.
    #[arg(long, value_name = "T")]
    pub enroll_token: Option<String>,
    /// This sensor's name in the fleet (`[sensor] name`).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Central: seconds of silence before an enrolled sensor is offline [default: 90].
    #[arg(long, value_name = "S")]
    pub offline_after: Option<u64>,
    /// This sensor's id in reports [default: derived from /etc/machine-id].
    #[arg(long, value_name = "ID")]
    pub sensor_id: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Run every profile once, now (schedules and windows aside), then exit.
    #[arg(long)]
    pub once: bool,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            profiles: self.profiles.clone(),
            profiles_dir: self.profiles_dir.clone(),
            state_dir: self.state_dir.clone(),
            ca_bundles: self.ca_bundles.clone(),
            gone_after: self.gone_after,
            grace: self.grace.map(Duration::from_secs),
            listen: self.listen.clone(),
            proxy: self.proxy.overrides(),
            upstream: self.upstream.first().cloned(),
            fallback_upstreams: self.upstream.iter().skip(1).cloned().collect(),
            token: self.token.clone(),
            accept_tokens: self.accept_tokens.clone(),
            admin_tokens: self.admin_tokens.clone(),
            enroll_token: self.enroll_token.clone(),
            name: self.name.clone(),
            offline_after: self.offline_after.map(Duration::from_secs),
            sensor_id: self.sensor_id.clone(),
            log_format: self.log_format.clone(),
        }
    }
}

pub async fn run(args: RunArgs, deprecated: &[String]) -> anyhow::Result<()> {
    let settings = settings::load(&args.overrides()).map_err(usage)?;
    let log = &settings.config.log;
    logging::init_logging(&log.level, Style::Daemon(log.format));
    logging::warn_deprecated(deprecated);
    let shutdown = CancellationToken::new();
    let reload = Arc::new(Notify::new());
    let signals = signals(shutdown.clone(), reload.clone())?;
    let mut daemon = Daemon::start(settings)
        .await
        .map_err(|e| if e.is_invalid() { usage(e) } else { e.into() })?;
    if args.once {
        daemon = daemon.once();
    }
    let stopped = daemon.run(shutdown, reload).await;
    signals.abort();
    tracing::info!(
        unfinished_runs = stopped.unfinished_runs,
        late_tasks = stopped.late_tasks.len(),
        "stopped"
    );
    Ok(())
}

/// SIGTERM and SIGINT fire `shutdown`; SIGHUP asks for a reload.
fn signals(shutdown: CancellationToken, reload: Arc<Notify>) -> anyhow::Result<JoinHandle<()>> {
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => shutdown.cancel(),
                _ = int.recv() => shutdown.cancel(),
                _ = hup.recv() => reload.notify_one(),
            }
        }
    }))
}
