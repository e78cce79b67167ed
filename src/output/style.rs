//! Colour in the terminal table: grade letters and certificates near or
//! past expiry stand out. Only when a person reads it: a terminal, and no
//! `NO_COLOR` (<https://no-color.org>); files, pipes and every other format
//! stay plain text.

use super::expiry::Expiry;

/// What a table cell means, for its colour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Style {
    #[default]
    Plain,
    /// Good news (A grades).
    Good,
    /// Worth a look (B, expiring soon).
    Warn,
    /// Bad news (C and worse, T, M, expired).
    Bad,
}

impl Style {
    /// `text` wrapped in the ANSI colour of the style.
    pub fn paint(self, text: &str) -> String {
        let code = match self {
            Style::Plain => return text.to_string(),
            Style::Good => "32",
            Style::Warn => "33",
            Style::Bad => "31",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// A grade letter's style.
    pub fn grade(letter: &str) -> Style {
        match letter.chars().next() {
            None => Style::Plain,
            Some('A') => Style::Good,
            Some('B') => Style::Warn,
            Some(_) => Style::Bad,
        }
    }

    /// An expiry's style: expired is bad, within `soon_days` a warning.
    pub fn expiry(e: Option<Expiry>, soon_days: i64) -> Style {
        match e {
            Some(e) if e.expired => Style::Bad,
            Some(e) if e.days <= soon_days => Style::Warn,
            _ => Style::Plain,
        }
    }
}

/// Whether to colour: standard output is a terminal and `NO_COLOR` is
/// unset or empty.
pub fn wanted(stdout_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_and_expiry_get_their_colours_and_no_color_wins() {
        assert_eq!(Style::grade("A+"), Style::Good);
        assert_eq!(Style::grade("B"), Style::Warn);
        assert_eq!(Style::grade("T"), Style::Bad);
        assert_eq!(Style::grade(""), Style::Plain);
        assert_eq!(Style::Bad.paint("F"), "\x1b[31mF\x1b[0m");
        assert_eq!(Style::Plain.paint("F"), "F");
        let e = |days, expired| Some(Expiry { days, expired });
        assert_eq!(Style::expiry(e(-1, true), 30), Style::Bad);
        assert_eq!(Style::expiry(e(12, false), 30), Style::Warn);
        assert_eq!(Style::expiry(e(90, false), 30), Style::Plain);
        assert_eq!(Style::expiry(None, 30), Style::Plain);
        assert!(wanted(true, None));
        assert!(wanted(true, Some("".as_ref())));
        assert!(!wanted(true, Some("1".as_ref())));
        assert!(!wanted(false, None));
    }
}
