//! `AdmissionReview` (`admission.k8s.io/v1`) as the API server sends it to a validating
//! webhook, and the decision for a `NetworkPolicyRule`: parsed, validated and compiled by the
//! very functions a gateway uses to accept rules, so admission and gateways agree exactly.
//!
//! Plain serde structs: only the fields the webhook reads or writes. Unknown fields of the
//! review itself are ignored (the API server may add some); the rule object is strict.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use crate::policy::document::{parse_rule_value, upsert_rule_set};
use crate::policy::lint::findings_for;
use crate::policy::{Action, CompiledPolicy, RuleError, RuleSet};
use serde::{Deserialize, Serialize};

pub const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";
pub const ADMISSION_KIND: &str = "AdmissionReview";
/// HTTP-like code in `response.status.code` of a denied rule (the API server returns it to the
/// client): 422 Unprocessable Entity, reason `Invalid`, as for Kubernetes' own field validation.
pub const DENIED_CODE: u16 = 422;
/// At most this many warnings are attached; the last one says how many were left out.
pub const MAX_WARNINGS: usize = 10;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    api_version: String,
    kind: String,
    request: Option<RequestIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn {
    uid: String,
    operation: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    object: Option<serde_json::Value>,
}

/// The `AdmissionReview` answer.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReviewOut {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: Response,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `metav1.Status` of a denial.
#[derive(Debug, Serialize, PartialEq)]
pub struct Status {
    pub status: &'static str,
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Details,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Details {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub group: &'static str,
    pub kind: &'static str,
    pub causes: Vec<Cause>,
}

/// One field error, as Kubernetes reports them (`FieldValueInvalid`, the field path).
#[derive(Debug, Serialize, PartialEq)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

/// The body could not be read as an `AdmissionReview` v1: HTTP 400 with this reason.
#[derive(Debug, PartialEq, Eq)]
pub struct BadReview(pub String);

impl std::fmt::Display for BadReview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Decide one review. `others`: the rest of the desired rule set (`webhook --rules DIR`), used
/// to check the rule compiles together with them and to compute warnings; a rule of the same
/// name in it is the object's previous version and is replaced.
pub fn review(body: &[u8], others: Option<&RuleSet>) -> Result<ReviewOut, BadReview> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| BadReview(format!("malformed AdmissionReview: {e}")))?;
    if !value.is_object() {
        return Err(BadReview("malformed AdmissionReview: expected a JSON object".into()));
    }
    let parsed: ReviewIn = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path == "?" {
            BadReview(format!("malformed AdmissionReview: {}", e.into_inner()))
        } else {
            BadReview(format!("malformed AdmissionReview: {path}: {}", e.into_inner()))
        }
    })?;
    if parsed.api_version != ADMISSION_API_VERSION || parsed.kind != ADMISSION_KIND {
        return Err(BadReview(format!(
            "unsupported {}/{} (expected {ADMISSION_API_VERSION}/{ADMISSION_KIND})",
            parsed.api_version, parsed.kind
        )));
    }
    let request = parsed.request.ok_or_else(|| BadReview("malformed AdmissionReview: request: missing".into()))?;
    if request.uid.is_empty() {
        return Err(BadReview("malformed AdmissionReview: request.uid: empty".into()));
    }
    let response = match request.operation.as_str() {
        "CREATE" | "UPDATE" => {
            let object = request.object.ok_or_else(|| {
                BadReview(format!("malformed AdmissionReview: request.object: missing for {}", request.operation))
            })?;
            decide(request.uid, &object, request.name.as_deref(), others)
        }
        // Deleting a rule narrows nothing the gateways could refuse; CONNECT has no object.
        "DELETE" | "CONNECT" => Response { uid: request.uid, allowed: true, status: None, warnings: Vec::new() },
        other => return Err(BadReview(format!("malformed AdmissionReview: request.operation: unknown {other:?}"))),
    };
    Ok(ReviewOut { api_version: ADMISSION_API_VERSION, kind: ADMISSION_KIND, response })
}

fn decide(uid: String, object: &serde_json::Value, request_name: Option<&str>, others: Option<&RuleSet>) -> Response {
    let object_name = object.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str());
    let name = object_name.or(request_name).unwrap_or_default().to_string();
    let deny = |errors: Vec<RuleError>| Response {
        uid: uid.clone(),
        allowed: false,
        status: Some(denial(&name, errors)),
        warnings: Vec::new(),
    };
    let rule = match parse_rule_value(object, "") {
        Ok(rule) => rule,
        Err(errors) => return deny(errors.0),
    };
    let rule_name = rule.name.clone();
    let set = match upsert_rule_set(others.unwrap_or(&RuleSet::default()), vec![rule]) {
        Ok(set) => set,
        Err(errors) => return deny(errors.0),
    };
    let mut warnings: Vec<String> = findings_for(&set, &rule_name).into_iter().map(|f| f.message).collect();
    if warnings.len() > MAX_WARNINGS {
        let left = warnings.len() - (MAX_WARNINGS - 1);
        warnings.truncate(MAX_WARNINGS - 1);
        warnings.push(format!("... and {left} more"));
    }
    // The compiler's limits (address tables, server names) hold for the whole set a gateway runs.
    if let Err(e) = CompiledPolicy::compile(set, Action::Allow) {
        return deny(vec![RuleError {
            source: String::new(),
            rule: rule_name,
            field: String::new(),
            message: format!("the rule set does not compile with this rule: {e}"),
        }]);
    }
    Response { uid, allowed: true, status: None, warnings }
}

fn denial(name: &str, errors: Vec<RuleError>) -> Status {
    let message = errors
        .iter()
        .map(|e| if e.field.is_empty() { e.message.clone() } else { format!("{}: {}", e.field, e.message) })
        .collect::<Vec<_>>()
        .join("; ");
    Status {
        status: "Failure",
        code: DENIED_CODE,
        reason: "Invalid",
        message,
        details: Details {
            name: name.to_string(),
            group: "policy.secure.example.com",
            kind: "networkpolicyrules",
            causes: errors
                .into_iter()
                .map(|e| Cause { reason: "FieldValueInvalid", message: e.message, field: e.field })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(operation: &str, object: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"uid": "u-1", "operation": operation, "object": object}
        }))
        .unwrap()
    }

    fn rule(name: &str, spec: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "policy.secure.example.com/v1", "kind": "NetworkPolicyRule",
               "metadata": {"name": name, "uid": "x", "generation": 1, "managedFields": []}, "spec": spec})
    }

    #[test]
    fn valid_rule_is_allowed_without_warnings() {
        let out =
            review(&body("CREATE", rule("a", json!({"cidrBlocks": ["10.0.0.0/8"], "action": "DROP"}))), None).unwrap();
        assert_eq!(out.response, Response { uid: "u-1".into(), allowed: true, status: None, warnings: vec![] });
    }

    #[test]
    fn every_field_error_is_named() {
        let out =
            review(&body("UPDATE", rule("a", json!({"cidrBlocks": ["10.0.0.1/8", "x"], "action": "MAYBE"}))), None)
                .unwrap();
        let status = out.response.status.unwrap();
        assert_eq!(
            status.message,
            "spec.action: unknown action \"MAYBE\" (expected ALLOW, DROP or REJECT); \
             spec.cidrBlocks[0]: host bits set in 10.0.0.1/8 (did you mean 10.0.0.0/8?); \
             spec.cidrBlocks[1]: invalid CIDR \"x\" (expected an address and a prefix length, like 10.0.0.0/8 or 2001:db8::/32)"
        );
        assert_eq!(status.details.causes.len(), 3);
        assert_eq!(status.details.causes[1].field, "spec.cidrBlocks[0]");
    }

    #[test]
    fn others_replace_the_same_name_and_give_warnings() {
        let others = crate::policy::rule_set_from_str(
            "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: wide}\nspec: {priority: 1, cidrBlocks: [10.0.0.0/8], action: DROP}\n---\n\
             apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: a}\nspec: {cidrBlocks: [192.0.2.0/24], action: DROP}\n",
            "dir",
        )
        .unwrap();
        let out = review(
            &body("UPDATE", rule("a", json!({"cidrBlocks": ["10.1.0.0/16"], "action": "ALLOW"}))),
            Some(&others),
        )
        .unwrap();
        assert!(out.response.allowed);
        assert_eq!(
            out.response.warnings,
            vec!["rule \"a\" is shadowed by \"wide\" (priority 1), which matches every connection it matches: its action never applies"]
        );
    }

    #[test]
    fn too_many_warnings_are_cut() {
        let text: String = (0..15)
            .map(|i| format!("apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {{name: w{i}}}\nspec: {{priority: 1, cidrBlocks: [10.{i}.0.0/16], action: DROP}}\n---\n"))
            .collect();
        let others = crate::policy::rule_set_from_str(&text, "dir").unwrap();
        let out =
            review(&body("CREATE", rule("a", json!({"cidrBlocks": ["10.0.0.0/8"], "action": "ALLOW"}))), Some(&others))
                .unwrap();
        assert_eq!(out.response.warnings.len(), MAX_WARNINGS);
        assert_eq!(out.response.warnings[MAX_WARNINGS - 1], "... and 6 more");
    }

    #[test]
    fn bad_reviews_are_400_reasons() {
        let r = |b: &[u8]| review(b, None).unwrap_err().0;
        assert_eq!(r(b"{"), "malformed AdmissionReview: EOF while parsing an object at line 1 column 1");
        assert_eq!(
            r(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","operation":"DELETE"}}"#),
            "unsupported admission.k8s.io/v1beta1/AdmissionReview (expected admission.k8s.io/v1/AdmissionReview)"
        );
        assert_eq!(
            r(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
            "malformed AdmissionReview: request: missing"
        );
        assert_eq!(
            r(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"DELETE"}}"#),
            "malformed AdmissionReview: request: missing field `uid`"
        );
        assert_eq!(
            r(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","operation":"CREATE"}}"#),
            "malformed AdmissionReview: request.object: missing for CREATE"
        );
    }
}
