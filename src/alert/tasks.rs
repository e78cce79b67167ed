//! The alerts inside the daemon: a pass loop (after each run, at start and
//! every `[alerts] every`) and one delivery loop per channel, all ending on
//! the daemon's cancellation token.
//!
//! A pass evaluates the rules on the whole inventory and stores the new
//! notices (and the memory) in one transaction before any channel hears of
//! them; delivery then takes them from the queue. Stopping anywhere is
//! safe: a notice not acknowledged is sent again at the next start under
//! the same idempotency id, and one acknowledged is never sent again. The
//! periodic timer runs on the monotonic clock, so a wall clock that jumps
//! neither stalls it nor fires it repeatedly; the rules take the wall
//! clock's time as an argument and deal with jumps themselves.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::alert::answer::{Answer, ChannelError};
use crate::alert::channel::Sender;
use crate::alert::config::{AlertsConfig, Rule};
use crate::alert::notice::{Message, SensorRef};
use crate::alert::queue::{Queue, QueueError, QueueStatus};
use crate::alert::rules;
use crate::model::timestamp::rfc3339;
use crate::report::delivery::{Backoff, MAX_RETRY_AFTER};
use crate::store::central::CentralStore;
use crate::store::query::Filter;

/// How long an idle channel waits before looking at the queue again.
const IDLE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

impl AlertError {
    /// The configuration (or a file it names) is at fault.
    pub fn is_invalid(&self) -> bool {
        matches!(self, AlertError::Channel(_))
    }
}

/// The daemon's handle on alerting.
pub struct Alerts {
    rules: Vec<Rule>,
    every: Duration,
    retry_max: Duration,
    sensor: SensorRef,
    queue: Arc<Mutex<Queue>>,
    senders: Mutex<Vec<Sender>>,
    wake_pass: Arc<Notify>,
    wake_channels: Mutex<Vec<Arc<Notify>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Alerts {
    /// Builds every channel (reading secrets, CA bundles) and opens the
    /// queue in the inventory database at `inventory`.
    pub fn open(config: &AlertsConfig, inventory: &Path, sensor: SensorRef) -> Result<Alerts, AlertError> {
        let senders = config.channels.iter().map(Sender::new).collect::<Result<Vec<_>, _>>()?;
        let queue = Queue::open(inventory)?;
        Ok(Alerts {
            rules: config.rules.clone(),
            every: config.every,
            retry_max: config.retry_max,
            sensor,
            queue: Arc::new(Mutex::new(queue)),
            senders: Mutex::new(senders),
            wake_pass: Arc::new(Notify::new()),
            wake_channels: Mutex::new(Vec::new()),
        })
    }

    /// A run was stored: evaluate the rules soon.
    pub fn wake(&self) {
        self.wake_pass.notify_one();
    }

    /// Sent, failed and waiting deliveries by channel (for status and
    /// metrics). Reads SQLite: call it off the runtime's workers.
    pub fn status(&self) -> Result<QueueStatus, QueueError> {
        lock(&self.queue).status()
    }

    /// Starts the pass loop and one delivery loop per channel; they end
    /// when `shutdown` fires. Call once (later calls start nothing).
    pub fn spawn(
        self: &Arc<Self>,
        store: Arc<dyn CentralStore>,
        shutdown: &CancellationToken,
    ) -> Vec<(&'static str, JoinHandle<()>)> {
        let senders = std::mem::take(&mut *lock(&self.senders));
        if senders.is_empty() && self.rules.is_empty() {
            return Vec::new();
        }
        let mut tasks = Vec::new();
        let mut wakes = Vec::new();
        for s in senders {
            let wake = Arc::new(Notify::new());
            wakes.push(wake.clone());
            let me = self.clone();
            let token = shutdown.clone();
            tasks.push((
                "alert delivery",
                tokio::spawn(async move {
                    tokio::select! {
                        () = token.cancelled() => {}
                        () = me.deliver(s, wake) => {}
                    }
                }),
            ));
        }
        *lock(&self.wake_channels) = wakes;
        let me = self.clone();
        let token = shutdown.clone();
        tasks.push((
            "alert passes",
            tokio::spawn(async move {
                let mut timer = tokio::time::interval(me.every);
                timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        biased;
                        () = token.cancelled() => break,
                        () = me.wake_pass.notified() => {}
                        _ = timer.tick() => {}
                    }
                    me.pass(store.clone()).await;
                }
            }),
        ));
        tasks
    }

    /// One evaluation of the rules, stored; then the channels are woken.
    pub async fn pass(&self, store: Arc<dyn CentralStore>) {
        let now = OffsetDateTime::now_utc();
        let (queue, rules) = (self.queue.clone(), self.rules.clone());
        let done = tokio::task::spawn_blocking(move || {
            let rows = store
                .query(&Filter::default())
                .map_err(|e| format!("cannot read the inventory: {e}"))?;
            let mut q = lock(&queue);
            let notified = q.notified().map_err(|e| e.to_string())?;
            let memory = q.memory().map_err(|e| e.to_string())?;
            let pass = rules::evaluate(&rules, &rows, &memory, &notified, now);
            q.commit(&pass, &memory).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match done {
            Ok(new) => {
                for n in &new {
                    tracing::info!(notice = %n.id, rule = %n.rule, subject = %n.subject, threshold = %n.threshold, "alert notice stored: {}", n.title);
                }
                if !new.is_empty() {
                    for w in lock(&self.wake_channels).iter() {
                        w.notify_one();
                    }
                }
            }
            Err(e) => tracing::error!("alert rules not evaluated: {e}; next pass at the next run or timer"),
        }
    }

    async fn deliver(self: Arc<Self>, sender: Sender, wake: Arc<Notify>) {
        let name = sender.name.clone();
        let mut backoff = Backoff::new(Duration::from_secs(1).min(self.retry_max), self.retry_max);
        loop {
            let (q, ch, digest) = (self.queue.clone(), name.clone(), sender.digest);
            let next = tokio::task::spawn_blocking(move || lock(&q).next(&ch, digest).map_err(|e| e.to_string()))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            let out = match next {
                Ok(Some(out)) => out,
                Ok(None) => {
                    let _ = tokio::time::timeout(IDLE, wake.notified()).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(channel = %name, "alert queue unreadable: {e}; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            let message = match (&out.digest, out.notices.first()) {
                (Some(id), _) => Message::digest(self.sensor.clone(), id.clone(), out.notices.clone(), out.more),
                (None, Some(n)) => Message::single(self.sensor.clone(), n.clone()),
                (None, None) => continue,
            };
            let answer = sender.send(&message).await;
            let (q, a, o) = (self.queue.clone(), answer.clone(), out.clone());
            let stored = tokio::task::spawn_blocking(move || {
                let mut q = lock(&q);
                match &a {
                    Answer::Delivered(text) => q.sent(&o, text, &rfc3339(OffsetDateTime::now_utc())),
                    Answer::Retry { reason, .. } => q.failed(&o, reason),
                    Answer::Refused(reason) => q.park(&o, reason),
                }
                .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            if let Err(e) = stored {
                tracing::error!(channel = %name, id = %message.id, "alert queue not updated: {e}; the message will be sent again");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
            let n = message.notices.len();
            match answer {
                Answer::Delivered(text) => {
                    backoff.reset();
                    tracing::info!(channel = %name, id = %message.id, notices = n, answer = %text, "alert delivered");
                }
                Answer::Retry { reason, after } => {
                    let wait = match after {
                        Some(a) => {
                            let _ = backoff.next_delay();
                            a.min(MAX_RETRY_AFTER)
                        }
                        None => backoff.next_delay(),
                    };
                    tracing::warn!(channel = %name, id = %message.id, error = %reason, wait_ms = wait.as_millis() as u64, "alert not delivered; will retry");
                    tokio::time::sleep(wait).await;
                }
                Answer::Refused(reason) => {
                    tracing::error!(channel = %name, id = %message.id, notices = n, error = %reason, "alert refused for good; parked (see `sensor alerts status`)");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
}
