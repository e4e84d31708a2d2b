//! Cases that change the cluster under traffic: scaling, deletes, faults.

use std::time::{Duration, Instant};

use crate::harness::{Lab, lab_or_skip, rows_with, vpc_yaml, wait_for};

fn ip(p: &serde_json::Value) -> String {
    p["ip"].as_str().expect("pod ip").to_string()
}

fn vni(lab: &Lab, vpc: &str) -> u64 {
    wait_for("the VPC's vni", Duration::from_secs(20), || {
        lab.get("vpc", vpc)["status"]["vni"]
            .as_u64()
            .filter(|v| *v != 0)
    })
}

/// A long TCP transfer in the background: (`alkaid lab probe bulk`) child, checked on join.
fn bulk(lab: &Lab, from: &str, to_ip: &str, bytes: u64) -> std::process::Child {
    std::process::Command::new(crate::harness::alkaid_bin())
        .args([
            "--lab", &lab.name, "lab", "probe", "--from", from, "bulk", to_ip,
        ])
        .args(["--bytes", &bytes.to_string(), "--timeout-ms", "20000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting the transfer")
}

fn finish(child: std::process::Child, to: &str) {
    let out = child.wait_with_output().expect("transfer");
    let s = crate::harness::text(&out);
    assert!(
        out.status.success() && s.starts_with(to) && s.trim().ends_with("match"),
        "transfer failed: {s}"
    );
}

/// Bouncers and dividers scaled out and back in during a long TCP transfer: it completes
/// and its checksum matches.
#[test]
fn scale_bouncers_and_dividers_during_a_long_transfer() {
    let lab = lab_or_skip!("scale", 4);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.5.0.0/16",
        1,
        &[("a", "10.5.1.0/24", 1), ("b", "10.5.2.0/24", 1)],
    ));
    let x = lab.pod("x", "d1", "blue", "a");
    let y = lab.pod("y", "d2", "blue", "b");
    lab.assert_pair(("x", &ip(&x)), ("y", &ip(&y)));
    let t = bulk(&lab, "x", &ip(&y), 400 << 20);
    for (bouncers, dividers) in [(3, 2), (1, 1), (2, 3), (1, 1)] {
        lab.apply_ok(&vpc_yaml(
            "blue",
            "10.5.0.0/16",
            dividers,
            &[
                ("a", "10.5.1.0/24", bouncers),
                ("b", "10.5.2.0/24", bouncers),
            ],
        ));
        std::thread::sleep(Duration::from_millis(500));
    }
    finish(t, "y");
    lab.assert_pair(("x", &ip(&x)), ("y", &ip(&y)));
}

/// Delete and recreate an endpoint: the old address stops answering, no droplet holds a row
/// for it, and the recreated pod (same IP) answers with its new name.
#[test]
fn delete_and_recreate_an_endpoint() {
    let lab = lab_or_skip!("recreate", 3);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.6.0.0/16",
        1,
        &[("a", "10.6.1.0/24", 1)],
    ));
    let v = vni(&lab, "blue");
    let s = lab.pod("s", "d1", "blue", "a");
    let old = lab.pod("old", "d2", "blue", "a");
    lab.assert_pair(("s", &ip(&s)), ("old", &ip(&old)));
    lab.ok(&["lab", "pod", "del", "old"]);
    // The old address no longer answers. Sending to it is also what clears a learned direct
    // path on the sender's droplet: the old droplet bounces the packet back as STALE and the
    // sender's transit deletes the row (xdp-programs/README.md, "Direct-path invalidation").
    assert!(
        lab.probe("s", "tcp", &ip(&old)).is_err(),
        "the deleted endpoint's address still answers"
    );
    wait_for(
        "every row of the deleted endpoint gone",
        Duration::from_secs(20),
        || {
            let _ = lab.ping("s", &ip(&old));
            let r = rows_with(&lab, v, Some(&ip(&old)));
            if !r.is_empty() {
                eprintln!("still there: {r:?}");
            }
            r.is_empty().then_some(())
        },
    );
    assert!(
        lab.probe("s", "tcp", &ip(&old)).is_err(),
        "the deleted endpoint's address still answers"
    );
    let new = lab.pod_at("new", "d3", "blue", "a", Some(&ip(&old)));
    assert_eq!(ip(&new), ip(&old));
    lab.assert_pair(("s", &ip(&s)), ("new", &ip(&new)));
}

/// Deleting a subnet and then its VPC removes every row they caused from every droplet.
#[test]
fn delete_subnet_and_vpc_removes_every_row() {
    let lab = lab_or_skip!("delete", 3);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.7.0.0/16",
        1,
        &[("a", "10.7.1.0/24", 2)],
    ));
    let v = vni(&lab, "blue");
    let p = lab.pod("p", "d1", "blue", "a");
    let q = lab.pod("q", "d2", "blue", "a");
    lab.assert_pair(("p", &ip(&p)), ("q", &ip(&q)));
    assert!(!rows_with(&lab, v, None).is_empty());
    lab.ok(&["lab", "pod", "del", "p"]);
    lab.ok(&["lab", "pod", "del", "q"]);
    lab.ok(&["delete", "subnet", "a"]);
    lab.ok(&["delete", "vpc", "blue"]);
    wait_for(
        "every row of the VPC gone from every droplet",
        Duration::from_secs(20),
        || rows_with(&lab, v, None).is_empty().then_some(()),
    );
    assert!(lab.run(&["get", "vpc", "blue"]).status.code() != Some(0));
}

/// Stop the droplet that holds the subnet's bouncer: the role is re-placed and traffic
/// between pods on other droplets recovers within 30 s (heartbeat timeout 3 s + placement +
/// programming).
#[test]
fn stop_a_bouncers_droplet_and_recover() {
    let lab = lab_or_skip!("bouncerfail", 4);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.8.0.0/16",
        1,
        &[("a", "10.8.1.0/24", 1)],
    ));
    let b = wait_for("a bouncer", Duration::from_secs(20), || {
        lab.get("subnet", "a")["status"]["bouncers"][0]
            .as_str()
            .map(String::from)
    });
    let hosts: Vec<String> = lab.droplets().into_iter().filter(|d| *d != b).collect();
    let x = lab.pod("x", &hosts[0], "blue", "a");
    let y = lab.pod("y", &hosts[1], "blue", "a");
    lab.assert_pair(("x", &ip(&x)), ("y", &ip(&y)));
    lab.ok(&["lab", "droplet", "stop", &b]);
    let start = Instant::now();
    let nb = wait_for("the bouncer re-placed", Duration::from_secs(30), || {
        lab.get("subnet", "a")["status"]["bouncers"][0]
            .as_str()
            .filter(|n| *n != b)
            .map(String::from)
    });
    // New flows (a fresh pod has no direct paths) must go through the new bouncer.
    let z = lab.pod("z", &hosts[2], "blue", "a");
    wait_for(
        "traffic through the new bouncer",
        Duration::from_secs(30),
        || (lab.probe("z", "tcp", &ip(&x)).ok().as_deref() == Some("x")).then_some(()),
    );
    eprintln!("bouncer {b} -> {nb}; recovered in {:?}", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(30));
    lab.assert_pair(("z", &ip(&z)), ("y", &ip(&y)));
    lab.ok(&["lab", "droplet", "start", &b]);
}

/// A droplet that stops cannot bounce stale direct paths back, so the control plane fences
/// it: every droplet that learned a direct path to it drops the path (instead of tunnelling
/// into the void until the LRU evicts it), and the fence goes when the droplet returns.
#[test]
fn a_stopped_droplet_is_fenced_and_senders_drop_their_paths_to_it() {
    let lab = lab_or_skip!("fence", 3);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.9.0.0/16",
        1,
        &[("a", "10.9.1.0/24", 1)],
    ));
    let v = vni(&lab, "blue");
    let b = wait_for("a bouncer", Duration::from_secs(20), || {
        lab.get("subnet", "a")["status"]["bouncers"][0]
            .as_str()
            .map(String::from)
    });
    let hosts: Vec<String> = lab.droplets().into_iter().filter(|d| *d != b).collect();
    let (sender, gone) = (&hosts[0], &hosts[1]);
    let gone_ip = lab.get("droplet", gone)["spec"]["ip"]
        .as_str()
        .expect("droplet ip")
        .to_string();
    let x = lab.pod("x", sender, "blue", "a");
    let y = lab.pod("y", gone, "blue", "a");
    lab.assert_pair(("x", &ip(&x)), ("y", &ip(&y)));
    // The replies taught the sender's droplet a direct path to y's droplet.
    let paths_to_gone = || {
        lab.tables(sender)["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                r["map"] == "DIRECT_PATH"
                    && r["vni"].as_u64() == Some(v)
                    && r["dropletIp"].as_str() == Some(gone_ip.as_str())
            })
            .count()
    };
    wait_for(
        "a direct path to y's droplet",
        Duration::from_secs(10),
        || {
            let _ = lab.ping("x", &ip(&y));
            (paths_to_gone() > 0).then_some(())
        },
    );
    lab.ok(&["lab", "droplet", "stop", gone]);
    let start = Instant::now();
    wait_for(
        "the sender's direct paths to the stopped droplet dropped",
        Duration::from_secs(30),
        || (paths_to_gone() == 0).then_some(()),
    );
    eprintln!(
        "paths to {gone} dropped {:?} after the stop",
        start.elapsed()
    );
    lab.ok(&["lab", "droplet", "start", gone]);
    wait_for("the droplet Ready again", Duration::from_secs(30), || {
        (lab.get("droplet", gone)["status"]["phase"] == "Ready").then_some(())
    });
    lab.assert_pair(("x", &ip(&x)), ("y", &ip(&y)));
}

/// Pods running a tunnel of their own (VXLAN between two pods, as a nested cluster or an
/// overlay inside a pod would): ping, TCP, UDP and a checksummed bulk transfer through it. The
/// pods' frames arrive at the agent already marked encapsulated (the TC encapsulation then
/// adds its room without describing a tunnel in a tunnel) and their kernels segment the
/// tunnel's TCP themselves (the agent turns tunnel segmentation off on pods).
#[test]
fn a_pods_own_tunnel_carries_its_traffic() {
    let lab = lab_or_skip!("nested", 3);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.10.0.0/16",
        1,
        &[("a", "10.10.1.0/24", 1)],
    ));
    let x = lab.pod("x", "d1", "blue", "a");
    let y = lab.pod("y", "d2", "blue", "a");
    for (pod, remote, inner) in [
        ("x", ip(&y), "172.31.0.1/24"),
        ("y", ip(&x), "172.31.0.2/24"),
    ] {
        let vxlan =
            format!("ip link add vx0 type vxlan id 7 remote {remote} dstport 4789 dev eth0");
        let addr = format!("ip addr add {inner} dev vx0");
        for cmd in [vxlan.as_str(), &addr, "ip link set vx0 up"] {
            let mut args = vec!["lab", "exec", pod, "--"];
            args.extend(cmd.split(' '));
            lab.ok(&args);
        }
    }
    lab.assert_pair(("x", "172.31.0.1"), ("y", "172.31.0.2"));
    finish(bulk(&lab, "x", "172.31.0.2", 64 << 20), "y");
}

/// Stop the operator leader: pods created afterwards work, and the stopped operator, started
/// again, gets its ports back (they lie outside the kernel's ephemeral range, so no outgoing
/// connection took one meanwhile) and runs.
#[test]
fn stop_the_operator_leader_new_pods_work() {
    let lab = lab_or_skip!("leader", 2);
    let (lo, hi) = ephemeral_range();
    for o in lab.json(&["lab", "status"])["operators"]
        .as_array()
        .expect("operators")
    {
        for addr in [&o["raft"], &o["control"]] {
            let port: u16 = addr
                .as_str()
                .and_then(|a| a.rsplit(':').next()?.parse().ok())
                .expect("ip:port");
            assert!(
                !(lo..=hi).contains(&port),
                "operator {} listens on {addr}, inside the ephemeral range {lo}-{hi}",
                o["id"]
            );
        }
    }
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.9.0.0/16",
        1,
        &[("a", "10.9.1.0/24", 1)],
    ));
    let leader = lab.json(&["lab", "status"])["leader"]
        .as_u64()
        .expect("a leader");
    lab.ok(&["lab", "operator", "stop", &leader.to_string()]);
    wait_for("a new leader", Duration::from_secs(20), || {
        lab.json(&["lab", "status"])["leader"]
            .as_u64()
            .filter(|l| *l != 0 && *l != leader)
    });
    // One pod on the bouncer's droplet.
    let b = wait_for("a bouncer", Duration::from_secs(20), || {
        lab.get("subnet", "a")["status"]["bouncers"][0]
            .as_str()
            .map(String::from)
    });
    let other = if b == "d1" { "d2" } else { "d1" };
    let p = lab.pod("p", &b, "blue", "a");
    let q = lab.pod("q", other, "blue", "a");
    lab.assert_pair(("p", &ip(&p)), ("q", &ip(&q)));
    lab.ok(&["lab", "operator", "start", &leader.to_string()]);
    wait_for(
        "the restarted operator listening on its ports",
        Duration::from_secs(20),
        || {
            let s = lab.json(&["lab", "status"]);
            let o = s["operators"]
                .as_array()?
                .iter()
                .find(|o| o["id"] == leader)?
                .clone();
            let listening = |addr: &serde_json::Value| {
                let port = addr.as_str()?.rsplit(':').next()?.parse::<u16>().ok()?;
                std::net::TcpStream::connect(("127.0.0.1", port)).ok()
            };
            (o["running"] == true && listening(&o["raft"]).is_some())
                .then(|| listening(&o["control"]))
                .flatten()
        },
    );
}

/// The kernel's ephemeral port range.
fn ephemeral_range() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .expect("ip_local_port_range");
    let mut it = text.split_whitespace().map(|p| p.parse().expect("a port"));
    (it.next().expect("low"), it.next().expect("high"))
}

/// Restart an agent while traffic flows through its droplet: a ping flood spanning the whole
/// restart loses no packet, a transfer in flight completes with a matching checksum, and no
/// probe goes unanswered (pinned programs and maps keep forwarding; the new agent adopts them).
#[test]
fn restart_an_agent_during_traffic_without_loss() {
    const PINGS: u32 = 10_000;
    let lab = lab_or_skip!("agentrestart", 2);
    lab.apply_ok(&vpc_yaml(
        "blue",
        "10.10.0.0/16",
        1,
        &[("a", "10.10.1.0/24", 1)],
    ));
    let p = lab.pod("p", "d1", "blue", "a");
    let q = lab.pod("q", "d2", "blue", "a");
    lab.assert_pair(("p", &ip(&p)), ("q", &ip(&q)));
    let t = bulk(&lab, "p", &ip(&q), 200 << 20);
    // 1,000 echo requests per second for 10 s, each reply awaited up to 2 s at the end.
    let mut flood = std::process::Command::new(crate::harness::alkaid_bin())
        .args(["--lab", &lab.name, "lab", "exec", "p", "--", "ping", "-q"])
        .args(["-i", "0.001", "-c", &PINGS.to_string(), "-W", "2", &ip(&q)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting the ping flood");
    lab.ok(&["lab", "droplet", "restart", "d2"]);
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        assert_eq!(
            lab.probe("p", "udp", &ip(&q)).as_deref(),
            Ok("q"),
            "a probe was lost during the restart"
        );
    }
    wait_for("d2 Ready again", Duration::from_secs(20), || {
        let s = lab.json(&["lab", "status"]);
        s["droplets"]
            .as_array()?
            .iter()
            .any(|d| d["name"] == "d2" && d["phase"] == "Ready")
            .then_some(())
    });
    assert!(
        flood.try_wait().expect("ping flood").is_none(),
        "the flood ended before the restarted agent was back: it proves nothing; raise PINGS"
    );
    let out = flood.wait_with_output().expect("ping flood");
    let stats = crate::harness::text(&out);
    let summary = stats
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary: {stats}"));
    assert!(
        summary.starts_with(&format!("{PINGS} packets transmitted, {PINGS} received")),
        "the flood lost packets across the agent restart: {summary}"
    );
    finish(t, "q");
    lab.assert_pair(("p", &ip(&p)), ("q", &ip(&q)));
}
