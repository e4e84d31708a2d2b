//! `topology-sim`: run, validate and predict scenarios. One clap [`Config`], validated
//! here and passed down by value; anyhow only in this file.

#![forbid(unsafe_code)]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use alkaid_topology_sim::sim::{Progress, Quiet, Sim};
use alkaid_topology_sim::{Design, Scenario, predict, report, world};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

/// A million endpoints mean tens of millions of small allocations; mimalloc spends less
/// time in them than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Scale experiments on Alkaid's real control-plane model.
#[derive(Debug, Parser)]
#[command(name = "topology-sim", version, about)]
struct Config {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Text,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run a scenario and write report.json, CSVs and SVG plots into --out.
    Run {
        /// Scenario YAML file.
        scenario: PathBuf,
        /// Output directory (created if missing).
        #[arg(long, env = "ALKAID_SIM_OUT")]
        out: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Designs to compare: built, full-mesh, random (built always runs).
        #[arg(long, value_delimiter = ',', default_value = "built,full-mesh,random")]
        designs: Vec<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Also replay every command through a 3-replica replicated store (raft-rs, sled,
        /// simulated transport) and check each replica ends in the simulated state. Needs
        /// the `store` feature; meant for small scenarios (one Raft entry per command).
        #[arg(long)]
        store: bool,
    },
    /// Check a scenario file and print what it describes.
    Validate {
        /// Scenario YAML file.
        scenario: PathBuf,
    },
    /// Print one droplet's predicted tables after the scenario's endpoints are created, or
    /// after an explicit `--world` history (the shape of `alkaid lab tables DROPLET -o json`).
    PredictTables {
        /// Scenario YAML file.
        #[arg(required_unless_present = "world", conflicts_with = "world")]
        scenario: Option<PathBuf>,
        /// World file (YAML or JSON): droplets (name, ip, mac, interface) registered first,
        /// then `steps` (`apply`: a Vpc/Subnet object; `endpoint`: an allocation) in order.
        #[arg(long)]
        world: Option<PathBuf>,
        /// Droplet name (droplet-000003) or, with a scenario, index (3).
        #[arg(long)]
        droplet: String,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "json")]
        output: Format,
    },
}

impl Config {
    fn validate(&self) -> anyhow::Result<()> {
        if let Cmd::Run { designs, store, .. } = &self.cmd {
            for d in designs {
                Design::parse(d)?;
            }
            if *store && !cfg!(feature = "store") {
                bail!(
                    "--store needs the store feature: \
                     cargo run --release -p alkaid-topology-sim --features store -- run ..."
                );
            }
        }
        Ok(())
    }
}

/// An indicatif bar on stderr, hidden when stderr is not a terminal.
struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    fn new(show: bool) -> Self {
        Self {
            bar: (show && std::io::stderr().is_terminal()).then(ProgressBar::hidden),
        }
    }
}

impl Progress for Bar {
    fn phase(&mut self, name: &str, total: u64) {
        let Some(old) = self.bar.take() else { return };
        old.finish_and_clear();
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {elapsed}")
            .expect("valid template")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    fn advance(&mut self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn run(
    scenario: PathBuf,
    out: PathBuf,
    seed: Option<u64>,
    designs: &[String],
    quiet: bool,
    store: bool,
) -> anyhow::Result<()> {
    let mut sc = Scenario::load(&scenario)?;
    if let Some(seed) = seed {
        sc.seed = seed;
    }
    let designs: Vec<Design> = designs
        .iter()
        .map(|d| Design::parse(d))
        .collect::<Result<_, _>>()?;
    let wall = Instant::now();
    let mut bar = Bar::new(!quiet);
    let (sim, mut rep) = alkaid_topology_sim::run_recording(&sc, &designs, store, &mut bar)?;
    if store {
        rep.store = Some(replay(&sim, sc.seed)?);
    }
    let files = report::write(&out, &sim, &rep)
        .with_context(|| format!("writing reports into {}", out.display()))?;
    // Freeing a million-endpoint state takes seconds; the process is about to exit.
    std::mem::forget(sim);
    drop(bar);
    println!(
        "scenario {} (seed {})",
        sc.name.as_deref().unwrap_or("?"),
        sc.seed
    );
    for (design, f) in &rep.fanout {
        let add = if f.churn_add.count > 0 {
            &f.churn_add
        } else {
            &f.setup_add
        };
        println!(
            "  {design}: droplets touched per endpoint add mean {} p99 {} max {}",
            add.mean, add.p99, add.max
        );
    }
    println!(
        "  convergence: programmed p50 {} ms p99 {} ms; Ready p50 {} ms p99 {} ms",
        rep.convergence.programmed_add_ms.p50,
        rep.convergence.programmed_add_ms.p99,
        rep.convergence.ready_ms.p50,
        rep.convergence.ready_ms.p99
    );
    println!(
        "  traffic: {:.1}% direct; verification: agents {} model {}",
        rep.traffic.direct_share * 100.0,
        rep.verification.agent_tables_match,
        rep.verification.model_tables_match
    );
    println!(
        "  wall {:.2} s, peak memory {:.0} MiB",
        wall.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    if let Some(s) = &rep.store {
        println!(
            "  store replay: {} commands through {} replicas, replicas match the simulation: {}",
            s.commands, s.replicas, s.replicas_match
        );
    }
    for f in files {
        println!("  wrote {}", f.display());
    }
    if rep.store.as_ref().is_some_and(|s| !s.replicas_match) {
        bail!("store replay: a replica's state differs from the simulation's");
    }
    if !(rep.verification.agent_tables_match && rep.verification.model_tables_match) {
        bail!(
            "verification failed: tables differ from the model's desired tables on {:?}",
            rep.verification.mismatched
        );
    }
    Ok(())
}

#[cfg(feature = "store")]
fn replay(sim: &Sim, seed: u64) -> anyhow::Result<alkaid_topology_sim::report::StoreCheck> {
    let log = sim.w.log.as_deref().unwrap_or_default();
    Ok(alkaid_topology_sim::replicated::replay(
        log,
        &sim.w.state,
        seed,
    )?)
}

#[cfg(not(feature = "store"))]
fn replay(_: &Sim, _: u64) -> anyhow::Result<alkaid_topology_sim::report::StoreCheck> {
    bail!("built without the store feature")
}

fn predict_tables(
    scenario: Option<PathBuf>,
    world_file: Option<PathBuf>,
    droplet: &str,
    output: Format,
) -> anyhow::Result<()> {
    let tables = if let Some(path) = world_file {
        let w = predict::World::load(&path)?;
        let state = w.replay()?;
        predict::droplet_tables(&state, droplet).ok_or_else(|| {
            let names: Vec<String> = w.droplets.iter().map(|d| d.name.to_string()).collect();
            anyhow::anyhow!(
                "unknown droplet {droplet:?}; {} has {names:?}",
                path.display()
            )
        })?
    } else {
        let scenario = scenario.context("give a scenario file or --world FILE")?;
        let sc = Scenario::load(&scenario)?;
        let name = match droplet.parse::<u32>() {
            Ok(i) => world::droplet_name(i).to_string(),
            Err(_) => droplet.to_owned(),
        };
        let mut quiet = Quiet;
        let sim = Sim::new(&sc, &[Design::Built], false, &mut quiet)?;
        predict::droplet_tables(&sim.w.state, &name).ok_or_else(|| {
            alkaid_topology_sim::Error::UnknownDroplet {
                name: name.clone(),
                example: world::droplet_name(0).to_string(),
            }
        })?
    };
    let text = match output {
        Format::Json => serde_json::to_string_pretty(&tables)? + "\n",
        Format::Text => {
            let mut text = format!(
                "{} (version {}, {} rows)\n",
                tables.droplet,
                tables.version,
                tables.rows.len()
            );
            for r in &tables.rows {
                text += &format!("  {}\n", serde_json::to_string(r)?);
            }
            text
        }
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    cfg.validate()?;
    match cfg.cmd {
        Cmd::Run {
            scenario,
            out,
            seed,
            designs,
            quiet,
            store,
        } => run(scenario, out, seed, &designs, quiet, store),
        Cmd::Validate { scenario } => {
            let sc = Scenario::load(&scenario)?;
            println!(
                "{}: ok: {} droplets, {} vpcs x {} subnets x {} endpoints = {} endpoints; \
                 churn {}+{}/s for {} s; {} failure(s); {} flows; {} simulated s",
                scenario.display(),
                sc.droplets,
                sc.vpcs.count,
                sc.subnets.per_vpc,
                sc.endpoints.per_subnet,
                sc.initial_endpoints(),
                sc.churn.creates_per_sec,
                sc.churn.deletes_per_sec,
                sc.churn.duration_s,
                sc.failures.len(),
                sc.traffic.flows,
                sc.duration_s()
            );
            Ok(())
        }
        Cmd::PredictTables {
            scenario,
            world,
            droplet,
            output,
        } => predict_tables(scenario, world, &droplet, output),
    }
}
