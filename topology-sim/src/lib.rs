//! # alkaid-topology-sim: scale experiments on the real control plane
//!
//! Answers "what happens at 10,000 hosts?" by driving the real [`alkaid_model`] (every
//! command goes through `ClusterState::apply`; tables, placement and forwarding are the
//! model's) with simulated droplets, a network model and a seeded clock.
//!
//! ## Layout and data flow
//!
//! | module | role |
//! |---|---|
//! | [`scenario`] | the YAML schema and its checks |
//! | [`world`] | scenario -> model commands; the simulator's endpoint bookkeeping |
//! | [`net`] | latency model and simulated agents (their maps are real `Table`s) |
//! | [`sim`] | the discrete-event loop: setup, churn, traffic, failures, verification |
//! | [`designs`] | comparison designs computed from the model's objects: full mesh, random placement |
//! | [`bytes`] | bytes per row from the real XDP map types |
//! | [`stats`] | histograms and percentiles |
//! | [`report`] | `report.json`, CSVs and SVG plots |
//! | [`predict`] | per-droplet rows in the JSON shape of `alkaid lab tables -o json` |
//! | `replicated` | (feature `store`) replays the run's commands through the real replicated store |
//! | [`pool`] | reproducible random picks |
//! | [`error`] | the crate's [`Error`] |
//!
//! A [`Scenario`] is loaded and validated; [`sim::Sim::new`] builds the cluster through the
//! model and syncs every agent; [`sim::Sim::run`] plays churn, flows and failures on the
//! simulated clock, sending each command's deltas to the agents and their acknowledgements
//! back to the model, then checks every table against the model's from-scratch derivation;
//! [`report::Report::build`] summarizes and [`report::write`] writes the files.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bytes;
pub mod designs;
pub mod error;
pub mod net;
pub mod pool;
pub mod predict;
#[cfg(feature = "store")]
pub mod replicated;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod stats;
pub mod world;

pub use designs::Design;
pub use error::{Error, Result};
pub use report::Report;
pub use scenario::Scenario;

/// Runs `scenario` with the `designs` compared and returns the finished simulation (for
/// [`report::write`]) and its report.
///
/// # Errors
/// [`Error::ModelRefused`] if the model refuses the scenario's cluster.
pub fn run<'a>(
    scenario: &'a Scenario,
    designs: &[Design],
    progress: &'a mut dyn sim::Progress,
) -> Result<(sim::Sim<'a>, Report)> {
    run_recording(scenario, designs, false, progress)
}

/// [`run`], keeping every command applied in `sim.w.log` when `record` (to replay it
/// through the replicated store).
///
/// # Errors
/// [`Error::ModelRefused`] if the model refuses the scenario's cluster.
pub fn run_recording<'a>(
    scenario: &'a Scenario,
    designs: &[Design],
    record: bool,
    progress: &'a mut dyn sim::Progress,
) -> Result<(sim::Sim<'a>, Report)> {
    let mut s = sim::Sim::new(scenario, designs, record, progress)?;
    s.run();
    let report = Report::build(&s, designs);
    Ok((s, report))
}
