//! `sensor alerts test --config FILE`: a test notice through every channel
//! the configuration names, with what each answered; `sensor alerts status
//! --state-dir DIR`: what was sent, what failed for good, what is waiting.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use netsensor::alert::channel::{Answer, Sender};
use netsensor::alert::notice::{Message, SensorRef};
use netsensor::alert::queue::Queue;
use netsensor::alert::rules::test_notice;
use netsensor::appliance::config;

use crate::cli::usage;

#[derive(Args, Debug)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub command: AlertsCommand,
}

#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// Send a test notice through every configured channel; print each answer.
    Test(TestArgs),
    /// Notices sent, failed (parked, with the reason) and waiting, by channel.
    Status(StatusArgs),
}

#[derive(Args, Debug)]
pub struct TestArgs {
    /// The configuration file [default: /etc/sensor/sensor.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only this channel (repeatable).
    #[arg(long = "channel", value_name = "NAME")]
    pub channels: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long, default_value = "/var/lib/sensor", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// text or json.
    #[arg(short = 'o', long = "output", default_value = "text")]
    pub format: String,
}

pub async fn run(args: AlertsArgs) -> anyhow::Result<()> {
    match args.command {
        AlertsCommand::Test(t) => test(t).await,
        AlertsCommand::Status(s) => status(s),
    }
}

async fn test(args: TestArgs) -> anyhow::Result<()> {
    let file = args.config.unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    let c = config::load(&file).map_err(usage)?;
    let channels: Vec<_> = c
        .alerts
        .channels
        .iter()
        .filter(|ch| args.channels.is_empty() || args.channels.contains(&ch.name))
        .collect();
    if channels.is_empty() {
        return Err(usage(format!(
            "{}: no [[alerts.channel]]{} to test",
            file.display(),
            if args.channels.is_empty() { "" } else { " of that name" }
        )));
    }
    let sensor = SensorRef {
        id: c
            .sensor
            .id
            .clone()
            .unwrap_or_else(netsensor::appliance::identity::derived_sensor_id),
        name: c.sensor.name.clone(),
    };
    let mut failed = 0;
    for ch in channels {
        let sender = match Sender::new(ch) {
            Ok(s) => s,
            Err(e) => {
                failed += 1;
                println!("{:<16} {:<8} NOT SENT: {e}", ch.name, ch.kind.name());
                continue;
            }
        };
        let notice = test_notice(&ch.name, time::OffsetDateTime::now_utc());
        let message = match sender.digest {
            Some(_) => Message::digest(sensor.clone(), notice.id.clone(), vec![notice], 0),
            None => Message::single(sensor.clone(), notice),
        };
        let (verdict, text) = match sender.send(&message).await {
            Answer::Delivered(a) => ("delivered", a),
            Answer::Retry { reason, .. } => {
                failed += 1;
                ("FAILED (would be retried)", reason)
            }
            Answer::Refused(reason) => {
                failed += 1;
                ("REFUSED (would be parked)", reason)
            }
        };
        println!("{:<16} {:<8} {verdict}: {text}", ch.name, sender.kind);
    }
    if failed > 0 {
        anyhow::bail!("{failed} channel(s) did not take the test notice");
    }
    Ok(())
}

fn status(args: StatusArgs) -> anyhow::Result<()> {
    if !matches!(args.format.as_str(), "text" | "json") {
        return Err(usage(format!("-o `{}`: use text or json", args.format)));
    }
    let db = args.state_dir.join("inventory.sqlite");
    if !db.exists() {
        return Err(usage(format!("no inventory in {}", args.state_dir.display())));
    }
    let st = Queue::open(&db)
        .and_then(|q| q.status())
        .with_context(|| format!("cannot read the alert queue in {}", db.display()))?;
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    println!("alerts: {} sent, {} failed, {} waiting", st.sent, st.failed, st.waiting);
    for (name, c) in &st.channels {
        println!(
            "  {name:<16} sent {:<6} failed {:<4} waiting {:<4} (retrying {}){}",
            c.sent,
            c.failed,
            c.waiting,
            c.retrying,
            c.last_error
                .as_deref()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default()
        );
    }
    for p in &st.parked {
        println!("  parked on {}: {} ({}): {}", p.channel, p.title, p.notice, p.reason);
    }
    Ok(())
}
