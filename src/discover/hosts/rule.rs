//! Pure: whether a scan runs host discovery, and which probes it sends.
//!
//! The rule (`HostDiscovery::Auto`, the default): host discovery pays when
//! it saves probes. It runs when the plan has more than
//! [`AUTO_MIN_ADDRESSES`] - 1 addresses (256: a /24 or less is probed
//! directly, as cheap as asking first and never missing a host that filters
//! the liveness probes) and this sensor would send more port probes per
//! address than liveness probes (the default 12-port list against 4 or 5
//! liveness probes; `-p 443` probes directly). `--no-host-discovery` /
//! `-Pn` and `host_discovery = false` turn it off; `host_discovery = true`
//! turns it on whatever the size.

/// The liveness ports: nmap's 443 and 80, plus 22 and 3389, the other ports
/// most hosts that answer at all keep open. Never 2024.
pub const LIVENESS_PORTS: [u16; 4] = [443, 80, 22, 3389];

/// Auto turns host discovery on from this many addresses up (more than a /24).
pub const AUTO_MIN_ADDRESSES: u128 = 257;

/// `--no-host-discovery` / `-Pn` and the profile key `host_discovery`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostDiscovery {
    /// On for large ranges where it saves probes ([`decide`]).
    #[default]
    Auto,
    /// Always (`host_discovery = true`).
    On,
    /// Never: every port of every address is probed (`-Pn`, `host_discovery = false`).
    Off,
}

impl HostDiscovery {
    /// The profile key's value: `None` (absent) is `Auto`.
    pub fn from_setting(v: Option<bool>) -> HostDiscovery {
        match v {
            None => HostDiscovery::Auto,
            Some(true) => HostDiscovery::On,
            Some(false) => HostDiscovery::Off,
        }
    }
}

/// What [`decide`] chose, and why (for the `-v` log).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub on: bool,
    pub why: &'static str,
}

/// Whether to run host discovery: `addresses` in the plan (excluded ones
/// not counted), `port_probes` per address this sensor sends (the port
/// list's length divided by the shard count), `liveness_probes` per address
/// (the liveness ports, plus one ICMP echo where raw sockets allow).
pub fn decide(mode: HostDiscovery, addresses: u128, port_probes: f64, liveness_probes: usize) -> Decision {
    match mode {
        HostDiscovery::Off => Decision {
            on: false,
            why: "turned off (-Pn / host_discovery = false)",
        },
        HostDiscovery::On => Decision {
            on: true,
            why: "turned on (host_discovery = true)",
        },
        HostDiscovery::Auto if addresses < AUTO_MIN_ADDRESSES => Decision {
            on: false,
            why: "256 addresses or fewer: probing the ports directly is as cheap",
        },
        HostDiscovery::Auto if port_probes <= liveness_probes as f64 => Decision {
            on: false,
            why: "no more port probes per address than liveness probes",
        },
        HostDiscovery::Auto => Decision {
            on: true,
            why: "more than 256 addresses and more port probes than liveness probes per address",
        },
    }
}

/// Port probes per address one sensor sends: `ports` divided among `shards`.
pub fn port_probes(ports: usize, shards: u64) -> f64 {
    ports as f64 / shards.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_liveness_ports_never_include_2024() {
        assert!(!LIVENESS_PORTS.contains(&2024));
        assert!(LIVENESS_PORTS.contains(&443) && LIVENESS_PORTS.contains(&80));
    }

    #[test]
    fn auto_is_on_for_large_ranges_with_long_port_lists_only() {
        let auto = HostDiscovery::Auto;
        // The default 12-port list on a /16: on.
        assert!(decide(auto, 65_536, port_probes(12, 1), 5).on);
        // A /24 (256 addresses) and a single host: off.
        assert!(!decide(auto, 256, port_probes(12, 1), 5).on);
        assert!(!decide(auto, 1, port_probes(65_534, 1), 5).on);
        // 257 addresses: on.
        assert!(decide(auto, 257, port_probes(12, 1), 5).on);
        // One port, or as many ports as liveness probes: off.
        assert!(!decide(auto, 65_536, port_probes(1, 1), 4).on);
        assert!(!decide(auto, 65_536, port_probes(4, 1), 4).on);
        assert!(decide(auto, 65_536, port_probes(5, 1), 4).on);
        // A 12-port list split among 4 sensors is 3 probes per address each: off.
        assert!(!decide(auto, 65_536, port_probes(12, 4), 4).on);
    }

    #[test]
    fn on_and_off_override_the_rule() {
        assert!(decide(HostDiscovery::On, 1, 1.0, 5).on);
        assert!(!decide(HostDiscovery::Off, 1 << 24, 65_535.0, 5).on);
        assert_eq!(HostDiscovery::from_setting(None), HostDiscovery::Auto);
        assert_eq!(HostDiscovery::from_setting(Some(true)), HostDiscovery::On);
        assert_eq!(HostDiscovery::from_setting(Some(false)), HostDiscovery::Off);
        assert!(decide(HostDiscovery::Off, 1, 1.0, 5).why.contains("-Pn"));
    }
}
