//! Validation errors: every problem of a rule set, each with the field path and the reason.

use std::fmt;

/// One problem in a rule document.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleError {
    /// File (or "api", "request") the rule came from.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The rule's `metadata.name`, or its position when it has no usable name.
    pub rule: String,
    /// Field path inside the rule, e.g. `spec.cidrBlocks[1]`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.source.is_empty() {
            write!(f, "{}: ", self.source)?;
        }
        if !self.rule.is_empty() {
            write!(f, "{}: ", self.rule)?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// A rejected rule set: every error found, in document order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}
