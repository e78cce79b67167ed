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
    let Some(slot) = slot(schedule, last, now) else {
        return Due::Never;
    };
    let start = if slot <= now { now } else { slot };
    let start = match schedule.window {
        Some(w) if !in_window(w, start) => next_window_open(w, start),
        _ => start,
    };
    if start <= now { Due::Now } else { Due::At(start) }
}

/// The schedule's own next slot, before the window has its say.
fn slot(schedule: &Schedule, last: Option<OffsetDateTime>, now: OffsetDateTime) -> Option<OffsetDateTime> {
    match (&schedule.when, last) {
        (When::Every(_), None) => Some(now),
        (When::Every(d), Some(last)) => Some(last + Duration::try_from(*d).unwrap_or(Duration::MAX)),
        (When::Cron(expr), None) => next_cron(expr, now),
        (When::Cron(expr), Some(last)) => next_cron(expr, last),
    }
}

/// Why a profile that is not due at `now` waits, in words for the
/// startup line and `sensor status`: its window, its interval, or its
/// cron slot. `None` when it is due now.
pub fn why_waiting(schedule: &Schedule, last: Option<OffsetDateTime>, now: OffsetDateTime) -> Option<String> {
    match due(schedule, last, now) {
        Due::Now => None,
        Due::Never => Some("its cron expression has no next time".into()),
        Due::At(start) => {
            let slot = slot(schedule, last, now).map_or(now, |s| s.max(now));
            Some(match (schedule.window, &schedule.when) {
                (Some(w), _) if start > slot && slot <= now => {
                    format!("a run is due but its window {} is closed", window(w))
                }
                (Some(w), _) if start > slot => format!(
                    "its next slot ({}) falls outside its window {}",
                    crate::model::timestamp::rfc3339(slot),
                    window(w)
                ),
                (_, When::Every(d)) => format!(
                    "it runs every {} and last started {}",
                    crate::output::human::duration(*d),
                    last.map_or_else(|| "never".into(), crate::model::timestamp::rfc3339)
                ),
                (_, When::Cron(expr)) => format!("its cron \"{expr}\" (UTC) has its next slot then"),
            })
        }
    }
}

/// A window as people read it: `22:00-06:00 UTC`.
pub fn window((a, b): (u16, u16)) -> String {
    format!("{:02}:{:02}-{:02}:{:02} UTC", a / 60, a % 60, b / 60, b % 60)
}

/// Why a run of `schedule` was stopped part-way at `now`, when its window
/// is the reason (`outside window 22:00-06:00 UTC`): what a paused run
/// reports (`sensor status`, the fleet's run state).
pub fn pause_reason(schedule: &Schedule, now: OffsetDateTime) -> Option<String> {
    let w = schedule.window?;
    (!in_window(w, now)).then(|| format!("outside window {}", window(w)))
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
    fn a_waiting_profile_says_why() {
        let noon = datetime!(2026-11-24 12:00 UTC);
        let night = every(6, Some((22 * 60, 6 * 60)));
        assert_eq!(
            why_waiting(&night, None, noon).as_deref(),
            Some("a run is due but its window 22:00-06:00 UTC is closed")
        );
        assert_eq!(why_waiting(&night, None, datetime!(2026-11-24 23:00 UTC)), None);
        let late = datetime!(2026-11-25 02:00 UTC);
        assert_eq!(
            why_waiting(&night, Some(late), late).as_deref(),
            Some("its next slot (2026-11-25T08:00:00Z) falls outside its window 22:00-06:00 UTC")
        );
        assert_eq!(
            why_waiting(&every(6, None), Some(noon), noon).as_deref(),
            Some("it runs every 6h and last started 2026-11-24T12:00:00Z")
        );
        let cron = Schedule {
            when: When::Cron("0 2 * * *".into()),
            window: None,
        };
        assert_eq!(
            why_waiting(&cron, None, noon).as_deref(),
            Some("its cron \"0 2 * * *\" (UTC) has its next slot then")
        );
        assert_eq!(why_waiting(&every(6, None), None, noon), None, "due now");
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

    #[test]
    fn a_run_stopped_by_its_window_says_which_window() {
        let s = every(1, Some((22 * 60, 6 * 60)));
        assert_eq!(
            pause_reason(&s, datetime!(2026-11-25 06:00 UTC)).as_deref(),
            Some("outside window 22:00-06:00 UTC")
        );
        assert_eq!(pause_reason(&s, datetime!(2026-11-25 05:59 UTC)), None, "still inside");
        assert_eq!(pause_reason(&every(1, None), datetime!(2026-11-25 06:00 UTC)), None);
    }
}
