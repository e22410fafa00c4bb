//! Reading `NetworkPolicyRule` documents: YAML (one or many documents), a JSON array, or a
//! Kubernetes `List`, from text, files or directories. Every document is checked; a rule set
//! with any error is rejected whole, with all errors listed.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use super::error::{RuleError, RuleErrors};
use super::rule::{Action, Direction, Rule, RuleSet, TlsMatch, MAX_LIMIT_RULES};
use super::validate;
use rustc_hash::FxHashMap;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const API_VERSION: &str = "policy.secure.example.com/v1";
pub const KIND: &str = "NetworkPolicyRule";
/// Bound on one rule file or request body, so a hostile input cannot exhaust memory.
pub const MAX_DOCUMENT_BYTES: usize = 64 << 20;

/// A string of a document: borrowed from the text when it has no escapes, so reading a
/// 100k-rule set does not allocate for every field.
type Text<'a> = Cow<'a, str>;

/// The custom resource as written. Unknown fields are errors: a typo must not widen a rule.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule<'a> {
    #[serde(borrow)]
    api_version: Option<Text<'a>>,
    #[serde(borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    metadata: Option<RawMetadata<'a>>,
    #[serde(borrow)]
    /// Boxed, as is `tls`: a document is moved several times on its way to a rule, and
    /// moving the whole spec each time was a tenth of reading a large set.
    spec: Option<Box<RawSpec<'a>>>,
    /// Objects read back from the API server carry a status; it means nothing here.
    #[allow(dead_code)]
    status: Option<IgnoredAny>,
}

/// Kubernetes `ObjectMeta`: only the name matters; the other standard fields are accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct RawMetadata<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    namespace: Option<IgnoredAny>,
    labels: Option<IgnoredAny>,
    annotations: Option<IgnoredAny>,
    uid: Option<IgnoredAny>,
    resource_version: Option<IgnoredAny>,
    generation: Option<IgnoredAny>,
    creation_timestamp: Option<IgnoredAny>,
    deletion_timestamp: Option<IgnoredAny>,
    deletion_grace_period_seconds: Option<IgnoredAny>,
    generate_name: Option<IgnoredAny>,
    finalizers: Option<IgnoredAny>,
    owner_references: Option<IgnoredAny>,
    managed_fields: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec<'a> {
    #[serde(borrow)]
    cidr_blocks: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    except: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    action: Option<Text<'a>>,
    reason: Option<String>,
    priority: Option<i64>,
    #[serde(borrow)]
    direction: Option<Text<'a>>,
    #[serde(borrow)]
    ports: Option<Vec<RawPort<'a>>>,
    #[serde(borrow)]
    tls: Option<Box<RawTls<'a>>>,
    limit: Option<RawLimit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawLimit {
    connections_per_second: Option<i64>,
    burst: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTls<'a> {
    #[serde(borrow)]
    server_names: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    version_below: Option<Text<'a>>,
    #[serde(borrow)]
    ja3: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    ja4: Option<Vec<Text<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPort<'a> {
    #[serde(borrow)]
    protocol: Option<Text<'a>>,
    port: Option<i64>,
    end_port: Option<i64>,
}

/// Collects errors for one rule, prefixing them with its source and name.
pub(crate) struct ErrorSink<'a> {
    pub source: &'a str,
    pub rule: Cow<'a, str>,
    pub errors: &'a mut Vec<RuleError>,
}

impl ErrorSink<'_> {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(RuleError {
            source: self.source.to_string(),
            rule: self.rule.to_string(),
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Parse every rule in `text` (YAML documents, a JSON array, or a `List`). `source` names the
/// file in messages. Rules come back unsorted and not yet checked for duplicate names.
pub fn parse_rules(text: &str, source: &str) -> Result<Vec<Rule>, RuleErrors> {
    Ok(parse_shared(text, source)?.into_iter().map(Arc::unwrap_or_clone).collect())
}

/// [`parse_rules`], each rule in its own allocation as a [`RuleSet`] holds it (a 100k-rule
/// set is not copied from a vector of rules into one of pointers).
fn parse_shared(text: &str, source: &str) -> Result<Vec<Arc<Rule>>, RuleErrors> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    parse_into(text, source, &mut rules, &mut errors);
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(RuleErrors(errors))
    }
}

/// [`rule_set_from_str`] for the JSON array that the control plane's state files keep: the
/// same parsing and validation, JSON only, and without the request size limit (the state
/// files have their own, and a set grown by many small updates may pass the limit that one
/// request is held to).
pub fn rule_set_from_json(text: &str, source: &str) -> Result<RuleSet, RuleErrors> {
    build_shared(parse_json_shared(text, source)?)
}

/// [`parse_rules`] under the terms of [`rule_set_from_json`].
pub fn parse_json_rules(text: &str, source: &str) -> Result<Vec<Rule>, RuleErrors> {
    Ok(parse_json_shared(text, source)?.into_iter().map(Arc::unwrap_or_clone).collect())
}

fn parse_json_shared(text: &str, source: &str) -> Result<Vec<Arc<Rule>>, RuleErrors> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    if !parse_json_into(text, source, &mut rules, &mut errors) {
        errors.push(RuleError {
            source: source.to_string(),
            rule: String::new(),
            field: String::new(),
            message: "not a JSON array of rule documents".into(),
        });
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(RuleErrors(errors))
    }
}

/// Parse one rule object that is already a JSON value (an admission request's `object`): the
/// same checks as a rule file, so what the admission webhook admits is what a gateway accepts.
pub fn parse_rule_value(value: &serde_json::Value, source: &str) -> Result<Rule, RuleErrors> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    match serde_yaml_ng::to_value(value) {
        Ok(v) => parse_one(v, source, "object", &mut rules, &mut errors),
        Err(e) => errors.push(RuleError {
            source: source.to_string(),
            rule: String::new(),
            field: String::new(),
            message: e.to_string(),
        }),
    }
    match (errors.is_empty(), rules.pop()) {
        (true, Some(rule)) => Ok(Arc::unwrap_or_clone(rule)),
        _ => Err(RuleErrors(errors)),
    }
}

fn parse_into(text: &str, source: &str, rules: &mut Vec<Arc<Rule>>, errors: &mut Vec<RuleError>) {
    let file_error = |errors: &mut Vec<RuleError>, message: String| {
        errors.push(RuleError { source: source.to_string(), rule: String::new(), field: String::new(), message })
    };
    if text.len() > MAX_DOCUMENT_BYTES {
        file_error(errors, format!("document is larger than {MAX_DOCUMENT_BYTES} bytes"));
        return;
    }
    if parse_json_into(text, source, rules, errors) {
        return;
    }
    for (doc_index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = match serde_yaml_ng::Value::deserialize(document) {
            Ok(v) => v,
            Err(e) => {
                file_error(errors, format!("document {}: {e}", doc_index + 1));
                // The YAML stream cannot be resynchronised after a syntax error.
                return;
            }
        };
        match value {
            serde_yaml_ng::Value::Null => {}
            serde_yaml_ng::Value::Sequence(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    parse_one(item, source, &format!("[{i}]"), rules, errors);
                }
            }
            serde_yaml_ng::Value::Mapping(ref map) if map.get("kind").and_then(|k| k.as_str()) == Some("List") => {
                match map.get("items") {
                    Some(serde_yaml_ng::Value::Sequence(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            parse_one(item.clone(), source, &format!("items[{i}]"), rules, errors);
                        }
                    }
                    Some(serde_yaml_ng::Value::Null) | None => {}
                    Some(_) => file_error(errors, "List: items must be a sequence".into()),
                }
            }
            other => parse_one(other, source, &format!("document {}", doc_index + 1), rules, errors),
        }
    }
}

/// The JSON fast path (about 20x faster than going through YAML values for large sets):
/// a text that is a JSON array, a JSON `List` or one JSON object is split into raw
/// documents without building values, and each is deserialized straight into a rule. The
/// rules and errors are those of the YAML path. Returns false, touching nothing, when the text
/// is not such JSON (then the YAML path reads it, and reports syntax errors).
fn parse_json_into(text: &str, source: &str, rules: &mut Vec<Arc<Rule>>, errors: &mut Vec<RuleError>) -> bool {
    use serde_json::value::RawValue;
    #[derive(Deserialize)]
    struct ListHead<'a> {
        kind: Option<&'a str>,
        #[serde(borrow)]
        items: Option<Vec<&'a RawValue>>,
    }
    let trimmed = text.trim_start();
    // A JSON array whose every document deserializes (sets written by tools, the state file,
    // `dataplane sync`): one pass, no path tracking. Anything else goes document by document
    // below, for messages that name the document and field.
    if trimmed.starts_with('[') {
        let (rules_before, errors_before) = (rules.len(), errors.len());
        // Room for as many rules as such a text can hold (a rule is at least ~100 bytes of
        // JSON): growing a vector of 100k rules copied it ~17 times. Untouched room costs no
        // memory.
        rules.reserve(text.len() / 100);
        let mut de = serde_json::Deserializer::from_str(text);
        let each = EachRule { source, rules: &mut *rules, errors: &mut *errors };
        if serde::Deserializer::deserialize_seq(&mut de, each).and_then(|()| de.end()).is_ok() {
            return true;
        }
        rules.truncate(rules_before);
        errors.truncate(errors_before);
    }
    let documents: Vec<(String, &RawValue)> = if trimmed.starts_with('[') {
        match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) => items.into_iter().enumerate().map(|(i, raw)| (format!("[{i}]"), raw)).collect(),
            Err(_) => return false,
        }
    } else if trimmed.starts_with('{') {
        let Ok(whole) = serde_json::from_str::<&RawValue>(text) else { return false };
        match serde_json::from_str::<ListHead<'_>>(whole.get()) {
            Ok(ListHead { kind: Some("List"), items }) => {
                items.unwrap_or_default().into_iter().enumerate().map(|(i, raw)| (format!("items[{i}]"), raw)).collect()
            }
            Ok(_) => vec![("document 1".to_string(), whole)],
            // `kind` or `items` of an unexpected type: the YAML path explains.
            Err(_) => return false,
        }
    } else {
        return false;
    };
    for (position, raw) in documents {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        match serde_path_to_error::deserialize::<_, RawRule>(&mut de) {
            Ok(parsed) => check_and_keep(parsed, source, || position, rules, errors),
            // Same messages as the YAML path: it reads this document again.
            Err(_) => match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(raw.get()) {
                Ok(value) => parse_one(value, source, &position, rules, errors),
                Err(e) => errors.push(RuleError {
                    source: source.to_string(),
                    rule: position,
                    field: String::new(),
                    message: e.to_string(),
                }),
            },
        }
    }
    true
}

/// Checks each rule of a JSON array as it is deserialized: no array of raw documents is built.
struct EachRule<'a> {
    source: &'a str,
    rules: &'a mut Vec<Arc<Rule>>,
    errors: &'a mut Vec<RuleError>,
}

impl<'de> serde::de::Visitor<'de> for EachRule<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of NetworkPolicyRule documents")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while let Some(parsed) = seq.next_element::<RawRule>()? {
            check_and_keep(parsed, self.source, || format!("[{i}]"), self.rules, self.errors);
            i += 1;
        }
        Ok(())
    }
}

/// Checks one deserialized document and keeps its rule. Errors name the rule, or the
/// document's `position` when it has no name.
fn check_and_keep(
    mut raw: RawRule<'_>,
    source: &str,
    position: impl FnOnce() -> String,
    rules: &mut Vec<Arc<Rule>>,
    errors: &mut Vec<RuleError>,
) {
    let name = raw.metadata.as_mut().and_then(|m| m.name.take());
    let rule = name.as_deref().map_or_else(|| Cow::Owned(position()), Cow::Borrowed);
    let mut sink = ErrorSink { source, rule, errors };
    if let Some(rule) = check_rule(raw, name.as_deref(), &mut sink) {
        rules.push(Arc::new(rule));
    }
}

fn parse_one(
    value: serde_yaml_ng::Value,
    source: &str,
    position: &str,
    rules: &mut Vec<Arc<Rule>>,
    errors: &mut Vec<RuleError>,
) {
    // Name the rule in messages even when the document does not deserialize.
    let name_hint = value.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()).map(str::to_string);
    let mut sink = ErrorSink { source, rule: Cow::Owned(name_hint.unwrap_or_else(|| position.to_string())), errors };
    let mut raw: RawRule<'_> = match serde_path_to_error::deserialize(value) {
        Ok(raw) => raw,
        Err(e) => {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            sink.push(field, e.into_inner().to_string());
            return;
        }
    };
    let name = raw.metadata.as_mut().and_then(|m| m.name.take());
    if let Some(rule) = check_rule(raw, name.as_deref(), &mut sink) {
        rules.push(Arc::new(rule));
    }
}

/// Semantic checks of one deserialized document; `None` when any check failed.
/// `name` is `metadata.name`, taken out of `raw` by the caller (it names the rule in `sink`).
fn check_rule(raw: RawRule<'_>, name: Option<&str>, sink: &mut ErrorSink<'_>) -> Option<Rule> {
    let before = sink.errors.len();
    match raw.api_version.as_deref() {
        Some(API_VERSION) => {}
        Some(other) => sink.push("apiVersion", format!("unknown apiVersion {other:?} (expected {API_VERSION})")),
        None => sink.push("apiVersion", "required field is missing"),
    }
    match raw.kind.as_deref() {
        Some(KIND) => {}
        Some(other) => sink.push("kind", format!("unknown kind {other:?} (expected {KIND})")),
        None => sink.push("kind", "required field is missing"),
    }
    match name {
        Some(name) => {
            if let Err(msg) = validate::dns1123_subdomain(name) {
                sink.push("metadata.name", msg);
            }
        }
        None => sink.push("metadata.name", "required field is missing"),
    }
    let Some(spec) = raw.spec else {
        sink.push("spec", "required field is missing");
        return None;
    };
    let action = match spec.action.as_deref() {
        Some(a) => Action::parse(a).or_else(|| {
            sink.push("spec.action", format!("unknown action {a:?} (expected ALLOW, DROP or REJECT)"));
            None
        }),
        None => {
            sink.push("spec.action", "required field is missing (ALLOW, DROP or REJECT)");
            None
        }
    };
    let reason = spec.reason.unwrap_or_default();
    if reason.len() > validate::MAX_REASON_BYTES {
        sink.push(
            "spec.reason",
            format!("{} bytes long, at most {} allowed", reason.len(), validate::MAX_REASON_BYTES),
        );
    }
    let priority = match spec.priority {
        None => validate::DEFAULT_PRIORITY,
        Some(p) => u16::try_from(p).unwrap_or_else(|_| {
            sink.push("spec.priority", format!("{p} is out of range 0..=65535"));
            0
        }),
    };
    let direction = match spec.direction.as_deref() {
        None | Some("any") => Direction::Any,
        Some("ingress") => Direction::Ingress,
        Some("egress") => Direction::Egress,
        Some(d) => {
            sink.push("spec.direction", format!("unknown direction {d:?} (expected ingress, egress or any)"));
            Direction::Any
        }
    };
    let cidr_blocks = validate::cidr_list(spec.cidr_blocks.as_deref().unwrap_or(&[]), "spec.cidrBlocks", sink);
    let except = validate::cidr_list(spec.except.as_deref().unwrap_or(&[]), "spec.except", sink);
    validate::except_inside_blocks(&cidr_blocks, &except, sink);
    let mut ports = Vec::new();
    for (i, p) in spec.ports.unwrap_or_default().iter().enumerate() {
        if let Some(range) =
            validate::port_range(p.protocol.as_deref(), p.port, p.end_port, &format!("spec.ports[{i}]"), sink)
        {
            ports.push(range);
        }
    }
    let tls = spec.tls.map(|t| TlsMatch {
        server_names: validate::each(t.server_names, "spec.tls.serverNames", sink, validate::server_name_pattern),
        version_below: t
            .version_below
            .and_then(|v| validate::tls_version(&v).map_err(|m| sink.push("spec.tls.versionBelow", m)).ok()),
        ja3: validate::each(t.ja3, "spec.tls.ja3", sink, validate::ja3_fingerprint),
        ja4: validate::each(t.ja4, "spec.tls.ja4", sink, validate::ja4_fingerprint),
    });
    let limit = spec.limit.and_then(|l| validate::limit(l.connections_per_second, l.burst, tls.is_some(), sink));
    if sink.errors.len() != before {
        return None;
    }
    Some(Rule {
        name: name?.to_owned(),
        action: action?,
        reason,
        priority,
        direction,
        cidr_blocks: cidr_blocks.into_iter().flatten().collect(),
        except: except.into_iter().flatten().collect(),
        ports,
        tls,
        limit,
        source: sink.source.to_string(),
    })
}

/// Check names are unique across everything loaded and sort into evaluation order.
pub fn build_rule_set(rules: Vec<Rule>) -> Result<RuleSet, RuleErrors> {
    build_shared(rules.into_iter().map(Arc::new).collect())
}

fn build_shared(rules: Vec<Arc<Rule>>) -> Result<RuleSet, RuleErrors> {
    check_unique_names(rules.iter().map(|r| &**r))?;
    let set = RuleSet::from_shared(rules);
    check_limit_count(&set)?;
    Ok(set)
}

/// `set` with `new` rules added or replacing those of the same name (`POST /v1/rules`).
pub fn upsert_rule_set(set: &RuleSet, new: Vec<Rule>) -> Result<RuleSet, RuleErrors> {
    check_unique_names(new.iter())?;
    let set = set.upserted(new);
    check_limit_count(&set)?;
    Ok(set)
}

/// At most [`MAX_LIMIT_RULES`] rules of a set have a `limit`: a new connection is checked
/// against each in turn. The rules past the bound (in evaluation order) are named.
fn check_limit_count(set: &RuleSet) -> Result<(), RuleErrors> {
    let errors: Vec<RuleError> = set
        .rules()
        .iter()
        .filter(|r| r.limit.is_some())
        .skip(MAX_LIMIT_RULES)
        .map(|r| RuleError {
            source: r.source.clone(),
            rule: r.name.clone(),
            field: "spec.limit".into(),
            message: format!("more than {MAX_LIMIT_RULES} rules of the set have a limit (each new connection is checked against each)"),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RuleErrors(errors))
    }
}

fn check_unique_names<'a>(rules: impl ExactSizeIterator<Item = &'a Rule>) -> Result<(), RuleErrors> {
    let mut seen: FxHashMap<&str, &str> = FxHashMap::with_capacity_and_hasher(rules.len(), Default::default());
    let mut errors = Vec::new();
    for rule in rules {
        if let Some(first) = seen.insert(&rule.name, &rule.source) {
            errors.push(RuleError {
                source: rule.source.clone(),
                rule: rule.name.clone(),
                field: "metadata.name".into(),
                message: format!("duplicate name (already defined in {first})"),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RuleErrors(errors))
    }
}

/// Parse a complete rule set from one text (an API request body, a state file).
pub fn rule_set_from_str(text: &str, source: &str) -> Result<RuleSet, RuleErrors> {
    build_shared(parse_shared(text, source)?)
}

/// Load rule files and directories (every `*.yaml`, `*.yml`, `*.json` inside, sorted by name).
/// Every file is read and checked before the result is decided, so all errors are reported.
pub fn load_rule_set(paths: &[PathBuf]) -> Result<RuleSet, RuleErrors> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for file in expand_paths(paths, &mut errors) {
        let source = file.display().to_string();
        match read_bounded(&file) {
            Ok(text) => parse_into(&text, &source, &mut rules, &mut errors),
            Err(message) => errors.push(RuleError { source, rule: String::new(), field: String::new(), message }),
        }
    }
    if !errors.is_empty() {
        return Err(RuleErrors(errors));
    }
    build_shared(rules)
}

fn read_bounded(file: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(file).map_err(|e| e.to_string())?;
    if meta.len() > MAX_DOCUMENT_BYTES as u64 {
        return Err(format!("file is larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    std::fs::read_to_string(file).map_err(|e| e.to_string())
}

fn expand_paths(paths: &[PathBuf], errors: &mut Vec<RuleError>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| {
                            p.is_file()
                                && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
                        })
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => errors.push(RuleError {
                    source: path.display().to_string(),
                    rule: String::new(),
                    field: String::new(),
                    message: e.to_string(),
                }),
            }
        } else {
            files.push(path.clone());
        }
    }
    files
}
