//! What an open port speaks, judged from the first bytes it sent.
//!
//! Pure: the probes hand over bytes, this decides "TLS", "SSLv2", "plaintext
//! service X" or "nothing". A plaintext service on a scanned port is an
//! unsecured endpoint, so naming it (HTTP and its `Server`, SSH, SMTP …) is
//! what makes the finding actionable.

use crate::model::record::ServiceInfo;

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
    let (product, version) = match (name, &server) {
        ("http", Some(server)) => product_version(server),
        ("mysql", _) => mysql_version(bytes),
        _ => product_version(&banner),
    };
    ServiceInfo {
        name: name.to_string(),
        banner: (!banner.is_empty()).then_some(banner),
        server,
        product,
        version,
    }
}

/// Software that says its name in greetings, as it spells it.
const PRODUCTS: &[&str] = &[
    "OpenSSH",
    "Dropbear",
    "Postfix",
    "Exim",
    "Sendmail",
    "Microsoft ESMTP",
    "vsFTPd",
    "ProFTPD",
    "Pure-FTPd",
    "FileZilla",
    "Dovecot",
    "Cyrus",
    "Courier",
    "nginx",
    "Apache",
    "Microsoft-IIS",
    "lighttpd",
    "Caddy",
    "MariaDB",
    "OpenLDAP",
    "Prosody",
    "ejabberd",
    "netsensor-testbed",
];

/// Product and version named in a banner line (`SSH-2.0-OpenSSH_9.2p1`,
/// `220 (vsFTPd 3.0.3)`, `nginx/1.22.1`, `220 mx ESMTP Exim 4.96`).
pub fn product_version(banner: &str) -> (Option<String>, Option<String>) {
    let lower = banner.to_ascii_lowercase();
    let Some((at, product)) = PRODUCTS
        .iter()
        .filter_map(|p| lower.find(&p.to_ascii_lowercase()).map(|i| (i, *p)))
        .min_by_key(|(i, _)| *i)
    else {
        return (None, None);
    };
    let rest = &banner[at + product.len()..];
    let version = rest
        .strip_prefix(['/', '_', ' ', '-'])
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        .map(|r| {
            r.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect::<String>()
        });
    (Some(product.to_string()), version)
}

/// MySQL and MariaDB say their version in the initial handshake.
fn mysql_version(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let Some(rest) = bytes.get(5..) else {
        return (None, None);
    };
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len()).min(100);
    mysql_product(&String::from_utf8_lossy(&rest[..end]))
}

/// `10.11.6-MariaDB-0+deb12u1` → MariaDB 10.11.6; `8.0.36` → MySQL 8.0.36.
pub fn mysql_product(server_version: &str) -> (Option<String>, Option<String>) {
    let number: String = server_version
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let version = (!number.is_empty()).then_some(number);
    let product = match server_version.to_ascii_lowercase().contains("mariadb") {
        true => "MariaDB",
        false => "MySQL",
    };
    (Some(product.to_string()), version)
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
        let ssh = identify(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
        assert_eq!(
            (ssh.product.as_deref(), ssh.version.as_deref()),
            (Some("OpenSSH"), Some("9.2p1"))
        );
        assert_eq!(http.product.as_deref(), Some("nginx"));
        assert_eq!(http.version.as_deref(), Some("1.22.1"));
        let ftp = identify(b"220 (vsFTPd 3.0.3)\r\n");
        assert_eq!(
            (ftp.product.as_deref(), ftp.version.as_deref()),
            (Some("vsFTPd"), Some("3.0.3"))
        );
        let smtp = identify(b"220 mx.test ESMTP Postfix (Debian/GNU)\r\n");
        assert_eq!((smtp.product.as_deref(), smtp.version), (Some("Postfix"), None));
        assert_eq!(
            mysql_product("10.11.6-MariaDB-0+deb12u1"),
            (Some("MariaDB".into()), Some("10.11.6".into()))
        );
        let junk = identify(b"\x00\x01\x02zz\x1b[31m");
        assert_eq!(junk.name, "unknown");
        assert!(junk.banner.unwrap().chars().all(|c| !c.is_control()));
    }
}
