//! ns per packet for each program path, through BPF_PROG_TEST_RUN (`cargo bench -p alkaid-xdp`).
//! Needs root; prints `BENCH <name> <value> <unit>` lines.
//!
//! Method. Non-live BPF_PROG_TEST_RUN with `repeat = N` runs the program N times over the *same*
//! buffer without restoring it, so a path that rewrites the frame (encap, decap, retarget with
//! its TTL decrement) would be on another path from the second iteration on. The bench
//! therefore runs the object's bench harness programs (`bench_agent`, `bench_transit`, see
//! `ebpf/src/bench.rs`): the real program, then the frame moved and rewritten back to what it
//! was. Before timing, each path is run `CHECK` times in one repeat call and the verdict counter
//! must have grown by exactly `CHECK`: every iteration took the path being measured.
//!
//! Figures: the kernel's average over `REPEAT` iterations, median of `ROUNDS` calls, the
//! process pinned to the last CPU (see `pin_to_last_cpu`). They
//! include the per-iteration cost of the test harness itself (bh disable/enable, the timer
//! check, the program call), printed as `xdp_test_run_floor` (an ARP frame through
//! `transit`: one map lookup and a pass), and the wrapper's save/restore, printed as
//! `bench_wrapper_overhead` (the same pass-through frame through the wrapper minus without).
//! On paths that move the packet head (encap, decap) the wrapper also calls
//! bpf_xdp_adjust_head once more to undo it (about 10 ns here, measured by removing both), so
//! those two figures carry about 10 ns more harness than the others.
//! Nothing is subtracted from the path figures.
//!
//! Peer: `<path>_without_slots`, measured in the same rounds: the same paths with AGENT_SLOTS
//! and LOCAL_SLOTS emptied (every endpoint lookup a hash lookup, as before the slots existed).
//!
//! Many flows: `<path>_16k_flows` runs the paths whose lookups are keyed by the destination
//! (direct path, bouncer choice after two misses, directory retarget) with the destination
//! stepped after every iteration through 16,384 addresses, four times the per-CPU caches'
//! slots, so nearly every packet misses DP_CACHE and EP_CACHE and pays the hash lookups, as
//! traffic to many destinations at once would (the single-flow figures are the best case, a
//! flow in steady state; these the worst).
//!
//! Cross-check: `<path>_single` is the older method (median of single runs with a fresh packet
//! each, minus the timer overhead of a single run), which also includes cold-cache effects of a
//! syscall between runs.

#[path = "../tests/netns/lab.rs"]
#[allow(
    dead_code,
    reason = "shared with the netns tests; only root and pinning are used here"
)]
mod lab;
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
        AgentEndpoint, AgentSlot, BenchFlows, Config, ENDPOINT_F_LOCAL, EndpointKey, EndpointValue,
        LocalSlot, NetworkValue, Verdict, VpcValue, agent_slot, ip, local_slot, maps as names,
        network_prefix_len, wire,
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
/// Destination with a direct path (the steady state of a flow).
const POD_D: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 44);
const POD_X: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 8);
/// Sender of the decap flow: a different pod from the agent flow's destination, so the direct
/// path learned by decap does not turn the agent flow into a direct-path one.
const POD_Z: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 77);
const A_MAC: Mac = [0x0a, 0, 0, 0, 1, 5];
const B_MAC: Mac = [0x0a, 0, 0, 0, 1, 9];

/// Destinations the many-flows paths cycle through (as a mask over the address's low bits).
const FLOWS_MASK: u16 = 0x3fff;
/// /18 bases of the many-flows destinations: with direct paths, unknown (bouncer), and in the
/// directory this droplet bounces for. None overlaps a single-flow path's addresses.
const FLOWS_DIRECT: [u8; 2] = [10, 2];
const FLOWS_UNKNOWN: [u8; 2] = [10, 1];
const FLOWS_DIRECTORY: [u8; 2] = [10, 3];

const SINGLE_RUNS: usize = 5_000;
const REPEAT: u32 = 1_000_000;
const CHECK: u32 = 1_000;
const ROUNDS: usize = 11;

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
    // A learned-style direct path for the steady-state encap.
    m.set_direct_path(VNI, POD_D, H3).unwrap();
    let mut vpc = VpcValue {
        n_dividers: 1,
        dividers: [0; 16],
    };
    vpc.dividers[0] = a(B51);
    m.upsert_vpc(VNI, &vpc).unwrap();

    let directory: Vec<_> = flow_addrs(FLOWS_DIRECTORY)
        .map(|addr| (endpoint_key(VNI, addr), remote))
        .collect();
    m.upsert_endpoints(&directory).unwrap();
    for addr in flow_addrs(FLOWS_DIRECT) {
        m.set_direct_path(VNI, addr, H3).unwrap();
    }
}

/// The many-flows destinations under `base`.
fn flow_addrs(base: [u8; 2]) -> impl Iterator<Item = Ipv4Addr> {
    (0..=FLOWS_MASK).map(move |i| {
        let [hi, lo] = i.to_be_bytes();
        Ipv4Addr::new(base[0], base[1], hi, lo)
    })
}

fn endpoint_key(vni: u32, addr: Ipv4Addr) -> EndpointKey {
    EndpointKey { vni, ip: a(addr) }
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

/// Median kernel-reported ns of single runs.
fn single(p: &Programs, prog: Prog, pkt: &[u8], ifindex: Option<u32>) -> f64 {
    let samples: Vec<f64> = (0..SINGLE_RUNS)
        .map(|_| {
            let r = p.test_run(prog, pkt, ifindex, 1).expect("test_run");
            r.duration.as_nanos() as f64
        })
        .collect();
    median(samples)
}

/// Kernel-reported average ns per iteration of `repeat` runs of the real program.
fn repeated(p: &Programs, prog: Prog, pkt: &[u8], ifindex: Option<u32>) -> f64 {
    let r = p.test_run(prog, pkt, ifindex, REPEAT).expect("test_run");
    r.duration.as_nanos() as f64
}

/// Same through the restoring bench wrapper.
fn wrapped(p: &Programs, prog: Prog, pkt: &[u8], ifindex: Option<u32>, n: u32) -> f64 {
    let r = p.test_run_bench(prog, pkt, ifindex, n).expect("test_run");
    r.duration.as_nanos() as f64
}

/// Same, the destination stepped through `flows` after every iteration.
fn wrapped_flows(p: &Programs, path: &FlowPath, n: u32) -> f64 {
    let r = p
        .test_run_bench_flows(path.prog, &path.packet, path.ifindex, n, path.flows)
        .expect("test_run");
    r.duration.as_nanos() as f64
}

/// Runs the rest of the bench on the last CPU: BPF_PROG_TEST_RUN runs on the calling CPU,
/// and on these 2-vCPU machines CPU 0 also takes the interrupts and housekeeping (measured:
/// 10-30% slower, and noisier). Returns the CPU, or `None` if pinning failed (then the
/// figures are noisier, nothing else).
fn pin_to_last_cpu() -> Option<usize> {
    let cpu = std::thread::available_parallelism().ok()?.get() - 1;
    lab::pin_thread(cpu).then_some(cpu)
}

fn main() {
    if !lab::is_root() {
        eprintln!("SKIP: ns_per_packet needs root (CAP_BPF, CAP_NET_ADMIN)");
        return;
    }
    match pin_to_last_cpu() {
        Some(cpu) => eprintln!("pinned to CPU {cpu}"),
        None => eprintln!("could not pin to a CPU: figures will be noisier"),
    }
    // Pinned, so the bench can empty the slot arrays behind the loader (`Slots`).
    let pins = Pins::new();
    let mut p = Programs::load_pinned(&pins.0).expect("load");
    p.load_bench_harness().expect("load bench harness");
    setup(p.maps_mut());
    let mut slots = Slots::open(&pins);

    let paths = paths();
    // Every iteration of a repeat call must take the path being measured.
    for (name, prog, pkt, ifindex, verdict) in &paths {
        let before = p.counters().unwrap();
        wrapped(&p, *prog, pkt, *ifindex, CHECK);
        let d = p.counters().unwrap().since(&before);
        assert_eq!(
            d.verdict(*verdict),
            u64::from(CHECK),
            "{name}: not every repetition took the path:\n{d}"
        );
        assert_eq!(d.total_drops(), 0, "{name} dropped:\n{d}");
    }
    let flow_paths = flow_paths();
    for path in &flow_paths {
        // Two full cycles and three more: every destination of the range takes the path, and
        // the frame comes back with its destination stepped three times.
        let n = 2 * (u32::from(FLOWS_MASK) + 1) + 3;
        let before = p.counters().unwrap();
        let r = p
            .test_run_bench_flows(path.prog, &path.packet, path.ifindex, n, path.flows)
            .expect("test_run");
        let d = p.counters().unwrap().since(&before);
        assert_eq!(
            d.verdict(path.verdict),
            u64::from(n),
            "{}: not every repetition took the path:\n{d}",
            path.name
        );
        assert_eq!(d.total_drops(), 0, "{} dropped:\n{d}", path.name);
        let at = usize::from(path.flows.dst_low_offset);
        assert_eq!(
            u16::from_be_bytes([r.data[at], r.data[at + 1]]),
            3,
            "{}: destinations did not step",
            path.name
        );
    }
    // Pass-through does not modify the packet: exact under repeat, with or without wrapper.
    let pass_pkt = eth(
        D0_MAC,
        [2, 0, 0, 0, 0, 0x77],
        0x0800,
        &ipv4(Ip::new(SENDER, D0, 6), &[0u8; 40]),
    );
    // The cheapest walk through a program: the floor the harness itself imposes per run.
    let floor_pkt = eth([0xff; 6], [2, 0, 0, 0, 0, 0x77], 0x0806, &[0u8; 28]);

    let mut timer = Vec::new();
    let mut wrapper = Vec::new();
    let mut floor = Vec::new();
    let mut empty = Vec::new();
    let mut pass = Vec::new();
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut without_slots: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut singles: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut many_flows: Vec<Vec<f64>> = vec![Vec::new(); flow_paths.len()];
    for _ in 0..ROUNDS {
        let pass_repeat = repeated(&p, Prog::Transit, &pass_pkt, None);
        pass.push(pass_repeat);
        let pass_single = single(&p, Prog::Transit, &pass_pkt, None);
        let overhead = (pass_single - pass_repeat).max(0.0);
        timer.push(overhead);
        wrapper.push(wrapped(&p, Prog::Transit, &pass_pkt, None, REPEAT) - pass_repeat);
        floor.push(repeated(&p, Prog::Transit, &floor_pkt, None));
        empty.push(repeated(&p, Prog::Pass, &floor_pkt, None));
        for (i, (_, prog, pkt, ifindex, _)) in paths.iter().enumerate() {
            figures[i].push(wrapped(&p, *prog, pkt, *ifindex, REPEAT));
            singles[i].push((single(&p, *prog, pkt, *ifindex) - overhead).max(0.0));
        }
        for (i, path) in flow_paths.iter().enumerate() {
            many_flows[i].push(wrapped_flows(&p, path, REPEAT));
        }
        // The peer: the same paths with AGENT_SLOTS and LOCAL_SLOTS empty (every endpoint
        // lookup a hash lookup, as before the slots), then the slots put back.
        slots.empty();
        for (i, (_, prog, pkt, ifindex, _)) in paths.iter().enumerate() {
            without_slots[i].push(wrapped(&p, *prog, pkt, *ifindex, REPEAT));
        }
        slots.restore();
    }
    for (i, (name, ..)) in paths.iter().enumerate() {
        println!("BENCH {name} {:.1} ns", median(figures[i].clone()));
    }
    println!("BENCH transit_passthrough {:.1} ns", median(pass));
    println!("BENCH xdp_test_run_floor {:.1} ns", median(floor));
    println!("BENCH xdp_empty_program {:.1} ns", median(empty));
    println!("BENCH bench_wrapper_overhead {:.1} ns", median(wrapper));
    for (i, (name, ..)) in paths.iter().enumerate() {
        println!(
            "BENCH {name}_without_slots {:.1} ns",
            median(without_slots[i].clone())
        );
    }
    for (i, path) in flow_paths.iter().enumerate() {
        println!(
            "BENCH {}_16k_flows {:.1} ns",
            path.name,
            median(many_flows[i].clone())
        );
    }
    for (i, (name, ..)) in paths.iter().enumerate() {
        println!("BENCH {name}_single {:.1} ns", median(singles[i].clone()));
    }
    println!("BENCH single_run_timer_overhead {:.1} ns", median(timer));
}

/// A pin directory, removed on drop.
struct Pins(std::path::PathBuf);

impl Pins {
    fn new() -> Self {
        Self(std::path::PathBuf::from(format!(
            "/sys/fs/bpf/alkaid-ns-per-packet-{}",
            std::process::id()
        )))
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        for name in alkaid_xdp::common::maps::ALL {
            let _ = std::fs::remove_file(self.0.join(name));
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The slots the bench paths use, through their own handles on the pinned arrays.
struct Slots {
    agent: aya::maps::Array<aya::maps::MapData, AgentSlot>,
    local: aya::maps::Array<aya::maps::MapData, LocalSlot>,
    saved: (AgentSlot, LocalSlot),
}

impl Slots {
    fn open(pins: &Pins) -> Self {
        let open = |name: &str| {
            aya::maps::Map::Array(
                aya::maps::MapData::from_pin(pins.0.join(name)).expect("pinned slots"),
            )
        };
        let agent: aya::maps::Array<_, AgentSlot> =
            aya::maps::Array::try_from(open(names::AGENT_SLOTS)).unwrap();
        let local: aya::maps::Array<_, LocalSlot> =
            aya::maps::Array::try_from(open(names::LOCAL_SLOTS)).unwrap();
        let saved: (AgentSlot, LocalSlot) = (
            agent.get(&agent_slot(LO), 0).unwrap(),
            local.get(&local_slot(VNI, a(POD_A)), 0).unwrap(),
        );
        assert_eq!(saved.0.ifindex, LO, "agent endpoint slotted");
        assert_eq!(saved.1.key.ip, a(POD_A), "local endpoint slotted");
        Self {
            agent,
            local,
            saved,
        }
    }

    fn empty(&mut self) {
        self.write(AgentSlot::default(), LocalSlot::default());
    }

    fn restore(&mut self) {
        self.write(self.saved.0, self.saved.1);
    }

    fn write(&mut self, agent: AgentSlot, local: LocalSlot) {
        self.agent.set(agent_slot(LO), agent, 0).unwrap();
        self.local.set(local_slot(VNI, a(POD_A)), local, 0).unwrap();
    }
}

fn paths() -> Vec<Path> {
    vec![
        (
            "agent_encap",
            Prog::Agent,
            pod_udp(A_MAC, POD_A, POD_D),
            Some(LO),
            Verdict::EncapDirect,
        ),
        (
            "agent_encap_bouncer",
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
    ]
}

/// A path run over many flows (see the module docs).
struct FlowPath {
    name: &'static str,
    prog: Prog,
    packet: Vec<u8>,
    ifindex: Option<u32>,
    verdict: Verdict,
    flows: BenchFlows,
}

impl FlowPath {
    /// `packet`'s destination is the first of the range at `base`; `dst_at` is where its IPv4
    /// destination sits in the frame.
    fn new(
        name: &'static str,
        prog: Prog,
        packet: Vec<u8>,
        dst_at: usize,
        base: [u8; 2],
        verdict: Verdict,
    ) -> Self {
        assert_eq!(
            packet[dst_at..dst_at + 4],
            [base[0], base[1], 0, 0],
            "{name}: destination not where expected"
        );
        Self {
            name,
            prog,
            ifindex: (prog == Prog::Agent).then_some(LO),
            packet,
            verdict,
            flows: BenchFlows {
                dst_low_offset: (dst_at + 2) as u16,
                mask: FLOWS_MASK,
            },
        }
    }
}

fn flow_paths() -> Vec<FlowPath> {
    let first = |base: [u8; 2]| Ipv4Addr::new(base[0], base[1], 0, 0);
    // Inner IPv4 destination: in a pod's frame after Ethernet; in an overlay packet after the
    // outer Ethernet, IPv4, UDP, Geneve with one 4-byte option, and the inner Ethernet.
    let in_pod_frame = 14 + 16;
    let in_overlay = 14 + 20 + 8 + 8 + 8 + in_pod_frame;
    vec![
        FlowPath::new(
            "agent_encap",
            Prog::Agent,
            pod_udp(A_MAC, POD_A, first(FLOWS_DIRECT)),
            in_pod_frame,
            FLOWS_DIRECT,
            Verdict::EncapDirect,
        ),
        FlowPath::new(
            "agent_encap_bouncer",
            Prog::Agent,
            pod_udp(A_MAC, POD_A, first(FLOWS_UNKNOWN)),
            in_pod_frame,
            FLOWS_UNKNOWN,
            Verdict::EncapBouncer,
        ),
        FlowPath::new(
            "bouncer_retarget",
            Prog::Transit,
            overlay(D0, &pod_udp(A_MAC, POD_A, first(FLOWS_DIRECTORY))),
            in_overlay,
            FLOWS_DIRECTORY,
            Verdict::BouncerRetarget,
        ),
    ]
}
