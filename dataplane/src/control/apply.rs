//! The single apply path: parse -> validate -> merge -> digest -> compile -> publish ->
//! wait until every worker runs the new generation -> persist. Every change (PUT, POST,
//! DELETE, SIGHUP) goes through [`Applier::apply`], one at a time.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::canonical;
use super::metrics::Metrics;
use super::state;
use crate::policy::document::build_rule_set;
use crate::policy::{load_rule_set, parse_rules, rule_set_from_str, Action, CompiledPolicy, Rule, RuleError, RuleSet};
use crate::worker::Workers;

/// The rule set the workers run (or are about to run).
#[derive(Debug)]
pub struct ActiveSet {
    pub generation: u64,
    pub digest: String,
    /// Sorted by name.
    pub rules: Vec<Rule>,
}

impl ActiveSet {
    /// The active set for `rules` at `generation`.
    pub fn new(generation: u64, mut rules: Vec<Rule>) -> ActiveSet {
        rules.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let digest = canonical::digest(&rules);
        ActiveSet { generation, digest, rules }
    }
}

/// What a request asks for.
pub enum Change {
    /// A complete rule set, as text (YAML or JSON).
    Replace(String),
    /// A complete rule set, already validated.
    ReplaceSet(RuleSet),
    /// A complete rule set from rule files and directories (SIGHUP).
    ReloadFiles(Vec<PathBuf>),
    /// Add these rules, replacing those of the same names.
    Upsert(String),
    /// Remove the rule of this name.
    Delete(String),
}

/// A successful apply (or a no-op).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Applied {
    pub generation: u64,
    pub digest: String,
    pub rules: usize,
    /// Compiling the new set.
    pub compile_ms: f64,
    /// From publication until every worker ran the new generation.
    pub activate_ms: f64,
    /// Parsing and validating the request, merging, the canonical form and digest.
    pub parse_ms: f64,
    /// Writing the state file (0 without a state directory).
    pub persist_ms: f64,
    /// True when the content equals the active set: nothing was published.
    pub unchanged: bool,
    /// Set when the state file could not be written (the new set is active all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persist_error: Option<String>,
}

/// Why an apply did not happen.
#[derive(Debug)]
pub enum ApplyError {
    /// 422: the rule set is invalid; nothing changed.
    Invalid(Vec<RuleError>),
    /// 404: DELETE of a rule that does not exist.
    NotFound(String),
    /// 409: `generation` is not above the active one.
    Conflict { active: u64, requested: u64 },
    /// 429: another apply held the lock for longer than `apply_wait`.
    Busy,
    /// 503: published, but some worker did not adopt it within `adopt_timeout`.
    NotAdopted { generation: u64, adopted: Vec<u64> },
    /// 500: the compiler refused the set (a limit), or the apply task failed.
    Internal(String),
}

impl ApplyError {
    /// The metric label of this outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            ApplyError::Invalid(_) => "invalid",
            ApplyError::NotFound(_) => "not_found",
            ApplyError::Conflict { .. } => "conflict",
            ApplyError::Busy => "busy",
            ApplyError::NotAdopted { .. } => "not_adopted",
            ApplyError::Internal(_) => "error",
        }
    }
}

/// Settings of the apply path.
#[derive(Clone, Debug)]
pub struct ApplySettings {
    pub default_action: Action,
    pub state_dir: Option<PathBuf>,
    pub apply_wait: Duration,
    pub adopt_timeout: Duration,
}

/// The control side's view of the rules: the active set and the apply lock.
pub struct Applier {
    workers: Arc<Workers>,
    settings: ApplySettings,
    active: Mutex<Arc<ActiveSet>>,
    lock: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Applier {
    pub fn new(workers: Arc<Workers>, settings: ApplySettings, active: ActiveSet, metrics: Arc<Metrics>) -> Applier {
        Applier { workers, settings, active: Mutex::new(Arc::new(active)), lock: tokio::sync::Mutex::new(()), metrics }
    }

    /// The active set.
    pub fn active(&self) -> Arc<ActiveSet> {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The workers this applier publishes to.
    pub fn workers(&self) -> &Arc<Workers> {
        &self.workers
    }

    /// Applies `change`: waits up to `apply_wait` for the apply in progress, then runs the
    /// whole path on a blocking thread (the runtime keeps serving `GET`s meanwhile).
    pub async fn apply(self: &Arc<Self>, change: Change, generation: Option<u64>) -> Result<Applied, ApplyError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.settings.apply_wait, self.lock.lock()).await {
            Err(_) => Err(ApplyError::Busy),
            Ok(guard) => {
                let this = self.clone();
                let r = tokio::task::spawn_blocking(move || this.apply_locked(change, generation)).await;
                drop(guard);
                r.unwrap_or_else(|e| Err(ApplyError::Internal(format!("apply task: {e}"))))
            }
        };
        let outcome = match &result {
            Ok(a) if a.unchanged => "unchanged",
            Ok(_) => "applied",
            Err(e) => e.outcome(),
        };
        self.metrics.record_apply(outcome, started.elapsed());
        result
    }

    /// The apply path proper; the caller holds the apply lock.
    fn apply_locked(&self, change: Change, generation: Option<u64>) -> Result<Applied, ApplyError> {
        let t0 = Instant::now();
        let active = self.active();
        let rules: Vec<Rule> = match change {
            Change::Replace(text) => rule_set_from_str(&text, "").map_err(|e| ApplyError::Invalid(e.0))?.into_rules(),
            Change::ReplaceSet(set) => set.into_rules(),
            Change::ReloadFiles(paths) => load_rule_set(&paths).map_err(|e| ApplyError::Invalid(e.0))?.into_rules(),
            Change::Upsert(text) => {
                let new = parse_rules(&text, "").map_err(|e| ApplyError::Invalid(e.0))?;
                // Names must be unique within the request.
                let new = build_rule_set(new).map_err(|e| ApplyError::Invalid(e.0))?;
                let names: HashSet<&str> = new.rules().iter().map(|r| r.name.as_str()).collect();
                let mut merged: Vec<Rule> =
                    active.rules.iter().filter(|r| !names.contains(r.name.as_str())).cloned().collect();
                merged.extend(new.rules().iter().cloned());
                merged
            }
            Change::Delete(name) => {
                if !active.rules.iter().any(|r| r.name == name) {
                    return Err(ApplyError::NotFound(name));
                }
                active.rules.iter().filter(|r| r.name != name).cloned().collect()
            }
        };
        let mut rules = rules;
        for r in &mut rules {
            r.source.clear();
        }
        rules.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let json = canonical::to_json(&rules);
        let digest = canonical::digest_of_json(&json);
        let parse_ms = ms(t0.elapsed());

        if let Some(g) = generation {
            // An older generation is a conflict, as is the active one with other content.
            if g < active.generation || (g == active.generation && digest != active.digest) {
                return Err(ApplyError::Conflict { active: active.generation, requested: g });
            }
        }
        if digest == active.digest {
            return Ok(Applied {
                generation: active.generation,
                digest,
                rules: rules.len(),
                compile_ms: 0.0,
                activate_ms: 0.0,
                parse_ms,
                persist_ms: 0.0,
                unchanged: true,
                persist_error: None,
            });
        }

        let t1 = Instant::now();
        // Names are unique (validated, merged by name), so this cannot fail.
        let set = build_rule_set(rules.clone()).map_err(|e| ApplyError::Invalid(e.0))?;
        let policy = CompiledPolicy::compile(set, self.settings.default_action)
            .map_err(|e| ApplyError::Internal(format!("compiling rules: {e}")))?;
        let compile_ms = ms(t1.elapsed());

        let t2 = Instant::now();
        let chosen = generation.filter(|&g| g > active.generation);
        let Some(published) = self.workers.publish_as(policy, chosen) else {
            return Err(ApplyError::Conflict { active: self.workers.generation(), requested: generation.unwrap_or(0) });
        };
        let adopted = self.wait_adopted(published);
        let activate_ms = ms(t2.elapsed());
        let count = rules.len();
        *self.active.lock().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(ActiveSet { generation: published, digest: digest.clone(), rules });

        let t3 = Instant::now();
        let persist_error =
            self.settings.state_dir.as_ref().and_then(|dir| {
                state::save(dir, published, &digest, &json).err().inspect(|e| eprintln!("control: {e}"))
            });
        let persist_ms = ms(t3.elapsed());
        if !adopted {
            return Err(ApplyError::NotAdopted { generation: published, adopted: self.workers.adopted() });
        }
        Ok(Applied {
            generation: published,
            digest,
            rules: count,
            compile_ms,
            activate_ms,
            parse_ms,
            persist_ms,
            unchanged: false,
            persist_error,
        })
    }

    /// Polls (every ~20 us: an update is active within a worker loop, usually microseconds)
    /// until every worker runs `generation`; false after `adopt_timeout`. Old policies that
    /// come back are freed here.
    fn wait_adopted(&self, generation: u64) -> bool {
        let deadline = Instant::now() + self.settings.adopt_timeout;
        loop {
            self.workers.reclaim();
            if self.workers.adopted().iter().all(|&g| g >= generation) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn rule(name: &str, cidr: &str) -> String {
        format!(
            "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {{name: {name}}}\nspec: {{cidrBlocks: [\"{cidr}\"], action: DROP}}\n---\n"
        )
    }

    /// An applier over two threads standing in for worker lcores.
    fn setup(state_dir: Option<PathBuf>) -> (Arc<Applier>, Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>) {
        let workers = Arc::new(Workers::new(vec![1, 2], 1));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2)
            .map(|k| {
                let side = workers.lcore_side(k).unwrap();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut p = CompiledPolicy::compile(RuleSet::new(Vec::new()), Action::Allow).unwrap();
                    p.set_generation(1);
                    let mut current = Arc::new(p);
                    while !stop.load(Ordering::Relaxed) {
                        side.adopt(&mut current);
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        let settings = ApplySettings {
            default_action: Action::Allow,
            state_dir,
            apply_wait: Duration::from_secs(5),
            adopt_timeout: Duration::from_secs(30),
        };
        let applier =
            Arc::new(Applier::new(workers, settings, ActiveSet::new(1, Vec::new()), Arc::new(Metrics::new())));
        (applier, stop, threads)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn replace_upsert_delete_conflict_and_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let (a, stop, threads) = setup(Some(dir.path().to_path_buf()));
        block_on(async {
            let r = a.apply(Change::Replace(rule("a", "10.0.0.0/8") + &rule("b", "10.1.0.0/16")), None).await.unwrap();
            assert_eq!((r.generation, r.rules, r.unchanged), (2, 2, false));
            assert_eq!(a.workers().adopted(), vec![2, 2]);
            // The same content (other order): a no-op at the current generation.
            let same =
                a.apply(Change::Replace(rule("b", "10.1.0.0/16") + &rule("a", "10.0.0.0/8")), None).await.unwrap();
            assert_eq!((same.generation, same.unchanged, &same.digest), (2, true, &r.digest));
            // Invalid: 422 with the field, nothing changes.
            match a.apply(Change::Replace(rule("a", "10.0.0.1/8")), None).await {
                Err(ApplyError::Invalid(e)) => {
                    assert_eq!((e.len(), e[0].rule.as_str(), e[0].field.as_str()), (1, "a", "spec.cidrBlocks[0]"))
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(a.active().generation, 2);
            // Upsert replaces by name and adds.
            let u = a.apply(Change::Upsert(rule("b", "10.2.0.0/16") + &rule("c", "10.3.0.0/16")), None).await.unwrap();
            assert_eq!((u.generation, u.rules), (3, 3));
            let active = a.active();
            let names: Vec<&str> = active.rules.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(names, ["a", "b", "c"]);
            assert_eq!(active.rules[1].cidr_blocks, vec!["10.2.0.0/16".parse().unwrap()]);
            // Duplicate names inside one upsert are invalid.
            assert!(matches!(
                a.apply(Change::Upsert(rule("d", "10.4.0.0/16") + &rule("d", "10.5.0.0/16")), None).await,
                Err(ApplyError::Invalid(_))
            ));
            // Delete.
            assert!(
                matches!(a.apply(Change::Delete("zz".into()), None).await, Err(ApplyError::NotFound(n)) if n == "zz")
            );
            let d = a.apply(Change::Delete("a".into()), None).await.unwrap();
            assert_eq!((d.generation, d.rules), (4, 2));
            // Generations: older or equal with other content is 409; a later one is taken.
            assert!(matches!(
                a.apply(Change::Delete("b".into()), Some(3)).await,
                Err(ApplyError::Conflict { active: 4, requested: 3 })
            ));
            assert!(matches!(
                a.apply(Change::Delete("b".into()), Some(4)).await,
                Err(ApplyError::Conflict { active: 4, requested: 4 })
            ));
            let g = a.apply(Change::Delete("b".into()), Some(10)).await.unwrap();
            assert_eq!(g.generation, 10);
            assert_eq!(a.workers().adopted(), vec![10, 10]);
            // The state file holds the last applied set.
            let saved = state::load(dir.path()).unwrap().unwrap();
            assert_eq!((saved.generation, saved.digest.as_str(), saved.rules.len()), (10, g.digest.as_str(), 1));
        });
        stop.store(true, Ordering::Relaxed);
        threads.into_iter().for_each(|t| t.join().unwrap());
    }
}
