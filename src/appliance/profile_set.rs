//! The daemon's profiles, all of them or none: the `--profile` files, else
//! every `*.toml` of the profiles directory.
//!
//! One bad profile refuses the whole set, at start (the daemon does not
//! start) and on reload (the previous set is kept), so the sensor never runs
//! a half-understood mix. An empty or missing directory is not an error for
//! an installed sensor: it waits for profiles (added, then SIGHUP).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::appliance::profile::{self, Profile};

#[derive(Debug, thiserror::Error)]
pub enum ProfileSetError {
    #[error("cannot read the profiles directory {dir}: {source} (give --profile FILE or --profiles-dir DIR)")]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every invalid profile's error, one per line.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
    #[error("two profiles are named `{0}`: names must be unique")]
    Duplicate(String),
}

/// Loads `files`, or (when there are none) every `*.toml` of `dir` in name
/// order. A missing `dir` is an empty set when `missing_dir_ok` (a sensor
/// installed from its configuration file), else an error.
pub fn load(files: &[PathBuf], dir: &Path, missing_dir_ok: bool) -> Result<Vec<Profile>, ProfileSetError> {
    let paths: Vec<PathBuf> = if files.is_empty() {
        let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing_dir_ok => Vec::new(),
            Err(source) => {
                return Err(ProfileSetError::Dir {
                    dir: dir.to_path_buf(),
                    source,
                });
            }
        };
        found.sort();
        found
    } else {
        files.to_vec()
    };
    let mut profiles = Vec::new();
    let mut errors = Vec::new();
    for p in &paths {
        match profile::load(p) {
            Ok(prof) => profiles.push(prof),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(ProfileSetError::Invalid(errors));
    }
    let mut names = HashSet::new();
    if let Some(dup) = profiles.iter().find(|p| !names.insert(p.name.clone())) {
        return Err(ProfileSetError::Duplicate(dup.name.clone()));
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, name: &str) -> PathBuf {
        let p = dir.join(file);
        std::fs::write(
            &p,
            format!("name = \"{name}\"\ntargets = [\"127.0.0.1\"]\nports = \"1\"\n"),
        )
        .unwrap();
        p
    }

    #[test]
    fn a_directory_is_read_in_order_and_names_must_be_unique() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "b.toml", "b");
        write(d.path(), "a.toml", "a");
        std::fs::write(d.path().join("notes.txt"), "not a profile").unwrap();
        let names: Vec<String> = load(&[], d.path(), false)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        write(d.path(), "c.toml", "a");
        assert!(matches!(load(&[], d.path(), false), Err(ProfileSetError::Duplicate(n)) if n == "a"));
    }

    #[test]
    fn one_bad_profile_refuses_the_set_and_a_missing_directory_may_be_empty() {
        let d = tempfile::tempdir().unwrap();
        let good = write(d.path(), "good.toml", "good");
        let bad = d.path().join("bad.toml");
        std::fs::write(&bad, "name = \"bad\"\nbogus = 1\n").unwrap();
        let e = load(&[good, bad], d.path(), false).unwrap_err().to_string();
        assert!(e.contains("bad.toml"), "{e}");
        let missing = d.path().join("missing");
        assert!(load(&[], &missing, true).unwrap().is_empty());
        assert!(matches!(load(&[], &missing, false), Err(ProfileSetError::Dir { .. })));
    }
}
