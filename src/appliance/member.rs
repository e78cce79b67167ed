//! This sensor as a member of a fleet (docs/fleet.md): it enrolls once with
//! its upstream central (a one-time token for a long-lived credential kept
//! 0600 in the state directory), then, on a timer, fetches its assignments
//! (`GET /api/v1/assignments` with `If-None-Match`: the segment never needs
//! an inbound connection), sends a heartbeat, and reports the state of each
//! fleet run (started, finished, paused by its window, failed with why).
//!
//! Assignments are validated here exactly as local profiles are
//! ([`profile::parse`]), and handed to the daemon, which runs them beside
//! its local profiles. While the central is unreachable the last
//! assignments stay in force and results wait in the outbox, as always.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::appliance::profile::{self, Profile};
use crate::appliance::state::Shared;
use crate::report::delivery::error_chain;

/// The credential's file in the state directory.
pub const CREDENTIAL_FILE: &str = "fleet.credential";

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("fleet credential {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("enrollment with {url} failed: {reason}")]
    Enroll { url: String, reason: String },
}

/// The credential stored by an earlier enrollment, if any.
pub fn read_credential(state_dir: &Path) -> Result<Option<String>, MemberError> {
    let path = state_dir.join(CREDENTIAL_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(MemberError::File { path, source }),
    }
}

/// Stores the credential, readable by the sensor's user only, atomically.
pub fn write_credential(state_dir: &Path, credential: &str) -> Result<(), MemberError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join(CREDENTIAL_FILE);
    let tmp = state_dir.join(format!("{CREDENTIAL_FILE}.tmp"));
    let err = |source| MemberError::File {
        path: path.clone(),
        source,
    };
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(credential.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    if let Ok(d) = std::fs::File::open(state_dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Exchanges the one-time `token` for this sensor's credential.
pub async fn enroll(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    id: &str,
    name: &str,
) -> Result<String, MemberError> {
    let fail = |reason: String| MemberError::Enroll {
        url: url.to_string(),
        reason,
    };
    let resp = http
        .post(format!("{}/api/v1/enroll", url.trim_end_matches('/')))
        .json(&json!({"token": token, "id": id, "name": name, "version": env!("CARGO_PKG_VERSION")}))
        .send()
        .await
        .map_err(|e| fail(error_chain(&e)))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status != 201 {
        let why = body.get("error").and_then(Value::as_str).unwrap_or("no reason given");
        return Err(fail(format!("{status}: {why}")));
    }
    body.get("credential")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| fail("the answer has no credential".into()))
}

/// The fleet's profiles for the daemon, and which definition each is.
#[derive(Clone, Debug, Default)]
pub struct Assigned {
    pub profiles: Vec<Profile>,
    /// Profile name → (definition id, revision).
    pub runs: BTreeMap<String, (String, i64)>,
}

/// The member's loop, its settings.
pub struct Member {
    pub http: reqwest::Client,
    /// The central's URLs, the first preferred: one that does not answer is
    /// skipped for the next (failover).
    pub urls: Vec<String>,
    pub credential: String,
    pub poll_every: Duration,
    pub shared: Arc<Shared>,
    pub started: Instant,
}

/// What a fleet profile's run last looked like (to report changes once).
#[derive(Clone, Debug, Default, PartialEq)]
struct Seen {
    runs: u64,
    running: bool,
    finished: Option<String>,
}

impl Member {
    /// Runs until `shutdown`: fetch, heartbeat, run states, every `poll_every`.
    pub fn spawn(self, assigned: watch::Sender<Assigned>, shutdown: &CancellationToken) -> JoinHandle<()> {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut etag: Option<String> = None;
            let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
            let mut prefer = 0usize;
            let mut last_error: Option<String> = None;
            loop {
                let runs = assigned.borrow().runs.clone();
                match self.round(&mut prefer, &mut etag, &runs, &mut seen, &last_error).await {
                    Ok(Some(next)) => {
                        last_error = None;
                        assigned.send_replace(next);
                    }
                    Ok(None) => last_error = None,
                    Err(e) => {
                        tracing::warn!(error = %e, "fleet: the central did not answer; keeping the last assignments");
                        last_error = Some(e);
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(self.poll_every) => {}
                }
            }
        })
    }

    fn get(&self, url: &str, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", url.trim_end_matches('/')))
            .bearer_auth(&self.credential)
    }

    fn post(&self, url: &str, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", url.trim_end_matches('/')))
            .bearer_auth(&self.credential)
            .json(body)
    }

    /// One round against the first central that answers.
    async fn round(
        &self,
        prefer: &mut usize,
        etag: &mut Option<String>,
        runs: &BTreeMap<String, (String, i64)>,
        seen: &mut BTreeMap<String, Seen>,
        last_error: &Option<String>,
    ) -> Result<Option<Assigned>, String> {
        let mut errors = Vec::new();
        for k in 0..self.urls.len() {
            let i = (*prefer + k) % self.urls.len();
            let url = &self.urls[i];
            match self.fetch(url, etag).await {
                Ok(next) => {
                    if i != *prefer {
                        tracing::info!(url = %url, "fleet: failed over to this central");
                        *prefer = i;
                    }
                    self.heartbeat(url, last_error).await;
                    self.run_states(url, runs, seen).await;
                    return Ok(next);
                }
                Err(e) => errors.push(format!("{url}: {e}")),
            }
        }
        Err(errors.join("; "))
    }

    /// The assignments, if they changed.
    async fn fetch(&self, url: &str, etag: &mut Option<String>) -> Result<Option<Assigned>, String> {
        let mut req = self.get(url, "/api/v1/assignments");
        if let Some(t) = etag.as_deref() {
            req = req.header("If-None-Match", t);
        }
        let resp = req.send().await.map_err(|e| error_chain(&e))?;
        let status = resp.status().as_u16();
        let tag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match status {
            304 => return Ok(None),
            200 => {}
            401 | 403 => {
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let why = body
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("refused")
                    .to_string();
                tracing::error!(
                    status,
                    "fleet: the central refuses this sensor ({why}); running no fleet scans"
                );
                *etag = None;
                return Ok(Some(Assigned::default()));
            }
            other => return Err(format!("answered {other}")),
        }
        let body: Value = resp.json().await.map_err(|e| error_chain(&e))?;
        *etag = tag;
        let mut out = Assigned::default();
        for a in body.get("assignments").and_then(Value::as_array).into_iter().flatten() {
            let text = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let (scan, name, profile_text) = (text("scan"), text("name"), text("profile"));
            let revision = a.get("revision").and_then(Value::as_i64).unwrap_or(0);
            // Exactly a local profile's validation.
            match profile::parse(&profile_text, &format!("fleet definition {scan}")) {
                Ok(p) => {
                    out.runs.insert(p.name.clone(), (scan, revision));
                    out.profiles.push(p);
                }
                Err(e) => {
                    tracing::error!(definition = %scan, "fleet: assignment refused: {e}");
                    let body = json!({"scan": scan, "revision": revision, "state": "failed", "reason": e.to_string()});
                    let _ = self.post(url, "/api/v1/runs", &body).send().await;
                    let _ = name;
                }
            }
        }
        tracing::info!(assignments = out.profiles.len(), "fleet: assignments fetched");
        Ok(Some(out))
    }

    async fn heartbeat(&self, url: &str, last_error: &Option<String>) {
        let profiles = self.shared.profiles();
        let running: Vec<&str> = profiles.iter().filter(|p| p.running).map(|p| p.name.as_str()).collect();
        let outbox = self.shared.reporter.as_ref().and_then(|r| r.status());
        let oldest = self.shared.reporter.as_ref().and_then(|r| r.oldest_event_at());
        let oldest_age_s = oldest.as_deref().and_then(|t| {
            let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
            Some((time::OffsetDateTime::now_utc() - t).whole_seconds().max(0))
        });
        let body = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": self.started.elapsed().as_secs(),
            "running": running,
            "outbox_depth": outbox.as_ref().map(|s| s.events),
            "outbox_records": outbox.as_ref().map(|s| s.records),
            "outbox_oldest_event_at": oldest,
            "outbox_oldest_age_s": oldest_age_s,
            "last_error": last_error.clone().or_else(|| outbox.and_then(|s| s.last_error)),
        });
        if let Err(e) = self.post(url, "/api/v1/heartbeat", &body).send().await {
            tracing::debug!(error = %error_chain(&e), "fleet: heartbeat not sent");
        }
    }

    /// Sends each fleet run's change of state since the last round.
    async fn run_states(&self, url: &str, runs: &BTreeMap<String, (String, i64)>, seen: &mut BTreeMap<String, Seen>) {
        for p in self.shared.profiles() {
            let Some((scan, revision)) = runs.get(&p.name) else {
                continue;
            };
            let now = Seen {
                runs: p.runs,
                running: p.running,
                finished: p.last_finished.clone(),
            };
            let before = seen.get(&p.name).cloned().unwrap_or_default();
            if now == before {
                continue;
            }
            let mut states: Vec<(String, Option<String>)> = Vec::new();
            if now.runs > before.runs {
                states.push(("started".into(), None));
            }
            if !now.running && now.finished.is_some() && now.finished != before.finished {
                let outcome = p.last_outcome.clone().unwrap_or_default();
                states.push(match outcome.as_str() {
                    "finished" => ("finished".into(), None),
                    "paused" => (
                        "paused".into(),
                        Some(
                            p.paused_because
                                .clone()
                                .unwrap_or_else(|| "its window closed or the sensor stopped".into()),
                        ),
                    ),
                    o => (
                        "failed".into(),
                        Some(o.strip_prefix("failed: ").unwrap_or(o).to_string()),
                    ),
                });
            }
            let mut sent = true;
            for (state, reason) in states {
                let body = json!({"scan": scan, "revision": revision, "state": state, "reason": reason});
                match self.post(url, "/api/v1/runs", &body).send().await {
                    Ok(r) if r.status().is_success() => {}
                    _ => sent = false,
                }
            }
            if sent {
                seen.insert(p.name.clone(), now);
            }
        }
    }
}
