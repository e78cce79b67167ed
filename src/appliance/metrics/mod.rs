//! Prometheus text exposition, written by hand.
//!
//! The sensor exports a few dozen series, all computed at scrape time from
//! state it keeps anyway (atomics, the inventory's counts), so a metrics
//! registry with its own global state and an HTTP exporter would add a
//! dependency tree for what is a formatting job. This builder writes the
//! text format 0.0.4: one `# HELP`/`# TYPE` per family, label values escaped.
//! [`series`] names and fills the daemon's families.

pub mod series;

use std::fmt::Write as _;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// A page of metrics under construction.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
    families: Vec<String>,
}

impl Exposition {
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family (written once, however often it is named).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        if !self.families.iter().any(|f| f == name) {
            self.families.push(name.to_string());
            let kind = match kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let help = help.replace('\\', "\\\\").replace('\n', "\\n");
            let _ = writeln!(self.text, "# HELP {name} {help}");
            let _ = writeln!(self.text, "# TYPE {name} {kind}");
        }
        self
    }

    /// One sample of the family `name` (call [`family`](Self::family) first).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.text, "{k}=\"{v}\"");
            }
            self.text.push('}');
        }
        if value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = writeln!(self.text, " {}", value as i64);
        } else {
            let _ = writeln!(self.text, " {value}");
        }
        self
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_text_format() {
        let mut e = Exposition::new();
        e.single("netsensor_scans_running", Kind::Gauge, "Scans running now.", 2.0);
        e.family("netsensor_endpoints", Kind::Gauge, "Endpoints by category.")
            .sample("netsensor_endpoints", &[("category", "discovered")], 3.0)
            .sample("netsensor_endpoints", &[("category", "un\"se\\cured\n")], 1.5);
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
             netsensor_endpoints{category=\"un\\\"se\\\\cured\\n\"} 1.5\n"
        );
    }
}
