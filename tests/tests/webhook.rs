//! `dataplane webhook`: the real binary over HTTPS, fed `AdmissionReview` requests shaped as
//! the API server sends them. Exact decisions, uids, codes and messages.

mod k8s_common;

use k8s_common::{start_webhook, Webhook};
use serde_json::{json, Value};

const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

fn gvk() -> Value {
    json!({"group": "policy.secure.example.com", "version": "v1", "kind": "NetworkPolicyRule"})
}

fn gvr() -> Value {
    json!({"group": "policy.secure.example.com", "version": "v1", "resource": "networkpolicyrules"})
}

/// The object as the API server hands it to admission: defaulted metadata, managed fields.
fn object(name: Option<&str>, spec: Value) -> Value {
    let mut metadata = json!({
        "uid": "3f0c5d1e-9d4b-4c8e-8f0a-2b1e6f7a9c01",
        "generation": 1,
        "creationTimestamp": "2025-01-15T10:00:00Z",
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        "managedFields": [{
            "manager": "kubectl-client-side-apply", "operation": "Update",
            "apiVersion": "policy.secure.example.com/v1", "time": "2025-01-15T10:00:00Z",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}
        }]
    });
    if let Some(n) = name {
        metadata["name"] = json!(n);
    }
    json!({"apiVersion": "policy.secure.example.com/v1", "kind": "NetworkPolicyRule", "metadata": metadata, "spec": spec})
}

fn review(operation: &str, name: &str, object: Value, old_object: Value) -> Value {
    let options_kind = match operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": gvk(),
            "resource": gvr(),
            "requestKind": gvk(),
            "requestResource": gvr(),
            "name": name,
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]},
            "object": object,
            "oldObject": old_object,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind}
        }
    })
}

fn post(w: &Webhook, body: &[u8]) -> (u16, String) {
    let mut resp =
        w.agent.post(format!("{}/validate", w.url)).header("Content-Type", "application/json").send(body).unwrap();
    (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap())
}

fn post_review(w: &Webhook, review: &Value) -> Value {
    let (status, body) = post(w, &serde_json::to_vec(review).unwrap());
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn allowed() -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": UID, "allowed": true}})
}

fn denied(name: &str, causes: &[(&str, &str)]) -> Value {
    let message: Vec<String> =
        causes.iter().map(|(f, m)| if f.is_empty() { m.to_string() } else { format!("{f}: {m}") }).collect();
    let mut details = json!({
        "group": "policy.secure.example.com",
        "kind": "networkpolicyrules",
        "causes": causes.iter().map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f})).collect::<Vec<_>>()
    });
    if !name.is_empty() {
        details["name"] = json!(name);
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": UID,
            "allowed": false,
            "status": {"status": "Failure", "code": 422, "reason": "Invalid", "message": message.join("; "), "details": details}
        }
    })
}

#[test]
fn admission_decisions_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let w = start_webhook(dir.path(), None);
    let valid =
        json!({"cidrBlocks": ["192.168.211.0/24", "2001:db8::/32"], "action": "DROP", "reason": "CVE-2024-21413"});

    // A valid rule, CREATE and UPDATE.
    assert_eq!(
        post_review(&w, &review("CREATE", "block-x", object(Some("block-x"), valid.clone()), Value::Null)),
        allowed()
    );
    assert_eq!(
        post_review(
            &w,
            &review(
                "UPDATE",
                "block-x",
                object(Some("block-x"), valid.clone()),
                object(Some("block-x"), valid.clone())
            )
        ),
        allowed()
    );

    // Host bits set.
    let spec = json!({"cidrBlocks": ["10.0.0.0/8", "10.0.0.1/24"], "action": "DROP"});
    assert_eq!(
        post_review(&w, &review("CREATE", "hosty", object(Some("hosty"), spec), Value::Null)),
        denied("hosty", &[("spec.cidrBlocks[1]", "host bits set in 10.0.0.1/24 (did you mean 10.0.0.0/24?)")])
    );

    // Unknown action.
    let spec = json!({"cidrBlocks": ["10.0.0.0/8"], "action": "DENY"});
    assert_eq!(
        post_review(
            &w,
            &review("UPDATE", "rejecting", object(Some("rejecting"), spec), object(Some("rejecting"), valid.clone()))
        ),
        denied("rejecting", &[("spec.action", "unknown action \"DENY\" (expected ALLOW, DROP or REJECT)")])
    );

    // Unknown field: a typo must not silently widen a rule.
    let spec = json!({"cidrBlock": ["10.0.0.0/8"], "action": "DROP"});
    assert_eq!(
        post_review(&w, &review("CREATE", "typo", object(Some("typo"), spec), Value::Null)),
        denied(
            "typo",
            &[(
                "spec.cidrBlock",
                "unknown field `cidrBlock`, expected one of `cidrBlocks`, `except`, `action`, `reason`, `priority`, `direction`, `ports`, `tls`, `limit`"
            )]
        )
    );

    // Missing name.
    assert_eq!(
        post_review(&w, &review("CREATE", "", object(None, valid.clone()), Value::Null)),
        denied("", &[("metadata.name", "required field is missing")])
    );

    // Several errors at once, each named.
    let spec = json!({"cidrBlocks": ["10.0.0.0/8"], "except": ["192.0.2.0/24"], "ports": [{"protocol": "SCTP", "port": 70000}]});
    assert_eq!(
        post_review(&w, &review("CREATE", "many", object(Some("many"), spec), Value::Null)),
        denied(
            "many",
            &[
                ("spec.action", "required field is missing (ALLOW, DROP or REJECT)"),
                ("spec.except[0]", "192.0.2.0/24 is not inside any of spec.cidrBlocks"),
                ("spec.ports[0].protocol", "unknown protocol \"SCTP\" (expected TCP or UDP)"),
                ("spec.ports[0].port", "70000 is out of range 1..=65535"),
            ]
        )
    );

    // DELETE: the API server sends the old object and a null object.
    let bad_old = object(Some("block-x"), json!({"action": "NOPE"}));
    assert_eq!(post_review(&w, &review("DELETE", "block-x", Value::Null, bad_old)), allowed());
}

#[test]
fn malformed_bodies_get_400_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let w = start_webhook(dir.path(), None);
    assert_eq!(
        post(&w, b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": "),
        (400, "malformed AdmissionReview: EOF while parsing a value at line 1 column 46\n".to_string())
    );
    assert_eq!(post(&w, b"[1, 2]"), (400, "malformed AdmissionReview: expected a JSON object\n".to_string()));
    let v1beta1 = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": UID, "operation": "DELETE"}});
    assert_eq!(
        post(&w, &serde_json::to_vec(&v1beta1).unwrap()),
        (
            400,
            "unsupported admission.k8s.io/v1beta1/AdmissionReview (expected admission.k8s.io/v1/AdmissionReview)\n"
                .to_string()
        )
    );
    let no_uid =
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"operation": "CREATE"}});
    assert_eq!(
        post(&w, &serde_json::to_vec(&no_uid).unwrap()),
        (400, "malformed AdmissionReview: request: missing field `uid`\n".to_string())
    );
    let no_object = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": UID, "operation": "CREATE"}});
    assert_eq!(
        post(&w, &serde_json::to_vec(&no_object).unwrap()),
        (400, "malformed AdmissionReview: request.object: missing for CREATE\n".to_string())
    );

    // Not JSON at all.
    let mut resp =
        w.agent.post(format!("{}/validate", w.url)).header("Content-Type", "text/plain").send("hello").unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    assert_eq!(resp.body_mut().read_to_string().unwrap(), "expected Content-Type: application/json\n");

    // Over the body limit (7 MiB): refused from the announced length, before any body byte.
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        8 << 20
    );
    let answer = k8s_common::raw_https(&w.url, &w.cert_der, &head);
    assert!(answer.starts_with("HTTP/1.1 413 Payload Too Large\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nlength limit exceeded"), "{answer}");

    // The process is still serving.
    assert_eq!(post_review(&w, &review("DELETE", "x", Value::Null, Value::Null)), allowed());
    let mut resp = w.agent.get(format!("{}/healthz", w.url)).call().unwrap();
    assert_eq!((resp.status().as_u16(), resp.body_mut().read_to_string().unwrap()), (200, "ok\n".to_string()));
}

#[test]
fn with_the_other_rules_it_warns_and_replaces_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    std::fs::write(
        rules.join("set.yaml"),
        dataplane_tests::rule_yaml("wide-drop", "  priority: 10\n  cidrBlocks: [10.0.0.0/8]\n  action: DROP\n")
            + &dataplane_tests::rule_yaml("web", "  priority: 500\n  cidrBlocks: [172.16.0.0/12]\n  action: ALLOW\n"),
    )
    .unwrap();
    let w = start_webhook(dir.path(), Some(&rules));

    // Shadowed by an earlier rule.
    let spec = json!({"priority": 20, "cidrBlocks": ["10.1.0.0/16"], "ports": [{"port": 443}], "action": "ALLOW"});
    let out = post_review(&w, &review("CREATE", "allow-10-1", object(Some("allow-10-1"), spec), Value::Null));
    assert_eq!(
        out["response"],
        json!({"uid": UID, "allowed": true, "warnings": [
            "rule \"allow-10-1\" is shadowed by \"wide-drop\" (priority 10), which matches every connection it matches: its action never applies"
        ]})
    );

    // Overlapping CIDRs with the opposite action, evaluated first.
    let spec = json!({"priority": 5, "cidrBlocks": ["10.9.0.0/16"], "action": "ALLOW"});
    let out = post_review(&w, &review("CREATE", "allow-10-9", object(Some("allow-10-9"), spec), Value::Null));
    assert_eq!(
        out["response"]["warnings"],
        json!(["rules \"allow-10-9\" (ALLOW) and \"wide-drop\" (DROP) overlap on 10.9.0.0/16 with opposite actions; \"allow-10-9\" (priority 5) decides there"])
    );

    // A TLS DROP rule for HTTPS over TCP only: admitted, with the QUIC walk-around named; the
    // same rule with UDP 443 too is clean.
    let tls = json!({"serverNames": ["*.blocked.example"]});
    let spec = json!({"priority": 600, "ports": [{"port": 443}], "tls": tls, "action": "DROP"});
    let out = post_review(&w, &review("CREATE", "sni-tcp", object(Some("sni-tcp"), spec), Value::Null));
    assert_eq!(
        out["response"],
        json!({"uid": UID, "allowed": true, "warnings": [
            "rule \"sni-tcp\" reads ClientHellos over TCP only: HTTP/3 clients reach the same names over QUIC (UDP 443), which it does not inspect; add {protocol: UDP, port: 443} to its ports"
        ]})
    );
    let spec = json!({"priority": 600, "ports": [{"port": 443}, {"protocol": "UDP", "port": 443}], "tls": tls, "action": "DROP"});
    assert_eq!(post_review(&w, &review("CREATE", "sni-both", object(Some("sni-both"), spec), Value::Null)), allowed());

    // UPDATE of a rule that is in the directory: the new version replaces it (no duplicate
    // name, no warning against its own old version).
    let spec = json!({"priority": 500, "cidrBlocks": ["172.16.0.0/16"], "action": "ALLOW"});
    assert_eq!(post_review(&w, &review("UPDATE", "web", object(Some("web"), spec), Value::Null)), allowed());

    // The directory is re-read when it changes.
    std::fs::write(rules.join("more.yaml"), dataplane_tests::rule_yaml("all-drop", "  priority: 1\n  action: DROP\n"))
        .unwrap();
    let spec = json!({"priority": 500, "cidrBlocks": ["172.16.0.0/16"], "action": "ALLOW"});
    let out = post_review(&w, &review("UPDATE", "web", object(Some("web"), spec), Value::Null));
    assert_eq!(
        out["response"]["warnings"],
        json!(["rule \"web\" is shadowed by \"all-drop\" (priority 1), which matches every connection it matches: its action never applies"])
    );
}

#[test]
fn bad_certificate_files_exit_2_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("missing.crt");
    let out = std::process::Command::new(dataplane_tests::dataplane_bin())
        .args(["webhook", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&cert)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with(&format!("webhook: --tls-cert/--tls-key: {}: ", cert.display())), "{stderr}");
}
