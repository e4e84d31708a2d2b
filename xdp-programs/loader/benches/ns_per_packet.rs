//! ns per packet for each program path, through BPF_PROG_TEST_RUN (`cargo bench -p alkaid-xdp`).
//! Needs root; prints `BENCH <name> <value> <unit>` lines.
//!
//! Method. Non-live BPF_PROG_TEST_RUN with `repeat = N` runs the program N times over the *same*
//! buffer without restoring it, so a path that rewrites the packet (encap, decap, retarget with
//! its TTL decrement) is on another path from the second repetition on. So each forwarding path
//! is measured as the median kernel-reported duration of single runs (fresh packet each call),
//! minus the harness overhead (the timer's `ktime_get_ns` and bh disable/enable around one run).
//! That overhead is measured on a path that does not modify the packet (transit pass-through):
//! median single-run duration minus its duration with a large repeat count. Both the overhead
//! and the pass-through figure are printed too. Each figure is the median of several rounds.

#[path = "../tests/fixtures/packet.rs"]
#[allow(
    dead_code,
    reason = "shared with the fixture tests, not every builder is used here"
)]
mod packet;

use std::net::Ipv4Addr;

use alkaid_xdp::{
    Maps, Prog, Programs,
    common::{
        AgentEndpoint, Config, ENDPOINT_F_LOCAL, EndpointValue, NetworkValue, Verdict, VpcValue,
        ip, network_prefix_len, wire,
    },
};
use packet::*;

const LO: u32 = 1;
const VNI: u32 = 7001;
const D0: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 10);
const B1: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 21);
const B2: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 22);
const H3: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 33);
const B51: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 51);
const SENDER: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 77);
const D0_MAC: Mac = [2, 0, 0, 0, 0, 0x10];
const GW_MAC: Mac = [2, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa];
const POD_A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 5);
const POD_B: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 9);
const POD_X: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 8);
/// Sender of the decap flow: a different pod from the agent flow's destination, so the direct
/// path learned by decap does not turn the agent flow into a direct-path one.
const POD_Z: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 77);
const A_MAC: Mac = [0x0a, 0, 0, 0, 1, 5];
const B_MAC: Mac = [0x0a, 0, 0, 0, 1, 9];

const SINGLE_RUNS: usize = 10_000;
const REPEAT: u32 = 1_000_000;
const ROUNDS: usize = 5;

fn a(x: Ipv4Addr) -> u32 {
    ip(x.octets())
}

fn network(bouncers: &[Ipv4Addr]) -> NetworkValue {
    let mut v = NetworkValue {
        n_bouncers: bouncers.len() as u32,
        gateway: 0,
        bouncers: [0; 16],
    };
    for (i, b) in bouncers.iter().enumerate() {
        v.bouncers[i] = a(*b);
    }
    v
}

fn setup(m: &mut Maps) {
    m.set_config(&Config {
        droplet_ip: a(D0),
        underlay_ifindex: LO,
        mtu: 1500,
        flags: 0,
        droplet_mac: D0_MAC,
        gateway_mac: GW_MAC,
        default_peer_mac: [0; 6],
        _pad: [0; 2],
    })
    .unwrap();
    m.add_tx_port(LO).unwrap();
    for d in [B1, B2, H3, B51, SENDER] {
        m.upsert_peer(d, [2, 0, 0, 0, 0, d.octets()[3]]).unwrap();
    }
    m.upsert_agent_endpoint(
        LO,
        &AgentEndpoint {
            vni: VNI,
            ip: a(POD_A),
            mac: A_MAC,
            _pad: [0; 2],
            net_prefix_len: network_prefix_len(24),
            net_ip: ip([10, 0, 1, 0]),
            gateway: ip([10, 0, 1, 1]),
        },
    )
    .unwrap();
    let local = EndpointValue {
        droplet_ip: a(D0),
        ifindex: LO,
        flags: ENDPOINT_F_LOCAL,
        mac: A_MAC,
        _pad: [0; 2],
    };
    m.upsert_endpoint(VNI, POD_A, &local).unwrap();
    // D0 is also a bouncer of subnet A (directory row for B) and a divider of the VPC.
    let remote = EndpointValue {
        droplet_ip: a(H3),
        ifindex: 0,
        flags: 0,
        mac: B_MAC,
        _pad: [0; 2],
    };
    m.upsert_endpoint(VNI, Ipv4Addr::new(10, 0, 1, 200), &remote)
        .unwrap();
    m.upsert_network(VNI, Ipv4Addr::new(10, 0, 1, 0), 24, &network(&[B1, B2]))
        .unwrap();
    m.upsert_network(VNI, Ipv4Addr::new(10, 0, 2, 0), 24, &network(&[B51]))
        .unwrap();
    let mut vpc = VpcValue {
        n_dividers: 1,
        dividers: [0; 16],
    };
    vpc.dividers[0] = a(B51);
    m.upsert_vpc(VNI, &vpc).unwrap();
}

fn pod_udp(src_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let l4 = udp(40000, 5201, 0xbeef, &[0x61; 64]);
    eth(GW_MAC, src_mac, 0x0800, &ipv4(Ip::new(src, dst, 17), &l4))
}

fn overlay(dst: Ipv4Addr, inner: &[u8]) -> Vec<u8> {
    let opt = geneve_opt(
        wire::OPT_CLASS_ALKAID,
        wire::OPT_TYPE_RTS,
        1,
        &SENDER.octets(),
    );
    let g = geneve(VNI, 2, &opt, inner);
    let u = udp(50123, wire::GENEVE_PORT, 0, &g);
    let mut h = Ip::new(SENDER, dst, 17);
    h.frag = 0x4000;
    eth(D0_MAC, [2, 0, 0, 0, 0, 0x77], 0x0800, &ipv4(h, &u))
}

/// (name, program, packet, ingress ifindex, verdict the path must produce).
type Path = (&'static str, Prog, Vec<u8>, Option<u32>, Verdict);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|x, y| x.total_cmp(y));
    v[v.len() / 2]
}

/// Median kernel-reported ns of single runs, after checking the path taken.
fn single(p: &Programs, prog: Prog, pkt: &[u8], ifindex: Option<u32>) -> f64 {
    let samples: Vec<f64> = (0..SINGLE_RUNS)
        .map(|_| {
            let r = p.test_run(prog, pkt, ifindex, 1).expect("test_run");
            r.duration.as_nanos() as f64
        })
        .collect();
    median(samples)
}

fn repeated(p: &Programs, prog: Prog, pkt: &[u8], ifindex: Option<u32>) -> f64 {
    let r = p.test_run(prog, pkt, ifindex, REPEAT).expect("test_run");
    r.duration.as_nanos() as f64
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

fn main() {
    if !is_root() {
        eprintln!("SKIP: ns_per_packet needs root (CAP_BPF, CAP_NET_ADMIN)");
        return;
    }
    let mut p = Programs::load().expect("load");
    setup(p.maps_mut());

    let paths: [Path; 4] = [
        (
            "agent_encap",
            Prog::Agent,
            pod_udp(A_MAC, POD_A, POD_B),
            Some(LO),
            Verdict::EncapBouncer,
        ),
        (
            "bouncer_retarget",
            Prog::Transit,
            overlay(D0, &pod_udp(A_MAC, POD_A, Ipv4Addr::new(10, 0, 1, 200))),
            None,
            Verdict::BouncerRetarget,
        ),
        (
            "divider",
            Prog::Transit,
            overlay(D0, &pod_udp(A_MAC, POD_A, POD_X)),
            None,
            Verdict::NetworkForward,
        ),
        (
            "decap_deliver",
            Prog::Transit,
            overlay(D0, &pod_udp(B_MAC, POD_Z, POD_A)),
            None,
            Verdict::Decap,
        ),
    ];
    // Check each path once before timing it.
    for (name, prog, pkt, ifindex, verdict) in &paths {
        let before = p.counters().unwrap();
        p.test_run(*prog, pkt, *ifindex, 1).expect("test_run");
        let d = p.counters().unwrap().since(&before);
        assert_eq!(d.verdict(*verdict), 1, "{name} took another path:\n{d}");
    }
    // Pass-through does not modify the packet: its repeat figure is exact.
    let pass_pkt = eth(
        D0_MAC,
        [2, 0, 0, 0, 0, 0x77],
        0x0800,
        &ipv4(Ip::new(SENDER, D0, 6), &[0u8; 40]),
    );

    // The cheapest walk through a program: the floor the harness itself imposes per run.
    let floor_pkt = eth([0xff; 6], [2, 0, 0, 0, 0, 0x77], 0x0806, &[0u8; 28]);

    let mut overheads = Vec::new();
    let mut floor = Vec::new();
    let mut pass = Vec::new();
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    for _ in 0..ROUNDS {
        let pass_repeat = repeated(&p, Prog::Transit, &pass_pkt, None);
        let pass_single = single(&p, Prog::Transit, &pass_pkt, None);
        let overhead = (pass_single - pass_repeat).max(0.0);
        overheads.push(overhead);
        pass.push(pass_repeat);
        floor.push(repeated(&p, Prog::Transit, &floor_pkt, None));
        for (i, (_, prog, pkt, ifindex, _)) in paths.iter().enumerate() {
            figures[i].push((single(&p, *prog, pkt, *ifindex) - overhead).max(0.0));
        }
    }
    for (i, (name, ..)) in paths.iter().enumerate() {
        println!("BENCH {name} {:.1} ns", median(figures[i].clone()));
    }
    println!("BENCH transit_passthrough {:.1} ns", median(pass));
    println!("BENCH transit_non_ip_floor {:.1} ns", median(floor));
    println!("BENCH harness_overhead {:.1} ns", median(overheads));
}
