//! The progress bar of `sensor scan` (and `sensor demo`) on a terminal.
//!
//! Two stages a person can tell apart: the walk (a bar of probes with their
//! rate), then the wait for the endpoints still being examined (handshakes,
//! enumeration, checks), where a bar at 100 % and a decaying rate would say
//! nothing. The second stage says what it waits on, how many, and how long
//! the slowest has been going. The words are [`stage`], pure and tested.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use netsensor::discover::connect::Progress;
use netsensor::output::human;

/// What the scan waits on now, read from its counters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snapshot {
    pub total: u64,
    pub walked: u64,
    pub open: u64,
    /// Records printed so far.
    pub found: u64,
    /// Endpoints in the TLS and plaintext stages.
    pub examining: u64,
    /// How long the oldest of them has been going.
    pub oldest: Option<Duration>,
    /// The pacing rate in force (`--rate auto` learns it); `None`: no limit.
    pub pacing: Option<u64>,
    /// Host discovery: running now, and the hosts found up and down.
    pub discovering: bool,
    pub hosts_up: u64,
    pub hosts_down: u64,
}

/// The deadlines the words quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    pub connect: Duration,
    pub handshake: Duration,
}

/// The message beside the bar: during the walk, what was found; after it,
/// what the scan still waits for.
pub fn stage(s: &Snapshot, d: &Deadlines) -> String {
    if s.discovering {
        return format!("host discovery: {} up so far", human::plural(s.hosts_up, "host"));
    }
    let mut found = format!("{} open, {}", human::count(s.open), human::plural(s.found, "endpoint"));
    if s.hosts_up + s.hosts_down > 0 {
        found = format!(
            "{} up, {} down; {found}",
            human::plural(s.hosts_up, "host"),
            human::count(s.hosts_down)
        );
    }
    if s.walked < s.total {
        return match s.pacing {
            Some(0) => found,
            Some(r) => format!("{found}; pacing at {}", human::rate(r as f64)),
            None => format!("{found}; unpaced"),
        };
    }
    if s.examining == 0 {
        return format!(
            "all probes sent; waiting for the last answers (up to {}); {found}",
            human::duration(d.connect)
        );
    }
    let slowest = s
        .oldest
        .map(|t| {
            format!(
                ", the slowest for {}",
                human::duration(Duration::from_secs(t.as_secs()))
            )
        })
        .unwrap_or_default();
    format!(
        "all probes done; examining {} (TLS handshakes, enumeration, checks; up to {} per connection){slowest}; {found}",
        human::plural(s.examining, "endpoint"),
        human::duration(d.handshake)
    )
}

/// The bar on standard error, when it is a terminal (else `None`).
pub fn start(total: u128, show: bool) -> Option<ProgressBar> {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total.min(u128::from(u64::MAX)) as u64);
    bar.set_style(walking());
    Some(bar)
}

fn walking() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} probes ({rate}) {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&human::rate(state.per_sec()));
        })
}

fn waiting() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// Updates the bar from the counters (call it a few times a second).
pub fn update(bar: &ProgressBar, progress: &Arc<Progress>, found: u64, deadlines: &Deadlines) {
    let s = Snapshot {
        total: progress
            .total
            .load(Ordering::Relaxed)
            .max(bar.length().unwrap_or(0).min(1)),
        walked: progress.walked.load(Ordering::Relaxed),
        open: progress.open.load(Ordering::Relaxed),
        found,
        examining: progress.examining.in_flight(),
        oldest: progress.examining.oldest(),
        pacing: progress.probe_rate(),
        discovering: progress.discovering_hosts.load(Ordering::Relaxed),
        hosts_up: progress.hosts_up.load(Ordering::Relaxed),
        hosts_down: progress.hosts_down.load(Ordering::Relaxed),
    };
    let walk_done = s.walked >= s.total;
    if walk_done && bar.length() != Some(0) {
        // Freeze the bar's figures in words: the rate would only decay.
        let mut done = String::new();
        let _ = write!(
            done,
            "{} probed in {} ({}); ",
            human::count(s.walked),
            human::duration(Duration::from_secs(bar.elapsed().as_secs())),
            human::rate(s.walked as f64 / bar.elapsed().as_secs_f64().max(0.001))
        );
        bar.set_style(waiting());
        bar.set_length(0);
        bar.set_prefix(done);
    }
    if walk_done {
        bar.set_message(format!("{}{}", bar.prefix(), stage(&s, deadlines)));
    } else {
        bar.set_position(s.walked);
        bar.set_message(stage(&s, deadlines));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Deadlines = Deadlines {
        connect: Duration::from_millis(1500),
        handshake: Duration::from_secs(5),
    };

    fn snap(walked: u64, examining: u64, oldest: Option<u64>, found: u64) -> Snapshot {
        Snapshot {
            total: 1000,
            walked,
            open: 3,
            found,
            examining,
            oldest: oldest.map(Duration::from_millis),
            pacing: Some(0),
            discovering: false,
            hosts_up: 0,
            hosts_down: 0,
        }
    }

    #[test]
    fn host_discovery_is_shown_while_it_runs_and_after() {
        let running = Snapshot {
            discovering: true,
            hosts_up: 4,
            ..snap(0, 0, None, 0)
        };
        assert_eq!(stage(&running, &D), "host discovery: 4 hosts up so far");
        let after = Snapshot {
            hosts_up: 1,
            hosts_down: 65_535,
            ..snap(10, 0, None, 2)
        };
        assert_eq!(stage(&after, &D), "1 host up, 65,535 down; 3 open, 2 endpoints");
    }

    #[test]
    fn the_walk_says_what_was_found() {
        assert_eq!(stage(&snap(10, 2, Some(100), 1), &D), "3 open, 1 endpoint");
        assert_eq!(stage(&snap(10, 0, None, 2), &D), "3 open, 2 endpoints");
        let paced = Snapshot {
            pacing: Some(250_000),
            ..snap(10, 0, None, 2)
        };
        assert_eq!(stage(&paced, &D), "3 open, 2 endpoints; pacing at 250k/s");
        let unpaced = Snapshot {
            pacing: None,
            ..snap(10, 0, None, 2)
        };
        assert_eq!(stage(&unpaced, &D), "3 open, 2 endpoints; unpaced");
    }

    #[test]
    fn after_the_walk_it_says_what_it_waits_on() {
        assert_eq!(
            stage(&snap(1000, 2, Some(12_400), 1), &D),
            "all probes done; examining 2 endpoints (TLS handshakes, enumeration, checks; up to 5s per connection), \
             the slowest for 12s; 3 open, 1 endpoint"
        );
        assert_eq!(
            stage(&snap(1000, 1, Some(100), 0), &D),
            "all probes done; examining 1 endpoint (TLS handshakes, enumeration, checks; up to 5s per connection), \
             the slowest for 0s; 3 open, 0 endpoints"
        );
        assert_eq!(
            stage(&snap(1000, 0, None, 3), &D),
            "all probes sent; waiting for the last answers (up to 1.5s); 3 open, 3 endpoints"
        );
    }
}
