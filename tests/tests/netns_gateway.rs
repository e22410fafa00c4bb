//! The dataplane as a bump in the wire between two network namespaces, with real network
//! stacks on both sides: ping (IPv4, IPv6), curl over HTTP and HTTPS, `openssl s_client`,
//! against Python's threaded HTTP(S) server. The dataplane runs in a third namespace, its
//! ports on the ends of the two veth pairs there, through `net_af_packet` (and `net_af_xdp`
//! where the kernel allows it). Helpers: `netns_common`.
//!
//! Needs root, `ip netns`, veth and the tools `scripts/setup.sh` installs; where something is
//! missing each test says why on stderr and skips.

mod netns_common;

use netns_common::bench::{
    assert_cut_after_connect, assert_cut_before_connect, json, rule_packets, skip, stat, stop_clean, xdp_refused,
    Bench, ALLOWED_TIMEOUT_S, BLOCKED_TIMEOUT_S,
};
use netns_common::gateway::{config, NetGateway, Pmd};
use netns_common::tools::{curl_command, fetch_result, ping, s_client, Fetch};
use netns_common::{SERVER_V4, SERVER_V4_OTHER, SERVER_V6, SERVER_V6_OTHER};

/// Allowed traffic of every kind passes, unchanged, and the dataplane stops clean.
fn forwards_real_clients(test: &str, tag: &str, pmd: Pmd) {
    let Some(bench) = Bench::new(test, tag) else { return };
    let cfg = config(bench.dir.path(), &bench.topo, pmd, "");
    let gw = match NetGateway::start(&bench.topo, &cfg) {
        Ok(gw) => gw,
        Err(f) if pmd == Pmd::AfXdp && xdp_refused(&f.text()) => {
            skip(test, &format!("the kernel refused the AF_XDP program:\n{}", f.text()));
            return;
        }
        Err(f) => panic!("the dataplane exited with {:?}:\n{}", f.exit, f.text()),
    };
    let topo = &bench.topo;

    assert_eq!(ping(topo, SERVER_V4, 3, ALLOWED_TIMEOUT_S), 3, "ping {SERVER_V4}");
    assert_eq!(ping(topo, SERVER_V6, 3, ALLOWED_TIMEOUT_S), 3, "ping {SERVER_V6}");
    for host in [SERVER_V4.to_string(), format!("[{SERVER_V6}]")] {
        let f = bench.http(&host, ALLOWED_TIMEOUT_S);
        assert!(f.ok(), "HTTP to {host}: {f:?}");
    }
    let f = bench.https("allowed.test", ALLOWED_TIMEOUT_S);
    assert!(f.ok() && f.tls_done, "HTTPS to allowed.test: {f:?}");
    let (done, out) = s_client(topo, "allowed.test", &bench.pki, ALLOWED_TIMEOUT_S);
    assert!(done, "s_client to allowed.test did not complete the handshake:\n{out}");

    // A burst: 50 HTTPS connections at once, every one must complete.
    let burst: Vec<_> =
        (0..50).map(|_| curl_command(topo, "https://allowed.test/", &bench.pki, 60).spawn().unwrap()).collect();
    let results: Vec<Fetch> = burst.into_iter().map(|c| fetch_result(c.wait_with_output().unwrap())).collect();
    let failed: Vec<&Fetch> = results.iter().filter(|f| !f.ok()).collect();
    assert!(failed.is_empty(), "{} of 50 parallel HTTPS fetches failed: {failed:?}", failed.len());

    let stats = stop_clean(gw);
    // No rule: nothing was dropped, and everything received was sent on.
    assert_eq!(stat(&stats, "drops", "policy"), 0, "{stats}");
    assert_eq!(stat(&stats, "", "rx"), stat(&stats, "", "tx"), "{stats}");
    assert!(stat(&stats, "", "rx") > 0, "{stats}");
}

#[test]
fn af_packet_forwards_ping_http_https_and_a_burst_then_stops_clean() {
    forwards_real_clients("af_packet_forwards_ping_http_https_and_a_burst_then_stops_clean", "a", Pmd::AfPacket);
}

/// `ip netns exec` gives the dataplane a sysfs of its own, without bpffs: libxdp then loads
/// AF_XDP's program alone, without its dispatcher (it says so on stderr). Where the kernel
/// refuses the program, the test says why and skips.
#[test]
fn af_xdp_forwards_ping_http_https_and_a_burst_then_stops_clean() {
    forwards_real_clients("af_xdp_forwards_ping_http_https_and_a_burst_then_stops_clean", "x", Pmd::AfXdp);
}

/// Ahead of the address rule, a TLS rule would keep connections to the blocked address
/// pending (their handshake passing) until their first bytes: README, "TLS policy".
const BLOCKS: &str =
    "  priority: 20\n  tls:\n    serverNames: [\"blocked.test\"]\n  action: DROP\n  reason: e2e blocked name\n";

fn block_cidrs() -> String {
    format!(
        "  priority: 10\n  cidrBlocks: [\"{SERVER_V4_OTHER}/32\", \"{SERVER_V6_OTHER}/128\"]\n  action: DROP\n  reason: e2e blocked address\n"
    )
}

#[test]
fn af_packet_cuts_a_blocked_sni_and_a_blocked_cidr() {
    let test = "af_packet_cuts_a_blocked_sni_and_a_blocked_cidr";
    let Some(bench) = Bench::new(test, "b") else { return };
    let rules = format!(
        "{}{}",
        dataplane_tests::rule_yaml("block-name", BLOCKS),
        dataplane_tests::rule_yaml("block-address", &block_cidrs())
    );
    let gw = bench.gateway(Pmd::AfPacket, &rules);
    let topo = &bench.topo;

    // The blocked name: TCP opens, the ClientHello is dropped, the handshake never completes.
    let f = bench.https("blocked.test", BLOCKED_TIMEOUT_S);
    assert_cut_after_connect(&f, "HTTPS to blocked.test");
    let (done, out) = s_client(topo, "blocked.test", &bench.pki, BLOCKED_TIMEOUT_S);
    // (curl above saw the TCP connection open; s_client, killed by `timeout`, loses its
    // buffered output.)
    assert!(!done && !out.contains("Server certificate"), "s_client to blocked.test got a handshake:\n{out}");
    // The same server under another name passes.
    let f = bench.https("allowed.test", ALLOWED_TIMEOUT_S);
    assert!(f.ok(), "HTTPS to allowed.test: {f:?}");
    let (done, out) = s_client(topo, "allowed.test", &bench.pki, ALLOWED_TIMEOUT_S);
    assert!(done, "s_client to allowed.test:\n{out}");

    // The blocked addresses: neither ping nor TCP; the server's other addresses answer.
    assert_eq!(ping(topo, SERVER_V4_OTHER, 3, BLOCKED_TIMEOUT_S), 0, "ping {SERVER_V4_OTHER}");
    assert_eq!(ping(topo, SERVER_V6_OTHER, 3, BLOCKED_TIMEOUT_S), 0, "ping {SERVER_V6_OTHER}");
    assert_cut_before_connect(&bench.http(SERVER_V4_OTHER, BLOCKED_TIMEOUT_S), 28, "HTTP to the blocked IPv4 address");
    assert_cut_before_connect(
        &bench.http(&format!("[{SERVER_V6_OTHER}]"), BLOCKED_TIMEOUT_S),
        7,
        "HTTP to the blocked IPv6 address",
    );
    assert_eq!(ping(topo, SERVER_V4, 3, ALLOWED_TIMEOUT_S), 3, "ping {SERVER_V4}");
    assert_eq!(ping(topo, SERVER_V6, 3, ALLOWED_TIMEOUT_S), 3, "ping {SERVER_V6}");
    assert!(bench.http(SERVER_V4, ALLOWED_TIMEOUT_S).ok());

    // It was the rules that cut them.
    assert!(rule_packets(&gw, "block-name") > 0, "block-name decided no packet");
    assert!(rule_packets(&gw, "block-address") > 0, "block-address decided no packet");
    let stats = stop_clean(gw);
    assert!(stat(&stats, "drops", "policy") > 0, "{stats}");
}

#[test]
fn af_packet_rules_applied_through_the_api_take_effect_and_are_taken_back() {
    let test = "af_packet_rules_applied_through_the_api_take_effect_and_are_taken_back";
    let Some(bench) = Bench::new(test, "c") else { return };
    let gw = bench.gateway(Pmd::AfPacket, "");
    let topo = &bench.topo;

    // Generation 1, no rules: the name and the address both pass.
    assert!(bench.https("shop.test", ALLOWED_TIMEOUT_S).ok());
    assert_eq!(ping(topo, SERVER_V4_OTHER, 2, ALLOWED_TIMEOUT_S), 2);

    // Two rules added through the API; the answer comes once the worker runs them.
    let sni = BLOCKS.replace("blocked.test", "shop.test");
    let body = format!(
        "{}{}",
        dataplane_tests::rule_yaml("api-block-name", &sni),
        dataplane_tests::rule_yaml("api-block-address", &block_cidrs())
    );
    let (code, answer) = gw.api("POST", "/v1/rules", Some(&body));
    assert_eq!(code, 200, "{answer}");
    assert_eq!((json(&answer)["generation"].as_u64(), json(&answer)["rules"].as_u64()), (Some(2), Some(2)), "{answer}");
    assert_cut_after_connect(&bench.https("shop.test", BLOCKED_TIMEOUT_S), "HTTPS to shop.test after the apply");
    assert!(bench.https("allowed.test", ALLOWED_TIMEOUT_S).ok(), "another name still passes");
    assert_eq!(ping(topo, SERVER_V4_OTHER, 3, BLOCKED_TIMEOUT_S), 0, "ping {SERVER_V4_OTHER} after the apply");
    assert_cut_before_connect(&bench.http(SERVER_V4_OTHER, BLOCKED_TIMEOUT_S), 28, "HTTP to the blocked address");
    assert!(rule_packets(&gw, "api-block-name") > 0 && rule_packets(&gw, "api-block-address") > 0);

    // Taken back, one at a time: each thing passes again once its rule is gone.
    let (code, answer) = gw.api("DELETE", "/v1/rules/api-block-name", None);
    assert_eq!((code, json(&answer)["generation"].as_u64()), (200, Some(3)), "{answer}");
    let f = bench.https("shop.test", ALLOWED_TIMEOUT_S);
    assert!(f.ok(), "HTTPS to shop.test after the delete: {f:?}");
    assert_eq!(ping(topo, SERVER_V4_OTHER, 3, BLOCKED_TIMEOUT_S), 0, "the address rule is still there");
    let (code, answer) = gw.api("DELETE", "/v1/rules/api-block-address", None);
    assert_eq!((code, json(&answer)["generation"].as_u64()), (200, Some(4)), "{answer}");
    assert_eq!(ping(topo, SERVER_V4_OTHER, 3, ALLOWED_TIMEOUT_S), 3, "ping {SERVER_V4_OTHER} after the delete");
    assert!(bench.http(SERVER_V4_OTHER, ALLOWED_TIMEOUT_S).ok());
    let (_, now) = gw.api("GET", "/v1/rules", None);
    assert_eq!(json(&now)["rules"].as_array().map(Vec::len), Some(0), "{now}");

    let stats = stop_clean(gw);
    assert!(stat(&stats, "drops", "policy") > 0, "{stats}");
    assert_eq!(stat(&stats, "", "generation"), 4, "{stats}");
}
