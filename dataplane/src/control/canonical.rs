//! The canonical form of a rule set and its digest.
//!
//! A validated [`Rule`] is written back as a `NetworkPolicyRule` document with every default
//! spelled out the same way: `cidrBlocks`, `except`, `ports` and the TLS lists sorted; CIDRs in
//! canonical text; `priority` and `direction` always present; empty optional lists and an empty
//! `reason` left out; a full port range written without `port`; `limit` last, when present. A set's canonical text is the
//! compact JSON array of these documents (keys in the order above, no spaces) in evaluation
//! order (priority, DROP before ALLOW, name: a total order, names being unique).
//!
//! The digest is `sha256:` and the lowercase hex SHA-256 of the concatenated SHA-256 of each
//! document's text, in evaluation order: a hash list, so that an update re-hashes only the
//! rules it changes. Two rule sets that mean the same get the same digest, whatever their file
//! format, document order or list order.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;

use crate::policy::document::{API_VERSION, KIND};
use crate::policy::{PortRange, Rule, RuleSet};
use crate::tls::client_hello::version_str;
use crate::wire::ip_proto;
use std::sync::Arc;

/// The canonical JSON text of one rule's document.
pub fn document_json(rule: &Rule) -> String {
    let mut out = String::with_capacity(256);
    write_document(rule, &mut out);
    out
}

/// Appends the canonical document of `rule` to `out`. Written by hand rather than through
/// serde: a 100k-rule update hashes every document, and this is several times faster than
/// building serializable structs of sorted string copies.
pub fn write_document(rule: &Rule, out: &mut String) {
    out.push_str("{\"apiVersion\":");
    write_str(API_VERSION, out);
    out.push_str(",\"kind\":");
    write_str(KIND, out);
    out.push_str(",\"metadata\":{\"name\":");
    write_str(&rule.name, out);
    out.push_str("},\"spec\":{\"cidrBlocks\":");
    write_sorted_by(&rule.cidr_blocks, |n| *n, out, write_net);
    if !rule.except.is_empty() {
        out.push_str(",\"except\":");
        write_sorted_by(&rule.except, |n| *n, out, write_net);
    }
    out.push_str(",\"action\":");
    write_str(rule.action.as_str(), out);
    if !rule.reason.is_empty() {
        out.push_str(",\"reason\":");
        write_str(&rule.reason, out);
    }
    out.push_str(",\"priority\":");
    out.push_str(itoa::Buffer::new().format(rule.priority));
    out.push_str(",\"direction\":");
    write_str(rule.direction.as_str(), out);
    if !rule.ports.is_empty() {
        out.push_str(",\"ports\":");
        write_sorted_by(
            &rule.ports,
            |r: &PortRange| (r.protocol, r.first, r.last),
            out,
            |r, out| {
                out.push_str(if r.protocol == ip_proto::UDP {
                    "{\"protocol\":\"UDP\""
                } else {
                    "{\"protocol\":\"TCP\""
                });
                if (r.first, r.last) != (0, u16::MAX) {
                    let _ = write!(out, ",\"port\":{},\"endPort\":{}", r.first, r.last);
                }
                out.push('}');
            },
        );
    }
    if let Some(t) = &rule.tls {
        out.push_str(",\"tls\":{");
        let mut fields = 0;
        let mut field = |name: &str, out: &mut String| {
            if fields > 0 {
                out.push(',');
            }
            fields += 1;
            write_str(name, out);
            out.push(':');
        };
        let strings =
            |list: &[String], out: &mut String| write_sorted_by(list, String::as_str, out, |s, o| write_str(s, o));
        if !t.server_names.is_empty() {
            field("serverNames", out);
            strings(&t.server_names, out);
        }
        if let Some(v) = t.version_below {
            field("versionBelow", out);
            match version_str(v) {
                Some(text) => write_str(text, out),
                None => write_str(&format!("0x{v:04x}"), out),
            }
        }
        if !t.ja3.is_empty() {
            field("ja3", out);
            strings(&t.ja3, out);
        }
        if !t.ja4.is_empty() {
            field("ja4", out);
            strings(&t.ja4, out);
        }
        out.push('}');
    }
    if let Some(l) = &rule.limit {
        let _ = write!(out, ",\"limit\":{{\"connectionsPerSecond\":{},\"burst\":{}}}", l.per_second, l.burst);
    }
    out.push_str("}}");
}

fn write_net(net: &ipnet::IpNet, out: &mut String) {
    let mut n = itoa::Buffer::new();
    out.push('"');
    match net {
        // By hand: `Display` through `fmt` is most of the time of a 100k-rule set's hashes.
        ipnet::IpNet::V4(v4) => {
            for (i, octet) in v4.addr().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(n.format(octet));
            }
        }
        ipnet::IpNet::V6(v6) => {
            let _ = write!(out, "{}", v6.addr());
        }
    }
    out.push('/');
    out.push_str(n.format(net.prefix_len()));
    out.push('"');
}

/// A JSON array of `items` in `key` order (a sorted copy only when not sorted already).
fn write_sorted_by<'a, T, K: Ord>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
    out: &mut String,
    each: impl Fn(&T, &mut String),
) {
    out.push('[');
    if items.is_sorted_by_key(&key) {
        write_items(items.iter(), out, each);
    } else {
        let mut sorted: Vec<&'a T> = items.iter().collect();
        sorted.sort_by_key(|t| key(t));
        write_items(sorted.into_iter(), out, each);
    }
    out.push(']');
}

fn write_items<'a, T: 'a>(items: impl Iterator<Item = &'a T>, out: &mut String, each: impl Fn(&T, &mut String)) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(item, out);
    }
}

/// A JSON string, escaped as `serde_json` escapes it.
pub fn write_str(s: &str, out: &mut String) {
    out.push('"');
    // Names, CIDRs and fingerprints never need escaping: copy them whole.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The canonical JSON text of a set: a compact array of its documents in evaluation order.
pub fn to_json(set: &RuleSet) -> String {
    let mut out = String::from("[");
    for (i, rule) in set.rules().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_document(rule, &mut out);
    }
    out.push(']');
    out
}

/// One rule's canonical document and its SHA-256.
#[derive(Clone, Debug)]
struct Document {
    text: Arc<str>,
    hash: [u8; 32],
}

impl Document {
    fn of(rule: &Rule) -> Document {
        let text = document_json(rule);
        let hash = Sha256::digest(text.as_bytes()).into();
        Document { text: text.into(), hash }
    }
}

/// The digest of a set: `sha256:` and the hex SHA-256 of its rules' hashes in evaluation order.
pub fn digest(set: &RuleSet) -> String {
    Documents::of(set).digest()
}

/// The canonical document (text and hash) of each rule of a set, in the set's order. Kept
/// beside the active set so that an update writes and hashes only the rules it changes: the
/// digest of 11k rules then costs one SHA-256 over 350 KB, the state file a copy of 2 MB.
#[derive(Clone, Debug, Default)]
pub struct Documents(Vec<Document>);

impl Documents {
    pub fn of(set: &RuleSet) -> Documents {
        Documents(set.rules().iter().map(|r| Document::of(r)).collect())
    }

    /// The documents of `new`, given that `self` holds those of `old`, and how `new` differs
    /// from `old` (what the state journal records). Both sets are in evaluation order, so one
    /// merge walk finds the unchanged rules (shared pointers, or equal rules); a rule whose
    /// priority or action changed moves, and is both removed and upserted.
    pub fn updated<'a>(&self, old: &'a RuleSet, new: &RuleSet) -> (Documents, Delta<'a>) {
        let old_rules = old.rules();
        let mut out = Vec::with_capacity(new.len());
        let mut delta = Delta::default();
        let mut i = 0;
        for rule in new.rules() {
            let mut reused = None;
            while let (Some(o), Some(doc)) = (old_rules.get(i), self.0.get(i)) {
                if Arc::ptr_eq(o, rule) {
                    reused = Some(doc.clone());
                    i += 1;
                    break;
                }
                match o.precedence_key().cmp(&rule.precedence_key()) {
                    // A rule of `old` that `new` does not have (here).
                    std::cmp::Ordering::Less => {
                        delta.removed.push(o.name.as_str());
                        i += 1;
                    }
                    std::cmp::Ordering::Equal => {
                        // Same name and place; is the document the same?
                        if same_document(o, rule) {
                            reused = Some(doc.clone());
                        }
                        i += 1;
                        break;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
            let doc = reused.unwrap_or_else(|| {
                let doc = Document::of(rule);
                delta.changed.push(doc.text.clone());
                doc
            });
            out.push(doc);
        }
        delta.removed.extend(old_rules.iter().skip(i).map(|o| o.name.as_str()));
        (Documents(out), delta)
    }

    pub fn digest(&self) -> String {
        let mut sha = Sha256::new();
        for d in &self.0 {
            sha.update(d.hash);
        }
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for b in sha.finalize() {
            out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
        }
        out
    }

    /// The canonical JSON text of the set (the same as [`to_json`]).
    pub fn json(&self) -> String {
        json_array(self.0.iter().map(|d| &*d.text))
    }
}

/// How one rule set differs from another: see [`Documents::updated`].
#[derive(Debug, Default)]
pub struct Delta<'a> {
    /// Names of rules of the old set to remove.
    pub removed: Vec<&'a str>,
    /// Canonical documents of rules to add or replace (by name).
    pub changed: Vec<Arc<str>>,
}

impl Delta<'_> {
    /// The documents to upsert as one JSON array.
    pub fn changed_json(&self) -> String {
        json_array(self.changed.iter().map(|d| &**d))
    }

    /// About the bytes the delta takes as JSON: the documents, and the names quoted (a name
    /// needing escapes takes a few more).
    pub fn json_bytes(&self) -> usize {
        let names: usize = self.removed.iter().map(|n| n.len() + 3).sum();
        names + self.changed.iter().map(|d| d.len() + 1).sum::<usize>() + 2
    }
}

/// Documents as one compact JSON array.
fn json_array<'a>(documents: impl Iterator<Item = &'a str> + Clone) -> String {
    let mut out = String::with_capacity(2 + documents.clone().map(|d| d.len() + 1).sum::<usize>());
    out.push('[');
    for (i, d) in documents.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(d);
    }
    out.push(']');
    out
}

/// Whether two sets have the same canonical text (and so the same digest), without writing
/// it: an apply decides "no change" before compiling, and the digest is computed after the
/// workers run the new set. Stops at the first difference.
pub fn same_documents(a: &RuleSet, b: &RuleSet) -> bool {
    a.len() == b.len() && a.rules().iter().zip(b.rules()).all(|(x, y)| Arc::ptr_eq(x, y) || same_document(x, y))
}

/// Whether two rules have the same canonical document: every field but `source`, lists
/// compared as the canonical form writes them (sorted).
fn same_document(a: &Rule, b: &Rule) -> bool {
    let Rule { name, action, reason, priority, direction, cidr_blocks, except, ports, tls, limit, source: _ } = a;
    let port_key = |r: &PortRange| (r.protocol, r.first, r.last);
    *name == b.name
        && *action == b.action
        && *reason == b.reason
        && *priority == b.priority
        && *direction == b.direction
        && same_sorted(cidr_blocks, &b.cidr_blocks, |n| *n)
        && same_sorted(except, &b.except, |n| *n)
        && same_sorted(ports, &b.ports, port_key)
        && *limit == b.limit
        && match (tls, &b.tls) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                x.version_below == y.version_below
                    && same_sorted(&x.server_names, &y.server_names, String::as_str)
                    && same_sorted(&x.ja3, &y.ja3, String::as_str)
                    && same_sorted(&x.ja4, &y.ja4, String::as_str)
            }
            _ => false,
        }
}

/// Whether two lists hold the same items in `key` order.
fn same_sorted<'a, T, K: Ord>(a: &'a [T], b: &'a [T], key: impl Fn(&'a T) -> K) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.iter().zip(b).all(|(x, y)| key(x) == key(y)) {
        return true;
    }
    let sorted = |l: &'a [T]| {
        let mut v: Vec<K> = l.iter().map(&key).collect();
        v.sort();
        v
    };
    sorted(a) == sorted(b)
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
    fn the_limit_is_written_last_and_changes_the_digest() {
        let doc = |limit: &str| {
            format!(
                "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {{name: l}}\nspec:\n  action: DROP\n{limit}"
            )
        };
        let limited = rule_set_from_str(&doc("  limit: {burst: 9, connectionsPerSecond: 3}\n"), "").unwrap();
        let json = to_json(&limited);
        assert!(json.ends_with(r#""direction":"any","limit":{"connectionsPerSecond":3,"burst":9}}}]"#), "{json}");
        assert_eq!(rule_set_from_str(&json, "").unwrap(), limited);
        let other = rule_set_from_str(&doc("  limit: {burst: 9, connectionsPerSecond: 4}\n"), "").unwrap();
        let none = rule_set_from_str(&doc(""), "").unwrap();
        assert_ne!(digest(&limited), digest(&other));
        assert_ne!(digest(&limited), digest(&none));
        assert!(!same_documents(&limited, &other) && !same_documents(&limited, &none));
        assert!(same_documents(&limited, &rule_set_from_str(&json, "").unwrap()));
    }

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
        let documents: Vec<String> = set.rules().iter().map(|r| document_json(r)).collect();
        assert_eq!(to_json(&set), format!("[{}]", documents.join(",")));
        assert_eq!(to_json(&RuleSet::default()), "[]");
        // sha256(sha256(doc alpha) || sha256(doc zeta)), computed the long way.
        let mut list = Vec::new();
        for d in &documents {
            list.extend_from_slice(&Sha256::digest(d.as_bytes()));
        }
        let expected: String = Sha256::digest(&list).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest(&set), format!("sha256:{expected}"));
        let empty: String = Sha256::digest(b"").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest(&RuleSet::default()), format!("sha256:{empty}"));
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for s in
            ["plain", "quote \" and \\ backslash", "line\nbreak\r\ttab", "\u{1}\u{8}\u{c}\u{1f}\u{7f}", "ünïcødé ✓ /"]
        {
            let mut out = String::new();
            write_str(s, &mut out);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
        // And a whole document with such a reason parses back to the same rule.
        let text = SET.replace("CVE-2024-21413 exploit attempt detected", "say \\\"hi\\\"\\tnow");
        let set = rule_set_from_str(&text, "").unwrap();
        let again = rule_set_from_str(&to_json(&set), "").unwrap();
        assert_eq!(again.rules().iter().find(|r| r.name == "zeta").unwrap().reason, "say \"hi\"\tnow");
        assert_eq!(digest(&again), digest(&set));
    }

    #[test]
    fn updated_documents_equal_documents_computed_afresh() {
        let rule = |name: &str, prio: u16, cidr: &str| {
            format!(
                "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {{name: {name}}}\nspec: {{cidrBlocks: [\"{cidr}\"], action: DROP, priority: {prio}}}\n---\n"
            )
        };
        let text: String =
            (0..40).map(|i| rule(&format!("r{i}"), (i * 7 % 13) as u16, &format!("10.{i}.0.0/16"))).collect();
        let mut set = rule_set_from_str(&text, "").unwrap();
        let mut docs = Documents::of(&set);
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
            // Parsed again, unchanged: the same documents (and digest) though no pointer is shared.
            Box::new(|s| rule_set_from_str(&to_json(s), "").unwrap()),
            Box::new(|_| RuleSet::default()),
        ];
        for (k, step) in steps.iter().enumerate() {
            let next = step(&set);
            let (updated, delta) = docs.updated(&set, &next);
            // The delta turns the old set into the new one.
            let replayed = set.without_all(&delta.removed).unwrap().upserted(parse(&delta.changed_json()));
            assert_eq!(to_json(&replayed), to_json(&next), "step {k}");
            let fresh = Documents::of(&next);
            let hashes = |d: &Documents| d.0.iter().map(|d| d.hash).collect::<Vec<_>>();
            assert_eq!(hashes(&updated), hashes(&fresh), "step {k}");
            assert_eq!(updated.json(), to_json(&next), "step {k}");
            assert_eq!(updated.digest(), digest(&next), "step {k}");
            assert_eq!(same_documents(&set, &next), docs.digest() == updated.digest(), "step {k}");
            (set, docs) = (next, updated);
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
        assert!(same_documents(&a, &b));
        let c = rule_set_from_str(&SET.replace("priority: 7", "priority: 8"), "").unwrap();
        assert_ne!(digest(&a), digest(&c));
        assert!(!same_documents(&a, &c));
        let d = digest(&a);
        assert!(d.starts_with("sha256:") && d.len() == 71, "{d}");
    }
}
