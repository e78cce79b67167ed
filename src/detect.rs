//! What an open port speaks, judged from the first bytes it sent.
//!
//! Pure: the probes hand over bytes, this decides "TLS", "SSLv2", "plaintext
//! service X" or "nothing". A plaintext service on a scanned port is an
//! unsecured endpoint, so naming it (HTTP and its `Server`, SSH, SMTP …) is
//! what makes the finding actionable.

use crate::record::ServiceInfo;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A TLS record header (content type 20–24, version 3.x).
    Tls,
    /// An SSLv2 SERVER-HELLO.
    Sslv2,
    /// Something else: a plaintext service.
    Plain,
    /// Nothing at all.
    Silent,
}

pub fn classify(first: &[u8]) -> Answer {
    match first {
        [] => Answer::Silent,
        [ct, 3, minor, ..] if (20..=24).contains(ct) && *minor <= 4 => Answer::Tls,
        // A 2-byte SSLv2 header (high bit set) followed by SERVER-HELLO (4).
        [h, _, 4, ..] if h & 0x80 != 0 => Answer::Sslv2,
        [ct] | [ct, _] if (20..=24).contains(ct) => Answer::Tls,
        _ => Answer::Plain,
    }
}

/// Name a plaintext service from what it said.
pub fn identify(bytes: &[u8]) -> ServiceInfo {
    let text = String::from_utf8_lossy(bytes);
    let first_line = text.lines().next().unwrap_or("");
    let banner = printable(first_line, 200);
    let name = if first_line.starts_with("HTTP/") {
        "http"
    } else if first_line.starts_with("SSH-") {
        "ssh"
    } else if first_line.starts_with("+OK") {
        "pop3"
    } else if first_line.starts_with("* OK") || first_line.starts_with("* PREAUTH") {
        "imap"
    } else if first_line.starts_with("220") {
        let lower = first_line.to_ascii_lowercase();
        if lower.contains("ftp") {
            "ftp"
        } else if lower.contains("smtp") || lower.contains("esmtp") || lower.contains("mail") {
            "smtp"
        } else {
            "smtp-or-ftp"
        }
    } else if first_line.starts_with("-ERR") || first_line.starts_with("-NOAUTH") {
        "redis"
    } else if bytes.len() > 5 && bytes[4] == 0x0a && bytes.get(3) == Some(&0) {
        // MySQL initial handshake: 3-byte length, sequence 0, protocol 10.
        "mysql"
    } else {
        "unknown"
    };
    let server = if name == "http" {
        text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("server")
                .then(|| printable(v.trim(), 200))
        })
    } else {
        None
    };
    ServiceInfo {
        name: name.to_string(),
        banner: (!banner.is_empty()).then_some(banner),
        server,
    }
}

fn printable(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_first_bytes() {
        assert_eq!(classify(&[0x16, 3, 3, 0, 0x5a, 2]), Answer::Tls);
        assert_eq!(classify(&[0x15, 3, 1, 0, 2, 2, 70]), Answer::Tls);
        assert_eq!(classify(&[0x15]), Answer::Tls);
        assert_eq!(classify(&[0x80, 0x2e, 4, 0, 1]), Answer::Sslv2);
        assert_eq!(classify(b"HTTP/1.1 400 Bad Request\r\n"), Answer::Plain);
        assert_eq!(classify(b"\x16\x09garbage"), Answer::Plain);
        assert_eq!(classify(b""), Answer::Silent);
    }

    #[test]
    fn names_plain_services() {
        let http = identify(b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\nDate: x\r\n\r\n<html>");
        assert_eq!(http.name, "http");
        assert_eq!(http.server.as_deref(), Some("nginx/1.22.1"));
        assert_eq!(http.banner.as_deref(), Some("HTTP/1.1 400 Bad Request"));
        assert_eq!(identify(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n").name, "ssh");
        assert_eq!(identify(b"220 mx.test ESMTP Postfix\r\n").name, "smtp");
        assert_eq!(identify(b"220 (vsFTPd 3.0.3)\r\n").name, "ftp");
        assert_eq!(identify(b"+OK Dovecot ready.\r\n").name, "pop3");
        assert_eq!(identify(b"* OK [CAPABILITY IMAP4rev1] ready\r\n").name, "imap");
        let junk = identify(b"\x00\x01\x02zz\x1b[31m");
        assert_eq!(junk.name, "unknown");
        assert!(junk.banner.unwrap().chars().all(|c| !c.is_control()));
    }
}
