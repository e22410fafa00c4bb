//! The manifests under `config/kubernetes/`: parsed, and the CRD's schema held against the
//! dataplane's validator on a corpus of good and bad rules.
//!
//! What is checked and how:
//! - the structural part of `openAPIV3Schema` (types, enums, ranges, patterns, lengths,
//!   required fields, `x-kubernetes-list-type: set` as `uniqueItems`) by a JSON-schema
//!   validator (the `jsonschema` crate);
//! - the CEL `x-kubernetes-validations` by a small evaluation of exactly the expressions the
//!   CRD uses (`isCIDR`, `cidr(..).masked()`, `containsCIDR`, `size(bytes(..))`, ...), written
//!   here in Rust. Every expression of the CRD must be in that table, so a new one cannot go
//!   unchecked. This is not a CEL engine: the expressions are not compiled by an API server
//!   here, and the CIDR library is modelled on Go's netip (no zones, no whitespace).

use serde::Deserialize;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::PathBuf;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/kubernetes")
}

fn docs(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(manifest_dir().join(name)).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

fn crd_schema() -> Value {
    let crds = docs("crd.yaml");
    let crd = find(&crds, "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "networkpolicyrules.policy.secure.example.com");
    assert_eq!(crd["spec"]["group"], "policy.secure.example.com");
    assert_eq!(crd["spec"]["scope"], "Cluster");
    assert_eq!(crd["spec"]["names"]["kind"], "NetworkPolicyRule");
    assert_eq!(crd["spec"]["names"]["plural"], "networkpolicyrules");
    let versions = crd["spec"]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(
        (&versions[0]["name"], &versions[0]["served"], &versions[0]["storage"]),
        (&json!("v1"), &json!(true), &json!(true))
    );
    versions[0]["schema"]["openAPIV3Schema"].clone()
}

/// The structural schema as JSON Schema: Kubernetes extensions dropped, list-type set as
/// uniqueItems.
fn to_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                if k == "x-kubernetes-list-type" && v == "set" {
                    out.insert("uniqueItems".into(), json!(true));
                } else if !k.starts_with("x-kubernetes-") {
                    out.insert(k.clone(), to_json_schema(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

// ---- The CEL expressions of the CRD, evaluated by hand (Go netip semantics). ----

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || (len.len() > 1 && len.starts_with('0')) {
        return None;
    }
    let addr: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn masked(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

fn is_cidr(v: &Value) -> bool {
    v.as_str().and_then(parse_cidr).is_some()
}

fn contains_cidr(outer: &str, inner: &str) -> bool {
    match (parse_cidr(outer), parse_cidr(inner)) {
        (Some((oa, ol)), Some((ia, il))) => {
            oa.is_ipv4() == ia.is_ipv4() && il >= ol && masked(ia, ol) == masked(oa, ol)
        }
        _ => false,
    }
}

fn dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|l| {
            let b = l.as_bytes();
            let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty() && alnum(&b[0]) && alnum(&b[b.len() - 1]) && b.iter().all(|c| alnum(c) || *c == b'-')
        })
}

/// Every expression the CRD uses, with its evaluation. `None`: not an expression we know.
fn eval_cel(rule: &str, this: &Value) -> Option<bool> {
    let rule = rule.split_whitespace().collect::<Vec<_>>().join(" ");
    let has = |k: &str| this.get(k).is_some();
    let int = |k: &str| this.get(k).and_then(Value::as_i64);
    Some(match rule.as_str() {
        r"size(self.metadata.name) <= 253 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')" => {
            this["metadata"]["name"].as_str().is_some_and(dns1123_subdomain)
        }
        "isCIDR(self)" => is_cidr(this),
        "!isCIDR(self) || cidr(self) == cidr(self).masked()" => match this.as_str().and_then(parse_cidr) {
            None => true,
            Some((addr, len)) => masked(addr, len) == addr,
        },
        "!has(self.except) || self.except.all(e, !isCIDR(e) || (has(self.cidrBlocks) && self.cidrBlocks.exists(b, isCIDR(b) && cidr(b).containsCIDR(e))))" => {
            let blocks: Vec<&str> = this.get("cidrBlocks").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            match this.get("except").and_then(Value::as_array) {
                None => true,
                Some(except) => except.iter().all(|e| {
                    !is_cidr(e) || blocks.iter().any(|b| contains_cidr(b, e.as_str().unwrap_or_default()))
                }),
            }
        }
        "size(bytes(self)) <= 256" => this.as_str().is_some_and(|s| s.len() <= 256),
        "!has(self.endPort) || has(self.port)" => !has("endPort") || has("port"),
        "!has(self.endPort) || !has(self.port) || self.endPort >= self.port" => {
            !has("endPort") || !has("port") || int("endPort") >= int("port")
        }
        "size(self) <= 253 || (size(self) == 254 && self.endsWith('.'))" => {
            this.as_str().is_some_and(|s| s.chars().count() <= 253 || (s.chars().count() == 254 && s.ends_with('.')))
        }
        _ => return None,
    })
}

/// Walk schema and instance together; the messages of the CEL rules that fail.
fn cel_failures(schema: &Value, this: &Value, path: &str, out: &mut Vec<String>) {
    for v in schema.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten() {
        let rule = v["rule"].as_str().unwrap();
        let ok =
            eval_cel(rule, this).unwrap_or_else(|| panic!("CEL expression with no evaluation in this test: {rule}"));
        if !ok {
            out.push(format!("{path}: {}", v["message"].as_str().unwrap()));
        }
    }
    if let (Some(props), Some(obj)) = (schema.get("properties").and_then(Value::as_object), this.as_object()) {
        for (k, sub) in props {
            if let Some(child) = obj.get(k) {
                cel_failures(sub, child, &format!("{path}.{k}"), out);
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), this.as_array()) {
        for (i, child) in arr.iter().enumerate() {
            cel_failures(items, child, &format!("{path}[{i}]"), out);
        }
    }
}

fn all_cel_rules(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "x-kubernetes-validations" {
                    out.extend(v.as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap().to_string()));
                } else {
                    all_cel_rules(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| all_cel_rules(v, out)),
        _ => {}
    }
}

struct Crd {
    schema: Value,
    validator: jsonschema::Validator,
}

impl Crd {
    fn load() -> Crd {
        let schema = crd_schema();
        let validator = jsonschema::validator_for(&to_json_schema(&schema)).unwrap();
        Crd { schema, validator }
    }

    /// Why the API server would refuse the object (empty: it admits it to the webhook).
    fn refusals(&self, object: &Value) -> Vec<String> {
        let mut out: Vec<String> =
            self.validator.iter_errors(object).map(|e| format!("{}: {}", e.instance_path(), e)).collect();
        cel_failures(&self.schema, object, "", &mut out);
        out
    }
}

/// What the dataplane's validator says about one object: `Ok` or the error fields.
fn dataplane_verdict(object: &Value) -> Result<(), Vec<String>> {
    dataplane::policy::document::parse_rule_value(object, "test")
        .map(|_| ())
        .map_err(|e| e.0.into_iter().map(|e| e.field).collect())
}

fn rule(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "policy.secure.example.com/v1", "kind": "NetworkPolicyRule", "metadata": {"name": name}, "spec": spec})
}

#[test]
fn every_cel_expression_is_evaluated_here() {
    let mut rules = Vec::new();
    all_cel_rules(&crd_schema(), &mut rules);
    assert_eq!(rules.len(), 10);
    for r in &rules {
        assert!(eval_cel(r, &Value::Null).is_some(), "no evaluation for {r}");
    }
}

#[test]
fn crd_accepts_the_example_rules_and_good_variants() {
    let crd = Crd::load();
    let text = std::fs::read_to_string(manifest_dir().join("../rules/example.yaml")).unwrap();
    let mut good: Vec<Value> =
        serde_yaml_ng::Deserializer::from_str(&text).map(|d| Value::deserialize(d).unwrap()).collect();
    assert_eq!(good.len(), 5);
    good.extend([
        rule("any-address", json!({"action": "ALLOW"})),
        rule("v6-host", json!({"cidrBlocks": ["2001:db8::1/128", "0.0.0.0/0"], "action": "DROP", "reason": "é".repeat(128)})),
        rule("udp-all", json!({"ports": [{"protocol": "UDP"}], "action": "DROP", "priority": 0})),
        rule("edges", json!({"priority": 65535, "ports": [{"port": 1, "endPort": 65535}], "action": "DROP", "direction": "egress"})),
        rule(
            "tls-all",
            json!({"action": "DROP", "ports": [{"port": 443}], "tls": {
                "serverNames": ["*.example.com", "login.example.org.", "Mixed_Case-1.example"],
                "versionBelow": "1.2",
                "ja3": ["e7d705a3286e19ea42f587b344ee6865", "E7D705A3286E19EA42F587B344EE6800"],
                "ja4": ["t13d1516h2_8daaf6152771_02713d6af862"]}}),
        ),
        rule("except-nested", json!({"cidrBlocks": ["10.0.0.0/8", "2001:db8::/32"], "except": ["10.1.0.0/16", "2001:db8:1::/48"], "action": "DROP"})),
        rule("long.dotted.name-1", json!({"action": "DROP"})),
        rule("reject-name", json!({"action": "REJECT", "ports": [{"port": 443}], "tls": {"serverNames": ["blocked.example"]}})),
        rule("long-server-name", json!({"action": "DROP", "tls": {"serverNames": [format!("{}.{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61))]}})),
        rule("limit", json!({"action": "DROP", "ports": [{"port": 443}], "limit": {"connectionsPerSecond": 1000000, "burst": 1}})),
    ]);
    for object in &good {
        assert_eq!(dataplane_verdict(object), Ok(()), "{object}");
        assert_eq!(crd.refusals(object), Vec::<String>::new(), "{object}");
    }
}

#[test]
fn crd_rejects_what_the_validator_rejects() {
    let crd = Crd::load();
    // (object, the field the dataplane's validator names)
    let bad = [
        (rule("host-bits", json!({"cidrBlocks": ["10.0.0.1/24"], "action": "DROP"})), "spec.cidrBlocks[0]"),
        (rule("host-bits-v6", json!({"cidrBlocks": ["2001:db8::1/32"], "action": "DROP"})), "spec.cidrBlocks[0]"),
        (rule("no-prefix", json!({"cidrBlocks": ["10.0.0.1"], "action": "DROP"})), "spec.cidrBlocks[0]"),
        (rule("garbage", json!({"cidrBlocks": ["ten.0.0.0/8"], "action": "DROP"})), "spec.cidrBlocks[0]"),
        (rule("long-prefix", json!({"cidrBlocks": ["10.0.0.0/33"], "action": "DROP"})), "spec.cidrBlocks[0]"),
        (rule("dup", json!({"cidrBlocks": ["10.0.0.0/8", "10.0.0.0/8"], "action": "DROP"})), "spec.cidrBlocks[1]"),
        (rule("unknown-action", json!({"cidrBlocks": ["10.0.0.0/8"], "action": "DENY"})), "spec.action"),
        (rule("lowercase-action", json!({"action": "drop"})), "spec.action"),
        (rule("no-action", json!({"cidrBlocks": ["10.0.0.0/8"]})), "spec.action"),
        (
            rule("no-spec", Value::Null)
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.remove("spec");
                    Value::Object(o)
                })
                .unwrap(),
            "spec",
        ),
        (rule("Bad_Name", json!({"action": "DROP"})), "metadata.name"),
        (rule("-dash", json!({"action": "DROP"})), "metadata.name"),
        (rule("priority-high", json!({"action": "DROP", "priority": 65536})), "spec.priority"),
        (rule("priority-negative", json!({"action": "DROP", "priority": -1})), "spec.priority"),
        (rule("priority-string", json!({"action": "DROP", "priority": "1"})), "spec.priority"),
        (rule("direction", json!({"action": "DROP", "direction": "inbound"})), "spec.direction"),
        (rule("reason-long", json!({"action": "DROP", "reason": "x".repeat(257)})), "spec.reason"),
        (rule("reason-bytes", json!({"action": "DROP", "reason": "é".repeat(129)})), "spec.reason"),
        (
            rule("except-outside", json!({"cidrBlocks": ["10.0.0.0/8"], "except": ["192.0.2.0/24"], "action": "DROP"})),
            "spec.except[0]",
        ),
        (
            rule(
                "except-other-family",
                json!({"cidrBlocks": ["10.0.0.0/8"], "except": ["2001:db8::/32"], "action": "DROP"}),
            ),
            "spec.except[0]",
        ),
        (rule("except-alone", json!({"except": ["10.0.0.0/8"], "action": "DROP"})), "spec.except[0]"),
        (
            rule(
                "except-host-bits",
                json!({"cidrBlocks": ["10.0.0.0/8"], "except": ["10.0.0.1/16"], "action": "DROP"}),
            ),
            "spec.except[0]",
        ),
        (rule("port-zero", json!({"action": "DROP", "ports": [{"port": 0}]})), "spec.ports[0].port"),
        (rule("port-high", json!({"action": "DROP", "ports": [{"port": 65536}]})), "spec.ports[0].port"),
        (rule("end-below", json!({"action": "DROP", "ports": [{"port": 80, "endPort": 79}]})), "spec.ports[0].endPort"),
        (rule("end-alone", json!({"action": "DROP", "ports": [{"endPort": 80}]})), "spec.ports[0].endPort"),
        (
            rule("protocol", json!({"action": "DROP", "ports": [{"protocol": "SCTP", "port": 80}]})),
            "spec.ports[0].protocol",
        ),
        (
            rule("limit-zero", json!({"action": "DROP", "limit": {"connectionsPerSecond": 0, "burst": 1}})),
            "spec.limit.connectionsPerSecond",
        ),
        (
            rule("limit-high", json!({"action": "DROP", "limit": {"connectionsPerSecond": 1, "burst": 1000001}})),
            "spec.limit.burst",
        ),
        (rule("limit-no-burst", json!({"action": "DROP", "limit": {"connectionsPerSecond": 1}})), "spec.limit.burst"),
        (rule("sni-char", json!({"action": "DROP", "tls": {"serverNames": ["bad name!"]}})), "spec.tls.serverNames[0]"),
        (rule("sni-bare", json!({"action": "DROP", "tls": {"serverNames": ["*"]}})), "spec.tls.serverNames[0]"),
        (rule("sni-mid", json!({"action": "DROP", "tls": {"serverNames": ["a.*.com"]}})), "spec.tls.serverNames[0]"),
        (
            rule("sni-empty-label", json!({"action": "DROP", "tls": {"serverNames": ["a..com"]}})),
            "spec.tls.serverNames[0]",
        ),
        (
            rule(
                "sni-label-long",
                json!({"action": "DROP", "tls": {"serverNames": [format!("{}.com", "a".repeat(64))]}}),
            ),
            "spec.tls.serverNames[0]",
        ),
        (
            rule(
                "sni-long",
                json!({"action": "DROP", "tls": {"serverNames": [format!("{}.{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62))]}}),
            ),
            "spec.tls.serverNames[0]",
        ),
        (rule("version", json!({"action": "DROP", "tls": {"versionBelow": "1.4"}})), "spec.tls.versionBelow"),
        (
            rule("ja3", json!({"action": "DROP", "tls": {"ja3": ["e7d705a3286e19ea42f587b344ee686"]}})),
            "spec.tls.ja3[0]",
        ),
        (
            rule("ja4", json!({"action": "DROP", "tls": {"ja4": ["t13d1516h2-8daaf6152771_02713d6af862"]}})),
            "spec.tls.ja4[0]",
        ),
    ];
    for (object, field) in &bad {
        match dataplane_verdict(object) {
            Ok(()) => panic!("the validator accepts {object}"),
            Err(fields) => {
                assert!(fields.iter().any(|f| f == field), "{object}: validator fields {fields:?}, expected {field}")
            }
        }
        assert!(!crd.refusals(object).is_empty(), "the CRD accepts {object}, which the validator rejects at {field}");
    }
}

/// Documented divergences, so they stay known: what only the webhook catches, and where the
/// CRD is stricter than the validator.
#[test]
fn known_differences_between_the_crd_and_the_validator() {
    let crd = Crd::load();
    let webhook_only = [
        // Unknown fields are preserved for the webhook (never pruned into a wider rule).
        (rule("typo", json!({"cidrBlock": ["10.0.0.0/8"], "action": "DROP"})), "spec.cidrBlock"),
        (rule("typo-port", json!({"action": "DROP", "ports": [{"prot": "TCP"}]})), "spec.ports[0].prot"),
        (rule("typo-tls", json!({"action": "DROP", "tls": {"sni": ["a.com"]}})), "spec.tls.sni"),
        (
            rule("typo-limit", json!({"action": "DROP", "limit": {"connectionsPerSecond": 1, "burst": 1, "rate": 2}})),
            "spec.limit.rate",
        ),
        // A limit on a TLS rule (a new connection is decided before its hello).
        (
            rule(
                "limit-tls",
                json!({"action": "DROP", "tls": {"serverNames": ["a.com"]}, "limit": {"connectionsPerSecond": 1, "burst": 1}}),
            ),
            "spec.limit",
        ),
        // Duplicates spelled differently.
        (
            rule("dup-v6", json!({"cidrBlocks": ["2001:db8::/32", "2001:DB8::/32"], "action": "DROP"})),
            "spec.cidrBlocks[1]",
        ),
        (
            rule("dup-sni", json!({"action": "DROP", "tls": {"serverNames": ["a.com", "A.com."]}})),
            "spec.tls.serverNames[1]",
        ),
        (
            rule(
                "dup-ja3",
                json!({"action": "DROP", "tls": {"ja3": ["e7d705a3286e19ea42f587b344ee6865", "E7D705A3286E19EA42F587B344EE6865"]}}),
            ),
            "spec.tls.ja3[1]",
        ),
    ];
    for (object, field) in &webhook_only {
        assert_eq!(dataplane_verdict(object), Err(vec![field.to_string()]), "{object}");
        assert_eq!(crd.refusals(object), Vec::<String>::new(), "{object}");
    }
    let crd_stricter = [
        rule("spaces", json!({"cidrBlocks": [" 10.0.0.0/8 "], "action": "DROP"})),
        rule(
            "many",
            json!({"cidrBlocks": (0..1025).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect::<Vec<_>>(), "action": "DROP"}),
        ),
    ];
    for object in &crd_stricter {
        assert_eq!(dataplane_verdict(object), Ok(()));
        assert!(!crd.refusals(object).is_empty());
    }
    // Every spec object keeps unknown fields (so the webhook sees them).
    let schema = crd_schema();
    let spec = &schema["properties"]["spec"];
    for s in [spec, &spec["properties"]["ports"]["items"], &spec["properties"]["tls"]] {
        assert_eq!(s["x-kubernetes-preserve-unknown-fields"], true);
    }
}

#[test]
fn validating_webhook_configuration_matches_the_webhook_deployment() {
    let docs = docs("webhook.yaml");
    let config = find(&docs, "ValidatingWebhookConfiguration");
    let hooks = config["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(hook["timeoutSeconds"], 10);
    assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
    assert_eq!(
        hook["rules"],
        json!([{"apiGroups": ["policy.secure.example.com"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                "resources": ["networkpolicyrules"], "scope": "Cluster"}])
    );
    let svc_ref = &hook["clientConfig"]["service"];
    assert_eq!(svc_ref["path"], "/validate");

    // The Service it names exists and leads to the webhook container's port.
    let service = find(&docs, "Service");
    assert_eq!(
        (&service["metadata"]["name"], &service["metadata"]["namespace"]),
        (&svc_ref["name"], &svc_ref["namespace"])
    );
    let port = service["spec"]["ports"].as_array().unwrap().iter().find(|p| p["port"] == svc_ref["port"]).unwrap();
    let deployment = find(&docs, "Deployment");
    assert_eq!(deployment["spec"]["template"]["metadata"]["labels"], service["spec"]["selector"]);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let cport = container["ports"].as_array().unwrap().iter().find(|p| p["name"] == port["targetPort"]).unwrap();
    let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(args[0], "webhook");
    let arg = |name: &str| args.iter().position(|a| *a == name).map(|i| args[i + 1]).unwrap();
    assert_eq!(arg("--listen"), format!("0.0.0.0:{}", cport["containerPort"]));
    // The certificate files come from the Secret cert-manager fills, whose CA is injected.
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert_eq!(arg("--tls-cert"), format!("{mount}/tls.crt"));
    assert_eq!(arg("--tls-key"), format!("{mount}/tls.key"));
    let certificate = find(&docs, "Certificate");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        certificate["spec"]["secretName"]
    );
    assert_eq!(
        config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!(
            "{}/{}",
            certificate["metadata"]["namespace"].as_str().unwrap(),
            certificate["metadata"]["name"].as_str().unwrap()
        )
    );
    let dns = format!("{}.{}.svc", svc_ref["name"].as_str().unwrap(), svc_ref["namespace"].as_str().unwrap());
    assert!(certificate["spec"]["dnsNames"].as_array().unwrap().contains(&json!(dns)));

    // The arguments are the real command line's.
    let out =
        std::process::Command::new(dataplane_tests::dataplane_bin()).args(["webhook", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in ["--listen", "--tls-cert", "--tls-key"] {
        assert!(help.contains(flag), "{help}");
    }
}

#[test]
fn daemonset_asks_for_what_dpdk_needs_and_its_config_parses() {
    let docs = docs("daemonset.yaml");
    let ds = find(&docs, "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    let c = &pod["containers"][0];
    let (req, lim) = (&c["resources"]["requests"], &c["resources"]["limits"]);
    // Kubernetes requires hugepage requests equal to limits, and a memory (or CPU) request.
    assert_eq!(req["hugepages-2Mi"], "1Gi");
    assert_eq!(req["hugepages-2Mi"], lim["hugepages-2Mi"]);
    assert!(req.get("memory").is_some());
    // Guaranteed QoS (dedicated cores with the static CPU manager): requests equal limits.
    assert_eq!(req, lim);
    let caps: Vec<&str> =
        c["securityContext"]["capabilities"]["add"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for cap in ["IPC_LOCK", "SYS_RAWIO", "NET_ADMIN"] {
        assert!(caps.contains(&cap), "{caps:?}");
    }
    assert_eq!(c["securityContext"]["privileged"], false);
    let volumes = pod["volumes"].as_array().unwrap();
    let hp = volumes.iter().find(|v| v["emptyDir"]["medium"] == "HugePages").unwrap();
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert_eq!(mounts.iter().find(|m| m["name"] == hp["name"]).unwrap()["mountPath"], "/dev/hugepages");

    // The ConfigMap's dataplane.toml is a valid `dataplane run` config, at the path the
    // container is given.
    let cm = find(&docs, "ConfigMap");
    let text = cm["data"]["dataplane.toml"].as_str().unwrap();
    let config = dataplane::worker::config::Config::parse(text);
    assert!(config.is_ok(), "{:?}", config.err());
    let plan = config.as_ref().map(dataplane::worker::plan);
    assert!(matches!(plan, Ok(Ok(_))), "{plan:?}");
    assert!(text.contains("\"--huge-dir\", \"/dev/hugepages\""));
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let cfg_mount = mounts.iter().find(|m| m["name"] == "config").unwrap()["mountPath"].as_str().unwrap();
    assert_eq!(args, ["run", "--config", &format!("{cfg_mount}/dataplane.toml")]);
}
