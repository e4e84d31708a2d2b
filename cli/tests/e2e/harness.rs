//! The e2e harness: each case brings up its own small lab (unique name, own state dir,
//! underlay and link tag) through the real `alkaid` binary, and a [`Lab`] guard tears it
//! down on drop, even when the case panics. Cases are serialized by a global lock (run
//! this binary with `--test-threads 1`; the lock keeps it safe regardless).

#![allow(dead_code, reason = "not every case uses every helper")]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

/// The `alkaid` binary under test.
pub fn alkaid_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_alkaid"))
}

/// Why this machine cannot run the suite (not root, sibling binaries missing), if so.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("e2e needs root (network namespaces, XDP, bpffs)".into());
    }
    let dir = alkaid_bin().parent().map(PathBuf::from).unwrap_or_default();
    for b in ["alkaid-operator", "alkaid-agent", "alkaid-cni"] {
        if !dir.join(b).is_file() {
            return Some(format!(
                "{} missing: `cargo build -p alkaid-operator -p alkaid-agent` first (cargo test --workspace builds them)",
                dir.join(b).display()
            ));
        }
    }
    None
}

/// A privileged test that cannot run here prints why and passes, unless
/// `ALKAID_REQUIRE_PRIVILEGED` is set (scripts/test.sh sets it when run as root, as in CI):
/// then it fails, so a missing setup step cannot pass as a skip.
pub fn skip(why: &str) {
    assert!(
        std::env::var_os("ALKAID_REQUIRE_PRIVILEGED").is_none(),
        "privileged test cannot run: {why} (ALKAID_REQUIRE_PRIVILEGED is set)"
    );
    eprintln!("SKIP: {why}");
}

/// A running lab, torn down on drop.
pub struct Lab {
    /// Lab name.
    pub name: String,
    _serial: MutexGuard<'static, ()>,
}

/// Fails loudly instead of skipping silently when the machine cannot run e2e. A third
/// argument passes more `lab up` flags (e.g. `&["--endpoint-hook", "xdp"]`).
macro_rules! lab_or_skip {
    ($name:expr, $droplets:expr) => {
        crate::harness::lab_or_skip!($name, $droplets, &[])
    };
    ($name:expr, $droplets:expr, $extra:expr) => {
        match crate::harness::unavailable() {
            Some(why) => {
                crate::harness::skip(&format!("{}: {why}", $name));
                return;
            }
            None => crate::harness::Lab::up_with($name, $droplets, $extra),
        }
    };
}
pub(crate) use lab_or_skip;

impl Lab {
    /// `alkaid lab up` for a lab called `e2e-<case>`.
    pub fn up(case: &str, droplets: u32) -> Lab {
        Self::up_with(case, droplets, &[])
    }

    /// [`Lab::up`] with more `lab up` flags (`extra`), e.g. the endpoint hook.
    pub fn up_with(case: &str, droplets: u32, extra: &[&str]) -> Lab {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let name = format!("e2e-{case}");
        let lab = Lab {
            name,
            _serial: serial,
        };
        // A previous crashed run may have left it behind.
        let _ = lab.run(&["lab", "down"]);
        let n = droplets.to_string();
        let mut args = vec!["lab", "up", "--droplets", &n, "--timeout", "60"];
        args.extend_from_slice(extra);
        let out = lab.run(&args);
        assert!(out.status.success(), "lab up failed:\n{}", text(&out));
        lab
    }

    /// Runs `alkaid --lab NAME ARGS...`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(alkaid_bin())
            .arg("--lab")
            .arg(&self.name)
            .args(args)
            .env_remove("ALKAID_SERVER")
            .env("RUST_BACKTRACE", "0")
            .output()
            .expect("running alkaid")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "alkaid {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Runs with `-o json` appended and parses.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("json output")
    }

    /// `alkaid apply -f` of inline YAML.
    pub fn apply(&self, yaml: &str) -> Output {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), yaml).expect("writing manifest");
        self.run(&["apply", "-f", f.path().to_str().expect("utf-8 path")])
    }

    /// Applies and asserts success.
    pub fn apply_ok(&self, yaml: &str) {
        let out = self.apply(yaml);
        assert!(out.status.success(), "apply failed:\n{}", text(&out));
    }

    /// Adds a pod and starts its echo server; returns the pod JSON.
    pub fn pod(&self, name: &str, droplet: &str, vpc: &str, subnet: &str) -> Value {
        self.pod_at(name, droplet, vpc, subnet, None)
    }

    /// [`Lab::pod`] asking for address `ip` if given.
    pub fn pod_at(
        &self,
        name: &str,
        droplet: &str,
        vpc: &str,
        subnet: &str,
        ip: Option<&str>,
    ) -> Value {
        let mut args = vec![
            "lab",
            "pod",
            "add",
            name,
            "--droplet",
            droplet,
            "--vpc",
            vpc,
            "--subnet",
            subnet,
        ];
        args.extend(ip.iter().flat_map(|ip| ["--ip", *ip]));
        let p = self.json(&args);
        self.ok(&["lab", "serve", name]);
        p
    }

    /// Who answers `proto` (tcp/udp/http) at `ip` from pod `from`.
    pub fn probe(&self, from: &str, proto: &str, ip: &str) -> Result<String, String> {
        let out = self.run(&[
            "lab",
            "probe",
            "--from",
            from,
            proto,
            ip,
            "--timeout-ms",
            "1500",
        ]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(text(&out))
        }
    }

    /// Whether one ping from `from` to `ip` is answered.
    pub fn ping(&self, from: &str, ip: &str) -> bool {
        self.run(&["lab", "exec", from, "--", "ping", "-c1", "-W1", ip])
            .status
            .success()
    }

    /// Asserts that `to` answers `from` (and back) by name over ping, TCP, UDP and HTTP.
    pub fn assert_pair(&self, a: (&str, &str), b: (&str, &str)) {
        for ((from, _), (to, to_ip)) in [(a, b), (b, a)] {
            assert!(
                self.ping(from, to_ip),
                "ping {from} -> {to} ({to_ip}) failed"
            );
            for proto in ["tcp", "udp", "http"] {
                let who = self.probe(from, proto, to_ip);
                assert_eq!(
                    who.as_deref(),
                    Ok(to),
                    "{proto} {from} -> {to_ip}: expected {to} to answer"
                );
            }
        }
    }

    /// Every droplet's tables.
    pub fn tables(&self, droplet: &str) -> Value {
        self.json(&["lab", "tables", droplet])
    }

    /// A verdict or drop counter of `droplet`'s data plane (summed over CPUs).
    pub fn counter(&self, droplet: &str, name: &str) -> u64 {
        self.tables(droplet)["counters"][name].as_u64().unwrap_or(0)
    }

    /// After the pair (pods on droplets `pair`, the subnet's bouncer on `bouncer`) has talked:
    /// 20 more pings from pod `from` to `to_ip`, none retargeted by the bouncer, every request
    /// and reply encapsulated straight to the other droplet (the counters prove it).
    pub fn assert_direct_after_first_packets(
        &self,
        bouncer: &str,
        pair: [&str; 2],
        from: &str,
        to_ip: &str,
    ) {
        let counters = || {
            (
                self.counter(bouncer, "bouncer_retarget"),
                self.counter(pair[0], "encap_direct"),
                self.counter(pair[1], "encap_direct"),
            )
        };
        let before = counters();
        let out = self.ok(&[
            "lab", "exec", from, "--", "ping", "-c", "20", "-i", "0.05", "-W", "1", to_ip,
        ]);
        assert!(out.contains("20 received"), "{out}");
        let after = counters();
        assert_eq!(
            after.0, before.0,
            "the bouncer retargeted packets of a pair that already talks directly"
        );
        assert!(
            after.1 >= before.1 + 20 && after.2 >= before.2 + 20,
            "requests and replies not all sent droplet to droplet: {before:?} -> {after:?}"
        );
    }

    /// Droplet names.
    pub fn droplets(&self) -> Vec<String> {
        let s = self.json(&["lab", "status"]);
        s["droplets"]
            .as_array()
            .expect("droplets")
            .iter()
            .map(|d| d["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// `get KIND NAME -o json`.
    pub fn get(&self, kind: &str, name: &str) -> Value {
        self.json(&["get", kind, name])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.run(&["lab", "down"]);
        if !out.status.success() {
            eprintln!("lab down of {} failed:\n{}", self.name, text(&out));
        }
    }
}

/// stdout and stderr of a command.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Polls `f` until it returns `Some`, or panics after `within` naming `what`.
pub fn wait_for<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A VPC and subnets as YAML.
pub fn vpc_yaml(vpc: &str, cidr: &str, dividers: u32, subnets: &[(&str, &str, u32)]) -> String {
    let mut y = format!(
        "apiVersion: alkaid.dev/v1alpha1\nkind: Vpc\nmetadata: {{name: {vpc}}}\nspec: {{cidr: {cidr}, dividers: {dividers}}}\n"
    );
    for (name, c, bouncers) in subnets {
        y.push_str(&format!(
            "---\napiVersion: alkaid.dev/v1alpha1\nkind: Subnet\nmetadata: {{name: {name}}}\nspec: {{vpc: {vpc}, cidr: {c}, bouncers: {bouncers}}}\n"
        ));
    }
    y
}

/// Rows of every droplet's maps with `vni` (and, if given, `ip`).
pub fn rows_with(lab: &Lab, vni: u64, ip: Option<&str>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for d in lab.droplets() {
        let t = lab.tables(&d);
        for r in t["rows"].as_array().into_iter().flatten() {
            if r["vni"].as_u64() == Some(vni) && ip.is_none_or(|ip| r["ip"].as_str() == Some(ip)) {
                out.push((d.clone(), r.clone()));
            }
        }
    }
    out
}
