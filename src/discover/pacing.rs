//! How fast to probe: `--rate auto` (the default), a number (a hard
//! ceiling), or 0 (no limit).
//!
//! A fixed default rate is wrong twice: 10,000 probes/s made a loopback
//! full-port scan take 8 s where the network answered in microseconds, and
//! on a lossy or rate-limited path any fixed rate either crawls or loses
//! answers. So the default learns, as TCP's congestion control and nmap's
//! scan window do: start high, grow multiplicatively while the answers keep
//! up, and halve on a loss signal (a probe that needed its retransmission,
//! a timeout from a host that answers, an ICMP unreachable, a full send
//! buffer), never below a floor. A number given by the operator is a hard
//! ceiling the pacer never exceeds (it still backs off under loss), for
//! those who must be polite; profiles keep their `rate`.
//!
//! Pure: the engines count and call [`Pacer::window`] every [`WINDOW`];
//! the pacer answers with the rate to use. The rate in force is published
//! in [`Progress::rate`](crate::discover::connect::Progress) for the
//! progress bar, the `-v` log and metrics.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How often the engines report what happened and the pacer adjusts.
pub const WINDOW: Duration = Duration::from_millis(20);

/// Where `auto` starts: high, because most scans meet answers in
/// microseconds (loopback, a LAN); a lossy path halves it within a window.
pub const AUTO_START: f64 = 200_000.0;
/// The most `auto` grows to (probes per second).
pub const AUTO_MAX: f64 = 4_000_000.0;
/// The least any back-off goes to.
pub const FLOOR: f64 = 100.0;

/// A loss fraction of a window above which the pacer backs off.
const LOSS_TOLERATED: f64 = 0.01;

/// The `--rate` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rate {
    /// Congestion-aware: start high, grow while answers keep up, back off on loss.
    #[default]
    Auto,
    /// At most this many probes per second (adaptive below it).
    Max(u32),
    /// No pacing at all (`--rate 0`).
    Unlimited,
}

impl From<u32> for Rate {
    /// A number as the command line and profiles give it: 0 is no limit.
    fn from(n: u32) -> Rate {
        match n {
            0 => Rate::Unlimited,
            n => Rate::Max(n),
        }
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Rate, String> {
        match s.trim() {
            "auto" => Ok(Rate::Auto),
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n
                .parse::<u32>()
                .map(Rate::from)
                .map_err(|_| format!("rate `{n}`: at most {}", u32::MAX)),
            other => Err(format!(
                "rate `{other}`: give `auto`, probes per second, or 0 for no limit"
            )),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Auto => f.write_str("auto"),
            Rate::Max(n) => write!(f, "{n}"),
            Rate::Unlimited => f.write_str("0"),
        }
    }
}

/// What one window of probing saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// Probes sent.
    pub sent: u64,
    /// Loss signals: answers that came only to a retransmission, timeouts
    /// from hosts that answer other probes, ICMP unreachables, send errors
    /// (a full buffer: the local path is the bottleneck).
    pub lost: u64,
}

/// The rate controller.
#[derive(Clone, Debug)]
pub struct Pacer {
    setting: Rate,
    current: f64,
    /// How many pacers share the setting.
    share: f64,
}

impl Pacer {
    pub fn new(setting: Rate) -> Pacer {
        Pacer::share(setting, 1)
    }

    /// A pacer for one of `lanes` senders that together keep the setting
    /// (each paces at its share of the rate and of the ceiling).
    pub fn share(setting: Rate, lanes: u32) -> Pacer {
        let share = f64::from(lanes.max(1));
        let current = match setting {
            Rate::Auto => AUTO_START / share,
            Rate::Max(n) => f64::from(n) / share,
            Rate::Unlimited => f64::INFINITY,
        };
        Pacer {
            setting,
            current,
            share,
        }
    }

    pub fn setting(&self) -> Rate {
        self.setting
    }

    /// Probes per second to pace at; `None`: no limit.
    pub fn rate(&self) -> Option<f64> {
        self.current.is_finite().then_some(self.current)
    }

    fn ceiling(&self) -> f64 {
        match self.setting {
            Rate::Auto => AUTO_MAX / self.share,
            Rate::Max(n) => f64::from(n) / self.share,
            Rate::Unlimited => f64::INFINITY,
        }
    }

    /// Adjust after a window: halve on loss, grow by half while a window
    /// that used the rate saw none. A window that sent little (the walk is
    /// waiting on something else) says nothing about the path: no change.
    pub fn window(&mut self, w: Window) {
        if self.setting == Rate::Unlimited {
            return;
        }
        let floor = (FLOOR / self.share).min(self.ceiling());
        let tolerated = (w.sent as f64 * LOSS_TOLERATED).floor() as u64;
        if w.lost > tolerated {
            self.current = (self.current / 2.0).max(floor);
            return;
        }
        let expected = self.current * WINDOW.as_secs_f64();
        if w.sent as f64 >= expected * 0.5 {
            self.current = (self.current * 1.5).min(self.ceiling());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(p: &Pacer) -> Window {
        Window {
            sent: (p.rate().unwrap_or(1e6) * WINDOW.as_secs_f64()) as u64,
            lost: 0,
        }
    }

    #[test]
    fn parses_and_prints_the_setting() {
        assert_eq!("auto".parse::<Rate>(), Ok(Rate::Auto));
        assert_eq!("0".parse::<Rate>(), Ok(Rate::Unlimited));
        assert_eq!("5000".parse::<Rate>(), Ok(Rate::Max(5000)));
        assert!("fast".parse::<Rate>().unwrap_err().contains("`fast`"));
        assert!("-5".parse::<Rate>().is_err());
        assert!("99999999999".parse::<Rate>().is_err());
        assert_eq!(Rate::Auto.to_string(), "auto");
        assert_eq!(Rate::from(0).to_string(), "0");
        assert_eq!(Rate::Max(7).to_string(), "7");
    }

    #[test]
    fn auto_starts_high_and_grows_while_answers_keep_up() {
        let mut p = Pacer::new(Rate::Auto);
        assert_eq!(p.rate(), Some(AUTO_START));
        for _ in 0..5 {
            let w = busy(&p);
            p.window(w);
        }
        assert!(p.rate().unwrap() > AUTO_START * 5.0, "{:?}", p.rate());
        for _ in 0..100 {
            let w = busy(&p);
            p.window(w);
        }
        assert_eq!(p.rate(), Some(AUTO_MAX));
    }

    #[test]
    fn loss_halves_the_rate_down_to_the_floor() {
        let mut p = Pacer::new(Rate::Auto);
        p.window(Window { sent: 4000, lost: 200 });
        assert_eq!(p.rate(), Some(AUTO_START / 2.0));
        for _ in 0..40 {
            p.window(Window { sent: 10, lost: 5 });
        }
        assert_eq!(p.rate(), Some(FLOOR));
        // One loss in thousands is noise, not congestion.
        let mut q = Pacer::new(Rate::Auto);
        q.window(Window { sent: 4000, lost: 1 });
        assert!(q.rate().unwrap() >= AUTO_START);
    }

    #[test]
    fn a_number_is_a_hard_ceiling() {
        let mut p = Pacer::new(Rate::Max(1000));
        assert_eq!(p.rate(), Some(1000.0));
        for _ in 0..50 {
            let w = busy(&p);
            p.window(w);
        }
        assert_eq!(p.rate(), Some(1000.0), "never above the operator's number");
        p.window(Window { sent: 20, lost: 10 });
        assert_eq!(p.rate(), Some(500.0), "but polite under loss");
        for _ in 0..50 {
            let w = busy(&p);
            p.window(w);
        }
        assert_eq!(p.rate(), Some(1000.0));
        let mut tiny = Pacer::new(Rate::Max(10));
        tiny.window(Window { sent: 1, lost: 1 });
        assert_eq!(tiny.rate(), Some(10.0), "the floor is never above the ceiling");
    }

    #[test]
    fn lanes_share_the_rate_and_the_ceiling() {
        let mut p = Pacer::share(Rate::Max(1000), 4);
        assert_eq!(p.rate(), Some(250.0));
        for _ in 0..20 {
            let w = busy(&p);
            p.window(w);
        }
        assert_eq!(p.rate(), Some(250.0));
        assert_eq!(Pacer::share(Rate::Auto, 2).rate(), Some(AUTO_START / 2.0));
    }

    #[test]
    fn unlimited_is_never_paced_and_idle_windows_change_nothing() {
        let mut u = Pacer::new(Rate::Unlimited);
        u.window(Window { sent: 10, lost: 10 });
        assert_eq!(u.rate(), None);
        let mut p = Pacer::new(Rate::Auto);
        p.window(Window { sent: 3, lost: 0 });
        assert_eq!(p.rate(), Some(AUTO_START));
    }
}
