//! The report: [`Report`] (what `report.json` holds), built from a finished run, and the
//! files written next to it (`files`: JSON and CSV, `plot`: SVG).
//!
//! `report.json` holds no wall-clock figure, so the same scenario and seed give the same
//! bytes; run time and memory go to the binary's output and the bench.

mod files;
mod plot;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bytes::{RowCounts, RowSizes, row_sizes};
use crate::designs::{Design, PlacementOutcome, RoleLoad};
use crate::net::to_ms;
use crate::scenario::Scenario;
use crate::sim::Sim;
use crate::sim::metrics::{FailureMetrics, Verification};
use crate::stats::{Counts, Dist, round};

pub use files::write;

/// Fan-out of endpoint events in one design.
#[derive(Clone, Debug, Serialize)]
pub struct Fanout {
    /// Droplets touched per endpoint add while the cluster was populated.
    pub setup_add: Dist,
    /// Per endpoint add during churn.
    pub churn_add: Dist,
    /// Per endpoint delete during churn.
    pub churn_delete: Dist,
}

/// Per-droplet table sizes in one design (steady state, after populating).
#[derive(Clone, Debug, Serialize)]
pub struct Tables {
    /// Rows per droplet.
    pub rows: Dist,
    /// Bytes per droplet in the BPF maps.
    pub bytes: Dist,
    /// Rows of each kind summed over all droplets.
    pub total_by_kind: RowCounts,
    /// Droplets whose ENDPOINTS rows exceed the map's capacity.
    pub droplets_over_endpoints_capacity: u64,
}

/// Programming convergence under the network model.
#[derive(Clone, Debug, Serialize)]
pub struct Convergence {
    /// Ms from an endpoint add until every droplet it touched applied it.
    pub programmed_add_ms: Dist,
    /// Same for deletes.
    pub programmed_delete_ms: Dist,
    /// Ms from an endpoint add until the model reported it Ready (acknowledged by all).
    pub ready_ms: Dist,
    /// Deltas sent to live agents during the run.
    pub deltas_sent: u64,
    /// Rows in them.
    pub rows_sent: u64,
    /// Deltas addressed to down droplets (made up by their full sync).
    pub deltas_lost: u64,
}

/// Load under the traffic model.
#[derive(Clone, Debug, Serialize)]
pub struct Traffic {
    /// Flows started.
    pub flows: u64,
    /// Flows delivered.
    pub delivered: u64,
    /// Flows lost at a bouncer or divider that was down.
    pub black_holed: u64,
    /// Flows to an endpoint whose droplet was down.
    pub to_down_host: u64,
    /// Flows the tables dropped, by reason.
    pub drops: BTreeMap<String, u64>,
    /// Packets of delivered flows.
    pub packets: u64,
    /// Share of packets on the direct path (droplet to droplet).
    pub direct_share: f64,
    /// Share that crossed a bouncer or divider (first packets).
    pub via_roles_share: f64,
    /// Share between endpoints of one droplet.
    pub local_share: f64,
    /// Droplets on a first packet's path.
    pub path_droplets: Dist,
    /// First packets per droplet that bounced any (as bouncer).
    pub bouncer_load: Dist,
    /// First packets per droplet that divided any (as divider).
    pub divider_load: Dist,
}

/// Placement balance in the steady state.
#[derive(Clone, Debug, Serialize)]
pub struct Placement {
    /// The model's placement (rendezvous hashing with a load bound).
    pub built: RoleLoad,
    /// Uniformly random placement, if compared.
    pub random: Option<RoleLoad>,
}

/// One failure and its return.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// Simulated second the droplets went down.
    pub at_s: f64,
    /// When the model marked them Unreachable.
    pub detected_s: Option<f64>,
    /// When they came back.
    pub returned_s: Option<f64>,
    /// The droplets.
    pub droplets: Vec<String>,
    /// Deltas caused by the detection (roles moving).
    pub deltas: u64,
    /// Rows in them.
    pub rows: u64,
    /// Droplets they went to.
    pub droplets_touched: u64,
    /// Ms from the failure until every table those deltas fix was right again.
    pub tables_right_after_failure_ms: Option<f64>,
    /// Ms from the detection until then.
    pub tables_right_after_detection_ms: Option<f64>,
    /// Deltas the return caused for other droplets.
    pub return_deltas: u64,
    /// Rows in the returning droplets' full syncs.
    pub resync_rows: u64,
    /// Ms from the return until every returning table (and every delta) was applied.
    pub tables_right_after_return_ms: Option<f64>,
    /// First packets lost on these droplets while they were down.
    pub black_holed_first_packets: u64,
    /// The real placement.
    pub built: PlacementOutcome,
    /// Random placement, if compared.
    pub random: Option<PlacementOutcome>,
}

/// Sizes of the run.
#[derive(Clone, Debug, Serialize)]
pub struct Cluster {
    /// Droplets.
    pub droplets: u64,
    /// VPCs.
    pub vpcs: u64,
    /// Subnets.
    pub subnets: u64,
    /// Endpoints before the clock started.
    pub endpoints_initial: u64,
    /// Endpoints at the end.
    pub endpoints_final: u64,
    /// Commands applied to the model.
    pub commands: u64,
    /// Churn creates and deletes accepted.
    pub creates: u64,
    /// Deletes accepted.
    pub deletes: u64,
    /// Commands refused, by kind.
    pub refused: BTreeMap<String, u64>,
    /// Simulated seconds until the last event.
    pub simulated_s: f64,
}

/// What replaying the run's command log through the replicated store found (`--store`).
/// Deterministic for a log (no timing in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreCheck {
    /// Replicas in the group.
    pub replicas: u64,
    /// Commands proposed (the whole log of the run).
    pub commands: u64,
    /// Of those, refused by the model (as in the simulation).
    pub refused: u64,
    /// Whether every replica ended with exactly the simulation's state and tables.
    pub replicas_match: bool,
}

/// Everything `report.json` holds.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The scenario as run (seed included).
    pub scenario: Scenario,
    /// Designs compared.
    pub designs: Vec<Design>,
    /// Sizes.
    pub cluster: Cluster,
    /// Bytes per row of each kind (from the XDP map types).
    pub bytes_per_row: RowSizes,
    /// Fan-out per design.
    pub fanout: BTreeMap<&'static str, Fanout>,
    /// Table sizes per design.
    pub tables: BTreeMap<&'static str, Tables>,
    /// Programming convergence (built design).
    pub convergence: Convergence,
    /// Traffic (built design).
    pub traffic: Traffic,
    /// Placement balance per design.
    pub placement: Placement,
    /// Failures.
    pub failures: Vec<Failure>,
    /// End-of-run table check.
    pub verification: Verification,
    /// The replicated-store replay, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreCheck>,
}

fn tables(rows: &[RowCounts]) -> Tables {
    let mut r = Counts::default();
    let mut b = Counts::default();
    let mut total = RowCounts::default();
    let mut over = 0;
    let cap = u64::from(alkaid_xdp_common::maps::ENDPOINTS_MAX);
    for x in rows {
        r.add(x.total());
        b.add(x.bytes());
        total.add(x);
        over += u64::from(x.local_endpoint + x.endpoint > cap);
    }
    Tables {
        rows: r.dist(),
        bytes: b.dist(),
        total_by_kind: total,
        droplets_over_endpoints_capacity: over,
    }
}

fn nonzero(v: &[u64]) -> Dist {
    let mut c = Counts::default();
    v.iter().filter(|x| **x > 0).for_each(|x| c.add(*x));
    c.dist()
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round(part as f64 / whole as f64)
    }
}

fn secs_of(ns: u64) -> f64 {
    round(ns as f64 / 1e9)
}

fn failure(f: &FailureMetrics, names: &[alkaid_model::DropletName]) -> Failure {
    let since = |t: Option<u64>, from: Option<u64>| match (t, from) {
        (Some(t), Some(from)) => Some(round(to_ms(t.saturating_sub(from)))),
        _ => None,
    };
    Failure {
        at_s: secs_of(f.at),
        detected_s: f.detected.map(secs_of),
        returned_s: f.returned.map(secs_of),
        droplets: f
            .down
            .iter()
            .map(|d| names[*d as usize].to_string())
            .collect(),
        deltas: f.deltas,
        rows: f.rows,
        droplets_touched: f.droplets_touched,
        tables_right_after_failure_ms: since(f.tables_right_at, Some(f.at)),
        tables_right_after_detection_ms: since(f.tables_right_at, f.detected),
        return_deltas: f.return_deltas,
        resync_rows: f.resync_rows,
        tables_right_after_return_ms: since(f.return_right_at, f.returned),
        black_holed_first_packets: f.black_holed,
        built: f.built.clone(),
        random: f.random.clone(),
    }
}

impl Report {
    /// Summarizes a finished run.
    pub fn build(s: &Sim, designs: &[Design]) -> Self {
        let m = &s.m;
        let sc = s.scenario();
        let mut fanout = BTreeMap::new();
        fanout.insert(
            Design::Built.name(),
            Fanout {
                setup_add: m.setup_add.dist(),
                churn_add: m.churn_add.dist(),
                churn_delete: m.churn_delete.dist(),
            },
        );
        let mut tabs = BTreeMap::new();
        tabs.insert(Design::Built.name(), tables(&m.steady_rows));
        if let Some(mesh) = s.mesh() {
            fanout.insert(
                Design::FullMesh.name(),
                Fanout {
                    setup_add: mesh.setup_add.dist(),
                    churn_add: mesh.churn_add.dist(),
                    churn_delete: mesh.churn_delete.dist(),
                },
            );
            tabs.insert(Design::FullMesh.name(), tables(&m.steady_mesh_rows));
        }
        let t = &m.traffic;
        let mut designs = designs.to_vec();
        designs.push(Design::Built);
        designs.sort();
        designs.dedup();
        Self {
            scenario: sc.clone(),
            designs,
            cluster: Cluster {
                droplets: u64::from(sc.droplets),
                vpcs: s.w.vpcs.len() as u64,
                subnets: s.w.subnets.len() as u64,
                endpoints_initial: sc.initial_endpoints(),
                endpoints_final: s.w.state.endpoint_count() as u64,
                commands: m.commands,
                creates: m.creates,
                deletes: m.deletes,
                refused: m.refused.clone(),
                simulated_s: secs_of(m.end_ns),
            },
            bytes_per_row: row_sizes(),
            fanout,
            tables: tabs,
            convergence: Convergence {
                programmed_add_ms: m.programmed_add_ms.dist(),
                programmed_delete_ms: m.programmed_delete_ms.dist(),
                ready_ms: m.ready_ms.dist(),
                deltas_sent: m.deltas_sent,
                rows_sent: m.rows_sent,
                deltas_lost: m.deltas_lost,
            },
            traffic: Traffic {
                flows: t.flows,
                delivered: t.delivered,
                black_holed: t.black_holed,
                to_down_host: t.to_down_host,
                drops: t.drops.clone(),
                packets: t.packets,
                direct_share: share(t.direct, t.packets),
                via_roles_share: share(t.via_roles, t.packets),
                local_share: share(t.local_packets, t.packets),
                path_droplets: t.path_droplets.dist(),
                bouncer_load: nonzero(&t.bouncer_packets),
                divider_load: nonzero(&t.divider_packets),
            },
            placement: Placement {
                built: m.steady_built.clone(),
                random: m.steady_random.clone(),
            },
            failures: m
                .failures
                .iter()
                .map(|f| failure(f, &s.w.droplets))
                .collect(),
            verification: m.verification.clone(),
            store: None,
        }
    }
}
