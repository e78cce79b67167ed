//! Numbers as a person reads them: `6h` rather than `21600s`, `9.2k/s`
//! rather than `9,218.7098/s`, `1 endpoint` rather than `1 endpoints`.
//!
//! Every command that prints for a person (the progress bar, `sensor
//! status`, the daemon's startup lines, the tables) formats through these,
//! so the same quantity reads the same everywhere.

use std::time::Duration;

/// A duration in its largest whole units, at most two of them: `6h`,
/// `1h30m`, `45s`, `2d`, `1d12h`; under a minute with a tenth when there
/// is one (`1.5s`), under a second in milliseconds (`850ms`, `0s`).
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    let ms = d.subsec_millis();
    if secs == 0 {
        return if ms == 0 { "0s".into() } else { format!("{ms}ms") };
    }
    if secs < 60 && ms >= 100 {
        return format!("{secs}.{}s", ms / 100);
    }
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut out = String::new();
    let mut rest = secs;
    let mut parts = 0;
    for (size, unit) in UNITS {
        if parts == 2 || (parts == 1 && rest == 0) {
            break;
        }
        let n = rest / size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            rest -= n * size;
            parts += 1;
        } else if parts == 1 {
            // `1d0h5m` says nothing `1d` does not: stop at the first gap.
            break;
        }
    }
    out
}

/// Seconds as [`duration`] (negative reads as `0s`).
pub fn seconds(s: f64) -> String {
    if s.is_finite() && s > 0.0 {
        duration(Duration::from_secs_f64(s.min(1e12)))
    } else {
        "0s".into()
    }
}

/// A per-second rate to three significant figures: `0.5/s`, `42/s`,
/// `913/s`, `9.22k/s`, `1.2M/s`.
pub fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0/s".into();
    }
    let (v, suffix) = if per_sec >= 1e6 {
        (per_sec / 1e6, "M")
    } else if per_sec >= 1e3 {
        (per_sec / 1e3, "k")
    } else {
        (per_sec, "")
    };
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        usize::from(!suffix.is_empty())
    } else if v >= 1.0 {
        1 + usize::from(!suffix.is_empty())
    } else {
        2
    };
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{suffix}/s")
}

/// A count with thousands separators: `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and the noun, singular for one: `1 endpoint`, `3 endpoints`,
/// `2 entries`.
pub fn plural(n: u64, singular: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else if let Some(stem) = singular
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'o', 'u']))
    {
        format!("{} {stem}ies", count(n))
    } else {
        format!("{} {singular}s", count(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_largest_units() {
        let s = Duration::from_secs;
        assert_eq!(duration(s(21_600)), "6h");
        assert_eq!(duration(s(5_400)), "1h30m");
        assert_eq!(duration(s(45)), "45s");
        assert_eq!(duration(s(90)), "1m30s");
        assert_eq!(duration(s(172_800)), "2d");
        assert_eq!(duration(s(129_600)), "1d12h");
        assert_eq!(duration(s(86_400 + 300)), "1d", "a gap ends it");
        assert_eq!(duration(s(3_661)), "1h1m", "two units at most");
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::ZERO), "0s");
        assert_eq!(seconds(-3.0), "0s");
        assert_eq!(seconds(f64::NAN), "0s");
        assert_eq!(seconds(125.4), "2m5s");
        assert_eq!(duration(Duration::from_millis(1_500)), "1.5s");
        assert_eq!(duration(Duration::from_millis(5_050)), "5s");
    }

    #[test]
    fn rates_keep_three_significant_figures() {
        assert_eq!(rate(9_218.709_8), "9.22k/s");
        assert_eq!(rate(10_000.0), "10k/s");
        assert_eq!(rate(12_345.0), "12.3k/s");
        assert_eq!(rate(123_456.0), "123k/s");
        assert_eq!(rate(1_500_000.0), "1.5M/s");
        assert_eq!(rate(913.4), "913/s");
        assert_eq!(rate(42.2), "42/s");
        assert_eq!(rate(3.4), "3.4/s");
        assert_eq!(rate(0.5), "0.5/s");
        assert_eq!(rate(0.0), "0/s");
        assert_eq!(rate(f64::INFINITY), "0/s");
    }

    #[test]
    fn counts_and_plurals() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(plural(1, "endpoint"), "1 endpoint");
        assert_eq!(plural(0, "endpoint"), "0 endpoints");
        assert_eq!(plural(2_000, "probe"), "2,000 probes");
        assert_eq!(plural(2, "entry"), "2 entries");
        assert_eq!(plural(2, "day"), "2 days");
    }
}
