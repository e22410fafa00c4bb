//! The one path by which a rule set becomes active: validate, compile (off the fast path),
//! publish to every worker, wait until each runs the new generation, persist. Used by the
//! HTTP API (PUT, POST, DELETE), SIGHUP and the start-up state.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use serde::Serialize;

use super::canonical::{self, Documents};
use super::state::StateDir;
use crate::policy::document::upsert_rule_set;
use crate::policy::prepared::Prepared;
use crate::policy::{Action, CompiledPolicy, Rule, RuleError, RuleErrors, RuleSet};
use crate::worker::Workers;

/// The rule set the workers run.
pub struct Active {
    pub rules: RuleSet,
    pub generation: u64,
    pub digest: String,
    /// Each rule's canonical document and hash: an update writes only the rules it changes.
    documents: Documents,
    /// The compiler's input for this set: an update reads only the rules it changes. Made by
    /// the first update (the start-up set was compiled before the control plane existed).
    prepared: Option<Prepared>,
}

impl Active {
    pub fn new(rules: RuleSet, generation: u64) -> Active {
        let documents = Documents::of(&rules);
        Active { digest: documents.digest(), rules, generation, documents, prepared: None }
    }

    /// The canonical JSON text of the set (what GET returns and the state file keeps).
    pub fn json(&self) -> String {
        self.documents.json()
    }
}

/// The answer to a successful apply.
#[derive(Clone, Debug, Serialize)]
pub struct Applied {
    pub generation: u64,
    pub digest: String,
    pub rules: usize,
    /// Reading the request into rules (and, for POST and DELETE, merging them into the set).
    pub parse_ms: f64,
    /// Comparison with the active set and compilation.
    pub compile_ms: f64,
    /// From publication until every worker runs the new generation.
    pub activate_ms: f64,
    /// False when the set is active but could not be written to the state directory.
    pub persisted: bool,
    /// True when the set was the active one already (nothing was published).
    pub unchanged: bool,
}

/// Why an apply changed nothing (or, for `NotAdopted`, not everywhere yet).
#[derive(Debug)]
pub enum ApplyError {
    /// The rule set is invalid: every error, with the rule and field.
    Invalid(Vec<RuleError>),
    /// The requested generation is not above the active one.
    Conflict { requested: u64, active: u64 },
    /// No rule of that name (DELETE).
    NotFound(String),
    /// Published, but some worker did not run it within the timeout.
    NotAdopted { generation: u64, adopted: Vec<u64> },
}

impl From<RuleErrors> for ApplyError {
    fn from(e: RuleErrors) -> ApplyError {
        ApplyError::Invalid(e.0)
    }
}

/// The active set and what applying needs.
pub struct Store {
    pub active: Active,
    pub default_action: Action,
    pub state: Option<StateDir>,
    pub adopt_timeout: Duration,
}

impl Store {
    /// Makes `rules` the active set at `generation` (or the next one): see the module doc.
    pub fn apply(&mut self, workers: &Workers, rules: RuleSet, generation: Option<u64>) -> Result<Applied, ApplyError> {
        let started = Instant::now();
        let active_generation = workers.generation();
        let unchanged = canonical::same_documents(&self.active.rules, &rules);
        if let Some(g) = generation {
            if g < active_generation || (g == active_generation && !unchanged) {
                return Err(ApplyError::Conflict { requested: g, active: active_generation });
            }
        }
        if unchanged {
            return Ok(Applied {
                generation: self.active.generation,
                digest: self.active.digest.clone(),
                rules: rules.len(),
                parse_ms: 0.0,
                compile_ms: 0.0,
                activate_ms: 0.0,
                persisted: true,
                unchanged: true,
            });
        }
        let count = rules.len();
        let prepared = match &self.active.prepared {
            Some(p) => p.updated(&self.active.rules, &rules),
            None => Prepared::of(&rules),
        };
        let policy = CompiledPolicy::compile_prepared(rules.clone(), &prepared, self.default_action).map_err(|e| {
            ApplyError::Invalid(vec![RuleError {
                source: String::new(),
                rule: String::new(),
                field: String::new(),
                message: e.to_string(),
            }])
        })?;
        let compiled = Instant::now();
        let Some(generation) = workers.publish_as(policy, generation) else {
            return Err(ApplyError::Conflict { requested: generation.unwrap_or(0), active: workers.generation() });
        };
        let adopted = workers.wait_adopted(generation, self.adopt_timeout);
        let activated = Instant::now();
        // Published: it is the active set from now on, whether or not every worker took it yet.
        // Its digest is bookkeeping for the answer and the state file: computed once the
        // workers run it, hashing only the rules that changed.
        workers.reclaim();
        let (documents, delta) = self.active.documents.updated(&self.active.rules, &rules);
        let digest = documents.digest();
        let persisted = match &mut self.state {
            Some(state) => match state.record(generation, &digest, &delta, || documents.json()) {
                Ok(()) => true,
                Err(e) => {
                    eprintln!("control: generation {generation} is active but not persisted: {e}");
                    false
                }
            },
            None => true,
        };
        self.active = Active { rules, generation, digest: digest.clone(), documents, prepared: Some(prepared) };
        if !adopted {
            return Err(ApplyError::NotAdopted { generation, adopted: workers.adopted() });
        }
        Ok(Applied {
            generation,
            digest,
            rules: count,
            parse_ms: 0.0,
            compile_ms: compiled.duration_since(started).as_secs_f64() * 1e3,
            activate_ms: activated.duration_since(compiled).as_secs_f64() * 1e3,
            persisted,
            unchanged: false,
        })
    }

    /// The active set with `new` rules added or replacing those of the same name.
    pub fn upserted(&self, new: Vec<Rule>) -> Result<RuleSet, ApplyError> {
        Ok(upsert_rule_set(&self.active.rules, new)?)
    }

    /// The active set without the rule `name`.
    pub fn without(&self, name: &str) -> Result<RuleSet, ApplyError> {
        self.active.rules.without(name).ok_or_else(|| ApplyError::NotFound(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{parse_rules, rule_set_from_str};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn rule(name: &str, cidr: &str) -> String {
        format!(
            "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {{name: {name}}}\nspec: {{cidrBlocks: [\"{cidr}\"], action: DROP}}\n---\n"
        )
    }

    /// Two threads stand in for worker lcores, adopting what is published.
    fn workers() -> (Arc<Workers>, Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>) {
        let workers = Arc::new(Workers::new(vec![1, 2], 1));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2)
            .map(|k| {
                let mailbox = workers.mailbox(k).unwrap();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut p = CompiledPolicy::compile(RuleSet::new(Vec::new()), Action::Allow).unwrap();
                    p.set_generation(1);
                    let mut current = Arc::new(p);
                    while !stop.load(Ordering::Relaxed) {
                        mailbox.adopt(&mut current);
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        (workers, stop, threads)
    }

    #[test]
    fn replace_upsert_delete_generations_no_op_and_state() {
        let dir = tempfile::tempdir().unwrap();
        let (w, stop, threads) = workers();
        let mut store = Store {
            active: Active::new(RuleSet::new(Vec::new()), 1),
            default_action: Action::Allow,
            state: Some(StateDir::new(dir.path().to_path_buf(), None)),
            adopt_timeout: Duration::from_secs(30),
        };
        let set = |t: &str| rule_set_from_str(t, "").unwrap();

        let a = store.apply(&w, set(&(rule("a", "10.0.0.0/8") + &rule("b", "10.1.0.0/16"))), None).unwrap();
        assert_eq!((a.generation, a.rules, a.unchanged, a.persisted), (2, 2, false, true));
        assert_eq!(w.adopted(), vec![2, 2]);
        // Same content, other document order: a no-op at the active generation.
        let same = store.apply(&w, set(&(rule("b", "10.1.0.0/16") + &rule("a", "10.0.0.0/8"))), None).unwrap();
        assert_eq!((same.generation, same.unchanged, &same.digest), (2, true, &a.digest));

        // Upsert replaces by name and adds; duplicate names in one upsert are invalid.
        let up = store.upserted(parse_rules(&(rule("b", "10.2.0.0/16") + &rule("c", "10.3.0.0/16")), "").unwrap());
        let u = store.apply(&w, up.unwrap(), None).unwrap();
        assert_eq!((u.generation, u.rules), (3, 3));
        let b = store.active.rules.rules().iter().find(|r| r.name == "b").unwrap();
        assert_eq!(b.cidr_blocks, vec!["10.2.0.0/16".parse().unwrap()]);
        let dup = parse_rules(&(rule("d", "10.4.0.0/16") + &rule("d", "10.5.0.0/16")), "").unwrap();
        assert!(matches!(store.upserted(dup), Err(ApplyError::Invalid(e)) if e[0].field == "metadata.name"));

        // Delete; an unknown name is NotFound.
        assert!(matches!(store.without("zz"), Err(ApplyError::NotFound(n)) if n == "zz"));
        let d = store.apply(&w, store.without("a").unwrap(), None).unwrap();
        assert_eq!((d.generation, d.rules), (4, 2));

        // Generations: older, or the active one with other content, is a conflict and
        // publishes nothing; a later one is taken as given.
        let fewer = store.without("b").unwrap();
        assert!(matches!(
            store.apply(&w, fewer.clone(), Some(3)),
            Err(ApplyError::Conflict { requested: 3, active: 4 })
        ));
        assert!(matches!(
            store.apply(&w, fewer.clone(), Some(4)),
            Err(ApplyError::Conflict { requested: 4, active: 4 })
        ));
        assert_eq!((w.generation(), store.active.generation), (4, 4));
        let g = store.apply(&w, fewer, Some(10)).unwrap();
        assert_eq!((g.generation, g.rules), (10, 1));
        assert_eq!(w.adopted(), vec![10, 10]);

        // The state file holds the last applied set.
        let saved = crate::control::state::load(dir.path()).unwrap().unwrap();
        assert_eq!((saved.generation, saved.digest.as_str(), saved.rules.len()), (10, g.digest.as_str(), 1));
        stop.store(true, Ordering::Relaxed);
        threads.into_iter().for_each(|t| t.join().unwrap());
    }
}
