//! The charts: which series each plot shows, with its title, axes and legend place. The
//! drawing itself is in the parent module.

use std::path::{Path, PathBuf};

use super::{Chart, Legend, Series, cdf, pct_counts, pct_values, render};
use crate::error::Result;
use crate::report::Report;
use crate::sim::Sim;
use crate::stats::Counts;

fn fanout(s: &Sim) -> Chart<'static> {
    let pick = |churn: &Counts, setup: &Counts, what: &str| {
        if churn.is_empty() {
            (setup.clone(), format!("{what} (populating)"))
        } else {
            (churn.clone(), what.to_owned())
        }
    };
    let mut series = Vec::new();
    let (c, n) = pick(&s.m.churn_add, &s.m.setup_add, "built: endpoint add");
    series.push(pct_counts(&n, &c));
    if !s.m.churn_delete.is_empty() {
        series.push(pct_counts("built: endpoint delete", &s.m.churn_delete));
    }
    if let Some(m) = s.mesh() {
        let (c, n) = pick(&m.churn_add, &m.setup_add, "full mesh: endpoint add");
        series.push(pct_counts(&n, &c));
        if !m.churn_delete.is_empty() {
            series.push(pct_counts("full mesh: endpoint delete", &m.churn_delete));
        }
    }
    Chart {
        file: "fanout.svg",
        title: "Droplets touched per endpoint event".into(),
        x: "percentile of events",
        y: "droplets touched (log)",
        series,
        log_x: false,
        log_y: true,
        legend: Legend::Middle,
    }
}

fn tables(s: &Sim, bytes: bool) -> Chart<'static> {
    let val = |r: &crate::bytes::RowCounts| {
        if bytes {
            r.bytes() as f64 / 1024.0
        } else {
            r.total() as f64
        }
    };
    let mut series = vec![pct_values(
        "built (bouncers/dividers)",
        s.m.steady_rows.iter().map(val),
    )];
    if !s.m.steady_mesh_rows.is_empty() {
        series.push(pct_values(
            "full mesh",
            s.m.steady_mesh_rows.iter().map(val),
        ));
    }
    Chart {
        file: if bytes {
            "table_bytes.svg"
        } else {
            "table_rows.svg"
        },
        title: if bytes {
            "BPF map bytes per droplet (key + value sizes of the XDP types)".into()
        } else {
            "Table rows per droplet".into()
        },
        x: "percentile of droplets",
        y: if bytes { "KiB (log)" } else { "rows (log)" },
        series,
        log_x: false,
        log_y: true,
        legend: Legend::Lower,
    }
}

fn convergence(s: &Sim) -> Chart<'static> {
    let m = &s.m;
    Chart {
        file: "convergence.svg",
        title: "Programming convergence under the network model".into(),
        x: "milliseconds after the command (log)",
        y: "fraction of events done",
        series: vec![
            cdf("programmed: add", &m.programmed_add_ms.sorted()),
            cdf("programmed: delete", &m.programmed_delete_ms.sorted()),
            cdf("Ready (acknowledged): add", &m.ready_ms.sorted()),
        ],
        log_x: true,
        log_y: false,
        legend: Legend::Lower,
    }
}

fn load(s: &Sim, r: &Report) -> Chart<'static> {
    let ranked = |v: &[u64]| -> Vec<(f64, f64)> {
        let mut v: Vec<u64> = v.iter().copied().filter(|x| *x > 0).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.iter()
            .enumerate()
            .map(|(i, x)| ((i + 1) as f64, *x as f64))
            .collect()
    };
    let t = &s.m.traffic;
    Chart {
        file: "load.svg",
        title: format!(
            "First packets per role droplet; {:.1}% of packets took the direct path",
            r.traffic.direct_share * 100.0
        ),
        x: "droplets, busiest first",
        y: "first packets handled",
        series: vec![
            Series {
                name: "bouncer".into(),
                points: ranked(&t.bouncer_packets),
            },
            Series {
                name: "divider".into(),
                points: ranked(&t.divider_packets),
            },
        ],
        log_x: false,
        log_y: false,
        legend: Legend::Upper,
    }
}

fn recovery(s: &Sim) -> Chart<'static> {
    let pts = |f: fn(&crate::sim::metrics::Point) -> u64| -> Vec<(f64, f64)> {
        s.m.series.iter().map(|p| (p.t_s, f(p) as f64)).collect()
    };
    Chart {
        file: "recovery.svg",
        title: "Failures and recovery over simulated time".into(),
        x: "simulated seconds",
        y: "count",
        series: vec![
            Series {
                name: "deltas in flight".into(),
                points: pts(|p| p.inflight_deltas),
            },
            Series {
                name: "droplets behind the model".into(),
                points: pts(|p| p.droplets_behind),
            },
            Series {
                name: "droplets down".into(),
                points: pts(|p| p.droplets_down),
            },
            Series {
                name: "endpoints not Ready".into(),
                points: pts(|p| p.endpoints_not_ready),
            },
            Series {
                name: "first packets black-holed (total)".into(),
                points: pts(|p| p.black_holed),
            },
        ],
        log_x: false,
        log_y: false,
        legend: Legend::Upper,
    }
}

fn placement(r: &Report) -> Chart<'static> {
    let mut series = Vec::new();
    let mut add = |name: &str,
                   steady: Option<&crate::designs::RoleLoad>,
                   f: Option<&crate::designs::PlacementOutcome>| {
        let Some(steady) = steady else { return };
        let mut max = vec![(0.0, steady.roles_max as f64)];
        let mut mean = vec![(0.0, steady.roles_mean)];
        if let Some(f) = f {
            max.push((1.0, f.load_after_failure.roles_max as f64));
            mean.push((1.0, f.load_after_failure.roles_mean));
            max.push((2.0, f.load_after_return.roles_max as f64));
            mean.push((2.0, f.load_after_return.roles_mean));
        }
        series.push(Series {
            name: format!("{name}: max roles"),
            points: max,
        });
        series.push(Series {
            name: format!("{name}: mean roles"),
            points: mean,
        });
    };
    let first = r.failures.first();
    add("built", Some(&r.placement.built), first.map(|f| &f.built));
    add(
        "random",
        r.placement.random.as_ref(),
        first.and_then(|f| f.random.as_ref()),
    );
    Chart {
        file: "placement.svg",
        title: "Roles per droplet: 0 = steady, 1 = after failure, 2 = after return".into(),
        x: "stage",
        y: "roles per droplet",
        series,
        log_x: false,
        log_y: false,
        legend: Legend::Middle,
    }
}

/// Draws every plot into `dir`.
pub(in crate::report) fn draw_all(dir: &Path, s: &Sim, r: &Report) -> Result<Vec<PathBuf>> {
    [
        fanout(s),
        tables(s, false),
        tables(s, true),
        convergence(s),
        load(s, r),
        recovery(s),
        placement(r),
    ]
    .into_iter()
    .map(|c| render(dir, c))
    .collect()
}
