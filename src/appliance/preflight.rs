//! Everything the daemon checks before it starts, in one place: what
//! `sensor run` refuses, `sensor config check` refuses, with the same words.
//!
//! The two used to have their own lists, and they drifted: a missing CA
//! bundle, a token bound to an id no report can carry or a broken log
//! filter passed the check and stopped the daemon, whose error then named a
//! flag nobody had passed (issue 17, defect 4). Now both call [`check`] on
//! the same [`Settings`] (the file, with the flags laid over it for `run`),
//! which reads every file the settings name (profiles, CA bundles, secrets,
//! token lists, the service certificate) and builds every client, collecting
//! every problem rather than the first. Each problem names where to fix it:
//! the configuration file, its line and key, or the flag when a flag gave
//! the value.

use std::path::{Path, PathBuf};

use crate::appliance::config::{self, ConfigError};
use crate::appliance::profile::{Profile, line_of_key};
use crate::appliance::profile_set::{self, ProfileSetError};
use crate::appliance::settings::Settings;
use crate::appliance::{proxy, upstream};
use crate::grade::{TrustConfig, TrustStores};
use crate::report::delivery::Client;

/// Every problem found, one per line, each `file:line: `field`: what (fix: how)`.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct Problems(pub Vec<String>);

/// What the checks loaded and the daemon runs with.
#[derive(Debug)]
pub struct Checked {
    pub profiles: Vec<Profile>,
}

/// Checks `settings` and everything it names. Reads files, builds the
/// upstream and alert clients; binds and sends nothing.
pub fn check(settings: &Settings) -> Result<Checked, Problems> {
    let c = &settings.config;
    let file = settings.config_file.as_deref();
    let text = file.and_then(|f| std::fs::read_to_string(f).ok()).unwrap_or_default();
    let at = Where { file, text: &text };
    let mut problems: Vec<String> = Vec::new();

    let profiles = match profile_set::load(
        &settings.profile_files,
        &c.sensor.profiles_dir,
        settings.config_file.is_some(),
    ) {
        Ok(p) => p,
        Err(ProfileSetError::Invalid(each)) => {
            problems.extend(each);
            Vec::new()
        }
        Err(e) => {
            problems.push(e.to_string());
            Vec::new()
        }
    };
    if profiles.is_empty() && problems.is_empty() && c.service.listen.is_none() && file.is_none() {
        problems.push(format!(
            "nothing to do: no scan profiles (give --profile FILE or put *.toml profiles in {}) and no --listen",
            c.sensor.profiles_dir.display()
        ));
    }

    for bundle in &c.sensor.ca_bundles {
        let only = TrustConfig {
            web_roots: false,
            system: false,
            ca_bundles: vec![bundle.clone()],
        };
        if let Err(e) = TrustStores::load(&only) {
            let fix = "give a readable PEM file of CA certificates";
            problems.push(match settings.ca_bundle_flags.contains(bundle) {
                true => format!("--ca-bundle {}: {e} (fix: {fix})", bundle.display()),
                false => at.value("sensor.ca_bundles", bundle, e.to_string(), fix),
            });
        }
    }

    if let Some(up) = &c.upstream {
        // A fleet member reports with the credential it has or will enroll for.
        let mut up = up.clone();
        let enrolled = c.fleet.enroll_token.is_some()
            || matches!(
                crate::appliance::member::read_credential(&c.sensor.state_dir),
                Ok(Some(_))
            );
        if up.token.is_none() && up.token_file.is_none() && enrolled {
            up.token = Some("fleet-credential".into());
        }
        match upstream::reporting(&up, &settings.sensor_id, c.sensor.name.as_deref()) {
            Ok(r) => {
                if let Err(e) = Client::new(&r.upstream) {
                    problems.push(at.key(
                        "upstream.url",
                        format!("{e}"),
                        "check url, ca_bundle, client_cert and client_key",
                    ));
                }
            }
            Err(upstream::UpstreamError::Secret(e)) => problems.push(at.secret("upstream.token_file", e)),
            Err(upstream::UpstreamError::SensorId(id)) => problems.push(match c.sensor.id.is_some() {
                true => at.key(
                    "sensor.id",
                    format!("`{id}` cannot go into reports"),
                    "use 1 to 64 letters, digits, `-`, `_` or `.`",
                ),
                false => format!(
                    "the sensor id derived from /etc/machine-id (`{id}`) cannot go into reports (fix: set [sensor] id)"
                ),
            }),
            Err(e) => problems.push(at.key("upstream", e.to_string(), "set [upstream] token or token_file")),
        }
    }

    if c.service.listen.is_some() {
        match proxy::config(c) {
            Ok(_) => {}
            Err(proxy::ProxySettingsError::Secret(e)) => problems.push(at.secret("proxy.auth_token_file", e)),
            Err(proxy::ProxySettingsError::Tls { field, path, problem }) => {
                // `service.tls_cert (--tls-cert)`: the key, whichever gave it.
                let key = field.split_whitespace().next().unwrap_or(field);
                problems.push(at.key(
                    key,
                    format!("{}: {problem}", path.display()),
                    "give the PEM chain and its private key (or --tls-cert/--tls-key)",
                ))
            }
            Err(e) => problems.push(e.to_string()),
        }
        if let Some(f) = &c.intake.tokens_file
            && let Err(e) = config::read_tokens(f)
        {
            problems.push(e.to_string());
        }
    }

    for ch in &c.alerts.channels {
        if let Err(e) = crate::alert::channel::Sender::new(ch) {
            problems.push(at.key("alerts.channel", e.to_string(), "see docs/alerts.md"));
        }
    }

    match problems.is_empty() {
        true => Ok(Checked { profiles }),
        false => Err(Problems(problems)),
    }
}

/// Where a key of the configuration file is written.
struct Where<'a> {
    file: Option<&'a Path>,
    text: &'a str,
}

impl Where<'_> {
    fn error(&self, field: &str, line: Option<usize>, message: String, fix: &str) -> String {
        ConfigError {
            file: self
                .file
                .map_or_else(|| "(flags)".to_string(), |f| f.display().to_string()),
            line,
            field: Some(field.to_string()),
            message,
            fix: Some(fix.to_string()),
        }
        .to_string()
    }

    /// A problem with the key `field` (`section.key`).
    fn key(&self, field: &str, message: String, fix: &str) -> String {
        let key = field.rsplit('.').next().unwrap_or(field);
        self.error(field, line_of_key(self.text, key), message, fix)
    }

    /// A problem with one value of a list key: the line that value is on.
    fn value(&self, field: &str, value: &Path, message: String, fix: &str) -> String {
        let quoted = format!("\"{}\"", value.display());
        let line = self
            .text
            .lines()
            .position(|l| l.contains(&quoted))
            .map(|i| i + 1)
            .or_else(|| line_of_key(self.text, field.rsplit('.').next().unwrap_or(field)));
        self.error(field, line, message, fix)
    }

    /// A secret file that cannot be used: where it is named, and why.
    fn secret(&self, field: &str, e: ConfigError) -> String {
        let path = PathBuf::from(&e.file);
        self.key(
            field,
            format!("{}: {}", path.display(), e.message),
            e.fix.as_deref().unwrap_or("create the file"),
        )
    }
}
