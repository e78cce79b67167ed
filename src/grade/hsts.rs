//! HTTP response headers from the one `GET /` on an HTTPS endpoint: the
//! security headers the report carries, and Strict-Transport-Security parsed
//! by RFC 6797 §6.1 for the rating.
//!
//! Malformed means a user agent would ignore the header: no `max-age`, a
//! `max-age` that is not a non-negative integer, a directive given twice, or
//! a directive that is not `name[=value]`. Only the first STS header counts
//! (§8.1); more than one is noted.

use std::collections::BTreeMap;

pub use crate::model::observed::HttpHeaders;
use serde::{Deserialize, Serialize};

/// The security headers the report lists, in their canonical spelling.
pub const SECURITY_HEADERS: [&str; 6] = [
    "Strict-Transport-Security",
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
];

/// The response headers the report lists besides the security ones.
pub const RESPONSE_HEADERS: [&str; 1] = ["Server"];

/// Strict-Transport-Security as parsed from the first such header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hsts {
    /// The header value as received.
    pub raw: String,
    /// Seconds; `None` when absent or unreadable (then `malformed` says why).
    pub max_age: Option<u64>,
    pub include_subdomains: bool,
    pub preload: bool,
    /// Why a user agent would ignore this header; `None` when well formed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub malformed: Option<String>,
    /// More than one STS header was sent (only the first counts).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub repeated: bool,
}

/// What the HTTP probe contributes to the assessment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpReport {
    pub status: u16,
    /// `None` when the response had no STS header.
    pub hsts: Option<Hsts>,
    /// Present security headers by canonical name; repeated headers joined with `, `.
    pub security_headers: BTreeMap<String, String>,
    /// `status` and `Server`.
    pub http_response_headers: BTreeMap<String, String>,
}

/// Parse one Strict-Transport-Security value.
pub fn parse_hsts(value: &str) -> Hsts {
    let mut h = Hsts {
        raw: value.to_string(),
        max_age: None,
        include_subdomains: false,
        preload: false,
        malformed: None,
        repeated: false,
    };
    let mut seen: Vec<String> = Vec::new();
    let mut problem: Option<String> = None;
    for directive in value.split(';') {
        let d = directive.trim();
        if d.is_empty() {
            continue;
        }
        let (name, val) = match d.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
            None => (d, None),
        };
        if name.is_empty() || !name.chars().all(is_token_char) {
            problem.get_or_insert(format!("`{d}` is not a directive"));
            continue;
        }
        let lname = name.to_ascii_lowercase();
        if seen.contains(&lname) {
            problem.get_or_insert(format!("directive `{name}` appears more than once"));
            continue;
        }
        seen.push(lname.clone());
        match lname.as_str() {
            "max-age" => match val {
                Some(Some(v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                    // Absurdly long values still mean "a very long time".
                    h.max_age = Some(v.parse().unwrap_or(u64::MAX));
                }
                Some(Some(v)) => {
                    problem.get_or_insert(format!("max-age `{v}` is not a non-negative integer"));
                }
                Some(None) => {
                    problem.get_or_insert("max-age has an unterminated quoted value".to_string());
                }
                None => {
                    problem.get_or_insert("max-age has no value".to_string());
                }
            },
            "includesubdomains" => h.include_subdomains = true,
            "preload" => h.preload = true,
            _ => {} // unknown directives are ignored (§6.1)
        }
    }
    if problem.is_none() && !seen.iter().any(|s| s == "max-age") {
        problem = Some("no max-age directive".to_string());
    }
    if problem.is_some() {
        // A user agent ignores the whole header: no max-age is in force.
        h.max_age = None;
    }
    h.malformed = problem;
    h
}

/// A quoted-string's content, or the token itself; `None` for an unterminated quote.
fn unquote(v: &str) -> Option<String> {
    match v.strip_prefix('"') {
        None => Some(v.to_string()),
        Some(rest) => rest.strip_suffix('"').map(|s| s.replace("\\\"", "\"")),
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Summarise the HTTP answer for the report and the rating.
pub fn report(http: &HttpHeaders) -> HttpReport {
    let mut sts = http.all("Strict-Transport-Security");
    let hsts = sts.next().map(|first| {
        let mut h = parse_hsts(first);
        h.repeated = sts.next().is_some();
        h
    });
    let collect = |names: &[&str]| {
        names
            .iter()
            .filter_map(|name| {
                let values: Vec<&str> = http.all(name).collect();
                (!values.is_empty()).then(|| (name.to_string(), values.join(", ")))
            })
            .collect::<BTreeMap<String, String>>()
    };
    let mut response = collect(&RESPONSE_HEADERS);
    response.insert("status".to_string(), http.status.to_string());
    HttpReport {
        status: http.status,
        hsts,
        security_headers: collect(&SECURITY_HEADERS),
        http_response_headers: response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_max_age_include_subdomains_preload() {
        let h = parse_hsts("max-age=63072000; includeSubDomains; preload");
        assert_eq!(h.max_age, Some(63_072_000));
        assert!(h.include_subdomains && h.preload);
        assert_eq!(h.malformed, None);
    }

    #[test]
    fn directive_names_are_case_insensitive_and_values_may_be_quoted() {
        let h = parse_hsts("Max-Age=\"31536000\";INCLUDESUBDOMAINS");
        assert_eq!(h.max_age, Some(31_536_000));
        assert!(h.include_subdomains && !h.preload);
        assert_eq!(h.malformed, None);
        let h = parse_hsts("max-age=0");
        assert_eq!((h.max_age, h.malformed), (Some(0), None));
    }

    #[test]
    fn unknown_directives_are_ignored() {
        let h = parse_hsts("max-age=100; report-uri=\"x\"; ; ");
        assert_eq!((h.max_age, h.malformed), (Some(100), None));
    }

    #[test]
    fn rejects_missing_max_age() {
        assert_eq!(
            parse_hsts("includeSubDomains").malformed.as_deref(),
            Some("no max-age directive")
        );
        assert_eq!(parse_hsts("").malformed.as_deref(), Some("no max-age directive"));
    }

    #[test]
    fn rejects_non_numeric_max_age() {
        for v in ["max-age=abc", "max-age=-1", "max-age=1.5", "max-age=", "max-age"] {
            let h = parse_hsts(v);
            assert!(h.malformed.is_some(), "{v}");
            assert_eq!(h.max_age, None, "{v}");
        }
        assert!(parse_hsts("max-age=\"10").malformed.unwrap().contains("unterminated"));
    }

    #[test]
    fn rejects_repeated_directives() {
        let h = parse_hsts("max-age=10; max-age=20");
        assert_eq!(
            h.malformed.as_deref(),
            Some("directive `max-age` appears more than once")
        );
        assert_eq!(h.max_age, None);
    }

    #[test]
    fn report_keeps_security_headers_and_server() {
        let http = HttpHeaders {
            status: 200,
            headers: vec![
                ("server".into(), "nginx".into()),
                ("strict-transport-security".into(), "max-age=10".into()),
                ("Strict-Transport-Security".into(), "max-age=99".into()),
                ("X-Frame-Options".into(), "DENY".into()),
                ("Set-Cookie".into(), "secret=1".into()),
            ],
        };
        let r = report(&http);
        let hsts = r.hsts.unwrap();
        assert_eq!(hsts.max_age, Some(10), "only the first header counts");
        assert!(hsts.repeated);
        assert_eq!(r.security_headers["X-Frame-Options"], "DENY");
        assert_eq!(
            r.security_headers["Strict-Transport-Security"],
            "max-age=10, max-age=99"
        );
        assert_eq!(r.http_response_headers["Server"], "nginx");
        assert_eq!(r.http_response_headers["status"], "200");
        assert!(!r.http_response_headers.contains_key("Set-Cookie"));
    }
}
