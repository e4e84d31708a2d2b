//! Integration tests of the simulator on small scenarios: determinism, scenario errors,
//! the fan-out claim, recovery, report files and the command line.

mod cli;
mod errors;

use std::path::{Path, PathBuf};

use alkaid_topology_sim::sim::Quiet;
use alkaid_topology_sim::{Design, Report, Scenario, report};

fn small_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/small.yaml")
}

fn small() -> Scenario {
    Scenario::load(&small_path()).expect("small.yaml is valid")
}

/// Runs `sc` and writes its files into `dir`.
fn run_into(sc: &Scenario, dir: &Path) -> Report {
    let mut quiet = Quiet;
    let (sim, rep) = alkaid_topology_sim::run(sc, &Design::ALL, &mut quiet).expect("runs");
    report::write(dir, &sim, &rep).expect("writes");
    rep
}

fn run(sc: &Scenario) -> Report {
    let mut quiet = Quiet;
    alkaid_topology_sim::run(sc, &Design::ALL, &mut quiet)
        .expect("runs")
        .1
}

#[test]
fn same_seed_same_report_bytes() {
    let sc = small();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_into(&sc, a.path());
    run_into(&sc, b.path());
    for f in [
        "report.json",
        "fanout.csv",
        "tables.csv",
        "timeseries.csv",
        "fanout.svg",
    ] {
        let x = std::fs::read(a.path().join(f)).unwrap();
        let y = std::fs::read(b.path().join(f)).unwrap();
        assert!(x == y, "{f} differs between two runs with the same seed");
    }
    let mut other = sc.clone();
    other.seed += 1;
    let c = tempfile::tempdir().unwrap();
    run_into(&other, c.path());
    assert_ne!(
        std::fs::read(a.path().join("report.json")).unwrap(),
        std::fs::read(c.path().join("report.json")).unwrap(),
        "another seed should give another run"
    );
}

#[test]
fn bouncer_fan_out_is_bounded_and_full_mesh_grows() {
    let mut sc = small();
    sc.failures.clear();
    let bound = 1.0 + f64::from(sc.subnets.bouncers);
    let mut mesh_means = Vec::new();
    for droplets in [20, 80] {
        sc.droplets = droplets;
        let r = run(&sc);
        let built = &r.fanout["built"];
        for d in [&built.setup_add, &built.churn_add] {
            assert!(d.count > 0);
            assert!(d.max <= bound, "built touched {} > {bound}", d.max);
        }
        assert!(built.churn_delete.max <= bound);
        mesh_means.push(r.fanout["full-mesh"].churn_add.mean);
    }
    assert!(
        mesh_means[1] > 2.0 * mesh_means[0] && mesh_means[0] > bound,
        "full mesh fan-out should grow with droplets: {mesh_means:?}"
    );
}

#[test]
fn after_failure_and_return_every_table_is_the_desired_table() {
    let sc = small();
    let r = run(&sc);
    let v = &r.verification;
    assert!(v.agent_tables_match && v.model_tables_match, "{v:?}");
    assert_eq!(v.droplets_checked, u64::from(sc.droplets));
    assert_eq!(v.version_gaps, 0);
    let f = &r.failures[0];
    assert_eq!(f.droplets.len(), sc.failures[0].droplets as usize);
    assert!(
        f.built.roles_moved_on_failure > 0,
        "role holders failed: roles must move"
    );
    assert_eq!(
        f.built.roles_moved_on_return, 0,
        "returning droplets take no roles back"
    );
    assert!(f.tables_right_after_detection_ms.is_some_and(|ms| ms > 0.0));
    assert!(f.tables_right_after_return_ms.is_some());
    assert!(f.resync_rows > 0);
    assert!(f.random.is_some());

    // Droplets that never return are left out of the check; the rest still match.
    let mut stay = sc.clone();
    stay.failures[0].return_at_s = None;
    let r = run(&stay);
    let v = &r.verification;
    assert!(v.agent_tables_match && v.model_tables_match, "{v:?}");
    assert_eq!(v.droplets_down, u64::from(stay.failures[0].droplets));
}

#[test]
fn traffic_mostly_takes_the_direct_path() {
    let r = run(&small());
    let t = &r.traffic;
    assert_eq!(t.flows, 2000);
    assert!(t.delivered > 0 && t.drops.is_empty(), "{:?}", t.drops);
    // 20 packets per flow: 19 of 20 go direct unless the flow is local.
    assert!(t.direct_share > 0.85, "direct share {}", t.direct_share);
    assert!(t.bouncer_load.count > 0 && t.divider_load.count > 0);
}

#[test]
fn report_files_exist_and_plots_are_svg_with_their_series() {
    let dir = tempfile::tempdir().unwrap();
    run_into(&small(), dir.path());
    let expect: &[(&str, &[&str])] = &[
        (
            "fanout.svg",
            &["built: endpoint add", "full mesh: endpoint add"],
        ),
        (
            "table_rows.svg",
            &["built (bouncers/dividers)", "full mesh"],
        ),
        (
            "table_bytes.svg",
            &["built (bouncers/dividers)", "full mesh"],
        ),
        (
            "convergence.svg",
            &["programmed: add", "Ready (acknowledged): add"],
        ),
        ("load.svg", &["bouncer", "divider", "direct path"]),
        ("recovery.svg", &["droplets down", "deltas in flight"]),
        ("placement.svg", &["built: max roles", "random: max roles"]),
    ];
    for (file, series) in expect {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let texts: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect();
        let lines = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .count();
        assert!(lines >= series.len(), "{file}: {lines} lines");
        for s in *series {
            assert!(
                texts.iter().any(|t| t.contains(s)),
                "{file}: no text containing {s:?}"
            );
        }
    }
    for f in [
        "report.json",
        "fanout.csv",
        "tables.csv",
        "convergence.csv",
        "load.csv",
        "timeseries.csv",
        "failures.csv",
    ] {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(text.lines().count() > 1, "{f} has no data rows");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    for key in [
        "fanout",
        "tables",
        "convergence",
        "traffic",
        "failures",
        "verification",
    ] {
        assert!(json.get(key).is_some(), "report.json lacks {key}");
    }
}
