//! The `topology-sim` binary: validate, run, predict-tables, and its errors.

use std::process::{Command, Output};

use super::small_path;

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_topology-sim"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn validate_describes_the_scenario() {
    let out = sim(&["validate", small_path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("ok: 40 droplets") && s.contains("240 endpoints"),
        "{s}"
    );
}

#[test]
fn a_bad_scenario_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "seed: 1\ndroplets: 4\nvpcs: {count: 1, cidr: 10.0.0.0/16}\n\
         subnets: {per_vpc: 1, prefix: 24, bouncers: 0}\nendpoints: {per_subnet: 1}\n",
    )
    .unwrap();
    let out = sim(&["validate", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("subnets.bouncers") && err.contains("use 1 to 16"),
        "{err}"
    );
    let out = sim(&["validate", "/nonexistent/scenario.yaml"]);
    assert!(text(&out.stderr).contains("cannot read scenario"));
    let out = sim(&[
        "run",
        bad.to_str().unwrap(),
        "--out",
        "x",
        "--designs",
        "ring",
    ]);
    assert!(text(&out.stderr).contains("unknown design \"ring\""));
}

#[test]
fn run_writes_the_reports_and_a_seed_override_changes_them() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let p = small_path();
    let p = p.to_str().unwrap();
    let out = sim(&["run", p, "--out", a.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("droplets touched per endpoint add"));
    let out = sim(&[
        "run",
        p,
        "--out",
        b.to_str().unwrap(),
        "--seed",
        "99",
        "--designs",
        "built",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rb = std::fs::read_to_string(b.join("report.json")).unwrap();
    assert!(rb.contains("\"seed\": 99"));
    assert!(
        !rb.contains("\"full-mesh\""),
        "only the built design was asked for"
    );
    assert!(a.join("fanout.svg").exists() && b.join("recovery.svg").exists());
}

#[test]
fn predict_tables_prints_rows_with_their_vni() {
    let out = sim(&[
        "predict-tables",
        small_path().to_str().unwrap(),
        "--droplet",
        "3",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["droplet"], "droplet-000003");
    let rows = v["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    let maps: std::collections::BTreeSet<&str> =
        rows.iter().filter_map(|r| r["map"].as_str()).collect();
    assert!(
        maps.contains("ENDPOINTS") && maps.contains("PEERS"),
        "{maps:?}"
    );
    for r in rows {
        let vni = r["vni"].as_u64().expect("every row has a vni");
        assert_eq!(vni == 0, r["map"] == "PEERS", "{r}");
    }
    let out = sim(&[
        "predict-tables",
        small_path().to_str().unwrap(),
        "--droplet",
        "nope",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("unknown droplet \"nope\""));
}
