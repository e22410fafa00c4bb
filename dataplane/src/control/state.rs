//! Persistence of the last applied rule set, in two files of the state directory:
//! - `rules.json`, a snapshot: `{"version":1,"generation":N,"digest":"sha256:...",
//!   "rules":[canonical documents]}`, written atomically (a temporary file in the same
//!   directory, fsync, rename over the old one, fsync of the directory), so that a crash
//!   leaves either the old or the new file, never a torn one;
//! - `rules.journal`, the updates applied since the snapshot, one JSON line each:
//!   `{"generation":N,"digest":"sha256:...","removed":[names],"rules":[canonical documents]}`
//!   (the rules removed, then the rules added or replaced), appended and fsynced before the
//!   update is answered. A one-rule update writes one line, not the whole set (2 MB for 11k
//!   rules, 18 MB for 100k).
//!
//! An update is journaled while the journal stays smaller than the snapshot; otherwise the
//! snapshot is rewritten and the journal removed, so reading the state back costs at most
//! about two snapshots. After a failed write the next write is a snapshot.
//!
//! On start both files are read back through the same validation as an API request. The
//! snapshot's digest must match its rules; journal lines at or below its generation are left
//! from a rewrite that stopped before removing the journal, and are skipped; the set after the
//! last line must have that line's digest. A last line without its newline, or one that does
//! not parse, is an append that never completed (and so was never answered): it is ignored,
//! and cut off by the next append. Anything else that does not read back is reported as
//! corrupt.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::canonical::{self, Delta};
use crate::policy::document::{parse_json_rules, rule_set_from_json, upsert_rule_set, MAX_DOCUMENT_BYTES};
use crate::policy::RuleSet;

/// The snapshot's name inside the state directory.
pub const FILE_NAME: &str = "rules.json";
/// The journal's name inside the state directory.
pub const JOURNAL_NAME: &str = "rules.journal";
const FORMAT_VERSION: u32 = 1;
/// Largest state file written or read back: twice the largest request (a set grown by many
/// small updates can be larger than any one request).
const MAX_FILE_BYTES: u64 = 2 * MAX_DOCUMENT_BYTES as u64;

/// A rule set read back from the state directory.
#[derive(Debug)]
pub struct Saved {
    pub generation: u64,
    pub digest: String,
    pub rules: RuleSet,
    /// What the files hold, for the next write.
    pub files: Files,
    /// Bytes of an append that never completed, at the journal's end: ignored, and cut off
    /// by the next append.
    pub ignored: u64,
}

/// The bytes the state files hold (the journal's complete lines only): the next write
/// appends to the journal or rewrites the snapshot depending on these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Files {
    pub snapshot: u64,
    pub journal: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotIn {
    version: u32,
    generation: u64,
    digest: String,
    rules: Box<RawValue>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    generation: u64,
    digest: String,
    removed: Vec<String>,
    rules: Box<RawValue>,
}

/// Where the snapshot of `dir` lives.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Where the journal of `dir` lives.
pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join(JOURNAL_NAME)
}

/// The state directory of a control plane: writes each applied set, as a journal line or a
/// new snapshot (see the module doc).
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    files: Files,
    /// No snapshot read or written yet, or the last write failed: the journal cannot be
    /// trusted to lead to the active set, so the next write is a snapshot.
    snapshot_due: bool,
}

impl StateDir {
    /// `dir`, holding `files` as [`load`] read them, or nothing valid (`None`).
    pub fn new(dir: PathBuf, files: Option<Files>) -> StateDir {
        StateDir { dir, snapshot_due: files.is_none(), files: files.unwrap_or_default() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn files(&self) -> Files {
        self.files
    }

    /// Saves the set at `generation` with `digest`: `delta` from the set saved before as one
    /// journal line, or `whole()` (its canonical JSON) as a new snapshot.
    pub fn record(
        &mut self,
        generation: u64,
        digest: &str,
        delta: &Delta<'_>,
        whole: impl FnOnce() -> String,
    ) -> Result<(), String> {
        // The line's size is known before it is written: a whole new set is not written out
        // as a line only to be dropped for a snapshot.
        let line_bytes = LINE_OVERHEAD + digest.len() + delta.json_bytes();
        let written = if !self.snapshot_due && self.files.journal + line_bytes as u64 <= self.files.snapshot {
            let line = journal_line(generation, digest, delta);
            append(&self.dir, self.files.journal, &line).map(|end| self.files.journal = end)
        } else {
            save(&self.dir, generation, digest, &whole()).map(|snapshot| self.files = Files { snapshot, journal: 0 })
        };
        self.snapshot_due = written.is_err();
        written
    }
}

/// A state file's bytes besides its digest and rules: keys, punctuation, numbers.
const LINE_OVERHEAD: usize = 80;

/// One journal line. Written by hand like the canonical documents it carries, which are
/// JSON already: the strings are escaped by serde, nothing is parsed again.
fn journal_line(generation: u64, digest: &str, delta: &Delta<'_>) -> String {
    let mut line = String::with_capacity(LINE_OVERHEAD + digest.len() + delta.json_bytes());
    line.push_str("{\"generation\":");
    line.push_str(itoa::Buffer::new().format(generation));
    line.push_str(",\"digest\":");
    canonical::write_str(digest, &mut line);
    line.push_str(",\"removed\":[");
    for (i, name) in delta.removed.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        canonical::write_str(name, &mut line);
    }
    line.push_str("],\"rules\":");
    line.push_str(&delta.changed_json());
    line.push_str("}\n");
    line
}

/// Appends `line` to the journal of `dir` whose complete lines end at `at` (anything after
/// them, a torn append, is cut off first); returns where the journal ends now.
fn append(dir: &Path, at: u64, line: &str) -> Result<u64, String> {
    let file = journal_path(dir);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&file)?;
        if f.metadata()?.len() < at {
            // Shortened behind our back: appending would leave a hole of zeros.
            return Err(std::io::Error::other(format!("shorter than the {at} bytes written")));
        }
        f.set_len(at)?;
        f.seek(SeekFrom::Start(at))?;
        f.write_all(line.as_bytes())?;
        f.sync_data()?;
        if at == 0 {
            // A new journal's name is durable once the directory is synced.
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| format!("appending to {}: {e}", file.display()))?;
    Ok(at + line.len() as u64)
}

/// Writes a rule set (its canonical JSON text and digest) as the snapshot of `dir`,
/// atomically, and removes the journal; returns the snapshot's size in bytes.
pub fn save(dir: &Path, generation: u64, digest: &str, canonical_json: &str) -> Result<u64, String> {
    let text = snapshot_text(generation, digest, canonical_json);
    if text.len() as u64 > MAX_FILE_BYTES {
        // Written, it could not be read back.
        return Err(format!(
            "the snapshot would be {} bytes, more than a state file may hold ({MAX_FILE_BYTES})",
            text.len()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let target = path(dir);
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &target)?;
        // The rename is durable before the journal goes: a crash cannot leave the old snapshot
        // without its journal. The removal needs no sync of its own: the journal's lines are
        // all in the new snapshot, and are skipped if they come back.
        std::fs::File::open(dir)?.sync_all()?;
        match std::fs::remove_file(journal_path(dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("writing {}: {e}", target.display())
    })?;
    Ok(text.len() as u64)
}

/// The snapshot's text for a rule set (its canonical JSON text and digest).
pub fn snapshot_text(generation: u64, digest: &str, canonical_json: &str) -> String {
    let mut text = String::with_capacity(LINE_OVERHEAD + digest.len() + canonical_json.len());
    text.push_str("{\"version\":");
    text.push_str(itoa::Buffer::new().format(FORMAT_VERSION));
    text.push_str(",\"generation\":");
    text.push_str(itoa::Buffer::new().format(generation));
    text.push_str(",\"digest\":");
    canonical::write_str(digest, &mut text);
    text.push_str(",\"rules\":");
    text.push_str(canonical_json);
    text.push_str("}\n");
    text
}

/// Reads the state of `dir`: `Ok(None)` when there is none, `Err` (the reason) when a file is
/// unreadable or corrupt.
pub fn load(dir: &Path) -> Result<Option<Saved>, String> {
    let journal = read(&journal_path(dir))?;
    let Some(snapshot) = read(&path(dir))? else {
        return match journal {
            Some(_) => Err(format!("{JOURNAL_NAME} without {FILE_NAME}")),
            None => Ok(None),
        };
    };
    let snapshot = String::from_utf8(snapshot).map_err(|e| format!("{FILE_NAME}: {e}"))?;
    restore(&snapshot, journal.as_deref().unwrap_or_default()).map(Some)
}

/// A state file's bytes; `None` when it does not exist.
fn read(file: &Path) -> Result<Option<Vec<u8>>, String> {
    let name = file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{name}: {e}")),
        Ok(m) if m.len() > MAX_FILE_BYTES => return Err(format!("{name}: larger than {MAX_FILE_BYTES} bytes")),
        Ok(_) => {}
    }
    std::fs::read(file).map(Some).map_err(|e| format!("{name}: {e}"))
}

/// The set that a snapshot's text and a journal's bytes hold (see the module doc).
pub fn restore(snapshot: &str, journal: &[u8]) -> Result<Saved, String> {
    let parsed: SnapshotIn = serde_json::from_str(snapshot).map_err(|e| format!("{FILE_NAME}: {e}"))?;
    if parsed.version != FORMAT_VERSION {
        return Err(format!("{FILE_NAME}: version {} (expected {FORMAT_VERSION})", parsed.version));
    }
    let mut rules =
        rule_set_from_json(parsed.rules.get(), "").map_err(|e| format!("{FILE_NAME}: invalid rules: {e}"))?;
    let digest = canonical::digest(&rules);
    if digest != parsed.digest {
        return Err(format!("{FILE_NAME}: digest {} does not match its rules ({digest})", parsed.digest));
    }
    let (mut generation, mut digest, mut replayed) = (parsed.generation, digest, false);
    // Complete lines end with a newline; what follows the last one is a torn append.
    let complete = journal.iter().rposition(|&b| b == b'\n').map_or(0, |end| end + 1);
    let mut lines = journal.get(..complete).unwrap_or_default().split_inclusive(|&b| b == b'\n').enumerate().peekable();
    let mut read = 0;
    while let Some((n, bytes)) = lines.next() {
        let at = |e: String| format!("{JOURNAL_NAME} line {}: {e}", n + 1);
        let line: LineIn = match serde_json::from_slice(bytes) {
            Ok(line) => line,
            // The last line can be an append torn inside (its pages written out of order, the
            // newline among those that made it): it was never answered either.
            Err(_) if lines.peek().is_none() => break,
            Err(e) => return Err(at(e.to_string())),
        };
        read += bytes.len();
        if line.generation <= generation {
            if replayed {
                return Err(at(format!("generation {} after {generation}", line.generation)));
            }
            continue;
        }
        let removed: Vec<&str> = line.removed.iter().map(String::as_str).collect();
        let kept = rules
            .without_all(&removed)
            .ok_or_else(|| at(format!("removes rules the set does not hold: {removed:?}")))?;
        let changed = parse_json_rules(line.rules.get(), "").map_err(|e| at(format!("invalid rules: {e}")))?;
        rules = upsert_rule_set(&kept, changed).map_err(|e| at(format!("invalid rules: {e}")))?;
        (generation, digest, replayed) = (line.generation, line.digest, true);
    }
    if replayed {
        let actual = canonical::digest(&rules);
        if actual != digest {
            return Err(format!("{JOURNAL_NAME}: digest {digest} does not match the rules it leads to ({actual})"));
        }
    }
    let files = Files { snapshot: snapshot.len() as u64, journal: read as u64 };
    Ok(Saved { generation, digest, rules, files, ignored: (journal.len() - read) as u64 })
}
