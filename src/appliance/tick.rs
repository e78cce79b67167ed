//! The scheduler's decision for one profile at one tick, pure.
//!
//! Whether a profile starts now, waits, has its run stopped (its window
//! closed) or has a due run counted as skipped (the previous one still
//! going) depends only on its schedule, two facts from the inventory (when
//! its last run started, whether a paused run waits), what is running, and
//! the clock. Keeping that out of the async loop lets every case be tested
//! without sockets, timers or a store; the loop only carries it out.

use time::OffsetDateTime;

use crate::appliance::profile::Profile;
use crate::appliance::schedule::{self, Due};

/// What the inventory says about a profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// When its last run started.
    pub last: Option<OffsetDateTime>,
    /// A run stopped part-way waits to be continued.
    pub paused: bool,
}

/// A run of the profile in progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Running {
    /// It was already asked to stop.
    pub stopping: bool,
    /// A run that came due meanwhile was already counted as skipped.
    pub skip_noted: bool,
}

/// What to do about one profile now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// A run is going: `stop` it (its window closed), and count a run that
    /// came due meanwhile as `skipped` (once per running run).
    Busy { stop: bool, skipped: bool },
    /// No run is going: start one (`Due::Now`) or wait.
    Idle(Due),
}

/// The decision for `profile`. `ran_once`: it has no schedule and already
/// ran since the daemon started (such profiles run once per start).
pub fn plan(profile: &Profile, facts: Facts, running: Option<Running>, ran_once: bool, now: OffsetDateTime) -> Plan {
    let schedule = profile.schedule.as_ref();
    if let Some(r) = running {
        let stop = !r.stopping && schedule.is_some_and(|s| !schedule::may_run(s, now));
        let skipped = !r.skip_noted && schedule.is_some_and(|s| schedule::due(s, facts.last, now) == Due::Now);
        return Plan::Busy { stop, skipped };
    }
    Plan::Idle(match schedule {
        // A run stopped part-way goes on as soon as it may.
        Some(s) if facts.paused => {
            if schedule::may_run(s, now) {
                Due::Now
            } else {
                Due::Never
            }
        }
        None if facts.paused => Due::Now,
        None if ran_once => Due::Never,
        None => Due::Now,
        Some(s) => schedule::due(s, facts.last, now),
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn profile(extra: &str) -> Profile {
        crate::appliance::profile::parse(
            &format!("name = \"p\"\ntargets = [\"127.0.0.1\"]\nports = \"1\"\n{extra}"),
            "p.toml",
        )
        .unwrap()
    }

    const NOON: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

    fn idle(p: &Profile, facts: Facts, ran_once: bool) -> Plan {
        plan(p, facts, None, ran_once, NOON)
    }

    #[test]
    fn an_unscheduled_profile_runs_once_per_start_unless_a_run_is_paused() {
        let p = profile("");
        assert_eq!(idle(&p, Facts::default(), false), Plan::Idle(Due::Now));
        assert_eq!(idle(&p, Facts::default(), true), Plan::Idle(Due::Never));
        let paused = Facts {
            paused: true,
            ..Facts::default()
        };
        assert_eq!(idle(&p, paused, true), Plan::Idle(Due::Now));
    }

    #[test]
    fn a_scheduled_profile_follows_its_schedule() {
        let p = profile("\n[schedule]\nevery = \"1h\"\n");
        assert_eq!(idle(&p, Facts::default(), false), Plan::Idle(Due::Now));
        let recent = Facts {
            last: Some(datetime!(2026-11-24 11:30 UTC)),
            paused: false,
        };
        assert_eq!(
            idle(&p, recent, true),
            Plan::Idle(Due::At(datetime!(2026-11-24 12:30 UTC)))
        );
        let paused = Facts { paused: true, ..recent };
        assert_eq!(
            idle(&p, paused, true),
            Plan::Idle(Due::Now),
            "a paused run goes on at once"
        );
    }

    #[test]
    fn a_paused_run_waits_for_its_window() {
        let p = profile("\n[schedule]\nevery = \"1h\"\nwindow = \"22:00-06:00\"\n");
        let paused = Facts {
            last: Some(datetime!(2026-11-24 05:00 UTC)),
            paused: true,
        };
        assert_eq!(idle(&p, paused, true), Plan::Idle(Due::Never));
        assert_eq!(
            plan(&p, paused, None, true, datetime!(2026-11-24 23:00 UTC)),
            Plan::Idle(Due::Now)
        );
    }

    #[test]
    fn a_running_profile_is_stopped_when_its_window_closes_and_skips_are_counted_once() {
        let p = profile("\n[schedule]\nevery = \"1h\"\nwindow = \"22:00-06:00\"\n");
        let facts = Facts {
            last: Some(datetime!(2026-11-24 02:00 UTC)),
            paused: false,
        };
        let going = Running::default();
        assert_eq!(
            plan(&p, facts, Some(going), true, NOON),
            Plan::Busy {
                stop: true,
                skipped: false
            },
            "outside its window: stopped; nothing due outside the window"
        );
        let stopping = Running {
            stopping: true,
            ..going
        };
        assert_eq!(
            plan(&p, facts, Some(stopping), true, NOON),
            Plan::Busy {
                stop: false,
                skipped: false
            }
        );
        let night = datetime!(2026-11-24 23:00 UTC);
        assert_eq!(
            plan(&p, facts, Some(going), true, night),
            Plan::Busy {
                stop: false,
                skipped: true
            },
            "due inside the window while the last run still goes"
        );
        let noted = Running {
            skip_noted: true,
            ..going
        };
        assert_eq!(
            plan(&p, facts, Some(noted), true, night),
            Plan::Busy {
                stop: false,
                skipped: false
            }
        );
    }
}
