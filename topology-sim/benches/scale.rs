//! Scale bench: runs `scenarios/scale-10k.yaml` (10,000 droplets, 1,000 VPCs, 1,000,000
//! endpoints, churn and a failure) through the whole simulator and prints
//! `BENCH <name> <value> <unit>` lines. `ALKAID_SIM_BENCH_100K=1` also runs
//! `scale-100k.yaml` (100,000 droplets; several minutes). `ALKAID_SIM_BENCH_SCENARIO=PATH`
//! runs that file instead of scale-10k.
//!
//! Run: `cargo bench -p alkaid-topology-sim`

use std::path::{Path, PathBuf};
use std::time::Instant;

use alkaid_topology_sim::sim::Quiet;
use alkaid_topology_sim::{Design, Scenario, report};

/// A million endpoints mean tens of millions of small allocations; mimalloc spends less
/// time in them than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(name: &str, value: f64, unit: &str) {
    println!("BENCH {name} {value:.3} {unit}");
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 per second on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn run(path: &Path, tag: &str) {
    let sc = Scenario::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    eprintln!(
        "{tag}: {} droplets, {} endpoints",
        sc.droplets,
        sc.initial_endpoints()
    );
    // Reset the peak-RSS mark so each scenario reports its own peak (Linux >= 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    let mut quiet = Quiet;
    let (sim, rep) = alkaid_topology_sim::run(&sc, &Design::ALL, &mut quiet).expect("runs");
    let out = std::env::temp_dir().join(format!("alkaid-sim-bench-{tag}"));
    report::write(&out, &sim, &rep).expect("writes reports");
    bench(
        &format!("{tag}_wall_time"),
        wall.elapsed().as_secs_f64(),
        "s",
    );
    bench(&format!("{tag}_cpu_time"), cpu_seconds() - cpu, "s");
    bench(&format!("{tag}_peak_memory"), peak_rss_mib(), "MiB");
    let built = &rep.fanout["built"];
    let add = if built.churn_add.count > 0 {
        &built.churn_add
    } else {
        &built.setup_add
    };
    bench(
        &format!("{tag}_fanout_add_mean_built"),
        add.mean,
        "droplets",
    );
    bench(&format!("{tag}_fanout_add_max_built"), add.max, "droplets");
    if let Some(m) = rep.fanout.get("full-mesh") {
        let add = if m.churn_add.count > 0 {
            &m.churn_add
        } else {
            &m.setup_add
        };
        bench(
            &format!("{tag}_fanout_add_mean_full_mesh"),
            add.mean,
            "droplets",
        );
    }
    for (design, t) in &rep.tables {
        let d = design.replace('-', "_");
        bench(
            &format!("{tag}_rows_per_droplet_mean_{d}"),
            t.rows.mean,
            "rows",
        );
        bench(
            &format!("{tag}_rows_per_droplet_max_{d}"),
            t.rows.max,
            "rows",
        );
        bench(
            &format!("{tag}_bytes_per_droplet_mean_{d}"),
            t.bytes.mean / 1024.0,
            "KiB",
        );
    }
    let c = &rep.convergence;
    bench(
        &format!("{tag}_programmed_p50"),
        c.programmed_add_ms.p50,
        "ms",
    );
    bench(
        &format!("{tag}_programmed_p99"),
        c.programmed_add_ms.p99,
        "ms",
    );
    bench(&format!("{tag}_ready_p99"), c.ready_ms.p99, "ms");
    bench(
        &format!("{tag}_direct_share"),
        rep.traffic.direct_share * 100.0,
        "%",
    );
    if let Some(f) = rep.failures.first() {
        bench(
            &format!("{tag}_roles_moved_on_failure"),
            f.built.roles_moved_on_failure as f64,
            "roles",
        );
        if let Some(ms) = f.tables_right_after_detection_ms {
            bench(&format!("{tag}_tables_right_after_detection"), ms, "ms");
        }
    }
    let ok = rep.verification.agent_tables_match && rep.verification.model_tables_match;
    bench(&format!("{tag}_verified"), f64::from(u8::from(ok)), "bool");
    eprintln!("{tag}: reports in {}", out.display());
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let path = std::env::var_os("ALKAID_SIM_BENCH_SCENARIO")
        .map_or_else(|| dir.join("scale-10k.yaml"), PathBuf::from);
    let tag = path
        .file_stem()
        .map_or("scenario".into(), |s| s.to_string_lossy().replace('-', "_"));
    run(&path, &tag);
    if std::env::var("ALKAID_SIM_BENCH_100K").is_ok_and(|v| v == "1") {
        run(&dir.join("scale-100k.yaml"), "scale_100k");
    }
}
