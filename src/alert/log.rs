//! The log channel: one warning per notice in the sensor's own log, so a
//! sensor under systemd tells journald (and whatever reads the journal:
//! syslog forwarding, a SIEM) without anything else to run. Written with
//! the target `netsensor::alert` and the notice's id, rule, severity and
//! subject as fields, so `SENSOR_LOG` or a journal filter can single them
//! out. Writing a log line cannot fail in a way worth retrying.

use crate::alert::answer::Answer;
use crate::alert::notice::{Message, Severity};

pub fn send(channel: &str, m: &Message) -> Answer {
    for n in &m.notices {
        match n.severity {
            Severity::Critical => tracing::error!(
                target: "netsensor::alert",
                channel, notice = %n.id, rule = %n.rule, kind = n.kind.as_str(), subject = %n.subject,
                threshold = %n.threshold, severity = n.severity.as_str(),
                "alert: {}", n.title
            ),
            Severity::Warning => tracing::warn!(
                target: "netsensor::alert",
                channel, notice = %n.id, rule = %n.rule, kind = n.kind.as_str(), subject = %n.subject,
                threshold = %n.threshold, severity = n.severity.as_str(),
                "alert: {}", n.title
            ),
            Severity::Info => tracing::info!(
                target: "netsensor::alert",
                channel, notice = %n.id, rule = %n.rule, kind = n.kind.as_str(), subject = %n.subject,
                threshold = %n.threshold, severity = n.severity.as_str(),
                "alert: {}", n.title
            ),
        }
    }
    Answer::Delivered(format!("{} line(s) written to the log", m.notices.len()))
}
