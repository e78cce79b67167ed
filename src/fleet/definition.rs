//! A scan definition as the central API takes it: a scan profile's keys
//! (`docs/scan-profiles`, the same TOML a local profile is, as JSON) plus
//! who runs it: `sensors` (names or ids), and either `split: true` (the
//! sensors share one plan, each a disjoint shard) or `per_sensor` include
//! and exclude lists, or neither (each sensor runs the whole definition).
//!
//! Validation is the local profiles' own, strict: the profile part is
//! turned into TOML and given to the same parser (injected as a
//! [`ProfileCheck`], since that parser is the appliance's), so an unknown
//! key or a bad port list is refused with the same words. Every refusal
//! names its field (`sensors`, `per_sensor.b.targets`, `ports`) for the
//! API's 400. Pure.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::discover::targets::TargetSpec;

/// Keys of a definition that are the fleet's, not the profile's.
pub const FLEET_KEYS: [&str; 3] = ["sensors", "split", "per_sensor"];

/// A refused definition: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// The local profiles' validation of a profile's TOML text.
pub type ProfileCheck<'a> = &'a dyn Fn(&str) -> Result<(), FieldError>;

/// A validated definition: the profile's keys and the assignment.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    pub name: String,
    /// The profile's keys, as JSON (no fleet keys, no `shard`).
    pub profile: Map<String, Value>,
    pub sensors: Vec<String>,
    pub split: bool,
    /// Sensor (as listed) → its own `targets` (replacing the definition's)
    /// and `exclude` (added to it).
    pub per_sensor: BTreeMap<String, PerSensor>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct PerSensor {
    pub targets: Option<Vec<String>>,
    pub exclude: Vec<String>,
}

/// The profile's TOML text of `profile` (a JSON object): nulls dropped.
pub fn to_toml(profile: &Map<String, Value>) -> Result<String, FieldError> {
    let clean: Map<String, Value> = profile
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    toml::to_string(&clean).map_err(|e| refuse("definition", format!("cannot be a profile: {e}")))
}

/// A TOML profile file as a definition's JSON (`sensor fleet scans create FILE.toml`).
pub fn from_toml(text: &str) -> Result<Map<String, Value>, FieldError> {
    let v: toml::Value = toml::from_str(text).map_err(|e| refuse("profile", e.message().to_string()))?;
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(refuse("profile", "is not a table")),
    }
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>, FieldError> {
    let Value::Array(items) = v else {
        return Err(refuse(field, "must be a list of strings"));
    };
    items
        .iter()
        .map(|i| {
            i.as_str()
                .map(str::to_string)
                .ok_or_else(|| refuse(field, "must be a list of strings"))
        })
        .collect()
}

/// Validates a definition's JSON body.
pub fn parse(body: &Value, check: ProfileCheck<'_>) -> Result<Definition, FieldError> {
    let Value::Object(all) = body else {
        return Err(refuse("definition", "must be a JSON object"));
    };
    let mut profile = all.clone();
    for k in FLEET_KEYS {
        profile.remove(k);
    }
    if profile.contains_key("shard") {
        return Err(refuse(
            "shard",
            "is set by the central: use \"split\": true to share the plan between the sensors",
        ));
    }
    let sensors = match all.get("sensors") {
        None => {
            return Err(refuse(
                "sensors",
                "is missing: list the sensors (names or ids) that run it",
            ));
        }
        Some(v) => strings(v, "sensors")?,
    };
    if sensors.is_empty() {
        return Err(refuse("sensors", "lists no sensor: name one or more"));
    }
    for (i, s) in sensors.iter().enumerate() {
        if s.trim().is_empty() || sensors[..i].contains(s) {
            return Err(refuse("sensors", format!("`{s}` is empty or listed twice")));
        }
    }
    let split = match all.get("split") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(refuse("split", "must be true or false")),
    };
    let per_sensor = match all.get("per_sensor") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(v) => per_sensor(v, &sensors)?,
    };
    if split && !per_sensor.is_empty() {
        return Err(refuse(
            "split",
            "and per_sensor do not go together: split the plan, or give each sensor its lists",
        ));
    }
    let text = to_toml(&profile)?;
    check(&text)?;
    let name = profile
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // Each sensor's own profile is a profile too.
    for (s, own) in &per_sensor {
        let mut p = profile.clone();
        apply(&mut p, own);
        check(&to_toml(&p)?).map_err(|e| refuse(format!("per_sensor.{s}.{}", e.field), e.message))?;
    }
    overlaps(&per_sensor)?;
    Ok(Definition {
        name,
        profile,
        sensors,
        split,
        per_sensor,
    })
}

fn per_sensor(v: &Value, sensors: &[String]) -> Result<BTreeMap<String, PerSensor>, FieldError> {
    let Value::Object(m) = v else {
        return Err(refuse("per_sensor", "must be an object: sensor → {targets, exclude}"));
    };
    let mut out = BTreeMap::new();
    for (s, lists) in m {
        let field = format!("per_sensor.{s}");
        if !sensors.contains(s) {
            return Err(refuse(field, "is not one of `sensors`"));
        }
        let Value::Object(lists) = lists else {
            return Err(refuse(field, "must be an object with targets and/or exclude"));
        };
        let mut own = PerSensor::default();
        for (k, v) in lists {
            match k.as_str() {
                "targets" => own.targets = Some(strings(v, &format!("{field}.targets"))?),
                "exclude" => own.exclude = strings(v, &format!("{field}.exclude"))?,
                other => {
                    return Err(refuse(
                        format!("{field}.{other}"),
                        "unknown key: use targets or exclude",
                    ));
                }
            }
        }
        out.insert(s.clone(), own);
    }
    Ok(out)
}

/// `profile` with a sensor's own lists applied.
pub fn apply(profile: &mut Map<String, Value>, own: &PerSensor) {
    if let Some(t) = &own.targets {
        profile.insert("targets".into(), Value::from(t.clone()));
    }
    if !own.exclude.is_empty() {
        let mut ex = match profile.get("exclude") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        ex.extend(own.exclude.iter().cloned().map(Value::from));
        profile.insert("exclude".into(), Value::Array(ex));
    }
}

/// An inclusive address interval of one family, or a host name.
#[derive(Debug, PartialEq)]
enum Span {
    V4(u128, u128),
    V6(u128, u128),
    Name(String),
}

fn span(t: &TargetSpec) -> Span {
    let n = |a: IpAddr| match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let (first, last) = match t {
        TargetSpec::Net(net) => (net.network(), net.broadcast()),
        TargetSpec::Range { first, last } => (*first, *last),
        TargetSpec::Host(h) => return Span::Name(h.to_ascii_lowercase()),
    };
    if first.is_ipv4() {
        Span::V4(n(first), n(last))
    } else {
        Span::V6(n(first), n(last))
    }
}

fn meet(a: &Span, b: &Span) -> bool {
    match (a, b) {
        (Span::V4(a0, a1), Span::V4(b0, b1)) | (Span::V6(a0, a1), Span::V6(b0, b1)) => a0 <= b1 && b0 <= a1,
        (Span::Name(x), Span::Name(y)) => x == y,
        _ => false,
    }
}

/// Two sensors' own target lists must not share an address: each would
/// scan it, and the central would hold it twice.
fn overlaps(per: &BTreeMap<String, PerSensor>) -> Result<(), FieldError> {
    let spans: Vec<(&String, Vec<Span>)> = per
        .iter()
        .filter_map(|(s, own)| own.targets.as_ref().map(|t| (s, t)))
        .map(|(s, t)| {
            (
                s,
                t.iter()
                    .filter_map(|x| x.parse::<TargetSpec>().ok())
                    .map(|x| span(&x))
                    .collect(),
            )
        })
        .collect();
    for (i, (a, sa)) in spans.iter().enumerate() {
        for (b, sb) in &spans[..i] {
            if sa.iter().any(|x| sb.iter().any(|y| meet(x, y))) {
                return Err(refuse(
                    format!("per_sensor.{a}.targets"),
                    format!("overlaps per_sensor.{b}.targets: give each sensor its own addresses"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A stand-in for the profile parser: requires name and targets, knows a few keys.
    fn check(text: &str) -> Result<(), FieldError> {
        let v: toml::Table = toml::from_str(text).map_err(|e| refuse("definition", e.to_string()))?;
        for k in v.keys() {
            if !["name", "targets", "exclude", "ports", "shard", "schedule"].contains(&k.as_str()) {
                return Err(refuse(k.clone(), "unknown field"));
            }
        }
        if !v.contains_key("targets") {
            return Err(refuse("targets", "missing"));
        }
        Ok(())
    }

    fn field(body: Value) -> String {
        parse(&body, &check).unwrap_err().field
    }

    #[test]
    fn reads_a_split_definition() {
        let d = parse(
            &json!({"name": "lab", "targets": ["127.0.0.0/29"], "ports": "443", "sensors": ["a", "b"], "split": true}),
            &check,
        )
        .unwrap();
        assert_eq!(d.name, "lab");
        assert!(d.split);
        assert_eq!(d.sensors, ["a", "b"]);
        assert!(!d.profile.contains_key("sensors"));
        assert_eq!(
            to_toml(&d.profile).unwrap(),
            "name = \"lab\"\nports = \"443\"\ntargets = [\"127.0.0.0/29\"]\n"
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let base = || json!({"name": "x", "targets": ["127.0.0.1"]});
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            b
        };
        assert_eq!(field(base()), "sensors");
        assert_eq!(field(with("sensors", json!([]))), "sensors");
        assert_eq!(field(with("sensors", json!(["a", "a"]))), "sensors");
        assert_eq!(field(with("sensors", json!("a"))), "sensors");
        let mut b = with("sensors", json!(["a"]));
        b["colour"] = json!("blue");
        assert_eq!(field(b.clone()), "colour", "the profile parser's unknown key");
        b["colour"] = Value::Null;
        b["shard"] = json!("1/2");
        assert_eq!(field(b.clone()), "shard");
        let mut b = with("sensors", json!(["a", "b"]));
        b["split"] = json!("yes");
        assert_eq!(field(b.clone()), "split");
        b["split"] = json!(true);
        b["per_sensor"] = json!({"a": {"targets": ["127.0.0.2"]}});
        assert_eq!(field(b.clone()), "split");
        b["split"] = json!(false);
        b["per_sensor"] = json!({"c": {"targets": ["127.0.0.2"]}});
        assert_eq!(field(b.clone()), "per_sensor.c");
        b["per_sensor"] = json!({"a": {"target": ["127.0.0.2"]}});
        assert_eq!(field(b.clone()), "per_sensor.a.target");
        assert_eq!(field(json!([1])), "definition");
    }

    #[test]
    fn per_sensor_ranges_must_not_overlap() {
        let body = |a: &str, b: &str| {
            json!({"name": "x", "targets": ["127.0.0.1"], "sensors": ["a", "b"],
                   "per_sensor": {"a": {"targets": [a]}, "b": {"targets": [b]}}})
        };
        assert_eq!(
            field(body("127.0.0.0/30", "127.0.0.3-127.0.0.9")),
            "per_sensor.b.targets"
        );
        assert_eq!(field(body("h.example", "H.example")), "per_sensor.b.targets");
        let d = parse(&body("127.0.0.0/30", "127.0.0.4/30"), &check).unwrap();
        assert_eq!(
            d.per_sensor["a"].targets.as_deref(),
            Some(&["127.0.0.0/30".to_string()][..])
        );
        let d = parse(&body("127.0.0.1", "::1"), &check).unwrap();
        assert_eq!(d.per_sensor.len(), 2);
    }

    #[test]
    fn toml_profiles_are_definitions() {
        let m = from_toml("name = \"lab\"\ntargets = [\"127.0.0.1\"]\n[schedule]\nevery = \"1h\"\n").unwrap();
        assert_eq!(m["schedule"]["every"], "1h");
        assert!(from_toml("name = ").is_err());
    }
}
