//! When a profile runs next: pure, with the clock as an argument.
//!
//! The appliance may be down when a run was due, may be asked to run only at
//! night, and must never stack runs of one profile. Those rules are decided
//! here from three facts (the schedule, when the last run started, and now)
//! so they are tested exhaustively without waiting for any clock.

use std::str::FromStr;

use time::{Duration, OffsetDateTime};

use crate::appliance::profile::{Schedule, When};

/// What to do about a profile now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Start a run now.
    Now,
    /// Sleep until then, and ask again.
    At(OffsetDateTime),
    /// Nothing will ever be due (a cron expression with no next occurrence).
    Never,
}

/// The decision for a profile whose last run started at `last` (`None`: never
/// ran). A slot missed while the sensor was down is run once, at once (inside
/// the window), not once per missed slot. An interval profile that never ran
/// runs now; a cron profile waits for its next slot.
pub fn due(schedule: &Schedule, last: Option<OffsetDateTime>, now: OffsetDateTime) -> Due {
    let slot = match (&schedule.when, last) {
        (When::Every(_), None) => Some(now),
        (When::Every(d), Some(last)) => Some(last + Duration::try_from(*d).unwrap_or(Duration::MAX)),
        (When::Cron(expr), None) => next_cron(expr, now),
        (When::Cron(expr), Some(last)) => next_cron(expr, last),
    };
    let Some(slot) = slot else { return Due::Never };
    let start = if slot <= now { now } else { slot };
    let start = match schedule.window {
        Some(w) if !in_window(w, start) => next_window_open(w, start),
        _ => start,
    };
    if start <= now { Due::Now } else { Due::At(start) }
}

/// Whether a run still going at `now` may continue (runs pause at a
/// checkpoint when their window closes).
pub fn may_run(schedule: &Schedule, now: OffsetDateTime) -> bool {
    schedule.window.is_none_or(|w| in_window(w, now))
}

fn minute_of_day(t: OffsetDateTime) -> u16 {
    let t = t.to_offset(time::UtcOffset::UTC);
    u16::from(t.hour()) * 60 + u16::from(t.minute())
}

/// `(start, end)` in UTC minutes; the end is exclusive; wraps midnight when end < start.
pub fn in_window((start, end): (u16, u16), t: OffsetDateTime) -> bool {
    let m = minute_of_day(t);
    if start < end {
        (start..end).contains(&m)
    } else {
        m >= start || m < end
    }
}

/// The next time at or after `t` the window opens.
pub fn next_window_open((start, _): (u16, u16), t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    let midnight = t.replace_time(time::Time::MIDNIGHT);
    let open = midnight + Duration::minutes(i64::from(start));
    if open >= t { open } else { open + Duration::days(1) }
}

/// The first cron occurrence strictly after `after`, in UTC.
fn next_cron(expr: &str, after: OffsetDateTime) -> Option<OffsetDateTime> {
    let cron = croner::Cron::from_str(expr).ok()?;
    let start = chrono::DateTime::from_timestamp(after.unix_timestamp(), 0)?;
    let next = cron.find_next_occurrence(&start, false).ok()?;
    OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn every(h: u64, window: Option<(u16, u16)>) -> Schedule {
        Schedule {
            when: When::Every(std::time::Duration::from_secs(h * 3600)),
            window,
        }
    }

    #[test]
    fn an_interval_profile_runs_at_once_then_every_interval() {
        let s = every(6, None);
        let now = datetime!(2026-11-24 12:00 UTC);
        assert_eq!(due(&s, None, now), Due::Now);
        assert_eq!(due(&s, Some(now), now), Due::At(datetime!(2026-11-24 18:00 UTC)));
        assert_eq!(due(&s, Some(datetime!(2026-11-24 06:00 UTC)), now), Due::Now);
    }

    #[test]
    fn slots_missed_while_down_run_once() {
        let s = every(1, None);
        let last = datetime!(2026-11-20 00:00 UTC);
        let now = datetime!(2026-11-24 12:00 UTC);
        assert_eq!(due(&s, Some(last), now), Due::Now);
        // After that one run, the next is an interval later, not the backlog.
        assert_eq!(due(&s, Some(now), now), Due::At(datetime!(2026-11-24 13:00 UTC)));
    }

    #[test]
    fn cron_waits_for_its_slot_and_catches_up_once() {
        let s = Schedule {
            when: When::Cron("0 2 * * *".into()),
            window: None,
        };
        let now = datetime!(2026-11-24 12:00 UTC);
        assert_eq!(due(&s, None, now), Due::At(datetime!(2026-11-25 02:00 UTC)));
        assert_eq!(due(&s, Some(datetime!(2026-11-22 02:00 UTC)), now), Due::Now);
        assert_eq!(
            due(&s, Some(datetime!(2026-11-24 02:00 UTC)), now),
            Due::At(datetime!(2026-11-25 02:00 UTC))
        );
    }

    #[test]
    fn windows_hold_runs_until_they_open_and_wrap_midnight() {
        let night = Some((22 * 60, 6 * 60));
        let s = every(1, night);
        let noon = datetime!(2026-11-24 12:00 UTC);
        assert_eq!(due(&s, None, noon), Due::At(datetime!(2026-11-24 22:00 UTC)));
        assert_eq!(due(&s, None, datetime!(2026-11-24 23:30 UTC)), Due::Now);
        assert_eq!(due(&s, None, datetime!(2026-11-25 05:59 UTC)), Due::Now);
        assert!(!may_run(&s, datetime!(2026-11-25 06:00 UTC)));
        assert!(may_run(&s, datetime!(2026-11-25 01:00 UTC)));
        let day = (9 * 60, 17 * 60);
        assert!(in_window(day, datetime!(2026-11-24 09:00 UTC)));
        assert!(!in_window(day, datetime!(2026-11-24 17:00 UTC)));
        assert_eq!(
            next_window_open(day, datetime!(2026-11-24 17:00 UTC)),
            datetime!(2026-11-25 09:00 UTC)
        );
    }
}
