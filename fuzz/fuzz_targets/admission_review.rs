//! Any bytes as an AdmissionReview body (what the API server, or anyone reaching the webhook,
//! sends), alone and with a set of other rules: never a panic; a decision always echoes the
//! request's uid; a denial always says why.
#![no_main]

use dataplane::control::admission::review;
use dataplane::policy::rule_set_from_str;
use libfuzzer_sys::fuzz_target;

const OTHERS: &str = "apiVersion: policy.secure.example.com/v1\nkind: NetworkPolicyRule\nmetadata: {name: other}\nspec: {action: DROP, cidrBlocks: [\"10.0.0.0/8\"]}\n";

fuzz_target!(|data: &[u8]| {
    let others = rule_set_from_str(OTHERS, "others").ok();
    for set in [None, others.as_ref()] {
        if let Ok(out) = review(data, set) {
            let v = serde_json::to_value(&out).unwrap();
            let uid = serde_json::from_slice::<serde_json::Value>(data).ok().and_then(|r| r["request"]["uid"].as_str().map(str::to_owned));
            assert_eq!(v["response"]["uid"].as_str().map(str::to_owned), uid);
            if v["response"]["allowed"] == serde_json::Value::Bool(false) {
                assert!(v["response"]["status"]["message"].as_str().is_some_and(|m| !m.is_empty()));
            }
        }
    }
});
