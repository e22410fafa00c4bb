//! Persistence of the last applied rule set: `<state_dir>/rules.json`.
//!
//! The file is one JSON object, `{"version":1,"generation":N,"digest":"sha256:...",
//! "rules":[canonical documents]}`. It is written atomically after each successful apply (a
//! temporary file in the same directory, fsync, rename over the old one, fsync of the
//! directory), so a crash leaves either the old or the new file, never a torn one. On start
//! it is read back through the same validation as an API request; a file that does not parse,
//! does not validate or whose digest does not match is reported as corrupt.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::canonical;
use crate::policy::document::MAX_DOCUMENT_BYTES;
use crate::policy::{rule_set_from_str, RuleSet};

/// The state file's name inside the state directory.
pub const FILE_NAME: &str = "rules.json";
const FORMAT_VERSION: u32 = 1;

/// A rule set read back from the state file.
#[derive(Debug)]
pub struct Saved {
    pub generation: u64,
    pub digest: String,
    pub rules: RuleSet,
}

#[derive(Serialize)]
struct Out<'a> {
    version: u32,
    generation: u64,
    digest: &'a str,
    rules: &'a serde_json::value::RawValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct In {
    version: u32,
    generation: u64,
    digest: String,
    rules: Box<serde_json::value::RawValue>,
}

/// Where the state of `dir` lives.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Writes a rule set (its canonical JSON text and digest) as the state of `dir`, atomically.
pub fn save(dir: &Path, generation: u64, digest: &str, canonical_json: &str) -> Result<(), String> {
    let rules = serde_json::value::RawValue::from_string(canonical_json.to_owned()).map_err(|e| e.to_string())?;
    let text = serde_json::to_string(&Out { version: FORMAT_VERSION, generation, digest, rules: &rules })
        .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let target = path(dir);
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &target)?;
        // The rename itself is durable once the directory is synced.
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("writing {}: {e}", target.display())
    })
}

/// Reads the state of `dir`: `Ok(None)` when there is none, `Err` (the reason) when the file
/// is unreadable or corrupt.
pub fn load(dir: &Path) -> Result<Option<Saved>, String> {
    let file = path(dir);
    let meta = match std::fs::metadata(&file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if meta.len() > 2 * MAX_DOCUMENT_BYTES as u64 {
        return Err(format!("larger than {} bytes", 2 * MAX_DOCUMENT_BYTES));
    }
    let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    let parsed: In = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    if parsed.version != FORMAT_VERSION {
        return Err(format!("version {} (expected {FORMAT_VERSION})", parsed.version));
    }
    let rules = rule_set_from_str(parsed.rules.get(), "").map_err(|e| format!("invalid rules: {e}"))?;
    let digest = canonical::digest(&rules);
    if digest != parsed.digest {
        return Err(format!("digest {} does not match its rules ({digest})", parsed.digest));
    }
    Ok(Some(Saved { generation: parsed.generation, digest, rules }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"[{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"a"},"spec":{"cidrBlocks":["10.0.0.0/8"],"action":"DROP"}}]"#;

    #[test]
    fn save_then_load_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let set = rule_set_from_str(RULE, "").unwrap();
        let json = canonical::to_json(&set);
        let digest = canonical::digest(&set);
        save(dir.path(), 7, &digest, &json).unwrap();
        let saved = load(dir.path()).unwrap().unwrap();
        assert_eq!(saved.generation, 7);
        assert_eq!(saved.digest, digest);
        assert_eq!(saved.rules.len(), 1);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let set = rule_set_from_str(RULE, "").unwrap();
        let json = canonical::to_json(&set);
        let digest = canonical::digest(&set);
        save(dir.path(), 3, &digest, &json).unwrap();
        let good = std::fs::read_to_string(path(dir.path())).unwrap();
        for (bad, needle) in [
            (good[..good.len() / 2].to_string(), "EOF"),
            (good.replace("10.0.0.0/8", "10.0.0.0/7"), "does not match"),
            (good.replace("10.0.0.0/8", "10.0.0.1/8"), "host bits set"),
            (good.replace("\"version\":1", "\"version\":9"), "version 9"),
            ("\u{0}\u{1}garbage".to_string(), "expected value"),
        ] {
            std::fs::write(path(dir.path()), &bad).unwrap();
            let e = load(dir.path()).unwrap_err();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
        }
    }
}
