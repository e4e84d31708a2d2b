//! Scale benchmark: 10,000 droplets, 1,000 VPCs (all on 10.0.0.0/16), 10,000 subnets and
//! 1,000,000 endpoints, built through `ClusterState::apply`. Prints `BENCH <name> <value>
//! <unit>` lines. `ALKAID_BENCH_SCALE=0.01` runs a small version (default 1).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use alkaid_model::resource::{Object, SubnetSpec, VpcSpec};
use alkaid_model::{ClusterState, Command, DropletName, MacAddr};

const SUBNETS_PER_VPC: usize = 10;
const ENDPOINTS_PER_SUBNET: usize = 100;
const SAMPLES: usize = 1000;
/// Agents acknowledge after every this many endpoint commands (as a real cluster would).
const ACK_EVERY: usize = 100_000;

fn bench(name: &str, value: f64, unit: &str) {
    println!("BENCH {name} {value:.3} {unit}");
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds this process used (user + system), robust to other load on the machine.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0 // USER_HZ is 100 on Linux
}

fn droplet(i: usize) -> DropletName {
    DropletName::new(format!("droplet-{i:05}")).unwrap()
}

fn alloc(ns: usize, name: &str, subnet: usize, droplet_i: usize) -> Command {
    Command::AllocateEndpoint {
        namespace: format!("tenant-{ns}"),
        name: name.to_owned(),
        vpc: format!("vpc-{ns}"),
        subnet: format!("subnet-{subnet}"),
        droplet: droplet(droplet_i),
        ip: None,
        pod: name.to_owned(),
    }
}

struct Bench {
    state: ClusterState,
    commands: u64,
    busy: Duration,
}

impl Bench {
    fn apply(&mut self, cmd: Command) {
        let t = Instant::now();
        let out = self.state.apply(cmd);
        self.busy += t.elapsed();
        self.commands += 1;
        if let Err(e) = out.reply {
            panic!("refused: {e}");
        }
    }

    fn ack_all(&mut self, droplets: usize) {
        for i in 0..droplets {
            let d = droplet(i);
            let version = self.state.version(d.as_str());
            self.apply(Command::AckProgrammed {
                droplet: d,
                version,
            });
        }
    }

    /// Median microseconds of `SAMPLES` endpoint adds, then of their deletes.
    fn sample(&mut self, tag: &str, subnets: usize, droplets: usize) -> (f64, f64) {
        let mut add = Vec::with_capacity(SAMPLES);
        let mut del = Vec::with_capacity(SAMPLES);
        let names: Vec<(usize, String)> = (0..SAMPLES)
            .map(|i| ((i * 7919) % subnets, format!("probe-{tag}-{i}")))
            .collect();
        for (i, (s, name)) in names.iter().enumerate() {
            let cmd = alloc(s / SUBNETS_PER_VPC, name, *s, (i * 104_729) % droplets);
            let t = Instant::now();
            let out = self.state.apply(cmd);
            add.push(t.elapsed());
            assert!(out.reply.is_ok() && !out.deltas.is_empty());
        }
        for (s, name) in &names {
            let cmd = Command::ReleaseEndpoint {
                namespace: format!("tenant-{}", s / SUBNETS_PER_VPC),
                name: name.clone(),
            };
            let t = Instant::now();
            let out = self.state.apply(cmd);
            del.push(t.elapsed());
            assert!(out.reply.is_ok());
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2].as_secs_f64() * 1e6
        };
        (median(&mut add), median(&mut del))
    }
}

fn main() {
    let scale: f64 = std::env::var("ALKAID_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let n_droplets = ((10_000.0 * scale) as usize).max(4);
    let n_vpcs = ((1_000.0 * scale) as usize).max(2);
    let n_subnets = n_vpcs * SUBNETS_PER_VPC;
    let n_endpoints = n_subnets * ENDPOINTS_PER_SUBNET;
    eprintln!(
        "scale {scale}: {n_droplets} droplets, {n_vpcs} vpcs, {n_subnets} subnets, \
         {n_endpoints} endpoints"
    );
    let mut b = Bench {
        state: ClusterState::new(),
        commands: 0,
        busy: Duration::ZERO,
    };
    let wall = Instant::now();
    let cpu0 = cpu_seconds();
    for i in 0..n_droplets {
        let ip = Ipv4Addr::from(0xac10_0000u32 + i as u32 + 1); // 172.16.0.0/12
        let o = ip.octets();
        b.apply(Command::RegisterDroplet {
            name: droplet(i),
            ip,
            mac: MacAddr([0x02, 0, o[0], o[1], o[2], o[3]]),
            interface: "eth0".into(),
            node: format!("node-{i:05}"),
            seen: 0,
        });
    }
    for v in 0..n_vpcs {
        let mut spec = VpcSpec::new("10.0.0.0/16".parse().unwrap());
        spec.namespaces = vec![format!("tenant-{v}")];
        b.apply(Command::ApplyVpc(Object::new(format!("vpc-{v}"), spec)));
        for k in 0..SUBNETS_PER_VPC {
            let s = v * SUBNETS_PER_VPC + k;
            let spec = SubnetSpec::new(
                format!("vpc-{v}"),
                format!("10.0.{k}.0/24").parse().unwrap(),
            );
            b.apply(Command::ApplySubnet(Object::new(
                format!("subnet-{s}"),
                spec,
            )));
        }
    }
    let structure = wall.elapsed();
    eprintln!("structure built in {:.2}s", structure.as_secs_f64());

    let mut small = None;
    for g in 0..n_endpoints {
        // Round-robin over subnets so every subnet fills evenly; spread over droplets.
        let s = g % n_subnets;
        let k = g / n_subnets;
        let d = (g.wrapping_mul(7919)) % n_droplets;
        b.apply(alloc(s / SUBNETS_PER_VPC, &format!("ep-{s}-{k}"), s, d));
        if (g + 1) % ACK_EVERY == 0 {
            b.ack_all(n_droplets);
        }
        if g + 1 == 10_000.min(n_endpoints) {
            small = Some(b.sample("small", n_subnets, n_droplets));
        }
    }
    b.ack_all(n_droplets);
    let build = wall.elapsed();
    let build_cpu = cpu_seconds() - cpu0;
    assert_eq!(b.state.endpoint_count(), n_endpoints);

    let (add, del) = b.sample("full", n_subnets, n_droplets);
    let (small_add, small_del) = small.expect("sampled at 10k endpoints");
    bench(
        "build_commands_per_s",
        b.commands as f64 / b.busy.as_secs_f64(),
        "cmd/s",
    );
    bench("build_wall_time", build.as_secs_f64(), "s");
    bench("build_cpu_time", build_cpu, "s");
    bench("peak_memory", peak_rss_mib(), "MiB");
    bench("endpoint_add_at_full_scale", add, "us");
    bench("endpoint_delete_at_full_scale", del, "us");
    bench("endpoint_add_at_10k_endpoints", small_add, "us");
    bench("endpoint_delete_at_10k_endpoints", small_del, "us");
    let t = Instant::now();
    let snap = b.state.snapshot();
    bench("snapshot_time", t.elapsed().as_secs_f64(), "s");
    bench(
        "snapshot_size",
        snap.len() as f64 / (1024.0 * 1024.0),
        "MiB",
    );
}
