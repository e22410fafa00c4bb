//! Rule model, validation, compiler -> immutable `CompiledPolicy`; LPM matchers.

pub(crate) mod classes;
pub mod compile;
pub mod decision;
pub mod document;
pub mod error;
pub mod hits;
pub mod lint;
pub mod lpm;
pub mod prepared;
pub mod reference;
pub mod rule;
pub mod sni;
mod transport;
pub mod validate;

pub use compile::{CompileError, CompiledPolicy};
pub use decision::{Decision, Query};
pub use document::{load_rule_set, parse_rules, rule_set_from_str};
pub use error::{RuleError, RuleErrors};
pub use rule::{Action, ConnectionLimit, Direction, PortRange, Rule, RuleSet};

#[cfg(test)]
mod compile_tests;
#[cfg(test)]
mod document_tests;

/// Why rule files could not become a policy: every rule error, or a compiler limit.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// One line per error, then the count.
    #[error("{0}\nrejected: {n} error(s)", n = .0 .0.len())]
    Rules(RuleErrors),
    #[error("compiling rules: {0}")]
    Compile(#[from] CompileError),
}

/// Load, validate and compile rule files and directories: what `rules check`, `classify` and
/// `run` all do at start.
pub fn load_policy(paths: &[std::path::PathBuf], default_action: Action) -> Result<CompiledPolicy, LoadError> {
    let rules = load_rule_set(paths).map_err(LoadError::Rules)?;
    Ok(CompiledPolicy::compile(rules, default_action)?)
}
