//! A message as a person reads it: plain text and HTML for e-mail, one line
//! for the log. Everything that came from the network (names in
//! certificates, banners, SNI) is escaped in the HTML: a certificate's
//! common name is chosen by whoever runs the server.

use std::fmt::Write as _;

use crate::alert::notice::{Message, Notice};

/// `&`, `<`, `>`, `"` and `'` as entities.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The facts of one notice as (label, value) lines.
fn facts(n: &Notice) -> Vec<(String, String)> {
    let mut out = vec![
        ("severity".to_string(), n.severity.as_str().to_string()),
        ("rule".into(), format!("{} ({})", n.rule, n.kind.as_str())),
    ];
    if let Some(c) = &n.certificate {
        out.push((
            "certificate".into(),
            c.common_name.clone().unwrap_or_else(|| c.subject_dn.clone()),
        ));
        out.push(("issuer".into(), c.issuer_dn.clone()));
        out.push(("valid to".into(), format!("{} ({} days left)", c.valid_to, c.days_left)));
        out.push(("thumbprint".into(), c.thumbprint.clone()));
    }
    for e in &n.endpoints {
        let mut v = e.place();
        if let Some(g) = &e.grade {
            let _ = write!(v, ", grade {g}");
        }
        if !e.sensor.is_empty() {
            let _ = write!(v, ", sensor {}", e.sensor);
        }
        out.push(("endpoint".into(), v));
    }
    for (k, v) in &n.details {
        out.push((k.replace('_', " "), v.clone()));
    }
    out.push(("notice id".into(), n.id.clone()));
    out
}

/// The plain-text body.
pub fn text(m: &Message) -> String {
    let mut out = String::new();
    if m.digest {
        let _ = writeln!(out, "{}\n", m.subject().trim_start_matches("[netsensor] "));
    }
    for n in &m.notices {
        let _ = writeln!(out, "{}", n.title);
        for (k, v) in facts(n) {
            let _ = writeln!(out, "  {k}: {v}");
        }
        out.push('\n');
    }
    if m.more > 0 {
        let _ = writeln!(out, "{} more notice(s) follow in the next message.\n", m.more);
    }
    let _ = writeln!(
        out,
        "-- \nnetsensor sensor {}{}",
        m.sensor.id,
        m.sensor.name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
    );
    out
}

/// The HTML body (every value escaped).
pub fn html(m: &Message) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n");
    if m.digest {
        let _ = writeln!(
            out,
            "<p>{}</p>",
            escape_html(m.subject().trim_start_matches("[netsensor] "))
        );
    }
    for n in &m.notices {
        let _ = writeln!(out, "<h3>{}</h3>\n<table>", escape_html(&n.title));
        for (k, v) in facts(n) {
            let _ = writeln!(
                out,
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                escape_html(&k),
                escape_html(&v)
            );
        }
        out.push_str("</table>\n");
    }
    if m.more > 0 {
        let _ = writeln!(out, "<p>{} more notice(s) follow in the next message.</p>", m.more);
    }
    let _ = writeln!(
        out,
        "<p><small>netsensor sensor {}</small></p>\n</body></html>",
        escape_html(&m.sensor.id)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::config::RuleKind;
    use crate::alert::notice::{EndpointRef, SensorRef, Severity};

    fn notice(title: &str) -> Notice {
        Notice {
            id: "abc".into(),
            rule: "unsecured".into(),
            kind: RuleKind::Unsecured,
            subject: "e1".into(),
            threshold: "unsecured".into(),
            severity: Severity::Warning,
            title: title.into(),
            created_at: "2026-11-24T12:00:00Z".into(),
            certificate: None,
            endpoints: vec![EndpointRef {
                id: "e1".into(),
                address: "::1".into(),
                port: 80,
                sni: "<img src=x>".into(),
                sensor: String::new(),
                category: "unsecured".into(),
                grade: None,
                tags: vec![],
            }],
            details: Default::default(),
        }
    }

    #[test]
    fn html_escapes_what_came_from_the_network() {
        let m = Message::single(
            SensorRef {
                id: "s1".into(),
                name: None,
            },
            notice("Unsecured <script>alert('x')</script> & co"),
        );
        let h = html(&m);
        assert!(!h.contains("<script>") && !h.contains("<img"), "{h}");
        assert!(
            h.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"),
            "{h}"
        );
        assert!(h.contains("[::1]:80 (&lt;img src=x&gt;)"), "{h}");
        let t = text(&m);
        assert!(
            t.contains("Unsecured <script>") && t.contains("endpoint: [::1]:80"),
            "{t}"
        );
    }

    #[test]
    fn a_digest_says_how_many_and_how_many_follow() {
        let s = SensorRef {
            id: "s1".into(),
            name: Some("Segment".into()),
        };
        let m = Message::digest(s, "d".into(), vec![notice("a"), notice("b")], 3);
        assert_eq!(
            m.subject(),
            "[netsensor] 2 notice(s) from Segment (warning), 3 more to follow"
        );
        assert!(text(&m).contains("3 more notice(s) follow"));
    }
}
