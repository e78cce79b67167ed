//! Query strings and numbers as the API reads them: pure and strict.
//!
//! `limit=+5` and `Content-Length: +2` are not numbers here (Rust's `parse`
//! accepts a leading `+`; HTTP's grammar is `1*DIGIT`), so one lenient parse
//! cannot make two parts of the sensor disagree about a value.

/// The query's `name=value` pairs, percent-decoded (`+` is a space).
pub fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = query else {
        return Vec::new();
    };
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// `%XX` escapes decoded (and `+` as a space when `plus` is set).
pub fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' && plus {
            out.push(b' ');
            i += 1;
            continue;
        }
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A decimal number of ASCII digits only (no sign, no space), at most 19 digits.
pub fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_decoded() {
        let q = pairs(Some("category=unsecured&limit=5&x=a%20b+c&bad=%zz"));
        assert_eq!(q[0], ("category".into(), "unsecured".into()));
        assert_eq!(q[1], ("limit".into(), "5".into()));
        assert_eq!(q[2], ("x".into(), "a b c".into()));
        assert_eq!(q[3], ("bad".into(), "%zz".into()));
        assert!(pairs(None).is_empty());
        assert_eq!(percent_decode("50%", true), "50%");
        assert_eq!(percent_decode("%4", true), "%4");
        assert_eq!(percent_decode("lab%20net+x", false), "lab net+x");
    }

    #[test]
    fn rejects_signed_and_spaced_numbers() {
        assert_eq!(digits("5"), Some(5));
        assert_eq!(digits("+5"), None);
        assert_eq!(digits("-5"), None);
        assert_eq!(digits(" 5"), None);
        assert_eq!(digits(""), None);
        assert_eq!(digits("99999999999999999999"), None);
    }
}
