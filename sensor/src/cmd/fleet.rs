//! `sensor fleet …`: the fleet API of a central sensor (docs/fleet.md) from
//! the command line, with an administrator token. A scan definition is
//! created from a TOML profile file, so local and central profiles are one
//! format: `sensor fleet scans create lab.toml --sensors a,b --split`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use netsensor::fleet::definition;
use serde_json::{Value, json};

use crate::cli::usage;

#[derive(Args, Debug)]
pub struct FleetArgs {
    /// The central sensor's service URL.
    #[arg(
        long,
        value_name = "URL",
        env = "SENSOR_CENTRAL",
        default_value = "http://127.0.0.1:48999"
    )]
    pub central: String,
    /// An administrator token of the central (`--admin-token` there).
    #[arg(long, value_name = "T", env = "SENSOR_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// The enrolled sensors and their status (online, offline, suspended, voided).
    Sensors,
    /// A one-time enrollment token for a new sensor (`sensor run --enroll-token`).
    EnrollToken,
    /// Suspend a sensor (by id or name): it runs and reports nothing until resumed.
    Suspend { sensor: String },
    /// Resume a suspended sensor.
    Resume { sensor: String },
    /// Void a sensor: its credential is refused from now on (final).
    Void { sensor: String },
    /// Scan definitions.
    Scans {
        #[command(subcommand)]
        command: ScansCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ScansCommand {
    /// Every definition.
    List,
    /// One definition with each assigned sensor's last run.
    Show {
        id: String,
    },
    /// Define a scan from a TOML profile file.
    Create {
        file: PathBuf,
        /// The sensors (names or ids) that run it, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        sensors: Vec<String>,
        /// Share one plan between the sensors (each a disjoint shard).
        #[arg(long)]
        split: bool,
    },
    /// Replace a definition's profile with a TOML file (a new revision; sensors and split kept unless given).
    Update {
        id: String,
        file: PathBuf,
        #[arg(long, value_delimiter = ',')]
        sensors: Vec<String>,
        #[arg(long)]
        split: Option<bool>,
    },
    Suspend {
        id: String,
    },
    Resume {
        id: String,
    },
    Delete {
        id: String,
    },
}

struct Central {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Central {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let method: reqwest::Method = method.parse().context("HTTP method")?;
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        req = match body {
            Some(b) => req.json(&b),
            None => req.header("Content-Length", "0"),
        };
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{url}: {}", netsensor::report::delivery::error_chain(&e)))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// The body of a 2xx, or the API's error as this command's.
    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let (status, v) = self.call(method, path, body).await?;
        if (200..300).contains(&status) {
            return Ok(v);
        }
        let why = v["error"].as_str().unwrap_or("no reason given").to_string();
        let msg = format!("{status}: {why}");
        Err(if (400..500).contains(&status) {
            usage(msg)
        } else {
            anyhow::anyhow!(msg)
        })
    }
}

fn profile_body(file: &PathBuf) -> anyhow::Result<serde_json::Map<String, Value>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    // The same strict check as a local profile, before anything is sent.
    netsensor::appliance::profile::parse(&text, &file.display().to_string()).map_err(usage)?;
    definition::from_toml(&text).map_err(usage)
}

pub async fn run(args: FleetArgs) -> anyhow::Result<()> {
    let c = Central {
        http: reqwest::Client::builder().no_proxy().build().context("HTTP client")?,
        base: args.central.clone(),
        token: args.token.clone(),
    };
    let out = match args.command {
        FleetCommand::Sensors => {
            let v = c.ok("GET", "/api/v1/sensors", None).await?;
            if !args.json {
                println!(
                    "{:<34} {:<20} {:<10} {:<10} LAST SEEN",
                    "ID", "NAME", "STATUS", "VERSION"
                );
                for s in v.as_array().into_iter().flatten() {
                    let f = |k: &str| s[k].as_str().unwrap_or("-").to_string();
                    println!(
                        "{:<34} {:<20} {:<10} {:<10} {}",
                        f("id"),
                        f("name"),
                        f("status"),
                        f("version"),
                        f("last_seen")
                    );
                }
                return Ok(());
            }
            v
        }
        FleetCommand::EnrollToken => {
            let v = c.ok("POST", "/api/v1/enrollment-tokens", None).await?;
            if !args.json {
                println!("{}", v["token"].as_str().unwrap_or_default());
                eprintln!("one use, until {}", v["expires_at"].as_str().unwrap_or("?"));
                return Ok(());
            }
            v
        }
        FleetCommand::Suspend { sensor } => c.ok("POST", &format!("/api/v1/sensors/{sensor}/suspend"), None).await?,
        FleetCommand::Resume { sensor } => c.ok("POST", &format!("/api/v1/sensors/{sensor}/resume"), None).await?,
        FleetCommand::Void { sensor } => c.ok("POST", &format!("/api/v1/sensors/{sensor}/void"), None).await?,
        FleetCommand::Scans { command } => match command {
            ScansCommand::List => c.ok("GET", "/api/v1/scans", None).await?,
            ScansCommand::Show { id } => c.ok("GET", &format!("/api/v1/scans/{id}"), None).await?,
            ScansCommand::Create { file, sensors, split } => {
                let mut body = profile_body(&file)?;
                body.insert("sensors".into(), json!(sensors));
                if split {
                    body.insert("split".into(), json!(true));
                }
                c.ok("POST", "/api/v1/scans", Some(Value::Object(body))).await?
            }
            ScansCommand::Update {
                id,
                file,
                sensors,
                split,
            } => {
                let current = c.ok("GET", &format!("/api/v1/scans/{id}"), None).await?;
                let mut patch = profile_body(&file)?;
                // Keys the file no longer has are removed (a merge patch's null).
                for k in current["definition"].as_object().into_iter().flatten().map(|(k, _)| k) {
                    if !patch.contains_key(k) && !definition::FLEET_KEYS.contains(&k.as_str()) {
                        patch.insert(k.clone(), Value::Null);
                    }
                }
                if !sensors.is_empty() {
                    patch.insert("sensors".into(), json!(sensors));
                }
                if let Some(s) = split {
                    patch.insert("split".into(), json!(s));
                }
                c.ok("PATCH", &format!("/api/v1/scans/{id}"), Some(Value::Object(patch)))
                    .await?
            }
            ScansCommand::Suspend { id } => c.ok("POST", &format!("/api/v1/scans/{id}/suspend"), None).await?,
            ScansCommand::Resume { id } => c.ok("POST", &format!("/api/v1/scans/{id}/resume"), None).await?,
            ScansCommand::Delete { id } => {
                c.ok("DELETE", &format!("/api/v1/scans/{id}"), None).await?;
                json!({"deleted": id})
            }
        },
    };
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}
