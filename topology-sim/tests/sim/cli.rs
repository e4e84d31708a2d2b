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

#[test]
fn predict_tables_from_an_explicit_world() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world.json");
    let vpc = serde_json::json!({"apiVersion": "alkaid.dev/v1alpha1", "kind": "Vpc",
        "metadata": {"name": "blue"}, "spec": {"cidr": "10.0.0.0/16", "dividers": 1}});
    let subnet = serde_json::json!({"apiVersion": "alkaid.dev/v1alpha1", "kind": "Subnet",
        "metadata": {"name": "blue-a"}, "spec": {"vpc": "blue", "cidr": "10.0.1.0/24", "bouncers": 2}});
    let w = serde_json::json!({
        "droplets": [
            {"name": "d1", "ip": "10.99.0.2", "mac": "02:00:0a:63:00:02"},
            {"name": "d2", "ip": "10.99.0.3", "mac": "02:00:0a:63:00:03"},
        ],
        "steps": [
            {"apply": vpc},
            {"apply": subnet},
            {"endpoint": {"name": "b1", "vpc": "blue", "subnet": "blue-a", "droplet": "d2", "ip": "10.0.1.7"}},
        ],
    });
    std::fs::write(&world, w.to_string()).unwrap();
    let world = world.to_str().unwrap();
    let out = sim(&["predict-tables", "--world", world, "--droplet", "d2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["droplet"], "d2");
    let rows = v["rows"].as_array().unwrap();
    let local: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["map"] == "ENDPOINTS" && r["local"] == true)
        .collect();
    assert_eq!(local.len(), 1, "{rows:?}");
    assert_eq!(local[0]["ip"], "10.0.1.7");
    assert!(
        rows.iter()
            .any(|r| r["map"] == "PEERS" && r["ip"] == "10.99.0.2")
    );

    let out = sim(&["predict-tables", "--world", world, "--droplet", "d9"]);
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("unknown droplet \"d9\"") && e.contains("d1"),
        "{e}"
    );
    let out = sim(&[
        "predict-tables",
        small_path().to_str().unwrap(),
        "--world",
        world,
        "--droplet",
        "d1",
    ]);
    assert!(!out.status.success(), "a scenario and a world at once");
}
