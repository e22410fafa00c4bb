//! Rule documents: every accepted form, and every rejection with its exact message.

use super::document::{parse_rules, rule_set_from_str};
use super::rule::{Action, Direction, PortRange};
use crate::wire::ip_proto;

fn rule_doc(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

fn errors_of(text: &str) -> Vec<String> {
    match rule_set_from_str(text, "rules/a.yaml") {
        Ok(set) => panic!("accepted: {set:?}"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn the_design_example_parses_with_defaults() {
    let text = rule_doc(
        "block-malicious-cidr",
        "  cidrBlocks: [\"192.168.211.0/24\", \"203.0.113.128/25\"]\n  action: DROP\n  reason: \"CVE-2024-21413 exploit attempt detected\"\n",
    );
    let rules = parse_rules(&text, "x.yaml").unwrap();
    assert_eq!(rules.len(), 1);
    let r = &rules[0];
    assert_eq!(r.name, "block-malicious-cidr");
    assert_eq!(r.action, Action::Drop);
    assert_eq!(r.priority, 1000);
    assert_eq!(r.direction, Direction::Any);
    assert_eq!(r.cidr_blocks, vec!["192.168.211.0/24".parse().unwrap(), "203.0.113.128/25".parse().unwrap()]);
    assert_eq!(r.reason, "CVE-2024-21413 exploit attempt detected");
    assert!(r.ports.is_empty() && r.except.is_empty());
}

#[test]
fn all_optional_fields() {
    let text = rule_doc(
        "web",
        "  cidrBlocks: [\"10.0.0.0/8\", \"2001:db8::/32\"]\n  except: [\"10.1.0.0/16\"]\n  action: ALLOW\n  priority: 7\n  direction: egress\n  ports:\n  - port: 443\n  - protocol: UDP\n    port: 5000\n    endPort: 5010\n  - protocol: UDP\n",
    );
    let r = &parse_rules(&text, "x").unwrap()[0];
    assert_eq!(r.priority, 7);
    assert_eq!(r.direction, Direction::Egress);
    assert_eq!(r.except, vec!["10.1.0.0/16".parse().unwrap()]);
    assert_eq!(
        r.ports,
        vec![
            PortRange { protocol: ip_proto::TCP, first: 443, last: 443 },
            PortRange { protocol: ip_proto::UDP, first: 5000, last: 5010 },
            PortRange { protocol: ip_proto::UDP, first: 0, last: 65535 },
        ]
    );
}

#[test]
fn multi_document_yaml_json_array_and_list_give_the_same_rules() {
    let a = rule_doc("a", "  action: DROP\n  cidrBlocks: [\"10.0.0.0/8\"]\n");
    let b = rule_doc("b", "  action: ALLOW\n");
    let yaml = format!("{a}---\n{b}");
    let json = r#"[{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"a"},"spec":{"action":"DROP","cidrBlocks":["10.0.0.0/8"]}},
                  {"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"b"},"spec":{"action":"ALLOW"}}]"#;
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n{}",
        [a, b]
            .iter()
            .map(|d| d
                .lines()
                .enumerate()
                .map(|(i, l)| if i == 0 { format!("- {l}\n") } else { format!("  {l}\n") })
                .collect::<String>())
            .collect::<String>()
    );
    let from_yaml = rule_set_from_str(&yaml, "s").unwrap();
    assert_eq!(from_yaml.len(), 2);
    assert_eq!(rule_set_from_str(json, "s").unwrap(), from_yaml);
    assert_eq!(rule_set_from_str(&list, "s").unwrap(), from_yaml);
}

#[test]
fn evaluation_order_is_priority_then_drop_then_name() {
    let docs = [
        rule_doc("z-allow", "  action: ALLOW\n  priority: 5\n"),
        rule_doc("b-allow", "  action: ALLOW\n  priority: 5\n"),
        rule_doc("y-drop", "  action: DROP\n  priority: 5\n"),
        rule_doc("first", "  action: ALLOW\n  priority: 1\n"),
    ]
    .join("---\n");
    let set = rule_set_from_str(&docs, "s").unwrap();
    let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["first", "y-drop", "b-allow", "z-allow"]);
}

#[test]
fn host_bits_message_names_file_rule_field_and_fix() {
    let text = rule_doc("block-x", "  cidrBlocks: [\"10.0.0.0/8\", \"10.0.0.1/24\"]\n  action: DROP\n");
    assert_eq!(
        errors_of(&text),
        ["rules/a.yaml: block-x: spec.cidrBlocks[1]: host bits set in 10.0.0.1/24 (did you mean 10.0.0.0/24?)"]
    );
}

#[test]
fn every_error_of_a_set_is_listed() {
    let text = [
        rule_doc("a", "  cidrBlocks: [\"10.0.0.0/33\", \"192.168.1.1\"]\n  except: [\"172.16.0.0/12\"]\n  action: DENY\n"),
        rule_doc("b", "  action: ALLOW\n  ports:\n  - port: 80\n    endPort: 79\n  - protocol: SCTP\n  - endPort: 9\n  - port: 70000\n"),
        rule_doc("c", "  action: ALLOW\n  priority: 70000\n  direction: sideways\n"),
        rule_doc("Bad_Name", "  action: ALLOW\n"),
        rule_doc("d", "  action: ALLOW\n  cidrBlock: [\"10.0.0.0/8\"]\n"),
        rule_doc("a", "  action: ALLOW\n"),
    ]
    .join("---\n");
    let errors = match parse_rules(&text, "f.yaml") {
        Err(e) => e.0.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        Ok(_) => panic!("accepted"),
    };
    let expected = [
        "f.yaml: a: spec.action: unknown action \"DENY\" (expected ALLOW, DROP or REJECT)",
        "f.yaml: a: spec.cidrBlocks[0]: invalid CIDR \"10.0.0.0/33\" (expected an address and a prefix length, like 10.0.0.0/8 or 2001:db8::/32)",
        "f.yaml: a: spec.cidrBlocks[1]: missing prefix length in 192.168.1.1 (did you mean 192.168.1.1/32?)",
        "f.yaml: a: spec.except[0]: 172.16.0.0/12 is not inside any of spec.cidrBlocks",
        "f.yaml: b: spec.ports[0].endPort: endPort 79 is below port 80",
        "f.yaml: b: spec.ports[1].protocol: unknown protocol \"SCTP\" (expected TCP or UDP)",
        "f.yaml: b: spec.ports[2].endPort: endPort requires port",
        "f.yaml: b: spec.ports[3].port: 70000 is out of range 1..=65535",
        "f.yaml: c: spec.priority: 70000 is out of range 0..=65535",
        "f.yaml: c: spec.direction: unknown direction \"sideways\" (expected ingress, egress or any)",
        "f.yaml: Bad_Name: metadata.name: \"Bad_Name\" is not a valid DNS-1123 subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)",
    ];
    assert_eq!(errors[..expected.len()], expected);
    assert_eq!(errors.len(), expected.len() + 1);
    assert!(
        errors[expected.len()].starts_with("f.yaml: d: spec.cidrBlock: unknown field `cidrBlock`, expected one of"),
        "{}",
        errors[expected.len()]
    );
}

#[test]
fn duplicate_names_across_files_are_rejected() {
    let text = [rule_doc("a", "  action: ALLOW\n"), rule_doc("a", "  action: DROP\n")].join("---\n");
    assert_eq!(errors_of(&text), ["rules/a.yaml: a: metadata.name: duplicate name (already defined in rules/a.yaml)"]);
}

#[test]
fn structural_errors() {
    assert_eq!(
        errors_of("apiVersion: v2\nkind: Pod\nmetadata: {}\nspec:\n  action: ALLOW\n"),
        [
            "rules/a.yaml: document 1: apiVersion: unknown apiVersion \"v2\" (expected policy.secure.example.com/v1)",
            "rules/a.yaml: document 1: kind: unknown kind \"Pod\" (expected NetworkPolicyRule)",
            "rules/a.yaml: document 1: metadata.name: required field is missing",
        ]
    );
    assert_eq!(
        errors_of(&rule_doc("x", "  reason: r\n")),
        ["rules/a.yaml: x: spec.action: required field is missing (ALLOW, DROP or REJECT)"]
    );
    assert_eq!(
        errors_of(&rule_doc("x", "  action: ALLOW\n  priority: high\n")),
        ["rules/a.yaml: x: spec.priority: invalid type: string \"high\", expected i64"]
    );
    let long = "r".repeat(257);
    assert_eq!(
        errors_of(&rule_doc("x", &format!("  action: ALLOW\n  reason: {long}\n"))),
        ["rules/a.yaml: x: spec.reason: 257 bytes long, at most 256 allowed"]
    );
    assert_eq!(
        errors_of(&rule_doc("x", "  action: ALLOW\n  cidrBlocks: [\"10.0.0.0/8\", \"10.0.0.0/8\"]\n")),
        ["rules/a.yaml: x: spec.cidrBlocks[1]: duplicate CIDR 10.0.0.0/8 (same as spec.cidrBlocks[0])"]
    );
    assert_eq!(
        errors_of(&rule_doc("x", "  action: ALLOW\n  except: [\"10.0.0.0/8\"]\n")),
        ["rules/a.yaml: x: spec.except[0]: 10.0.0.0/8 is not inside any of spec.cidrBlocks (which is empty)"]
    );
    let syntax = errors_of("a: [unclosed\n");
    assert_eq!(syntax.len(), 1);
    assert!(syntax[0].starts_with("rules/a.yaml: document 1: "), "{}", syntax[0]);
}

#[test]
fn malformed_inputs_never_panic() {
    for text in [
        "",
        "---\n---\n",
        "[]",
        "null",
        "42",
        "[1, 2]",
        "kind: List\nitems: 3\n",
        "{\"spec\": []}",
        "\u{0}\u{1}",
        "- - - -",
        "a: &x [*x]",
    ] {
        let _ = rule_set_from_str(text, "s");
    }
}

#[test]
fn tls_predicates_parse_normalised() {
    let text = rule_doc(
        "tls-x",
        "  action: DROP\n  ports: [{port: 443}]\n  tls:\n    serverNames: [\"WWW.Example.COM.\", \"*.evil.test\"]\n    versionBelow: \"1.2\"\n    ja3: [\"E7D705A3286E19EA42F587B344EE6865\"]\n    ja4: [\"t13d1516h2_8daaf6152771_02713d6af862\"]\n",
    );
    let r = &parse_rules(&text, "x").unwrap()[0];
    let tls = r.tls.as_ref().unwrap();
    assert_eq!(tls.server_names, ["www.example.com", "*.evil.test"]);
    assert_eq!(tls.version_below, Some(0x0303));
    assert_eq!(tls.ja3, ["e7d705a3286e19ea42f587b344ee6865"]);
    assert_eq!(tls.ja4, ["t13d1516h2_8daaf6152771_02713d6af862"]);
}

#[test]
fn tls_errors_name_the_field() {
    let text = rule_doc(
        "tls-x",
        "  action: DROP\n  tls:\n    serverNames: [\"ok.example\", \"a.*.example\", \"ok.example\"]\n    versionBelow: \"1.4\"\n    ja3: [\"xyz\"]\n    ja4: [\"t13\"]\n",
    );
    assert_eq!(
        errors_of(&text),
        [
            "rules/a.yaml: tls-x: spec.tls.serverNames[1]: \"a.*.example\": '*' must be the whole leftmost label, as in *.example.com",
            "rules/a.yaml: tls-x: spec.tls.serverNames[2]: duplicate entry \"ok.example\"",
            "rules/a.yaml: tls-x: spec.tls.versionBelow: unknown TLS version \"1.4\" (expected ssl3, 1.0, 1.1, 1.2 or 1.3)",
            "rules/a.yaml: tls-x: spec.tls.ja3[0]: \"xyz\" is not a JA3 fingerprint (32 hex digits)",
            "rules/a.yaml: tls-x: spec.tls.ja4[0]: \"t13\" is not a JA4 fingerprint (like t13d1516h2_8daaf6152771_02713d6af862)",
        ]
    );
    let typo = rule_doc("tls-y", "  action: DROP\n  tls:\n    serverName: [\"a.example\"]\n");
    let e = errors_of(&typo);
    assert!(e[0].starts_with("rules/a.yaml: tls-y: spec.tls.serverName: unknown field `serverName`"), "{}", e[0]);
}

/// JSON texts take a faster path than YAML; the rules and every error message are the same.
#[test]
fn json_fast_path_gives_the_yaml_paths_rules_and_errors() {
    let docs = [
        r#"{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"ok"},"spec":{"action":"DROP","cidrBlocks":["10.0.0.0/8"],"ports":[{"protocol":"UDP","port":53}],"tls":{"serverNames":["*.Example.com"]}}}"#,
        r#"{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"bad-cidr"},"spec":{"action":"DROP","cidrBlocks":["10.0.0.0/8","10.0.0.1/24"]}}"#,
        r#"{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"typo"},"spec":{"action":"DROP","cidrBlock":["10.0.0.0/8"]}}"#,
        r#"{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"wrong-type"},"spec":{"action":"DROP","priority":"high"}}"#,
        r#"{"kind":"NetworkPolicyRule","spec":{"action":"MAYBE"}}"#,
    ];
    let json = format!("[{}]", docs.join(",\n"));
    // The same documents, but YAML: a JSON object is a YAML flow mapping; a leading comment
    // keeps the text off the JSON path.
    let yaml = format!("# yaml\n{}", docs.map(|d| format!("{d}\n")).join("---\n"));
    let list = format!(r#"{{"apiVersion":"v1","kind":"List","items":{json}}}"#);
    let (j, y, l) = (errors_of(&json), errors_of(&yaml), errors_of(&list));
    assert_eq!(j.len(), 6, "{j:?}");
    assert!(j[0].contains("bad-cidr: spec.cidrBlocks[1]: host bits set in 10.0.0.1/24"), "{j:?}");
    assert!(j[1].starts_with("rules/a.yaml: typo: spec.cidrBlock: unknown field `cidrBlock`"), "{j:?}");
    assert!(j[2].starts_with("rules/a.yaml: wrong-type: spec.priority: invalid type"), "{j:?}");
    assert!(j[3].contains("[4]: apiVersion: required field is missing"), "{j:?}");
    assert!(j[4].contains("[4]: metadata.name: required field is missing"), "{j:?}");
    assert!(j[5].contains("[4]: spec.action: unknown action \"MAYBE\""), "{j:?}");
    // Positions differ by form ([i], document i, items[i]); everything else is identical.
    let y_as_j: Vec<String> = y.iter().map(|e| e.replace("document 5", "[4]")).collect();
    assert_eq!(y_as_j, j);
    let l_as_j: Vec<String> = l.iter().map(|e| e.replace("items[4]", "[4]")).collect();
    assert_eq!(l_as_j, j);

    // Every document deserializes, only checks fail: the one-pass array path, same messages.
    let checked_only = format!("[{},{},{}]", docs[0], docs[1], docs[4]);
    let yaml_checked = format!("# yaml\n{}\n---\n{}\n---\n{}\n", docs[0], docs[1], docs[4]);
    let c = errors_of(&checked_only);
    assert_eq!(c.len(), 4, "{c:?}");
    assert!(c[1].contains("[2]: apiVersion: required field is missing"), "{c:?}");
    let y_as_c: Vec<String> = errors_of(&yaml_checked).iter().map(|e| e.replace("document 3", "[2]")).collect();
    assert_eq!(y_as_c, c);

    let good = format!("[{}]", docs[0]);
    let single = docs[0].to_string();
    let from_yaml = rule_set_from_str(&format!("# yaml\n{}", docs[0]), "s").unwrap();
    assert_eq!(rule_set_from_str(&good, "s").unwrap(), from_yaml);
    assert_eq!(rule_set_from_str(&single, "s").unwrap(), from_yaml);
    // Not JSON after all (a YAML flow sequence followed by more): the YAML path decides.
    assert!(rule_set_from_str("[]\nfoo: 1", "s").is_err());
    assert!(rule_set_from_str("[]", "s").unwrap().is_empty());
}

#[test]
fn state_json_has_no_request_size_limit_and_no_yaml() {
    use super::document::{rule_set_from_json, MAX_DOCUMENT_BYTES};
    let rule = r#"{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"a"},"spec":{"cidrBlocks":["10.0.0.0/8"],"action":"DROP"}}"#;
    // Past the request limit (whitespace stands in for 350k more rules).
    let big = format!("[{rule}{}]", " ".repeat(MAX_DOCUMENT_BYTES));
    let e = rule_set_from_str(&big, "").unwrap_err();
    assert!(e.0[0].message.contains("larger than"), "{e}");
    let set = rule_set_from_json(&big, "").unwrap();
    assert_eq!(set.rules().iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["a"]);
    // The same validation.
    let e = rule_set_from_json(&format!("[{}]", rule.replace("10.0.0.0/8", "10.0.0.1/8")), "").unwrap_err();
    assert_eq!(e.0[0].field, "spec.cidrBlocks[0]");
    // JSON only.
    let e = rule_set_from_json("apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\n", "").unwrap_err();
    assert_eq!(e.0[0].message, "not a JSON array of rule documents");
}

#[test]
fn limit_parses_and_each_bad_field_is_named() {
    let ok = rule_doc(
        "syn-flood",
        "  cidrBlocks: [\"198.18.0.0/15\"]\n  ports: [{port: 443}]\n  action: DROP\n  limit: {connectionsPerSecond: 50, burst: 100}\n",
    );
    let rules = parse_rules(&ok, "x.yaml").unwrap();
    assert_eq!(rules[0].limit, Some(super::rule::ConnectionLimit { per_second: 50, burst: 100 }));
    // JSON alike; any-address rules may have a limit too.
    let json = r#"[{"apiVersion":"policy.secure.example.com/v1","kind":"NetworkPolicyRule","metadata":{"name":"a"},"spec":{"action":"REJECT","limit":{"connectionsPerSecond":1,"burst":1}}}]"#;
    assert_eq!(rule_set_from_str(json, "j").unwrap().rules()[0].limit.map(|l| (l.per_second, l.burst)), Some((1, 1)));

    let bad =
        |limit: &str, extra: &str| errors_of(&rule_doc("l", &format!("  action: DROP\n{extra}  limit: {limit}\n")));
    assert_eq!(
        bad("{connectionsPerSecond: 0, burst: 5}", ""),
        ["rules/a.yaml: l: spec.limit.connectionsPerSecond: 0 is out of range 1..=1000000"]
    );
    assert_eq!(
        bad("{connectionsPerSecond: 5, burst: 1000001}", ""),
        ["rules/a.yaml: l: spec.limit.burst: 1000001 is out of range 1..=1000000"]
    );
    assert_eq!(bad("{burst: 5}", ""), ["rules/a.yaml: l: spec.limit.connectionsPerSecond: required field is missing"]);
    assert_eq!(
        bad("{connectionsPerSecond: -1}", ""),
        [
            "rules/a.yaml: l: spec.limit.connectionsPerSecond: -1 is out of range 1..=1000000",
            "rules/a.yaml: l: spec.limit.burst: required field is missing",
        ]
    );
    assert_eq!(
        bad("{connectionsPerSecond: 5, burst: 5}", "  tls: {serverNames: [\"a.example\"]}\n"),
        ["rules/a.yaml: l: spec.limit: not allowed with spec.tls (a limit counts new connections, decided before any ClientHello is seen)"]
    );
    let unknown = bad("{connectionsPerSecond: 5, burst: 5, perMinute: 3}", "");
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0].contains("unknown field `perMinute`"), "{unknown:?}");

    // At most 64 rules of a set have a limit; the ones past it are named.
    let many: String = (0..66)
        .map(|i| {
            rule_doc(&format!("l{i:02}"), "  action: DROP\n  limit: {connectionsPerSecond: 1, burst: 1}\n") + "---\n"
        })
        .collect();
    assert_eq!(
        errors_of(&many),
        [
            "rules/a.yaml: l64: spec.limit: more than 64 rules of the set have a limit (each new connection is checked against each)",
            "rules/a.yaml: l65: spec.limit: more than 64 rules of the set have a limit (each new connection is checked against each)",
        ]
    );
}
