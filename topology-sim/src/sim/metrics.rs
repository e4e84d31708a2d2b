//! What a run measured, in the shape the report needs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bytes::RowCounts;
use crate::designs::random::Roles;
use crate::designs::{PlacementOutcome, RoleLoad};
use crate::stats::{Counts, Samples};

/// Flow and packet counters.
#[derive(Clone, Debug, Default)]
pub struct TrafficCounters {
    /// Flows started.
    pub flows: u64,
    /// Flows whose first packet was delivered.
    pub delivered: u64,
    /// Of those, flows between endpoints on the same droplet.
    pub local: u64,
    /// Flows whose first packet was sent to a bouncer or divider that was down.
    pub black_holed: u64,
    /// Flows towards an endpoint whose own droplet was down.
    pub to_down_host: u64,
    /// Flows the tables dropped, by reason.
    pub drops: BTreeMap<String, u64>,
    /// Packets of delivered flows.
    pub packets: u64,
    /// Packets that went droplet to droplet directly (after the first).
    pub direct: u64,
    /// Packets that crossed a bouncer or divider (first packets).
    pub via_roles: u64,
    /// Packets between endpoints on one droplet.
    pub local_packets: u64,
    /// Droplets on the first packet's path, sender and receiver included.
    pub path_droplets: Counts,
    /// First packets each droplet handled as a bouncer, by droplet index.
    pub bouncer_packets: Vec<u64>,
    /// First packets each droplet handled as a divider, by droplet index.
    pub divider_packets: Vec<u64>,
}

/// One failure and its return.
#[derive(Clone, Debug, Default)]
pub struct FailureMetrics {
    /// Droplets taken down (indices).
    pub down: Vec<u32>,
    /// Simulated ns when they went down.
    pub at: u64,
    /// When the model marked them Unreachable.
    pub detected: Option<u64>,
    /// When they came back.
    pub returned: Option<u64>,
    /// Deltas the detection produced (live droplets only).
    pub deltas: u64,
    /// Rows in them.
    pub rows: u64,
    /// Distinct droplets they went to.
    pub droplets_touched: u64,
    /// When the last of them was applied.
    pub tables_right_at: Option<u64>,
    /// Deltas the return produced for other droplets.
    pub return_deltas: u64,
    /// Rows the returning droplets' full syncs carried.
    pub resync_rows: u64,
    /// When the last returning droplet (and every delta of the return) was applied.
    pub return_right_at: Option<u64>,
    /// First packets lost on a down droplet between failure and return.
    pub black_holed: u64,
    /// The real placement's view.
    pub built: PlacementOutcome,
    /// Random placement's view, if compared.
    pub random: Option<PlacementOutcome>,
    /// Placement before detection (to count moves).
    pub(crate) roles_before: Option<Roles>,
}

/// One time-series point.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Simulated seconds.
    pub t_s: f64,
    /// Deltas sent and not yet applied.
    pub inflight_deltas: u64,
    /// Live droplets whose maps are behind the model.
    pub droplets_behind: u64,
    /// Churn-created endpoints not yet Ready.
    pub endpoints_not_ready: u64,
    /// Droplets down.
    pub droplets_down: u64,
    /// First packets lost on down droplets so far.
    pub black_holed: u64,
}

/// Result of comparing every table with the model's from-scratch desired tables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Droplets compared (up ones).
    pub droplets_checked: u64,
    /// Droplets left out because they were down at the end.
    pub droplets_down: u64,
    /// Whether every agent's maps equal the desired table.
    pub agent_tables_match: bool,
    /// Whether the model's incremental tables equal the desired tables.
    pub model_tables_match: bool,
    /// Up to 10 droplets that differ.
    pub mismatched: Vec<String>,
    /// Deltas whose version did not follow the agent's (would force a full sync).
    pub version_gaps: u64,
}

/// Everything measured.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Droplets touched per endpoint add while populating.
    pub setup_add: Counts,
    /// Droplets touched per endpoint add during churn.
    pub churn_add: Counts,
    /// Droplets touched per endpoint delete during churn.
    pub churn_delete: Counts,
    /// Milliseconds until every droplet touched by an add had applied it.
    pub programmed_add_ms: Samples,
    /// Same for deletes.
    pub programmed_delete_ms: Samples,
    /// Milliseconds until the model reported a churn-created endpoint Ready.
    pub ready_ms: Samples,
    /// Commands applied to the model (all kinds).
    pub commands: u64,
    /// Deltas sent to live agents.
    pub deltas_sent: u64,
    /// Rows in them.
    pub rows_sent: u64,
    /// Deltas addressed to down droplets (recovered by full sync).
    pub deltas_lost: u64,
    /// Version gaps seen by agents.
    pub version_gaps: u64,
    /// Churn creates and deletes the model accepted.
    pub creates: u64,
    /// Deletes accepted.
    pub deletes: u64,
    /// Commands the model refused, by message kind.
    pub refused: BTreeMap<String, u64>,
    /// Traffic.
    pub traffic: TrafficCounters,
    /// Failures, in scenario order.
    pub failures: Vec<FailureMetrics>,
    /// Time series.
    pub series: Vec<Point>,
    /// Per-droplet rows after populating (the steady state), by droplet index.
    pub steady_rows: Vec<RowCounts>,
    /// Full-mesh rows per droplet in the steady state (if compared).
    pub steady_mesh_rows: Vec<RowCounts>,
    /// Real placement's load in the steady state.
    pub steady_built: RoleLoad,
    /// Random placement's load in the steady state (if compared).
    pub steady_random: Option<RoleLoad>,
    /// Per-droplet rows at the end.
    pub final_rows: Vec<RowCounts>,
    /// End-of-run check.
    pub verification: Verification,
    /// Simulated ns at the last event.
    pub end_ns: u64,
}

impl Metrics {
    /// Empty metrics for `failures` failures.
    pub fn new(failures: usize) -> Self {
        Self {
            failures: vec![FailureMetrics::default(); failures],
            ..Self::default()
        }
    }

    /// Counts a refusal under its kind (the model error's variant name).
    pub fn refuse(&mut self, e: &alkaid_model::Error) {
        let dbg = format!("{e:?}");
        let kind = dbg
            .split([' ', '(', '{'])
            .next()
            .unwrap_or("Refused")
            .to_owned();
        *self.refused.entry(kind).or_insert(0) += 1;
    }
}
