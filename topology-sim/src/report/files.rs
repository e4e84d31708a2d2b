//! Writes `report.json`, the CSVs and (through `plot`) the SVGs into the output directory.
//!
//! | file | rows |
//! |---|---|
//! | `report.json` | [`Report`] |
//! | `fanout.csv` | design, event, droplets touched, how many events |
//! | `tables.csv` | per droplet: rows by kind and bytes (built), rows and bytes (full mesh) |
//! | `convergence.csv` | one row per churn event: kind, milliseconds |
//! | `load.csv` | per droplet: first packets handled as bouncer and as divider |
//! | `timeseries.csv` | simulated second: in-flight deltas, droplets behind, down, black-holed |
//! | `failures.csv` | per failure and design: orphaned roles, roles moved, load after |

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Report, plot};
use crate::designs::{Design, PlacementOutcome};
use crate::error::{Error, Result};
use crate::sim::Sim;
use crate::stats::Counts;

pub(super) fn put(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|source| Error::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

fn fanout_csv(s: &Sim) -> String {
    let mut out = String::from("design,event,droplets_touched,events\n");
    let mut rows = |design: &str, event: &str, c: &Counts| {
        for (v, n) in c.buckets() {
            let _ = writeln!(out, "{design},{event},{v},{n}");
        }
    };
    rows("built", "setup_add", &s.m.setup_add);
    rows("built", "churn_add", &s.m.churn_add);
    rows("built", "churn_delete", &s.m.churn_delete);
    if let Some(m) = s.mesh() {
        rows("full-mesh", "setup_add", &m.setup_add);
        rows("full-mesh", "churn_add", &m.churn_add);
        rows("full-mesh", "churn_delete", &m.churn_delete);
    }
    out
}

fn tables_csv(s: &Sim) -> String {
    let mut out = String::from(
        "droplet,built_rows,built_bytes,built_local_endpoint,built_endpoint,built_network,\
         built_vpc,built_peer,full_mesh_rows,full_mesh_bytes\n",
    );
    for (i, r) in s.m.steady_rows.iter().enumerate() {
        let mesh = s.m.steady_mesh_rows.get(i);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            s.w.droplets[i],
            r.total(),
            r.bytes(),
            r.local_endpoint,
            r.endpoint,
            r.network,
            r.vpc,
            r.peer,
            mesh.map_or(String::new(), |m| m.total().to_string()),
            mesh.map_or(String::new(), |m| m.bytes().to_string()),
        );
    }
    out
}

fn convergence_csv(s: &Sim) -> String {
    let mut out = String::from("kind,ms\n");
    for (kind, v) in [
        ("programmed_add", &s.m.programmed_add_ms),
        ("programmed_delete", &s.m.programmed_delete_ms),
        ("ready", &s.m.ready_ms),
    ] {
        for x in v.sorted() {
            let _ = writeln!(out, "{kind},{x}");
        }
    }
    out
}

fn load_csv(s: &Sim) -> String {
    let t = &s.m.traffic;
    let mut out = String::from("droplet,bouncer_first_packets,divider_first_packets\n");
    for (i, (b, d)) in t.bouncer_packets.iter().zip(&t.divider_packets).enumerate() {
        let _ = writeln!(out, "{},{b},{d}", s.w.droplets[i]);
    }
    out
}

fn series_csv(s: &Sim) -> String {
    let mut out = String::from(
        "t_s,inflight_deltas,droplets_behind,endpoints_not_ready,droplets_down,black_holed\n",
    );
    for p in &s.m.series {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{}",
            p.t_s,
            p.inflight_deltas,
            p.droplets_behind,
            p.endpoints_not_ready,
            p.droplets_down,
            p.black_holed
        );
    }
    out
}

fn failures_csv(r: &Report) -> String {
    let mut out = String::from(
        "failure,design,subnets_without_live_bouncer,vpcs_without_live_divider,\
         roles_moved_on_failure,roles_moved_on_return,roles_max_after_failure,\
         roles_mean_after_failure,roles_max_after_return,roles_mean_after_return\n",
    );
    for (i, f) in r.failures.iter().enumerate() {
        let designs = [
            (Design::Built, Some(&f.built)),
            (Design::Random, f.random.as_ref()),
        ];
        for (d, o) in designs {
            let Some(o): Option<&PlacementOutcome> = o else {
                continue;
            };
            let _ = writeln!(
                out,
                "{i},{},{},{},{},{},{},{},{},{}",
                d.name(),
                o.subnets_without_live_bouncer,
                o.vpcs_without_live_divider,
                o.roles_moved_on_failure,
                o.roles_moved_on_return,
                o.load_after_failure.roles_max,
                o.load_after_failure.roles_mean,
                o.load_after_return.roles_max,
                o.load_after_return.roles_mean,
            );
        }
    }
    out
}

/// Writes every report file of a finished run into `dir` (created if missing). Returns the
/// paths written, in a fixed order.
///
/// # Errors
/// [`Error::Write`], [`Error::Plot`] or [`Error::Json`].
pub fn write(dir: &Path, s: &Sim, r: &Report) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_owned(),
        source,
    })?;
    let json = serde_json::to_string_pretty(r).map_err(|source| Error::Json {
        what: "report",
        source,
    })?;
    let mut paths = vec![put(dir, "report.json", &(json + "\n"))?];
    paths.push(put(dir, "fanout.csv", &fanout_csv(s))?);
    paths.push(put(dir, "tables.csv", &tables_csv(s))?);
    paths.push(put(dir, "convergence.csv", &convergence_csv(s))?);
    paths.push(put(dir, "load.csv", &load_csv(s))?);
    paths.push(put(dir, "timeseries.csv", &series_csv(s))?);
    paths.push(put(dir, "failures.csv", &failures_csv(r))?);
    paths.extend(plot::draw_all(dir, s, r)?);
    Ok(paths)
}
