//! The daemon's `/metrics` page: which series exist and where each value
//! comes from.
//!
//! Dashboards and alerts are written against these names and labels, so
//! they are kept in one place and never renamed; every value is read at
//! scrape time from state the daemon keeps anyway.

use crate::appliance::metrics::{Exposition, Kind};
use crate::appliance::state::Shared;
use crate::output::expiry::Expiry;
use crate::report::reporter::Reporter;

/// The whole page (reads the inventory's counts and the outbox's status:
/// call it off the runtime's workers).
pub fn page(s: &Shared) -> String {
    let mut e = Exposition::new();
    e.family("netsensor_build_info", Kind::Gauge, "The sensor's version.")
        .sample(
            "netsensor_build_info",
            &[("version", env!("CARGO_PKG_VERSION")), ("sensor", &s.sensor_id)],
            1.0,
        );
    scheduler(&mut e, s);
    inventory(&mut e, s);
    e.family("netsensor_errors_total", Kind::Counter, "Errors by kind.");
    for (k, n) in s.errors() {
        e.sample("netsensor_errors_total", &[("kind", k)], n as f64);
    }
    proxy(&mut e, s);
    certificates(&mut e, s, time::OffsetDateTime::now_utc());
    alerts(&mut e, s);
    if let Some(counts) = s.fleet() {
        e.family(
            "netsensor_fleet_sensors",
            Kind::Gauge,
            "A central's enrolled sensors by status (offline: silent longer than [fleet] offline_after).",
        );
        for (status, n) in counts {
            e.sample("netsensor_fleet_sensors", &[("status", status)], n as f64);
        }
    }
    if let Some(r) = &s.reporter {
        reporting(&mut e, r);
    }
    e.finish()
}

fn scheduler(e: &mut Exposition, s: &Shared) {
    let profiles = s.profiles();
    e.single(
        "netsensor_scans_running",
        Kind::Gauge,
        "Profile runs in progress.",
        profiles.iter().filter(|p| p.running).count() as f64,
    );
    e.family("netsensor_runs_total", Kind::Counter, "Profile runs started.");
    for p in &profiles {
        e.sample("netsensor_runs_total", &[("profile", &p.name)], p.runs as f64);
    }
    e.family(
        "netsensor_runs_skipped_total",
        Kind::Counter,
        "Runs that came due while the previous run of the profile was still going.",
    );
    for p in &profiles {
        e.sample(
            "netsensor_runs_skipped_total",
            &[("profile", &p.name)],
            p.skipped as f64,
        );
    }
    let (probes, open) = s.probes();
    e.single(
        "netsensor_probes_total",
        Kind::Counter,
        "Connect probes finished (rate() gives probes/s).",
        probes as f64,
    );
    e.family(
        "netsensor_probe_rate",
        Kind::Gauge,
        "The discovery rate in force of each running scan, probes per second (+Inf: no limit; 0: not started).",
    );
    for (profile, rate) in s.probe_rates() {
        let v = rate.map_or(f64::INFINITY, |r| r as f64);
        e.sample("netsensor_probe_rate", &[("profile", &profile)], v);
    }
    e.single(
        "netsensor_open_ports_total",
        Kind::Counter,
        "Open ports found.",
        open as f64,
    );
}

fn inventory(e: &mut Exposition, s: &Shared) {
    let counts = s
        .inventory
        .lock()
        .ok()
        .and_then(|i| i.counts().ok())
        .unwrap_or_default();
    e.family(
        "netsensor_endpoints",
        Kind::Gauge,
        "Endpoints in the inventory by category (gone left out).",
    );
    for c in ["discovered", "unsecured", "automatable"] {
        let n = counts.by_category.get(c).copied().unwrap_or(0);
        e.sample("netsensor_endpoints", &[("category", c)], n as f64);
    }
    e.family(
        "netsensor_endpoints_by_grade",
        Kind::Gauge,
        "Endpoints in the inventory by grade.",
    );
    for (g, n) in &counts.by_grade {
        e.sample("netsensor_endpoints_by_grade", &[("grade", g)], *n as f64);
    }
}

/// Most endpoints given their own expiry series (the soonest): the label
/// set stays bounded however large the inventory grows.
pub const EXPIRY_SERIES: usize = 1000;

/// Each active endpoint's leaf certificate expiry (the soonest
/// [`EXPIRY_SERIES`]) and the counts by bucket (issue 21).
fn certificates(e: &mut Exposition, s: &Shared, now: time::OffsetDateTime) {
    use time::format_description::well_known::Rfc3339;
    let rows = s
        .inventory
        .lock()
        .ok()
        .and_then(|i| i.query(&crate::store::query::Filter::default()).ok())
        .unwrap_or_default();
    let mut certs: Vec<(i64, String, String, String, &'static str)> = rows
        .iter()
        .filter_map(|r| {
            let valid_to = &r.record.certificate.as_ref()?.valid_to;
            let at = time::OffsetDateTime::parse(valid_to, &Rfc3339).ok()?;
            let bucket = Expiry::at(valid_to, now)?.bucket();
            Some((
                at.unix_timestamp(),
                r.key.address.clone(),
                r.key.port.to_string(),
                r.key.sni.clone(),
                bucket,
            ))
        })
        .collect();
    e.family(
        "netsensor_certificates_by_expiry",
        Kind::Gauge,
        "Active endpoints by their certificate's expiry: expired, within 7, 30, 90 days, later.",
    );
    for bucket in ["expired", "7d", "30d", "90d", "later"] {
        let n = certs.iter().filter(|c| c.4 == bucket).count();
        e.sample("netsensor_certificates_by_expiry", &[("bucket", bucket)], n as f64);
    }
    certs.sort();
    e.family(
        "netsensor_certificate_expiry_timestamp_seconds",
        Kind::Gauge,
        "When an endpoint's certificate expires (Unix time; the 1000 soonest).",
    );
    for (at, address, port, sni, _) in certs.iter().take(EXPIRY_SERIES) {
        e.sample(
            "netsensor_certificate_expiry_timestamp_seconds",
            &[("address", address), ("port", port), ("sni", sni)],
            *at as f64,
        );
    }
}

/// Alert notices by delivery state, as `sensor status` shows them (issue 23).
fn alerts(e: &mut Exposition, s: &Shared) {
    let Some(st) = s.alerts().and_then(|a| a.status().ok()) else {
        return;
    };
    e.family(
        "netsensor_alert_deliveries",
        Kind::Gauge,
        "Alert deliveries by state: sent, failed (parked), waiting.",
    )
    .sample("netsensor_alert_deliveries", &[("state", "sent")], st.sent as f64)
    .sample("netsensor_alert_deliveries", &[("state", "failed")], st.failed as f64)
    .sample("netsensor_alert_deliveries", &[("state", "waiting")], st.waiting as f64);
}

fn proxy(e: &mut Exposition, s: &Shared) {
    let p = s.proxy.snapshot();
    e.single(
        "netsensor_proxy_tunnels_open",
        Kind::Gauge,
        "Agent tunnels open.",
        p.tunnels_open as f64,
    );
    e.single(
        "netsensor_proxy_tunnels_total",
        Kind::Counter,
        "Agent tunnels established.",
        p.tunnels_total as f64,
    );
    e.family(
        "netsensor_proxy_bytes_total",
        Kind::Counter,
        "Bytes carried by agent tunnels.",
    )
    .sample("netsensor_proxy_bytes_total", &[("direction", "up")], p.bytes_up as f64)
    .sample(
        "netsensor_proxy_bytes_total",
        &[("direction", "down")],
        p.bytes_down as f64,
    );
    e.family(
        "netsensor_proxy_refused_total",
        Kind::Counter,
        "Proxy requests refused by reason.",
    );
    for (why, n) in [
        ("bad_request", p.refused_bad_request),
        ("too_large", p.refused_too_large),
        ("head_timeout", p.refused_head_timeout),
        ("method", p.refused_method),
        ("auth", p.refused_auth),
        ("not_allowed", p.refused_not_allowed),
        ("agent_limit", p.refused_agent_limit),
        ("busy", p.refused_busy),
        ("unreachable", p.refused_unreachable),
    ] {
        e.sample("netsensor_proxy_refused_total", &[("reason", why)], n as f64);
    }
}

fn reporting(e: &mut Exposition, r: &Reporter) {
    use std::sync::atomic::Ordering::Relaxed;
    let st = r.status().unwrap_or_default();
    let counters = [
        (
            "netsensor_report_batches_delivered_total",
            "Report batches upstream acknowledged.",
            &r.stats.delivered_batches,
        ),
        (
            "netsensor_report_events_delivered_total",
            "Events in acknowledged batches.",
            &r.stats.delivered_events,
        ),
        (
            "netsensor_report_retries_total",
            "Delivery attempts that will be retried (errors, 408, 429, 5xx).",
            &r.stats.retries,
        ),
        (
            "netsensor_report_batches_parked_total",
            "Batches upstream refused for good (parked in the outbox).",
            &r.stats.parked,
        ),
    ];
    for (name, help, n) in counters {
        e.single(name, Kind::Counter, help, n.load(Relaxed) as f64);
    }
    e.single(
        "netsensor_outbox_records",
        Kind::Gauge,
        "Records in the outbox (pending and parked).",
        st.records as f64,
    );
    e.single(
        "netsensor_outbox_events",
        Kind::Gauge,
        "Events in the outbox.",
        st.events as f64,
    );
    e.single(
        "netsensor_outbox_bytes",
        Kind::Gauge,
        "Bytes of outbox records.",
        st.bytes as f64,
    );
    e.single(
        "netsensor_outbox_parked_batches",
        Kind::Gauge,
        "Parked batches waiting for `sensor outbox requeue`.",
        st.parked_batches.len() as f64,
    );
    e.single(
        "netsensor_outbox_resync_owed",
        Kind::Gauge,
        "1 while a full snapshot is owed upstream (the outbox was full).",
        if st.resync_needed { 1.0 } else { 0.0 },
    );
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::report::outbox::Limits;
    use crate::store::inventory::Inventory;

    #[test]
    fn the_probe_rate_of_each_running_scan_is_on_the_page() {
        let d = tempfile::tempdir().unwrap();
        let inv = Inventory::open(&d.path().join("inventory.sqlite")).unwrap();
        let s = Shared::new(
            "s1".into(),
            None,
            "2026-11-24T12:00:00Z".into(),
            d.path().into(),
            Arc::new(Mutex::new(inv)),
            None,
        );
        let text = page(&s);
        assert!(!text.contains("netsensor_probe_rate"), "nothing runs: {text}");
        let paced = Arc::new(crate::discover::connect::Progress::default());
        paced.set_rate(Some(12_500.4));
        let unlimited = Arc::new(crate::discover::connect::Progress::default());
        unlimited.set_rate(None);
        s.scan_started("lab", paced.clone());
        s.scan_started("wide", unlimited);
        let text = page(&s);
        assert!(
            text.contains("netsensor_probe_rate{profile=\"lab\"} 12500.0\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE netsensor_probe_rate gauge\n"), "{text}");
        // OpenMetrics says +Inf; the crate writes `inf`, which Prometheus reads as the same.
        assert!(text.contains("netsensor_probe_rate{profile=\"wide\"} inf\n"), "{text}");
        paced.set_rate(Some(800.0));
        assert!(page(&s).contains("netsensor_probe_rate{profile=\"lab\"} 800.0\n"));
        s.scan_ended("lab");
        s.scan_ended("wide");
        assert!(!page(&s).contains("netsensor_probe_rate{"));
    }

    #[test]
    fn the_page_names_every_family_once() {
        let d = tempfile::tempdir().unwrap();
        let inv = Inventory::open(&d.path().join("inventory.sqlite")).unwrap();
        let reporter = Reporter::open(d.path(), Limits::default()).unwrap();
        let s = Shared::new(
            "s1".into(),
            None,
            "2026-11-24T12:00:00Z".into(),
            d.path().into(),
            Arc::new(Mutex::new(inv)),
            Some(reporter),
        );
        s.profile("lab", |p| p.runs = 2);
        s.error("scan");
        let text = page(&s);
        for line in [
            "netsensor_build_info{version=\"",
            "netsensor_scans_running 0\n",
            "netsensor_runs_total{profile=\"lab\"} 2\n",
            "netsensor_runs_skipped_total{profile=\"lab\"} 0\n",
            "netsensor_probes_total 0\n",
            "netsensor_endpoints{category=\"automatable\"} 0\n",
            "netsensor_errors_total{kind=\"scan\"} 1\n",
            "netsensor_proxy_refused_total{reason=\"unreachable\"} 0\n",
            "netsensor_report_batches_delivered_total 0\n",
            "netsensor_outbox_resync_owed 0\n",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let mut names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(types, names.len());
    }
}
