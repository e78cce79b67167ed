//! The `/metrics` page, written by `prometheus-client` (issue 17).
//!
//! Every value is read at scrape time from state the daemon keeps anyway
//! (atomics, the inventory's counts, the outbox and alert queues), so each
//! scrape fills a fresh registry and encodes it: no global state, no second
//! copy of a counter to keep in step. [`Exposition`] is the small builder
//! [`series`] fills (family, then samples); `finish` hands it to the crate,
//! which owns the format (OpenMetrics text: `# HELP`, `# TYPE`, label
//! escaping, `# EOF`). Integral values are encoded as integers, so a count
//! reads `3`, not `3.0`. Series names are the ones dashboards were written
//! against; counters keep their `_total` names.

pub mod series;

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format (Prometheus reads it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

type Labels = Vec<(String, String)>;

struct FamilyData {
    name: String,
    kind: Kind,
    help: String,
    samples: Vec<(Labels, f64)>,
}

/// A page of metrics under construction.
#[derive(Default)]
pub struct Exposition {
    families: Vec<FamilyData>,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family (once, however often it is named).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        if !self.families.iter().any(|f| f.name == name) {
            self.families.push(FamilyData {
                name: name.to_string(),
                kind,
                help: help.to_string(),
                samples: Vec::new(),
            });
        }
        self
    }

    /// One sample of the family `name` (call [`family`](Self::family) first).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        if let Some(f) = self.families.iter_mut().find(|f| f.name == name) {
            let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            f.samples.push((labels, value));
        }
        self
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    /// The page in the OpenMetrics text format.
    pub fn finish(self) -> String {
        let mut registry = Registry::default();
        for f in self.families {
            register(&mut registry, f);
        }
        let mut out = String::new();
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

fn integral(v: f64) -> bool {
    v.fract() == 0.0 && v.abs() < 9.0e15
}

fn register(registry: &mut Registry, f: FamilyData) {
    // The crate appends `_total` to counters and a full stop to help texts.
    let name = match f.kind {
        Kind::Counter => f.name.strip_suffix("_total").unwrap_or(&f.name).to_string(),
        Kind::Gauge => f.name.clone(),
    };
    let help = f.help.strip_suffix('.').unwrap_or(&f.help).to_string();
    let ints = f.samples.iter().all(|(_, v)| integral(*v));
    let single = f.samples.len() == 1 && f.samples[0].0.is_empty();
    let value = |v: &f64| *v;
    macro_rules! put {
        ($metric:ty, $set:expr) => {{
            if single {
                let m = <$metric>::default();
                $set(&m, value(&f.samples[0].1));
                registry.register(name, help, m);
            } else {
                let fam = Family::<Labels, $metric>::default();
                for (labels, v) in &f.samples {
                    $set(&fam.get_or_create(labels), *v);
                }
                registry.register(name, help, fam);
            }
        }};
    }
    match (f.kind, ints) {
        (Kind::Gauge, true) => put!(Gauge<i64, AtomicI64>, |m: &Gauge<i64, AtomicI64>, v: f64| {
            m.set(v as i64);
        }),
        (Kind::Gauge, false) => put!(Gauge<f64, AtomicU64>, |m: &Gauge<f64, AtomicU64>, v: f64| {
            m.set(v);
        }),
        (Kind::Counter, true) => put!(Counter<u64, AtomicU64>, |m: &Counter<u64, AtomicU64>, v: f64| {
            m.inc_by(v.max(0.0) as u64);
        }),
        (Kind::Counter, false) => put!(Counter<f64, AtomicU64>, |m: &Counter<f64, AtomicU64>, v: f64| {
            m.inc_by(v.max(0.0));
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_openmetrics_with_integral_values_as_integers() {
        let mut e = Exposition::new();
        e.single("netsensor_scans_running", Kind::Gauge, "Scans running now.", 2.0);
        e.family("netsensor_endpoints", Kind::Gauge, "Endpoints by category.")
            .sample("netsensor_endpoints", &[("category", "discovered")], 3.0);
        e.family("netsensor_ratio", Kind::Gauge, "A ratio.")
            .sample("netsensor_ratio", &[("x", "a")], 1.5);
        e.single("netsensor_runs_total", Kind::Counter, "Runs.", 4.0);
        e.family("netsensor_endpoints", Kind::Gauge, "again");
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP netsensor_scans_running Scans running now.\n\
             # TYPE netsensor_scans_running gauge\n\
             netsensor_scans_running 2\n\
             # HELP netsensor_endpoints Endpoints by category.\n\
             # TYPE netsensor_endpoints gauge\n\
             netsensor_endpoints{category=\"discovered\"} 3\n\
             # HELP netsensor_ratio A ratio.\n\
             # TYPE netsensor_ratio gauge\n\
             netsensor_ratio{x=\"a\"} 1.5\n\
             # HELP netsensor_runs Runs.\n\
             # TYPE netsensor_runs counter\n\
             netsensor_runs_total 4\n\
             # EOF\n"
        );
    }
}
