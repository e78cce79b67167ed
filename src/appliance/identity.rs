//! The sensor's id when the configuration names none: stable across
//! restarts of the same machine, so upstream keeps one inventory per
//! sensor without anyone choosing names.

/// `sensor-` and the first 12 characters of the machine id, else the host name.
pub fn derived_sensor_id() -> String {
    if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
        let id: String = id.trim().chars().filter(char::is_ascii_alphanumeric).take(12).collect();
        if !id.is_empty() {
            return format!("sensor-{id}");
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(56)
        .collect();
    if host.is_empty() {
        "sensor".into()
    } else {
        format!("sensor-{host}")
    }
}
