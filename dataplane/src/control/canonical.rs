//! The canonical form of a rule set and its digest.
//!
//! A validated [`Rule`] is written back as a `NetworkPolicyRule` document with every default
//! spelled out the same way: `cidrBlocks`, `except`, `ports` and the TLS lists sorted; CIDRs in
//! canonical text; `priority` and `direction` always present; empty optional lists and an empty
//! `reason` left out; a full port range written without `port`. A set's canonical text is the
//! compact JSON array of these documents (keys in the order above, no spaces) in evaluation
//! order (priority, DROP before ALLOW, name: a total order, names being unique).
//!
//! The digest is `sha256:` and the lowercase hex SHA-256 of the concatenated SHA-256 of each
//! document's text, in evaluation order: a hash list, so that an update re-hashes only the
//! rules it changes. Two rule sets that mean the same get the same digest, whatever their file
//! format, document order or list order.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::policy::document::{API_VERSION, KIND};
use crate::policy::{Rule, RuleSet};
use crate::tls::client_hello::version_str;
use crate::wire::ip_proto;
use std::sync::Arc;

/// One rule as a canonical document.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata<'a>,
    spec: Spec<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec<'a> {
    cidr_blocks: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    except: Vec<String>,
    action: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    priority: u16,
    direction: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<Port>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<Tls<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Port {
    protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_port: Option<u16>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Tls<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    server_names: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_below: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ja3: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ja4: Vec<&'a str>,
}

/// The canonical document of one rule.
pub fn document(rule: &Rule) -> Document<'_> {
    let mut cidr_blocks = rule.cidr_blocks.clone();
    cidr_blocks.sort();
    let mut except = rule.except.clone();
    except.sort();
    let mut ranges = rule.ports.clone();
    ranges.sort_by_key(|r| (r.protocol, r.first, r.last));
    let ports = ranges
        .iter()
        .map(|r| Port {
            protocol: if r.protocol == ip_proto::UDP { "UDP" } else { "TCP" },
            port: (r.first, r.last).ne(&(0, u16::MAX)).then_some(r.first),
            end_port: (r.first, r.last).ne(&(0, u16::MAX)).then_some(r.last),
        })
        .collect();
    fn sorted(v: &[String]) -> Vec<&str> {
        let mut s: Vec<&str> = v.iter().map(String::as_str).collect();
        s.sort_unstable();
        s
    }
    let tls = rule.tls.as_ref().map(|t| Tls {
        server_names: sorted(&t.server_names),
        version_below: t.version_below.map(|v| version_str(v).map_or_else(|| format!("0x{v:04x}"), str::to_owned)),
        ja3: sorted(&t.ja3),
        ja4: sorted(&t.ja4),
    });
    Document {
        api_version: API_VERSION,
        kind: KIND,
        metadata: Metadata { name: &rule.name },
        spec: Spec {
            cidr_blocks: cidr_blocks.iter().map(ToString::to_string).collect(),
            except: except.iter().map(ToString::to_string).collect(),
            action: rule.action.as_str(),
            reason: &rule.reason,
            priority: rule.priority,
            direction: rule.direction.as_str(),
            ports,
            tls,
        },
    }
}

/// The canonical JSON text of one rule's document.
pub fn document_json(rule: &Rule) -> String {
    // Serializing plain structs of strings and integers cannot fail.
    serde_json::to_string(&document(rule)).unwrap_or_default()
}

/// The canonical JSON text of a set: a compact array of its documents in evaluation order.
pub fn to_json(set: &RuleSet) -> String {
    let mut out = String::from("[");
    for (i, rule) in set.rules().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&document_json(rule));
    }
    out.push(']');
    out
}

/// SHA-256 of one rule's canonical document.
pub fn rule_hash(rule: &Rule) -> [u8; 32] {
    Sha256::digest(document_json(rule).as_bytes()).into()
}

/// The digest of a set: `sha256:` and the hex SHA-256 of its rules' hashes in evaluation order.
pub fn digest(set: &RuleSet) -> String {
    RuleHashes::of(set).digest()
}

/// The hash of each rule of a set, in the set's order. Kept beside the active set so that an
/// update hashes only the rules it changes: the digest of 11k rules then costs one SHA-256 over
/// 350 KB instead of serializing 2 MB.
#[derive(Clone, Debug, Default)]
pub struct RuleHashes(Vec<[u8; 32]>);

impl RuleHashes {
    pub fn of(set: &RuleSet) -> RuleHashes {
        RuleHashes(set.rules().iter().map(|r| rule_hash(r)).collect())
    }

    /// The hashes of `new`, given that `self` holds those of `old`: both sets are in evaluation
    /// order, so one merge walk finds the unchanged rules (shared pointers, or equal rules).
    pub fn updated(&self, old: &RuleSet, new: &RuleSet) -> RuleHashes {
        let old_rules = old.rules();
        let mut out = Vec::with_capacity(new.len());
        let mut i = 0;
        for rule in new.rules() {
            let mut reused = None;
            while let (Some(o), Some(hash)) = (old_rules.get(i), self.0.get(i)) {
                if Arc::ptr_eq(o, rule) {
                    reused = Some(*hash);
                    i += 1;
                    break;
                }
                match o.precedence_key().cmp(&rule.precedence_key()) {
                    // A rule of `old` that `new` does not have.
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Equal => {
                        // Same name and place; `source` is not part of the document.
                        if same_document(o, rule) {
                            reused = Some(*hash);
                        }
                        i += 1;
                        break;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
            out.push(reused.unwrap_or_else(|| rule_hash(rule)));
        }
        RuleHashes(out)
    }

    pub fn digest(&self) -> String {
        let mut sha = Sha256::new();
        for h in &self.0 {
            sha.update(h);
        }
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for b in sha.finalize() {
            out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        out
    }
}

/// Whether two rules have the same canonical document (everything but `source`).
fn same_document(a: &Rule, b: &Rule) -> bool {
    let Rule { name, action, reason, priority, direction, cidr_blocks, except, ports, tls, source: _ } = a;
    *name == b.name
        && *action == b.action
        && *reason == b.reason
        && *priority == b.priority
        && *direction == b.direction
        && *cidr_blocks == b.cidr_blocks
        && *except == b.except
        && *ports == b.ports
        && *tls == b.tls
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rule_set_from_str;

    const SET: &str = r#"
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata: {name: zeta}
spec:
  cidrBlocks: ["203.0.113.128/25", "192.168.211.0/24", "2001:db8::/32"]
  except: ["192.168.211.128/25"]
  action: DROP
  reason: "CVE-2024-21413 exploit attempt detected"
---
apiVersion: policy.secure.example.com/v1
kind: NetworkPolicyRule
metadata: {name: alpha}
spec:
  action: ALLOW
  priority: 7
  direction: egress
  ports: [{protocol: UDP, port: 53}, {port: 8000, endPort: 8080}, {protocol: UDP}]
  tls: {serverNames: ["*.Example.com", "a.example.org."], versionBelow: "1.2"}
"#;

    #[test]
    fn canonical_text_is_exact_and_parses_back_to_the_same_rules() {
        let set = rule_set_from_str(SET, "").unwrap();
        let json = to_json(&set);
        assert_eq!(
            json,
            concat!(
                r#"[{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"alpha"},"#,
                r#""spec":{"cidrBlocks":[],"action":"ALLOW","priority":7,"direction":"egress","#,
                r#""ports":[{"protocol":"TCP","port":8000,"endPort":8080},{"protocol":"UDP"},{"protocol":"UDP","port":53,"endPort":53}],"#,
                r#""tls":{"serverNames":["*.example.com","a.example.org"],"versionBelow":"1.2"}}},"#,
                r#"{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"zeta"},"#,
                r#""spec":{"cidrBlocks":["192.168.211.0/24","203.0.113.128/25","2001:db8::/32"],"except":["192.168.211.128/25"],"#,
                r#""action":"DROP","reason":"CVE-2024-21413 exploit attempt detected","priority":1000,"direction":"any"}}]"#
            )
        );
        let again = rule_set_from_str(&json, "").unwrap();
        assert_eq!(to_json(&again), json);
        // Same rules except list order (which the canonical form sorts) and source.
        assert_ne!(again, set);
        assert_eq!(digest(&again), digest(&set));
        assert_eq!(again.len(), 2);
    }

    #[test]
    fn set_text_is_the_serialized_array_of_documents_and_digest_the_hash_list() {
        let set = rule_set_from_str(SET, "").unwrap();
        let documents: Vec<Document<'_>> = set.rules().iter().map(|r| document(r)).collect();
        assert_eq!(to_json(&set), serde_json::to_string(&documents).unwrap());
        assert_eq!(to_json(&RuleSet::default()), "[]");
        // sha256(sha256(doc alpha) || sha256(doc zeta)), computed the long way.
        let mut list = Vec::new();
        for d in &documents {
            list.extend_from_slice(&Sha256::digest(serde_json::to_string(d).unwrap().as_bytes()));
        }
        let expected: String = Sha256::digest(&list).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest(&set), format!("sha256:{expected}"));
        let empty: String = Sha256::digest(b"").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest(&RuleSet::default()), format!("sha256:{empty}"));
    }

    #[test]
    fn updated_hashes_equal_hashes_computed_afresh() {
        let rule = |name: &str, prio: u16, cidr: &str| {
            format!(
                "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {{name: {name}}}\nspec: {{cidrBlocks: [\"{cidr}\"], action: DROP, priority: {prio}}}\n---\n"
            )
        };
        let text: String =
            (0..40).map(|i| rule(&format!("r{i}"), (i * 7 % 13) as u16, &format!("10.{i}.0.0/16"))).collect();
        let mut set = rule_set_from_str(&text, "").unwrap();
        let mut hashes = RuleHashes::of(&set);
        let parse = |t: &str| crate::policy::parse_rules(t, "").unwrap();
        type Step = Box<dyn Fn(&RuleSet) -> RuleSet>;
        let steps: Vec<Step> = vec![
            // Upserts: a new rule, a changed CIDR, a changed priority (moves), an identical copy.
            Box::new(move |s| s.upserted(parse(&rule("new", 3, "192.0.2.0/24")))),
            Box::new(move |s| s.upserted(parse(&rule("r5", 0, "10.99.0.0/16")))),
            Box::new(move |s| s.upserted(parse(&rule("r6", 12, "10.6.0.0/16")))),
            Box::new(move |s| s.upserted(parse(&rule("r7", 7 * 7 % 13, "10.7.0.0/16")))),
            Box::new(|s| s.without("r0").unwrap()),
            Box::new(|s| s.without("new").unwrap()),
            // A whole set parsed again (no shared pointers), with one rule changed.
            Box::new(move |_| rule_set_from_str(&text.replace("10.9.0.0/16", "10.9.0.0/17"), "").unwrap()),
            Box::new(|_| RuleSet::default()),
        ];
        for (k, step) in steps.iter().enumerate() {
            let next = step(&set);
            let updated = hashes.updated(&set, &next);
            assert_eq!(updated.0, RuleHashes::of(&next).0, "step {k}");
            assert_eq!(updated.digest(), digest(&next), "step {k}");
            (set, hashes) = (next, updated);
        }
    }

    #[test]
    fn digest_ignores_document_and_list_order_but_not_content() {
        let a = rule_set_from_str(SET, "").unwrap();
        let reordered = SET.replace(
            r#"["203.0.113.128/25", "192.168.211.0/24", "2001:db8::/32"]"#,
            r#"["2001:db8::/32", "192.168.211.0/24", "203.0.113.128/25"]"#,
        );
        let parts: Vec<&str> = reordered.split("---").collect();
        let swapped = format!("{}\n---\n{}", parts[1], parts[0]);
        let b = rule_set_from_str(&swapped, "").unwrap();
        assert_eq!(digest(&a), digest(&b));
        let c = rule_set_from_str(&SET.replace("priority: 7", "priority: 8"), "").unwrap();
        assert_ne!(digest(&a), digest(&c));
        let d = digest(&a);
        assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
    }
}
