//! Rule model, validation, compiler -> immutable `CompiledPolicy`; LPM matchers.

pub mod compile;
pub mod document;
pub mod error;
pub mod lpm;
pub mod reference;
pub mod rule;
pub mod sni;
mod transport;
pub mod validate;

pub use compile::{CompiledPolicy, Decision, Query};
pub use document::{load_rule_set, parse_rules, rule_set_from_str};
pub use error::{RuleError, RuleErrors};
pub use rule::{Action, Direction, PortRange, Rule, RuleSet};

#[cfg(test)]
mod compile_tests;
#[cfg(test)]
mod document_tests;
