//! The canonical form of a rule set and its digest.
//!
//! A validated [`Rule`] is written back as a `NetworkPolicyRule` document with every default
//! spelled out the same way: rules sorted by name; `cidrBlocks`, `except`, `ports` and the TLS
//! lists sorted; CIDRs in canonical text; `priority` and `direction` always present;
//! empty optional lists and an empty `reason` left out; a full port range written without
//! `port`. The digest is `sha256:` and the lowercase hex SHA-256 of the compact JSON array of
//! these documents (keys in the order above, no spaces). Two rule sets that mean the same get
//! the same digest, whatever their file format, document order or list order.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::policy::document::{API_VERSION, KIND};
use crate::policy::Rule;
use crate::tls::client_hello::version_str;
use crate::wire::ip_proto;

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

/// The canonical documents of `rules`, sorted by name.
pub fn documents(rules: &[Rule]) -> Vec<Document<'_>> {
    let mut sorted: Vec<&Rule> = rules.iter().collect();
    sorted.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    sorted.into_iter().map(document).collect()
}

/// The canonical JSON text of `rules` (a compact array, sorted by name).
pub fn to_json(rules: &[Rule]) -> String {
    // Serializing plain structs of strings and integers cannot fail.
    serde_json::to_string(&documents(rules)).unwrap_or_else(|_| String::from("[]"))
}

/// `sha256:<hex>` of a canonical JSON text.
pub fn digest_of_json(json: &str) -> String {
    let hash = Sha256::digest(json.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    out
}

/// The digest of a rule set.
pub fn digest(rules: &[Rule]) -> String {
    digest_of_json(&to_json(rules))
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
        let json = to_json(set.rules());
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
        assert_eq!(to_json(again.rules()), json);
        let strip = |s: &crate::policy::RuleSet| {
            let mut v: Vec<Rule> = s.rules().to_vec();
            v.iter_mut().for_each(|r| r.source.clear());
            v
        };
        // Same rules except list order, which the canonical form sorts.
        assert_eq!(digest(&strip(&again)), digest(&strip(&set)));
        assert_eq!(again.len(), 2);
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
        assert_eq!(digest(a.rules()), digest(b.rules()));
        let c = rule_set_from_str(&SET.replace("priority: 7", "priority: 8"), "").unwrap();
        assert_ne!(digest(a.rules()), digest(c.rules()));
        let d = digest(a.rules());
        assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
        assert_eq!(digest(&[]), digest_of_json("[]"));
    }
}
