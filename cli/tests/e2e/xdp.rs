//! The XDP endpoint hook with real agents (`lab up --endpoint-hook xdp`): XDP `agent` on
//! every pod's host veth with `agent_tc` behind it as its slow path, XDP `transit` (generic)
//! on each droplet's `eth0`. One lab per XDP mode, several checks each:
//! - pods on the same droplet; on two droplets with their subnet's bouncer on a third (after
//!   the first packets the bouncer retargets nothing and both droplets encapsulate every
//!   further ping directly); across subnets through the divider;
//! - generic: two tenants with the same CIDR and pod IPs never reach each other;
//! - native: the lab's `pass` on the bridge-side ports (xdp-on-veth rules 1-2: without it the
//!   pods lose each other, and `lab up` puts it back), the hook kept across `lab droplet
//!   restart` and `stop`/`start`, `lab up` with another hook refused.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Lab, lab_or_skip, text, vpc_yaml, wait_for};

const GENERIC: &[&str] = &["--endpoint-hook", "xdp", "--xdp-mode", "generic"];
const NATIVE: &[&str] = &["--endpoint-hook", "xdp", "--xdp-mode", "native"];

fn ip(p: &Value) -> String {
    p["ip"].as_str().expect("pod ip").to_string()
}

/// XDP with the hook in generic mode.
#[test]
fn xdp_generic_pairs_bouncer_remote_divider_and_tenants() {
    let lab = lab_or_skip!("xdpgeneric", 3, GENERIC);
    let n = paths(&lab, "generic", "10.31");
    two_tenants(&lab, "10.31", &n);
}

/// XDP with the hook in native mode: the lab makes its bridge-side ports accept the frames
/// `agent` redirects into `eth0`.
#[test]
fn xdp_native_pairs_bouncer_remote_divider_and_restarts() {
    let lab = lab_or_skip!("xdpnative", 3, NATIVE);
    let n = paths(&lab, "native", "10.32");

    // Without `pass` on the bridge-side ports, what `agent` redirects into `eth0` is lost
    // (xdp-on-veth rule 1); `lab up` on the lab that is up puts it back.
    let s = lab.json(&["lab", "status"]);
    let pins = std::path::PathBuf::from(s["pins"].as_str().expect("pins"));
    for d in s["droplets"].as_array().expect("droplets") {
        let pin = pins
            .join("underlay")
            .join(format!("pass-{}", d["name"].as_str().unwrap()));
        std::fs::remove_file(&pin).unwrap_or_else(|e| panic!("{}: {e}", pin.display()));
    }
    wait_for("pass detached", Duration::from_secs(10), || {
        ip_link(None)
            .iter()
            .all(|(_, xdp)| xdp.as_deref() != Some("xdp pass"))
            .then_some(())
    });
    assert!(
        !lab.ping(&n.p1.0, &n.p3.1),
        "native XDP frames crossed a bridge-side port without pass"
    );
    let mut again = vec!["lab", "up", "--droplets", "3"];
    again.extend_from_slice(NATIVE);
    lab.ok(&again);
    assert_attached(&lab, "native", 4);
    assert!(lab.ping(&n.p1.0, &n.p3.1), "pass back, ping still lost");

    let refused = lab.run(&["lab", "up", "--droplets", "3", "--endpoint-hook", "tc"]);
    assert!(
        !refused.status.success(),
        "lab up with another hook accepted"
    );
    assert!(
        text(&refused).contains("endpoint hook xdp (native), not tc"),
        "{}",
        text(&refused)
    );

    // The agents' argv carries the hook: a restarted agent, and a droplet stopped and
    // started, attach the same programs in the same mode.
    lab.ok(&["lab", "droplet", "restart", &n.others[0]]);
    lab.ok(&["lab", "droplet", "stop", &n.others[1]]);
    lab.ok(&["lab", "droplet", "start", &n.others[1]]);
    wait_for("every droplet Ready again", Duration::from_secs(30), || {
        let s = lab.json(&["lab", "status"]);
        s["droplets"]
            .as_array()?
            .iter()
            .all(|d| d["phase"] == "Ready" && d["running"] == true)
            .then_some(())
    });
    assert_attached(&lab, "native", 4);
    lab.assert_pair((&n.p1.0, &n.p1.1), (&n.p3.0, &n.p3.1));
    lab.assert_pair((&n.p1.0, &n.p1.1), (&n.q.0, &n.q.1));
}

/// The pods [`paths`] made: (name, ip), and the droplets.
struct Pods {
    p1: (String, String),
    p3: (String, String),
    q: (String, String),
    others: Vec<String>,
}

/// VPC `blue` (`PREFIX.0.0/16`, one divider) with subnets `a` and `b` (one bouncer each);
/// p1, p2 on one droplet that is not a's bouncer, p3 on the other such droplet, q in `b`:
/// every pair answers by name both ways, and p1/p3 go droplet to droplet after the first
/// packets.
fn paths(lab: &Lab, mode: &str, prefix: &str) -> Pods {
    let s = lab.json(&["lab", "status"]);
    assert_eq!(s["endpointHook"], "xdp", "{s}");
    assert_eq!(s["xdpMode"], mode, "{s}");
    let status = lab.ok(&["lab", "status"]);
    assert!(
        status.contains(&format!("endpoint hook xdp ({mode})")),
        "{status}"
    );
    lab.apply_ok(&vpc_yaml(
        "blue",
        &format!("{prefix}.0.0/16"),
        1,
        &[
            ("a", &format!("{prefix}.1.0/24"), 1),
            ("b", &format!("{prefix}.2.0/24"), 1),
        ],
    ));
    let bouncer = wait_for("a bouncer", Duration::from_secs(20), || {
        lab.get("subnet", "a")["status"]["bouncers"][0]
            .as_str()
            .map(String::from)
    });
    let others: Vec<String> = lab
        .droplets()
        .into_iter()
        .filter(|d| *d != bouncer)
        .collect();
    let named = |n: &str, p: &Value| (n.to_string(), ip(p));
    let p1 = named("p1", &lab.pod("p1", &others[0], "blue", "a"));
    let p2 = named("p2", &lab.pod("p2", &others[0], "blue", "a"));
    let p3 = named("p3", &lab.pod("p3", &others[1], "blue", "a"));
    let q = named("q", &lab.pod("q", &others[1], "blue", "b"));
    assert_attached(lab, mode, 4);

    lab.assert_pair((&p1.0, &p1.1), (&p2.0, &p2.1)); // same droplet
    lab.assert_pair((&p1.0, &p1.1), (&p3.0, &p3.1)); // two droplets, bouncer on a third
    lab.assert_direct_after_first_packets(&bouncer, [&others[0], &others[1]], &p1.0, &p3.1);
    lab.assert_pair((&p1.0, &p1.1), (&q.0, &q.1)); // subnet a -> b through the divider
    lab.assert_pair((&p2.0, &p2.1), (&q.0, &q.1));
    Pods { p1, p3, q, others }
}

/// VPC `green` with the same CIDR as `blue` and pods with the same IPs as p1 and p3, on the
/// same droplets: each tenant's pods reach their own, never the other tenant's.
fn two_tenants(lab: &Lab, prefix: &str, n: &Pods) {
    lab.apply_ok(&vpc_yaml(
        "green",
        &format!("{prefix}.0.0/16"),
        1,
        &[("green-a", &format!("{prefix}.1.0/24"), 1)],
    ));
    let mut g = Vec::new();
    for (name, droplet, same_as) in [("g1", &n.others[0], &n.p1), ("g3", &n.others[1], &n.p3)] {
        let p = lab.pod_at(name, droplet, "green", "green-a", Some(&same_as.1));
        assert_eq!(ip(&p), same_as.1);
        g.push((name.to_string(), ip(&p)));
    }
    lab.assert_pair((&g[0].0, &g[0].1), (&g[1].0, &g[1].1));
    let tenant = |pod: &str| {
        if pod.starts_with('g') {
            "green"
        } else {
            "blue"
        }
    };
    for from in [&n.p1.0, &n.p3.0, &g[0].0, &g[1].0] {
        for to_ip in [&n.p1.1, &n.p3.1] {
            for proto in ["tcp", "udp", "http"] {
                let who = lab.probe(from, proto, to_ip).expect("an answer");
                assert_eq!(
                    tenant(&who),
                    tenant(from),
                    "{proto} {from} -> {to_ip} answered by {who}: crossed tenants"
                );
            }
        }
    }
}

/// What `ip -d link` says of the XDP attachments: every pod's host veth runs `agent` in
/// `mode` (`want_pods` of them), every droplet's `eth0` runs `transit` in generic mode, and
/// the bridge-side ports run the lab's `pass` natively in native mode only. Tests may shell
/// out to `ip` (the lab itself never does).
fn assert_attached(lab: &Lab, mode: &str, want_pods: usize) {
    let s = lab.json(&["lab", "status"]);
    let mut pods = 0;
    for d in s["droplets"].as_array().expect("droplets") {
        let ns = d["netns"].as_str().expect("netns").rsplit('/').next();
        let links = ip_link(Some(ns.expect("netns name")));
        for (name, xdp) in &links {
            if name == "eth0" {
                assert_eq!(
                    xdp.as_deref(),
                    Some("xdpgeneric transit"),
                    "{}: eth0",
                    d["name"]
                );
            } else if name.starts_with("alk") {
                let want = if mode == "native" {
                    "xdp"
                } else {
                    "xdpgeneric"
                };
                assert_eq!(
                    xdp.as_deref(),
                    Some(format!("{want} agent").as_str()),
                    "{}: pod veth {name}",
                    d["name"]
                );
                pods += 1;
            }
        }
        let port = d["hostVeth"].as_str().expect("hostVeth");
        let root = ip_link(None);
        let (_, xdp) = root
            .iter()
            .find(|(n, _)| n == port)
            .unwrap_or_else(|| panic!("bridge port {port} missing"));
        let want = (mode == "native").then_some("xdp pass");
        assert_eq!(xdp.as_deref(), want, "bridge port {port}");
        assert_eq!(d["bridgePortPass"], mode == "native", "{d}");
    }
    assert_eq!(pods, want_pods, "pod veths with XDP agent");
}

/// (link name, "MODE PROGRAM" of its XDP attachment) for every link in `netns` (None: ours).
fn ip_link(netns: Option<&str>) -> Vec<(String, Option<String>)> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    let out = cmd
        .args(["-d", "-j", "link", "show"])
        .output()
        .expect("running ip");
    assert!(out.status.success(), "ip link: {}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("ip -j output");
    v.as_array()
        .expect("links")
        .iter()
        .map(|l| {
            let name = l["ifname"].as_str().unwrap_or_default().to_string();
            let xdp = l.get("xdp").map(|x| {
                let mode = match x["mode"].as_u64() {
                    Some(1) => "xdp",
                    Some(2) => "xdpgeneric",
                    Some(3) => "xdpoffload",
                    _ => "xdpmulti",
                };
                format!("{mode} {}", x["prog"]["name"].as_str().unwrap_or("?"))
            });
            (name, xdp)
        })
        .collect()
}
