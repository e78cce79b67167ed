//! Which definitions a sensor runs, and which share of each: the profile
//! text it is sent.
//!
//! A split definition is one plan shared by the listed sensors that can
//! run (not suspended, not voided), in the order of their ids: the i-th of
//! n runs `shard = "i/n"`, and the engine's shards are disjoint and cover
//! the plan whatever the seed (`discover::targets::plan`). A sensor that is
//! voided or suspended drops out of the count, so its share goes to the
//! others at their next run; a sensor that is only offline keeps its share
//! (it runs when it returns). Pure: the inputs are the store's rows.

use serde::Serialize;
use serde_json::Value;

use crate::fleet::definition::{self, Definition};
use crate::store::fleet::{ScanRow, ScanState, SensorRow, SensorState};

/// One definition as a sensor runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assignment {
    /// The definition's id.
    pub scan: String,
    pub revision: i64,
    /// The profile's name on the sensor (`fleet-` and the definition's).
    pub name: String,
    /// The profile as TOML, validated by the sensor like a local one.
    pub profile: String,
}

/// The profile name a definition runs under on a sensor (apart from its
/// local profiles' names).
pub fn profile_name(definition_name: &str) -> String {
    format!("fleet-{definition_name}")
}

fn listed(def: &Definition, s: &SensorRow) -> Option<String> {
    def.sensors.iter().find(|x| **x == s.name || **x == s.id).cloned()
}

/// What `me` runs of `scans`, given the whole fleet. Empty for a sensor that
/// is not active. A definition that no longer parses is skipped (it was
/// validated when stored).
pub fn assignments(scans: &[ScanRow], me: &SensorRow, fleet: &[SensorRow]) -> Vec<Assignment> {
    if me.state != SensorState::Active {
        return Vec::new();
    }
    let mut out = Vec::new();
    for scan in scans.iter().filter(|s| s.state == ScanState::Active) {
        let Ok(def) = stored(&scan.definition) else {
            continue;
        };
        let Some(as_listed) = listed(&def, me) else {
            continue;
        };
        let mut profile = def.profile.clone();
        profile.insert("name".into(), Value::from(profile_name(&def.name)));
        if def.split {
            let mut sharing: Vec<&SensorRow> = fleet
                .iter()
                .filter(|s| s.state == SensorState::Active && listed(&def, s).is_some())
                .collect();
            sharing.sort_by(|a, b| a.id.cmp(&b.id));
            let Some(i) = sharing.iter().position(|s| s.id == me.id) else {
                continue;
            };
            if sharing.len() > 1 {
                profile.insert("shard".into(), Value::from(format!("{}/{}", i + 1, sharing.len())));
            }
        } else if let Some(own) = def.per_sensor.get(&as_listed) {
            definition::apply(&mut profile, own);
        }
        let Ok(text) = definition::to_toml(&profile) else {
            continue;
        };
        out.push(Assignment {
            scan: scan.id.clone(),
            revision: scan.revision,
            name: profile_name(&def.name),
            profile: text,
        });
    }
    out
}

/// A stored definition read back (it passed [`definition::parse`] before).
pub fn stored(v: &Value) -> Result<Definition, definition::FieldError> {
    definition::parse(v, &|_| Ok(()))
}

/// The ETag of a sensor's assignments: changes whenever what it runs does.
pub fn etag(assignments: &[Assignment]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for a in assignments {
        for part in [a.scan.as_str(), &a.revision.to_string(), &a.name, &a.profile] {
            h.update(part.as_bytes());
            h.update([0]);
        }
    }
    let hex: String = crate::model::ids::hex(&h.finalize()[..16]);
    format!("\"{hex}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sensor(id: &str, name: &str, state: SensorState) -> SensorRow {
        SensorRow {
            id: id.into(),
            name: name.into(),
            state,
            version: None,
            enrolled_at: "2026-01-01T00:00:00Z".into(),
            last_seen: None,
            heartbeat: None,
            offline: false,
        }
    }

    fn scan(def: Value) -> ScanRow {
        ScanRow {
            id: "d1".into(),
            name: "lab".into(),
            definition: def,
            state: ScanState::Active,
            revision: 3,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn shard_of(a: &[Assignment]) -> Option<String> {
        let t: toml::Table = toml::from_str(&a[0].profile).unwrap();
        t.get("shard").and_then(|v| v.as_str()).map(str::to_string)
    }

    #[test]
    fn a_split_gives_each_active_sensor_one_shard_by_id() {
        let scans = [scan(
            json!({"name": "lab", "targets": ["127.0.0.0/29"], "sensors": ["a", "b", "id-c"], "split": true}),
        )];
        let a = sensor("id-a", "a", SensorState::Active);
        let b = sensor("id-b", "b", SensorState::Active);
        let c = sensor("id-c", "c", SensorState::Active);
        let other = sensor("id-0", "other", SensorState::Active);
        let fleet = [c.clone(), a.clone(), b.clone(), other.clone()];
        let shards: Vec<_> = [&a, &b, &c]
            .iter()
            .map(|s| shard_of(&assignments(&scans, s, &fleet)))
            .collect();
        assert_eq!(shards, [Some("1/3".into()), Some("2/3".into()), Some("3/3".into())]);
        assert!(assignments(&scans, &other, &fleet).is_empty(), "not listed");
        let x = &assignments(&scans, &a, &fleet)[0];
        assert_eq!((x.scan.as_str(), x.revision, x.name.as_str()), ("d1", 3, "fleet-lab"));
        assert!(x.profile.contains("name = \"fleet-lab\""), "{}", x.profile);

        // b is voided: its share goes to a and c at their next run.
        let fleet = [a.clone(), sensor("id-b", "b", SensorState::Voided), c.clone()];
        let shards: Vec<_> = [&a, &c]
            .iter()
            .map(|s| shard_of(&assignments(&scans, s, &fleet)))
            .collect();
        assert_eq!(shards, [Some("1/2".into()), Some("2/2".into())]);
        assert!(
            assignments(&scans, &fleet[1], &fleet).is_empty(),
            "a voided sensor runs nothing"
        );
        // Only a left: the whole plan.
        let fleet = [
            a.clone(),
            sensor("id-b", "b", SensorState::Suspended),
            sensor("id-c", "c", SensorState::Voided),
        ];
        assert_eq!(shard_of(&assignments(&scans, &a, &fleet)), None);
    }

    #[test]
    fn suspended_definitions_and_per_sensor_lists() {
        let mut s = scan(
            json!({"name": "lab", "targets": ["127.0.0.0/29"], "exclude": ["127.0.0.7"],
            "sensors": ["a", "b"], "per_sensor": {"a": {"targets": ["127.0.0.1"], "exclude": ["127.0.0.2"]}}}),
        );
        let a = sensor("id-a", "a", SensorState::Active);
        let b = sensor("id-b", "b", SensorState::Active);
        let fleet = [a.clone(), b.clone()];
        let mine = assignments(std::slice::from_ref(&s), &a, &fleet);
        let t: toml::Table = toml::from_str(&mine[0].profile).unwrap();
        assert_eq!(t["targets"].as_array().unwrap().len(), 1);
        assert_eq!(t["exclude"].as_array().unwrap().len(), 2);
        let theirs = assignments(std::slice::from_ref(&s), &b, &fleet);
        assert!(theirs[0].profile.contains("127.0.0.0/29"));
        assert_ne!(etag(&mine), etag(&theirs));
        assert_eq!(etag(&mine), etag(&assignments(std::slice::from_ref(&s), &a, &fleet)));
        s.state = ScanState::Suspended;
        assert!(assignments(std::slice::from_ref(&s), &a, &fleet).is_empty());
    }
}
