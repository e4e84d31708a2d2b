//! End-to-end suite: the real `alkaid`, `alkaid-operator`, `alkaid-agent` and `alkaid-cni`
//! binaries in a lab per case. Needs root; run serially:
//! `cargo test -p alkaid-cli --test e2e -- --test-threads 1` (scripts/test.sh does).
//!
//! Every reply names the pod that answered (each pod runs `alkaid lab serve`), over ping,
//! TCP, UDP and HTTP, in both directions.

mod harness;
mod lifecycle;
mod xdp;

use std::time::Duration;

use harness::{lab_or_skip, vpc_yaml, wait_for};
use serde_json::Value;

fn ip(p: &Value) -> String {
    p["ip"].as_str().expect("pod ip").to_string()
}

/// Pods on the same droplet, and on different droplets with the subnet's bouncer on the
/// sender's droplet.
#[test]
fn same_droplet_and_bouncer_local() {
    let lab = lab_or_skip!("pairs", 3);
    let (bouncer, others) = one_bouncer(&lab, "10.1");
    let a = lab.pod("a", &bouncer, "blue", "blue-a");
    let b = lab.pod("b", &bouncer, "blue", "blue-a");
    let c = lab.pod("c", &others[0], "blue", "blue-a");
    lab.assert_pair(("a", &ip(&a)), ("b", &ip(&b))); // same droplet
    lab.assert_pair(("a", &ip(&a)), ("c", &ip(&c))); // different droplets, bouncer local to a
}

/// Pods on two droplets, the subnet's bouncer on a third. After the first packets the pair
/// talks droplet to droplet: the bouncer retargets nothing more while both droplets
/// encapsulate every further packet straight to the other (their counters prove it), though
/// only the bouncer was given either droplet's underlay MAC.
#[test]
fn different_droplets_bouncer_remote() {
    let lab = lab_or_skip!("remote", 3);
    let (bouncer, others) = one_bouncer(&lab, "10.11");
    let c = lab.pod("c", &others[0], "blue", "blue-a");
    let d = lab.pod("d", &others[1], "blue", "blue-a");
    lab.assert_pair(("c", &ip(&c)), ("d", &ip(&d)));

    lab.assert_direct_after_first_packets(&bouncer, [&others[0], &others[1]], "c", &ip(&d));
}

/// VPC `blue` with one one-bouncer subnet in `PREFIX.0.0/16`: (bouncer, other droplets).
fn one_bouncer(lab: &harness::Lab, prefix: &str) -> (String, Vec<String>) {
    lab.apply_ok(&vpc_yaml(
        "blue",
        &format!("{prefix}.0.0/16"),
        1,
        &[("blue-a", &format!("{prefix}.1.0/24"), 1)],
    ));
    let bouncer = wait_for("a bouncer", Duration::from_secs(20), || {
        lab.get("subnet", "blue-a")["status"]["bouncers"][0]
            .as_str()
            .map(String::from)
    });
    let others = lab
        .droplets()
        .into_iter()
        .filter(|d| *d != bouncer)
        .collect();
    (bouncer, others)
}

/// A subnet with three bouncers: every pair still answers by name.
#[test]
fn several_bouncers() {
    let lab = lab_or_skip!("bouncers", 4);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.2.0.0/16",
        1,
        &[("blue-a", "10.2.1.0/24", 3)],
    ));
    wait_for("3 bouncers", Duration::from_secs(20), || {
        (lab.get("subnet", "blue-a")["status"]["bouncers"]
            .as_array()
            .map_or(0, Vec::len)
            == 3)
            .then_some(())
    });
    let pods: Vec<(String, String)> = (1..=4)
        .map(|i| {
            let n = format!("p{i}");
            let p = lab.pod(&n, &format!("d{i}"), "blue", "blue-a");
            (n, ip(&p))
        })
        .collect();
    for i in 0..pods.len() {
        for j in i + 1..pods.len() {
            lab.assert_pair((&pods[i].0, &pods[i].1), (&pods[j].0, &pods[j].1));
        }
    }
}

/// Two subnets of one VPC: traffic between them goes through the VPC's divider.
#[test]
fn different_subnets_through_a_divider() {
    let lab = lab_or_skip!("divider", 3);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.3.0.0/16",
        1,
        &[("web", "10.3.1.0/24", 1), ("db", "10.3.2.0/24", 1)],
    ));
    let w = lab.pod("w", "d1", "blue", "web");
    let d = lab.pod("db", "d2", "blue", "db");
    lab.assert_pair(("w", &ip(&w)), ("db", &ip(&d)));
}

/// Two subnets of one VPC, from a droplet that is neither a bouncer nor the divider.
#[test]
fn different_subnets_through_a_divider_from_a_third_droplet() {
    let lab = lab_or_skip!("divider3", 3);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.3.0.0/16",
        1,
        &[("web", "10.3.1.0/24", 1), ("db", "10.3.2.0/24", 1)],
    ));
    let d = lab.pod("db", "d2", "blue", "db");
    let w3 = lab.pod("w3", "d3", "blue", "web");
    lab.assert_pair(("w3", &ip(&w3)), ("db", &ip(&d)));
}

/// Two tenants with identical CIDRs and identical pod IPs: each reaches its own, never the
/// other's.
#[test]
fn two_tenants_identical_cidrs_and_ips() {
    let lab = lab_or_skip!("tenants", 2);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.0.0.0/16",
        1,
        &[("blue-a", "10.0.1.0/24", 1)],
    ));
    lab.apply_ok(&vpc_yaml(
        "green",
        "10.0.0.0/16",
        1,
        &[("green-a", "10.0.1.0/24", 1)],
    ));
    let mut pods = Vec::new();
    for t in ["blue", "green"] {
        for i in 1..=2 {
            let n = format!("{t}-{i}");
            let p = lab.pod(&n, &format!("d{i}"), t, &format!("{t}-a"));
            pods.push((n, ip(&p)));
        }
    }
    assert_eq!(pods[0].1, pods[2].1, "the tenants' first pods share an IP");
    assert_eq!(pods[1].1, pods[3].1, "the tenants' second pods share an IP");
    lab.assert_pair((&pods[0].0, &pods[0].1), (&pods[1].0, &pods[1].1));
    lab.assert_pair((&pods[2].0, &pods[2].1), (&pods[3].0, &pods[3].1));
    for (from, _) in &pods {
        for (_, to_ip) in &pods {
            for proto in ["tcp", "udp", "http"] {
                let who = lab.probe(from, proto, to_ip).expect("an answer");
                assert_eq!(
                    who.split('-').next(),
                    from.split('-').next(),
                    "{from} reached {who}: crossed tenants"
                );
            }
        }
    }
}

/// Invalid resources are refused with a clear message and change nothing.
#[test]
fn invalid_resources_are_refused_and_change_nothing() {
    let lab = lab_or_skip!("invalid", 1);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.4.0.0/16",
        1,
        &[("a", "10.4.1.0/24", 1)],
    ));
    let before = lab.json(&["get", "subnets"]);
    let cases = [
        (
            vpc_yaml("blue", "10.4.0.0/16", 1, &[("out", "10.9.1.0/24", 1)]),
            "not inside",
        ),
        (
            vpc_yaml("blue", "10.4.0.0/16", 1, &[("overlap", "10.4.1.0/25", 1)]),
            "overlap",
        ),
        (vpc_yaml("bad", "10.4.0.1/33", 1, &[]), "document 1"),
    ];
    for (yaml, want) in &cases {
        let out = lab.apply(yaml);
        let msg = harness::text(&out);
        assert!(!out.status.success(), "accepted:\n{yaml}");
        assert!(
            msg.to_lowercase().contains(want),
            "message should say {want:?}: {msg}"
        );
    }
    let after = lab.json(&["get", "subnets"]);
    let names = |v: &Value| {
        v["items"].as_array().map(|a| {
            a.iter()
                .map(|i| i["metadata"]["name"].clone())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(names(&before), names(&after), "nothing changed");
    assert!(lab.run(&["get", "vpc", "bad"]).status.code() != Some(0));
}
