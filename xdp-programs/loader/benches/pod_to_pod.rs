//! Pod-to-pod throughput in network namespaces (`cargo bench -p alkaid-xdp --bench
//! pod_to_pod`; root). Side by side in one run, on the same lab topology (droplets are
//! netns on a bridge, pods are netns behind a veth, see `tests/netns/lab.rs`):
//!
//! - `xdp_native`, `xdp_generic`: our XDP data path (`agent` + `transit`; pods with tx checksum
//!   offload off, xdp-on-veth rule 5);
//! - `tc`: our TC endpoint path (`agent_tc` + `transit_tc`; pods keep their offloads);
//! - `tc_behind_xdp`: `tc` with XDP `transit` (generic) in front of `transit_tc` on the
//!   underlay NIC, handing it the local deliveries (`CONFIG_F_TC_DECAP`);
//! - `vxlan`: the kernel's VXLAN device (this kernel has no Geneve module; 50 bytes of overhead
//!   against our 58), pod veth and vxlan in a bridge on each droplet;
//! - `underlay`: droplet to droplet without a tunnel, the limit.
//!
//! Ours goes through three droplets (D3 is the subnet's bouncer); a warm-up ping learns the
//! direct path first, so measured traffic goes D1 -> D2. Per setup and round: TCP single-stream
//! throughput (iperf3, 3 s), 64-byte UDP packets/s received (iperf3 -u -l 64 -b 0, 3 s), and
//! TCP request/response latency (1-byte ping-pong over one connection with TCP_NODELAY, in
//! this process, 2000 round trips or 3 s; its threads are left to the scheduler, see below).
//! Figures are medians of `POD_TO_POD_ROUNDS` rounds (default 7), rounds interleaved across
//! setups so background load hits them alike. Ratios against `vxlan` are paired: each round's
//! figure over VXLAN's in the same round (seconds apart), then the median of those, with
//! their range; on these noisy machines that is steadier than a ratio of two medians taken
//! minutes apart. Prints `BENCH` lines. `POD_TO_POD_SETUPS=tc,vxlan` measures only the setups
//! named, `POD_TO_POD_METRICS=udp64` only the figures named (`tcp`, `udp64`, `tcp_rr`).

#[path = "../tests/netns/lab.rs"]
#[allow(dead_code, reason = "shared with the netns tests")]
mod lab;
#[path = "../tests/netns/overlay.rs"]
#[allow(dead_code, reason = "shared with the netns tests")]
mod overlay;
#[path = "../tests/netns/traffic.rs"]
#[allow(dead_code, reason = "shared with the netns tests")]
mod traffic;

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alkaid_xdp::Programs;
use lab::{Droplet, Lab, Pod, ip};
use overlay::Variant;

const DEFAULT_ROUNDS: usize = 7;
/// (name, unit, decimals) of each figure, in the order measured.
const METRICS: [(&str, &str, usize); 3] = [
    ("tcp", "Gbit/s", 2),
    ("udp64", "pps", 0),
    ("tcp_rr", "us", 1),
];
/// iperf3 client and server pinned to different CPUs, the same for every setup (a sender
/// wandering between CPUs was the largest source of run-to-run spread).
/// The request/response threads are not pinned: pinned apart, every round trip became two
/// cross-CPU wakeups (IPIs, VM exits here) and measured 72-94 us for every setup alike,
/// against 7-15 us left to the scheduler, which wakes the partner on the same CPU.
const CLIENT_CPU: usize = 1;
const SERVER_CPU: usize = 0;
const SECONDS: &str = "3";
const VNI: u32 = 100;
const SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 0, 1, 0), 24);
const IP_X: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
const IP_Y: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 9);
const GW: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);

/// A client netns, a server netns and the server's address.
struct Setup {
    name: &'static str,
    client: String,
    server: String,
    dst: Ipv4Addr,
}

/// Our data plane: three droplets, x on D1, y on D2, D3 the bouncer.
fn ours(tag: &str, v: Variant) -> (Lab, Vec<Programs>, Pod, Pod) {
    let mut lab = Lab::new(tag);
    let d: Vec<Droplet> = (1..=3).map(|n| lab.droplet(n)).collect();
    let x = lab.pod(&d[0], "x", IP_X, GW, overlay::POD_MTU);
    let y = lab.pod(&d[1], "y", IP_Y, GW, overlay::POD_MTU);
    let mut progs: Vec<Programs> = d
        .iter()
        .enumerate()
        .map(|(i, dr)| {
            let dv = if i == 2 && v.tc_endpoints() {
                Variant::XdpGeneric
            } else {
                v
            };
            overlay::droplet(&lab, dr, &d, dv)
        })
        .collect();
    for p in progs.iter_mut() {
        overlay::network(p, VNI, SUBNET, &[&d[2]]);
    }
    overlay::pod(&mut progs[0], &d[0], &x, VNI, SUBNET, v);
    overlay::pod(&mut progs[1], &d[1], &y, VNI, SUBNET, v);
    overlay::directory(&mut progs[2], VNI, &x, &d[0]);
    overlay::directory(&mut progs[2], VNI, &y, &d[1]);
    assert!(traffic::ping(&x.ns, IP_Y, 3) >= 2, "{v:?}: warm-up ping");
    (lab, progs, x, y)
}

/// The kernel's VXLAN: on each droplet a bridge joins the pod's host veth and a vxlan device
/// pointing at the other droplet.
fn vxlan(tag: &str) -> (Lab, Vec<Droplet>, Pod, Pod) {
    let mut lab = Lab::new(tag);
    let d: Vec<Droplet> = (1..=2).map(|n| lab.droplet(n)).collect();
    let mtu = 1500 - 50;
    let x = lab.pod(&d[0], "x", IP_X, GW, mtu);
    let y = lab.pod(&d[1], "y", IP_Y, GW, mtu);
    for (me, other, pod) in [(&d[0], &d[1], &x), (&d[1], &d[0], &y)] {
        let ns = me.ns.as_str();
        ip(&[
            "-n",
            ns,
            "link",
            "add",
            "vx0",
            "type",
            "vxlan",
            "id",
            "42",
            "local",
            &me.ip.to_string(),
            "remote",
            &other.ip.to_string(),
            "dstport",
            "4789",
            "dev",
            "eth0",
        ]);
        ip(&["-n", ns, "link", "add", "brv", "type", "bridge"]);
        for dev in ["vx0", pod.host.as_str()] {
            ip(&["-n", ns, "link", "set", dev, "master", "brv"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        ip(&["-n", ns, "link", "set", "brv", "up"]);
    }
    assert!(traffic::ping(&x.ns, IP_Y, 3) >= 2, "vxlan warm-up ping");
    (lab, d, x, y)
}

/// `iperf3 -s -1` in `ns`; killed on drop if still running.
struct Server(Child);

impl Server {
    fn start(ns: &str, port: u16) -> Self {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "iperf3",
                "-s",
                "-1",
                "-A",
                &SERVER_CPU.to_string(),
                "-p",
            ])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("iperf3 server (scripts/setup.sh installs iperf3)");
        let server = Self(child);
        assert!(
            listening(ns, port, Duration::from_secs(5)),
            "iperf3 -s in {ns} not listening on {port} within 5 s"
        );
        server
    }
}

/// Waits until a TCP socket in `ns` listens on `port` (iperf3 binds `::`, so tcp6 too), on a
/// thread of its own: it enters `ns`, where `/proc/thread-self/net` lists that namespace's
/// sockets.
fn listening(ns: &str, port: u16, within: Duration) -> bool {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        let _in = lab::InNetns::enter(&ns);
        let deadline = Instant::now() + within;
        while !["tcp", "tcp6"].iter().any(|t| lists_listener(t, port)) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    })
    .join()
    .unwrap_or(false)
}

/// Whether `/proc/thread-self/net/<table>` has a socket in LISTEN (state `0A`) on `port`.
fn lists_listener(table: &str, port: u16) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/thread-self/net/{table}")) else {
        return false;
    };
    let suffix = format!(":{port:04X}");
    text.lines().skip(1).any(|line| {
        // sl local_address rem_address st ...
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.len() > 3 && cols[1].ends_with(&suffix) && cols[3] == "0A"
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs an iperf3 client and returns its JSON `end` section as text.
fn iperf(s: &Setup, port: u16, extra: &[&str]) -> Option<String> {
    let _srv = Server::start(&s.server, port);
    let cpu = CLIENT_CPU.to_string();
    let mut args = vec![
        "15", "ip", "netns", "exec", &s.client, "iperf3", "-J", "-A", &cpu, "-t", SECONDS, "-c",
    ];
    let dst = s.dst.to_string();
    let port = port.to_string();
    args.extend_from_slice(&[&dst, "-p", &port]);
    args.extend_from_slice(extra);
    let out = Command::new("timeout").args(&args).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The number after `"key":` following `section` in iperf3's JSON.
fn json_number(text: &str, section: &str, key: &str) -> Option<f64> {
    let at = text.find(section)?;
    let rest = &text[at..];
    let k = rest.find(&format!("\"{key}\""))?;
    let v = rest[k..].split(':').nth(1)?;
    v.trim()
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .split([',', '\n', '}'])
        .next()?
        .trim()
        .parse()
        .ok()
}

fn tcp_gbps(s: &Setup, port: u16) -> Option<f64> {
    let j = iperf(s, port, &[])?;
    json_number(&j, "\"sum_received\"", "bits_per_second").map(|b| b / 1e9)
}

fn udp_pps(s: &Setup, port: u16) -> Option<f64> {
    let j = iperf(s, port, &["-u", "-l", "64", "-b", "0"])?;
    let packets = json_number(&j, "\"sum_received\"", "packets")
        .or_else(|| json_number(&j, "\"sum\"", "packets"))?;
    let lost = json_number(&j, "\"sum_received\"", "lost_packets").unwrap_or(0.0);
    let secs = json_number(&j, "\"sum_received\"", "seconds")?;
    Some((packets - lost) / secs)
}

/// Median microseconds of 1-byte TCP round trips (bounded: 2000 trips or 3 s).
fn tcp_rr_us(s: &Setup, port: u16) -> Option<f64> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server_ns = s.server.clone();
    let server = std::thread::spawn(move || {
        let _ns = lab::InNetns::enter(&server_ns);
        let l = TcpListener::bind(("0.0.0.0", port)).expect("bind rr");
        ready_tx.send(()).unwrap();
        l.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut conn = loop {
            match l.accept() {
                Ok((c, _)) => break c,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return,
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_nodelay(true).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 1];
        while let Ok(1) = conn.read(&mut b) {
            if conn.write_all(&b).is_err() {
                break;
            }
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).ok()?;
    let (client_ns, dst) = (s.client.clone(), s.dst);
    let client = std::thread::spawn(move || {
        let _ns = lab::InNetns::enter(&client_ns);
        let mut samples = Vec::new();
        let Ok(mut c) = TcpStream::connect_timeout(&(dst, port).into(), Duration::from_secs(3))
        else {
            return samples;
        };
        c.set_nodelay(true).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let start = Instant::now();
        let mut b = [7u8; 1];
        while samples.len() < 2000 && start.elapsed() < Duration::from_secs(3) {
            let t = Instant::now();
            if c.write_all(&b).is_err() || c.read_exact(&mut b).is_err() {
                break;
            }
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
        samples
    });
    let samples = client.join().unwrap_or_default();
    let _ = server.join();
    median(samples)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

fn main() {
    if !lab::is_root() {
        eprintln!("SKIP: pod_to_pod needs root (netns, CAP_BPF, CAP_NET_ADMIN)");
        return;
    }
    let (_l1, _p1, x1, y1) = ours("bn", Variant::XdpNative);
    let (_l2, _p2, x2, y2) = ours("bg", Variant::XdpGeneric);
    let (_l3, _p3, x3, y3) = ours("bt", Variant::Tc);
    let (_l5, _p5, x5, y5) = ours("bx", Variant::TcBehindXdp);
    let (_l4, d4, x4, y4) = vxlan("bv");
    let setups = [
        Setup {
            name: "xdp_native",
            client: x1.ns,
            server: y1.ns,
            dst: IP_Y,
        },
        Setup {
            name: "xdp_generic",
            client: x2.ns,
            server: y2.ns,
            dst: IP_Y,
        },
        Setup {
            name: "tc",
            client: x3.ns,
            server: y3.ns,
            dst: IP_Y,
        },
        Setup {
            name: "tc_behind_xdp",
            client: x5.ns,
            server: y5.ns,
            dst: IP_Y,
        },
        Setup {
            name: "vxlan",
            client: x4.ns,
            server: y4.ns,
            dst: IP_Y,
        },
        Setup {
            name: "underlay",
            client: d4[0].ns.clone(),
            server: d4[1].ns.clone(),
            dst: d4[1].ip,
        },
    ];
    // POD_TO_POD_SETUPS=tc,vxlan measures only those (every lab is still built).
    let only = std::env::var("POD_TO_POD_SETUPS").ok();
    let setups: Vec<Setup> = setups
        .into_iter()
        .filter(|s| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n == s.name))
        })
        .collect();
    let rounds = std::env::var("POD_TO_POD_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(DEFAULT_ROUNDS);
    // POD_TO_POD_METRICS=udp64 (names as in METRICS, comma-separated) measures only those.
    let only_metrics = std::env::var("POD_TO_POD_METRICS").ok();
    let wanted: Vec<&str> = METRICS
        .iter()
        .map(|m| m.0)
        .filter(|m| {
            only_metrics
                .as_deref()
                .is_none_or(|o| o.split(',').any(|n| n == *m))
        })
        .collect();
    // Per setup, one [TCP Gbit/s, 64-byte UDP pps, TCP RR us] per round; None if a run failed
    // or was not asked for.
    let mut figures: Vec<Vec<[Option<f64>; 3]>> = vec![Vec::new(); setups.len()];
    for round in 0..rounds {
        for (i, s) in setups.iter().enumerate() {
            let port = 5201 + (round * 10 + i) as u16;
            let want = |m: usize| wanted.contains(&METRICS[m].0);
            let f = [
                want(0).then(|| tcp_gbps(s, port)).flatten(),
                want(1).then(|| udp_pps(s, port + 100)).flatten(),
                want(2).then(|| tcp_rr_us(s, port + 200)).flatten(),
            ];
            eprintln!(
                "round {round} {}: tcp {:?} Gbit/s, udp64 {:?} pps, rr {:?} us",
                s.name, f[0], f[1], f[2]
            );
            figures[i].push(f);
        }
    }
    for (i, s) in setups.iter().enumerate() {
        for (m, (metric, unit, digits)) in METRICS.iter().enumerate() {
            if !wanted.contains(metric) {
                continue;
            }
            let v = median(figures[i].iter().filter_map(|f| f[m]).collect());
            let v = v.unwrap_or(f64::NAN);
            println!("BENCH pod_{metric}_{} {v:.digits$} {unit}", s.name);
        }
    }
    let Some(vx) = setups.iter().position(|s| s.name == "vxlan") else {
        return;
    };
    for (i, s) in setups.iter().enumerate() {
        if i == vx {
            continue;
        }
        for (m, (metric, _, _)) in METRICS.iter().enumerate() {
            if !wanted.contains(metric) {
                continue;
            }
            // Paired: this setup's round over VXLAN's same round.
            let ratios: Vec<f64> = figures[i]
                .iter()
                .zip(&figures[vx])
                .filter_map(|(a, b)| Some(a[m]? / b[m]?))
                .collect();
            let lo = ratios.iter().copied().fold(f64::NAN, f64::min);
            let hi = ratios.iter().copied().fold(f64::NAN, f64::max);
            let med = median(ratios).unwrap_or(f64::NAN);
            let name = format!("pod_{metric}_{}_vs_vxlan", s.name);
            println!("BENCH {name} {med:.2} ratio");
            println!("BENCH {name}_min {lo:.2} ratio");
            println!("BENCH {name}_max {hi:.2} ratio");
        }
    }
}
