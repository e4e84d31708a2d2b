//! Lab benchmarks (root; harness = false), printing `BENCH <name> <value> <unit>`:
//! - `lab_up_3` / `lab_up_8`: `alkaid lab up` wall time for 3 and 8 droplets;
//! - `pod_ready_p50` / `pod_ready_p99`: from `lab pod add` to the first ping answered from a
//!   pod on another droplet, over `ALKAID_BENCH_PODS` pods (default 50).
//!
//! Builds the sibling binaries (alkaid, alkaid-operator, alkaid-agent, alkaid-cni) into the
//! same target directory and profile first, so `cargo bench -p alkaid-cli` is all it takes.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    let exe = std::env::current_exe().expect("bench path");
    // target/<profile>/deps/lab-<hash> -> target/<profile>/alkaid
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join("alkaid")
}

fn run(lab: &str, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args(["--lab", lab])
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running alkaid")
}

fn ok(lab: &str, args: &[&str]) -> String {
    let o = run(lab, args);
    assert!(
        o.status.success(),
        "alkaid {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

struct Down(&'static str);
impl Drop for Down {
    fn drop(&mut self) {
        let _ = run(self.0, &["lab", "down"]);
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Builds the binaries the lab runs into this bench's own target directory and profile
/// (`cargo bench` builds only this crate's bench target, not the sibling binaries).
fn build_binaries() {
    let release = bin()
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|name| name == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut build = Command::new(cargo);
    build.args([
        "build",
        "-p",
        "alkaid-cli",
        "-p",
        "alkaid-operator",
        "-p",
        "alkaid-agent",
    ]);
    if release {
        build.arg("--release");
    }
    let status = build.status().expect("running cargo build");
    assert!(status.success(), "building the lab binaries failed");
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIP lab bench: needs root (network namespaces, XDP)");
        return;
    }
    build_binaries();
    for n in [3, 8] {
        let lab = if n == 3 { "bench-up3" } else { "bench-up8" };
        let _ = run(lab, &["lab", "down"]);
        let _d = Down(lab);
        let t = Instant::now();
        ok(lab, &["lab", "up", "--droplets", &n.to_string()]);
        println!("BENCH lab_up_{n} {:.2} s", t.elapsed().as_secs_f64());
    }
    let lab = "bench-pods";
    let _ = run(lab, &["lab", "down"]);
    let _d = Down(lab);
    ok(lab, &["lab", "up", "--droplets", "3"]);
    let f = std::env::temp_dir().join("alkaid-bench-vpc.yaml");
    std::fs::write(&f, "apiVersion: alkaid.dev/v1alpha1\nkind: Vpc\nmetadata: {name: blue}\nspec: {cidr: 10.0.0.0/16}\n---\napiVersion: alkaid.dev/v1alpha1\nkind: Subnet\nmetadata: {name: a}\nspec: {vpc: blue, cidr: 10.0.0.0/20}\n").expect("manifest");
    ok(lab, &["apply", "-f", f.to_str().expect("path")]);
    // The observer sits on the subnet's bouncer droplet, so its replies have a peer row
    // (see the ignored e2e cases for the no_peer_mac gap).
    let status: serde_json::Value =
        serde_json::from_str(&ok(lab, &["get", "subnet", "a", "-o", "json"])).expect("json");
    let bouncer = status["status"]["bouncers"][0]
        .as_str()
        .unwrap_or("d1")
        .to_string();
    let others: Vec<String> = ["d1", "d2", "d3"]
        .iter()
        .map(|s| s.to_string())
        .filter(|d| *d != bouncer)
        .collect();
    ok(
        lab,
        &[
            "lab",
            "pod",
            "add",
            "observer",
            "--droplet",
            &bouncer,
            "--vpc",
            "blue",
            "--subnet",
            "a",
        ],
    );
    let pods: usize = std::env::var("ALKAID_BENCH_PODS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let mut ms = Vec::new();
    for i in 0..pods {
        let name = format!("p{i}");
        let t = Instant::now();
        let out = ok(
            lab,
            &[
                "lab",
                "pod",
                "add",
                &name,
                "--droplet",
                &others[i % others.len()],
                "--vpc",
                "blue",
                "--subnet",
                "a",
                "-o",
                "json",
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        let ip = v["ip"].as_str().expect("ip").to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if run(
                lab,
                &[
                    "lab", "exec", "observer", "--", "ping", "-c1", "-W1", "-i0.2", &ip,
                ],
            )
            .status
            .success()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "pod {name} ({ip}) never answered"
            );
        }
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("BENCH pod_ready_p50 {:.1} ms", pct(&mut ms, 0.50));
    println!("BENCH pod_ready_p99 {:.1} ms", pct(&mut ms, 0.99));
}
