//! The state directory against the set in memory: whatever sequence of updates was recorded,
//! reading the directory back gives the last set, its generation and its digest; torn,
//! stale and corrupt files are handled as the module doc says.

use super::canonical::{self, Documents};
use super::state::{self, Files, StateDir, FILE_NAME, JOURNAL_NAME};
use crate::policy::{parse_rules, rule_set_from_str, RuleSet};
use proptest::prelude::*;
use std::path::Path;

fn rule(name: &str, cidr: &str, priority: u16) -> String {
    rule_with(name, cidr, priority, "DROP")
}

fn rule_with(name: &str, cidr: &str, priority: u16, action: &str) -> String {
    format!(
        "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {{name: {name}}}\nspec: {{cidrBlocks: [\"{cidr}\"], action: {action}, priority: {priority}}}\n---\n"
    )
}

fn set(n: usize) -> RuleSet {
    let text: String =
        (0..n).map(|i| rule(&format!("r{i}"), &format!("10.{}.{}.0/24", i / 256, i % 256), 100)).collect();
    rule_set_from_str(&text, "").unwrap()
}

/// A control plane's view: the active set, its documents and generation, and its state dir.
struct Recorder {
    rules: RuleSet,
    docs: Documents,
    generation: u64,
    state: StateDir,
}

impl Recorder {
    fn new(dir: &Path) -> Recorder {
        let rules = RuleSet::default();
        Recorder { docs: Documents::of(&rules), rules, generation: 1, state: StateDir::new(dir.to_path_buf(), None) }
    }

    fn apply(&mut self, new: RuleSet) -> Result<(), String> {
        let (docs, delta) = self.docs.updated(&self.rules, &new);
        self.generation += 1;
        let written = self.state.record(self.generation, &docs.digest(), &delta, || docs.json());
        (self.rules, self.docs) = (new, docs);
        written
    }

    /// A control plane restarted on `dir`: what it reads back is what it runs.
    fn reopen(dir: &Path) -> Recorder {
        let saved = state::load(dir).unwrap().unwrap();
        Recorder {
            docs: Documents::of(&saved.rules),
            rules: saved.rules,
            generation: saved.generation,
            state: StateDir::new(dir.to_path_buf(), Some(saved.files)),
        }
    }

    fn upsert(&mut self, name: &str, cidr: &str, priority: u16) {
        let new = self.rules.upserted(parse_rules(&rule(name, cidr, priority), "").unwrap());
        self.apply(new).unwrap();
    }

    /// The directory read back holds exactly the active set.
    fn check(&self) {
        let saved = state::load(self.state.dir()).unwrap().unwrap();
        assert_eq!(saved.generation, self.generation);
        assert_eq!(saved.digest, self.docs.digest());
        assert_eq!(canonical::to_json(&saved.rules), self.docs.json());
        assert_eq!(saved.files, self.state.files());
    }
}

/// A state directory with a snapshot of 30 rules (generation 2) and `updates` one-rule
/// updates journaled after it.
fn recorded(updates: usize) -> (tempfile::TempDir, Recorder) {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Recorder::new(dir.path());
    r.apply(set(30)).unwrap();
    for (name, cidr) in [("a", "10.100.0.0/16"), ("b", "10.101.0.0/16")].into_iter().take(updates) {
        r.upsert(name, cidr, 100);
    }
    assert_eq!(journal_lines(dir.path()), updates);
    (dir, r)
}

fn journal_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join(JOURNAL_NAME)).map_or(0, |j| j.lines().count())
}

fn snapshot_generation(dir: &Path) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(state::path(dir)).unwrap()).unwrap();
    v["generation"].as_u64().unwrap()
}

#[test]
fn small_updates_are_journal_lines_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    assert!(state::load(dir.path()).unwrap().is_none());
    let mut r = Recorder::new(dir.path());
    // The first write is a snapshot.
    r.apply(set(100)).unwrap();
    assert_eq!((snapshot_generation(dir.path()), journal_lines(dir.path())), (2, 0));
    r.check();
    // One rule changed, one added, one deleted, one moved (priority): one line each; the
    // snapshot stays as it was.
    let snapshot = std::fs::read(state::path(dir.path())).unwrap();
    r.upsert("r7", "10.200.0.0/16", 100);
    r.upsert("new", "10.201.0.0/16", 100);
    r.apply(r.rules.without("r3").unwrap()).unwrap();
    r.upsert("r9", "10.0.9.0/24", 5);
    assert_eq!(journal_lines(dir.path()), 4);
    assert_eq!(std::fs::read(state::path(dir.path())).unwrap(), snapshot);
    r.check();
    let journal = std::fs::read_to_string(dir.path().join(JOURNAL_NAME)).unwrap();
    let last: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(last["generation"], 6);
    assert_eq!(last["removed"], serde_json::json!(["r9"]));
    assert_eq!(last["rules"][0]["metadata"]["name"], "r9");
    assert_eq!(last["rules"][0]["spec"]["priority"], 5);
    // No temporary file is left behind.
    let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, vec![std::ffi::OsString::from(JOURNAL_NAME), std::ffi::OsString::from(FILE_NAME)]);
}

#[test]
fn the_journal_stays_smaller_than_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Recorder::new(dir.path());
    r.apply(set(20)).unwrap();
    let mut rewrites = 0;
    for i in 0..200 {
        let before = snapshot_generation(dir.path());
        r.upsert("changing", &format!("10.100.{}.0/24", i % 256), 100);
        let files = r.state.files();
        assert!(files.journal <= files.snapshot, "{files:?}");
        if snapshot_generation(dir.path()) != before {
            rewrites += 1;
            assert_eq!((files.journal, journal_lines(dir.path())), (0, 0));
        }
        r.check();
    }
    // 20 rules of ~200 bytes against ~280-byte lines: a rewrite every ~15 updates.
    assert!((8..=25).contains(&rewrites), "{rewrites}");
    // A change larger than the snapshot (here a whole new, larger set) is a snapshot at once.
    r.apply(set(50)).unwrap();
    assert_eq!((snapshot_generation(dir.path()), journal_lines(dir.path())), (r.generation, 0));
    r.check();
}

#[test]
fn a_torn_last_line_is_ignored_and_cut_off_by_the_next_append() {
    let (dir, _) = recorded(1);
    let journal = dir.path().join(JOURNAL_NAME);
    let complete = std::fs::read(&journal).unwrap();
    // The process stopped in the middle of the next append (even inside a UTF-8 sequence).
    let mut torn = complete.clone();
    torn.extend_from_slice(b"{\"generation\":4,\"digest\":\"sha256:\xc3");
    std::fs::write(&journal, &torn).unwrap();
    let saved = state::load(dir.path()).unwrap().unwrap();
    assert_eq!(
        (saved.generation, saved.files.journal, saved.ignored),
        (3, complete.len() as u64, (torn.len() - complete.len()) as u64)
    );
    // A restarted control plane appends after the complete lines.
    let mut restarted = Recorder::reopen(dir.path());
    restarted.upsert("b", "10.101.0.0/16", 100);
    assert_eq!(journal_lines(dir.path()), 2);
    restarted.check();
}

#[test]
fn lines_left_from_a_rewrite_are_skipped() {
    let (dir, mut r) = recorded(2);
    // "a" deleted (generation 5) and the snapshot of generation 5 written, but the process
    // stopped before removing the journal of generations 3 and 4 (their files are the disk's
    // state before the deletion). Replayed, its first line would bring "a" back.
    let journal = std::fs::read(dir.path().join(JOURNAL_NAME)).unwrap();
    r.apply(r.rules.without("a").unwrap()).unwrap();
    state::save(dir.path(), r.generation, &r.docs.digest(), &r.docs.json()).unwrap();
    std::fs::write(dir.path().join(JOURNAL_NAME), &journal).unwrap();
    let saved = state::load(dir.path()).unwrap().unwrap();
    assert_eq!((saved.generation, saved.digest), (5, r.docs.digest()));
    assert_eq!(canonical::to_json(&saved.rules), r.docs.json());
    assert!(!saved.rules.rules().iter().any(|x| x.name == "a"));
    // After a restart the next append goes after them, and they are still skipped.
    let mut restarted = Recorder::reopen(dir.path());
    restarted.upsert("c", "10.102.0.0/16", 100);
    assert_eq!((journal_lines(dir.path()), restarted.generation), (3, 6));
    restarted.check();
}

#[test]
fn a_last_line_torn_inside_is_ignored_too() {
    let (dir, _) = recorded(2);
    let path = dir.path().join(JOURNAL_NAME);
    let journal = std::fs::read(&path).unwrap();
    let first = journal.iter().position(|&b| b == b'\n').unwrap() + 1;
    // The second append's middle page never reached the disk; its last one, with the newline,
    // did.
    let mut torn = journal.clone();
    torn[first + 40..journal.len() - 30].fill(0);
    std::fs::write(&path, &torn).unwrap();
    let saved = state::load(dir.path()).unwrap().unwrap();
    assert_eq!(
        (saved.generation, saved.files.journal, saved.ignored),
        (3, first as u64, (journal.len() - first) as u64)
    );
    // The same damage to a line that is not the last is corruption: that line was answered.
    torn.extend_from_slice(&journal[first..]);
    std::fs::write(&path, &torn).unwrap();
    let e = state::load(dir.path()).unwrap_err();
    assert!(e.starts_with("rules.journal line 2:"), "{e}");
}

#[test]
fn corrupt_files_are_errors_naming_the_file_and_line() {
    let (dir, _) = recorded(2);
    let snapshot = std::fs::read_to_string(state::path(dir.path())).unwrap();
    let journal = std::fs::read_to_string(dir.path().join(JOURNAL_NAME)).unwrap();
    let first_len = journal.lines().next().unwrap().len();
    let snapshot_cases = [
        (snapshot[..snapshot.len() / 2].to_string(), "rules.json: EOF"),
        (snapshot.replace("10.0.1.0/24", "10.0.1.0/25"), "does not match"),
        (snapshot.replace("10.0.1.0/24", "10.0.1.1/24"), "host bits set"),
        (snapshot.replace("\"version\":1", "\"version\":9"), "version 9"),
        ("\u{0}\u{1}garbage".to_string(), "expected value"),
    ];
    for (bad, needle) in snapshot_cases {
        std::fs::write(state::path(dir.path()), &bad).unwrap();
        let e = state::load(dir.path()).unwrap_err();
        assert!(e.contains(needle), "{needle:?} not in {e:?}");
    }
    std::fs::write(state::path(dir.path()), &snapshot).unwrap();
    let journal_cases = [
        (format!("{}x{}", &journal[..first_len - 1], &journal[first_len..]), "rules.journal line 1:"),
        (journal.replacen("10.100.0.0/16", "10.100.0.0/15", 1), "rules.journal: digest"),
        (journal.replacen("\"generation\":4", "\"generation\":3", 1), "rules.journal line 2: generation 3 after 3"),
        (journal.replacen("\"removed\":[]", "\"removed\":[\"zz\"]", 1), "rules.journal line 1: removes rules"),
        (journal.replacen("10.100.0.0/16", "300.0.0.0/16", 1), "rules.journal line 1: invalid rules"),
    ];
    for (bad, needle) in journal_cases {
        std::fs::write(dir.path().join(JOURNAL_NAME), &bad).unwrap();
        let e = state::load(dir.path()).unwrap_err();
        assert!(e.contains(needle), "{needle:?} not in {e:?}");
    }
    std::fs::remove_file(state::path(dir.path())).unwrap();
    assert_eq!(state::load(dir.path()).unwrap_err(), "rules.journal without rules.json");
}

#[test]
fn after_a_failed_write_the_next_is_a_snapshot() {
    let (dir, mut r) = recorded(1);
    // The journal cannot be opened for one update (a directory stands in its place)...
    let journal = dir.path().join(JOURNAL_NAME);
    let lines = std::fs::read(&journal).unwrap();
    std::fs::remove_file(&journal).unwrap();
    std::fs::create_dir(&journal).unwrap();
    let new = r.rules.upserted(parse_rules(&rule("b", "10.101.0.0/16", 100), "").unwrap());
    let e = r.apply(new).unwrap_err();
    assert!(e.contains("appending to") && e.contains(JOURNAL_NAME), "{e}");
    std::fs::remove_dir(&journal).unwrap();
    std::fs::write(&journal, &lines).unwrap();
    // ...so the next update, small as it is, rewrites the snapshot: the journal alone would
    // miss "b".
    r.upsert("c", "10.102.0.0/16", 100);
    assert_eq!((snapshot_generation(dir.path()), journal_lines(dir.path())), (5, 0));
    r.check();
    assert!(r.rules.rules().iter().any(|x| x.name == "b"));
}

#[test]
fn a_journal_shortened_behind_the_writers_back_is_not_appended_to() {
    let (dir, mut r) = recorded(2);
    let path = dir.path().join(JOURNAL_NAME);
    let journal = std::fs::read(&path).unwrap();
    let first = journal.iter().position(|&b| b == b'\n').unwrap() + 1;
    std::fs::write(&path, &journal[..first]).unwrap();
    let new = r.rules.upserted(parse_rules(&rule("c", "10.102.0.0/16", 100), "").unwrap());
    let e = r.apply(new).unwrap_err();
    assert!(e.contains("shorter than the"), "{e}");
    r.upsert("d", "10.103.0.0/16", 100);
    assert_eq!((snapshot_generation(dir.path()), journal_lines(dir.path())), (6, 0));
    r.check();
}

#[test]
fn files_read_back_match_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Recorder::new(dir.path());
    r.apply(set(10)).unwrap();
    r.upsert("a", "10.100.0.0/16", 100);
    let sizes = |d: &Path| Files {
        snapshot: std::fs::metadata(state::path(d)).unwrap().len(),
        journal: std::fs::metadata(d.join(JOURNAL_NAME)).unwrap().len(),
    };
    assert_eq!(r.state.files(), sizes(dir.path()));
    r.check();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any sequence of upserts (new rules, changed ones, moved ones), deletes and whole
    /// replacements reads back as the set in memory after every step.
    #[test]
    fn any_sequence_of_updates_reads_back(steps in proptest::collection::vec((0u8..4, 0usize..12, 0u16..3, 0u8..4, any::<bool>()), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::new(dir.path());
        r.apply(set(8)).unwrap();
        for (op, name, priority, cidr, allow) in steps {
            let name = format!("r{name}");
            let action = if allow { "ALLOW" } else { "DROP" };
            let new = match op {
                0 | 1 => r.rules.upserted(parse_rules(&rule_with(&name, &format!("10.9.{cidr}.0/24"), 100 + priority, action), "").unwrap()),
                2 => match r.rules.without(&name) {
                    Some(s) => s,
                    None => continue,
                },
                _ => set(usize::from(cidr) * 3),
            };
            if canonical::same_documents(&r.rules, &new) {
                continue;
            }
            r.apply(new).unwrap();
            r.check();
        }
    }
}
