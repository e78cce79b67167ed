//! Port lists: `443`, `1-1024`, `default`, `all`, comma lists.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::TargetError;

/// The ports of the vendor sensor's default set plus the mail ports we add.
pub const DEFAULT_PORTS: [u16; 12] = [25, 110, 143, 389, 443, 465, 587, 636, 993, 995, 3389, 8443];

/// A sorted, de-duplicated set of ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSet(Vec<u16>);

impl PortSet {
    pub fn as_slice(&self) -> &[u16] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for PortSet {
    type Err = TargetError;

    /// `443`, `1-1024`, `default`, `all` (or `-`), and comma-separated mixes.
    /// A range names both ends: `1-` and `-1024` are refused.
    fn from_str(s: &str) -> Result<Self, TargetError> {
        let bad = |token: &str, reason: &str| TargetError::BadPort {
            token: token.to_string(),
            reason: reason.to_string(),
        };
        let mut set = BTreeSet::new();
        for token in s.split(',').map(str::trim) {
            match token {
                "" => return Err(bad(s, "empty entry in the port list")),
                "default" => set.extend(DEFAULT_PORTS),
                "all" | "-" => set.extend(1..=65535u16),
                _ => {
                    let (a, b) = token.split_once('-').unwrap_or((token, token));
                    if a.trim().is_empty() || b.trim().is_empty() {
                        // nmap reads `1-` as "to 65535" and `-1024` as "from 1": a
                        // typo then widens the scan to every port. Say it in full.
                        return Err(bad(
                            token,
                            "open range: write both ends (`1-65535`), or `all` for every port",
                        ));
                    }
                    let parse = |p: &str| -> Result<u16, TargetError> {
                        let p = p.trim();
                        if !p.bytes().all(|c| c.is_ascii_digit()) {
                            return Err(bad(token, "not a port number, range or `default`"));
                        }
                        match p.parse::<u32>() {
                            Ok(0) => Err(bad(token, "port 0 cannot be scanned")),
                            Ok(n) if n <= 65535 => Ok(n as u16),
                            Ok(_) => Err(bad(token, "ports go up to 65535")),
                            Err(_) => Err(bad(token, "not a port number, range or `default`")),
                        }
                    };
                    let (a, b) = (parse(a)?, parse(b)?);
                    if a > b {
                        return Err(bad(token, "range end comes before its start"));
                    }
                    set.extend(a..=b);
                }
            }
        }
        Ok(PortSet(set.into_iter().collect()))
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end.wrapping_add(1) {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}
