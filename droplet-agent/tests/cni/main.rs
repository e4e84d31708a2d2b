//! Privileged: the real `alkaid-cni` binary run as a container runtime runs it, against an
//! in-test agent CNI server (fake allocator, fake data plane), with real netns and veths.
//! Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN); skips with a message otherwise.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use alkaid_agent::alloc::FakeAllocator;
use alkaid_agent::cni::server;
use alkaid_agent::dataplane::{Dataplane, FakeDataplane};
use alkaid_agent::endpoint::{ENCAP_OVERHEAD, Endpoints, EndpointsConfig, host_ifname};
use alkaid_agent::netlink;
use alkaid_agent::netns::NamedNetns;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::oneshot;

const UNDERLAY_MTU: u32 = 1500;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A privileged test that cannot run here prints why and passes, unless
/// `ALKAID_REQUIRE_PRIVILEGED` is set (scripts/test.sh sets it when run as root, as in CI):
/// then it fails, so a missing setup step cannot pass as a skip.
fn skip(why: &str) {
    assert!(
        std::env::var_os("ALKAID_REQUIRE_PRIVILEGED").is_none(),
        "privileged test cannot run: {why} (ALKAID_REQUIRE_PRIVILEGED is set)"
    );
    eprintln!("SKIP: {why}");
}

macro_rules! require_root {
    () => {
        if !is_root() {
            skip("needs root (netns, veth)");
            return;
        }
    };
}

/// Deletes a host link on drop, even on panic.
struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        netlink::delete_host_links_blocking(vec![self.0.clone()]);
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    state_dir: PathBuf,
    alloc: Arc<FakeAllocator>,
    dataplane: Arc<FakeDataplane>,
    ns: NamedNetns,
    container: String,
    _link: LinkGuard,
    _stop: oneshot::Sender<()>,
}

impl Harness {
    async fn start(tag: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("cni.sock");
        let state_dir = dir.path().join("state");
        let pid = std::process::id();
        let ns = NamedNetns::create(&format!("alkcni-{pid}-{tag}")).unwrap();
        let container = format!("ctr{pid}{tag}");
        let link = LinkGuard(host_ifname(&container, "eth0"));
        let alloc = Arc::new(FakeAllocator::new("10.77.0.0/24".parse().unwrap(), 7001));
        let dataplane = Arc::new(FakeDataplane::new());
        let host = netlink::connect(Path::new("/")).unwrap();
        let eps = Arc::new(Endpoints::new(
            EndpointsConfig {
                state_dir: state_dir.clone(),
                mtu: UNDERLAY_MTU - ENCAP_OVERHEAD,
                pod_tx_checksum_off: true,
            },
            Arc::clone(&alloc),
            Arc::clone(&dataplane),
            host,
        ));
        let listener = server::bind(&socket).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server::serve(listener, eps, async move {
            let _ = stopped.await;
        }));
        Self {
            _dir: dir,
            socket,
            state_dir,
            alloc,
            dataplane,
            ns,
            container,
            _link: link,
            _stop: stop,
        }
    }

    fn conf(&self) -> String {
        serde_json::json!({
            "cniVersion": "1.0.0", "name": "alkaid", "type": "alkaid-cni",
            "agentSocket": self.socket,
        })
        .to_string()
    }

    fn env(&self, cmd: &str) -> Vec<(String, String)> {
        [
            ("CNI_COMMAND", cmd.to_string()),
            ("CNI_CONTAINERID", self.container.clone()),
            ("CNI_NETNS", self.ns.path().display().to_string()),
            ("CNI_IFNAME", "eth0".to_string()),
            ("CNI_PATH", "/opt/cni/bin".to_string()),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=team;K8S_POD_NAME=web-0".to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    async fn nothing_changed(&self) {
        assert!(
            self.alloc.allocated().is_empty(),
            "allocations: {:?}",
            self.alloc.allocated()
        );
        assert!(self.dataplane.endpoints().unwrap().is_empty());
        let records = std::fs::read_dir(&self.state_dir)
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(records, 0, "records left in {}", self.state_dir.display());
        assert!(
            netlink::inspect(self.ns.path(), "eth0")
                .await
                .unwrap()
                .is_none()
        );
        let host = netlink::connect(Path::new("/")).unwrap();
        let hostif = host_ifname(&self.container, "eth0");
        assert!(
            netlink::link_by_name(&host, &hostif)
                .await
                .unwrap()
                .is_none()
        );
    }
}

/// Runs the real plugin binary exactly as a runtime does: env vars and config on stdin.
async fn run_cni(env: &[(String, String)], stdin: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_alkaid-cni"))
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("plugin finished within 60 s")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn assert_error(out: &(i32, String), code: u64) -> Value {
    assert_ne!(out.0, 0, "expected failure, got {}", out.1);
    let v: Value = serde_json::from_str(&out.1).unwrap_or_else(|e| panic!("{e}: {:?}", out.1));
    assert_eq!(v["code"], code, "{v}");
    assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v["cniVersion"].is_string(), "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_check_del_roundtrip() {
    require_root!();
    let h = Harness::start("rt").await;
    let out = run_cni(&h.env("ADD"), &h.conf()).await;
    assert_eq!(out.0, 0, "ADD failed: {}", out.1);
    let r: Value = serde_json::from_str(&out.1).unwrap();
    assert_eq!(r["cniVersion"], "1.0.0");
    let ifs = r["interfaces"].as_array().unwrap();
    assert_eq!(ifs.len(), 2);
    assert_eq!(ifs[0]["name"], host_ifname(&h.container, "eth0"));
    assert!(ifs[0].get("sandbox").is_none());
    assert_eq!(ifs[1]["name"], "eth0");
    assert_eq!(ifs[1]["sandbox"], h.ns.path().display().to_string());
    assert_eq!(r["ips"][0]["address"], "10.77.0.2/24");
    assert_eq!(r["ips"][0]["gateway"], "10.77.0.1");
    assert_eq!(r["ips"][0]["interface"], 1);
    assert_eq!(r["routes"][0]["dst"], "0.0.0.0/0");
    assert_eq!(r["routes"][0]["gw"], "10.77.0.1");
    assert!(r["dns"].is_object());

    let st = netlink::inspect(h.ns.path(), "eth0")
        .await
        .unwrap()
        .expect("eth0 in the netns");
    assert_eq!(
        alkaid_agent::pb::format_mac(&st.mac),
        ifs[1]["mac"].as_str().unwrap()
    );
    assert_eq!(st.mtu, UNDERLAY_MTU - ENCAP_OVERHEAD);
    assert!(st.up);
    assert_eq!(st.addresses, vec!["10.77.0.2/24".parse().unwrap()]);
    let gw = Some("10.77.0.1".parse().unwrap());
    assert!(
        st.routes.contains(&("0.0.0.0/0".parse().unwrap(), gw)),
        "{:?}",
        st.routes
    );
    assert!(
        st.routes.contains(&("10.77.0.0/24".parse().unwrap(), None)),
        "{:?}",
        st.routes
    );
    assert!(
        !st.tx_checksum,
        "tx checksum offload must be off in the pod"
    );
    assert!(
        st.unsupported_gso.is_empty(),
        "segmentation the encapsulation cannot carry is on in the pod: {:?}",
        st.unsupported_gso
    );
    // The names are real: the host end, which the agent leaves alone, still offers them.
    let host_end = netlink::inspect(
        Path::new("/proc/self/ns/net"),
        &host_ifname(&h.container, "eth0"),
    )
    .await
    .unwrap()
    .expect("host end");
    assert!(
        host_end
            .unsupported_gso
            .iter()
            .any(|f| f == "tx-udp_tnl-segmentation"),
        "{:?}",
        host_end.unsupported_gso
    );
    let lo = netlink::inspect(h.ns.path(), "lo").await.unwrap().unwrap();
    assert!(lo.up);
    let host = netlink::connect(Path::new("/")).unwrap();
    let hostif = netlink::link_by_name(&host, &host_ifname(&h.container, "eth0"))
        .await
        .unwrap();
    assert!(hostif.is_some());
    let att = h.dataplane.endpoints().unwrap();
    assert_eq!(att.len(), 1);
    let socket = h.socket.clone();
    let dump = tokio::task::spawn_blocking(move || {
        alkaid_agent::cni::dump::request(&socket, Duration::from_secs(10))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(dump.endpoints, att, "DUMP shows the attached endpoint");
    assert_eq!(att[0].vni, 7001);
    assert_eq!(h.alloc.allocated().len(), 1);
    assert!(
        h.alloc
            .allocated()
            .contains_key(&("team".to_string(), "web-0".to_string()))
    );

    let mut check_conf: Value = serde_json::from_str(&h.conf()).unwrap();
    check_conf["prevResult"] = r.clone();
    let out = run_cni(&h.env("CHECK"), &check_conf.to_string()).await;
    assert_eq!(out, (0, String::new()), "CHECK");

    let out = run_cni(&h.env("DEL"), &h.conf()).await;
    assert_eq!(out, (0, String::new()), "DEL");
    h.nothing_changed().await;
    let out = run_cni(&h.env("DEL"), &h.conf()).await;
    assert_eq!(out, (0, String::new()), "second DEL is idempotent");
    let mut no_netns = h.env("DEL");
    no_netns.retain(|(k, _)| k != "CNI_NETNS");
    assert_eq!(
        run_cni(&no_netns, &h.conf()).await.0,
        0,
        "DEL without CNI_NETNS"
    );
    assert_error(&run_cni(&h.env("CHECK"), &h.conf()).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_detects_tampering() {
    require_root!();
    let h = Harness::start("tamper").await;
    assert_eq!(run_cni(&h.env("ADD"), &h.conf()).await.0, 0);
    let ns = h.ns.path().to_path_buf();
    netlink::in_netns(&ns, |nl| async move {
        let link = netlink::link_by_name(&nl, "eth0").await?.expect("eth0");
        nl.link()
            .set(link.header.index)
            .mtu(1300)
            .execute()
            .await
            .map_err(|e| alkaid_agent::Error::netlink("set mtu", "eth0", e))
    })
    .await
    .unwrap();
    let v = assert_error(&run_cni(&h.env("CHECK"), &h.conf()).await, 103);
    assert!(v["msg"].as_str().unwrap().contains("mtu"), "{v}");
    assert_eq!(run_cni(&h.env("DEL"), &h.conf()).await.0, 0);
    h.nothing_changed().await;

    // Tunnel segmentation turned back on in the pod (test scaffolding: the ethtool command).
    assert_eq!(run_cni(&h.env("ADD"), &h.conf()).await.0, 0);
    let on = std::process::Command::new("ip")
        .args(["netns", "exec", h.ns.name(), "ethtool", "-K", "eth0"])
        .args(["tx-udp_tnl-segmentation", "on"])
        .status()
        .expect("ethtool");
    assert!(on.success());
    let v = assert_error(&run_cni(&h.env("CHECK"), &h.conf()).await, 103);
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("tx-udp_tnl-segmentation"),
        "{v}"
    );
    assert_eq!(run_cni(&h.env("DEL"), &h.conf()).await.0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_spec_errors_and_changes_nothing() {
    require_root!();
    let h = Harness::start("bad").await;
    let without = |k: &str| {
        let mut e = h.env("ADD");
        e.retain(|(n, _)| n != k);
        e
    };
    assert_error(&run_cni(&h.env("ADD"), "{\"cniVersion\": ").await, 6);
    assert_error(&run_cni(&h.env("ADD"), "").await, 6);
    let v = assert_error(
        &run_cni(
            &h.env("ADD"),
            r#"{"cniVersion":"0.1.0","name":"n","type":"alkaid-cni"}"#,
        )
        .await,
        1,
    );
    assert!(v["details"].as_str().unwrap().contains("1.0.0"), "{v}");
    assert_error(
        &run_cni(
            &h.env("ADD"),
            r#"{"cniVersion":"1.0.0","type":"alkaid-cni"}"#,
        )
        .await,
        7,
    );
    for var in ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
        let v = assert_error(&run_cni(&without(var), &h.conf()).await, 4);
        assert!(v["details"].as_str().unwrap().contains(var), "{var}: {v}");
    }
    let mut gone = h.env("ADD");
    gone.retain(|(k, _)| k != "CNI_NETNS");
    gone.push((
        "CNI_NETNS".into(),
        "/var/run/netns/alkaid-no-such-netns".into(),
    ));
    assert_error(&run_cni(&gone, &h.conf()).await, 4);
    h.nothing_changed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_down_is_try_again_and_version_needs_no_agent() {
    require_root!();
    let h = Harness::start("down").await;
    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "alkaid", "type": "alkaid-cni",
        "agentSocket": h.socket.with_file_name("absent.sock"),
    })
    .to_string();
    assert_error(&run_cni(&h.env("ADD"), &conf).await, 11);
    let out = run_cni(
        &[("CNI_COMMAND".into(), "VERSION".into())],
        r#"{"cniVersion":"1.0.0"}"#,
    )
    .await;
    assert_eq!(out.0, 0);
    let v: Value = serde_json::from_str(&out.1).unwrap();
    assert_eq!(
        v["supportedVersions"],
        serde_json::json!(["0.4.0", "1.0.0"])
    );
    h.nothing_changed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_agent_restores_attachments_from_records() {
    require_root!();
    let h = Harness::start("restore").await;
    assert_eq!(run_cni(&h.env("ADD"), &h.conf()).await.0, 0);
    // A new agent process: same state dir, empty data plane.
    let fresh = Arc::new(FakeDataplane::new());
    let eps = Endpoints::new(
        EndpointsConfig {
            state_dir: h.state_dir.clone(),
            mtu: UNDERLAY_MTU - ENCAP_OVERHEAD,
            pod_tx_checksum_off: true,
        },
        Arc::new(FakeAllocator::new("10.77.0.0/24".parse().unwrap(), 7001)),
        Arc::clone(&fresh),
        netlink::connect(Path::new("/")).unwrap(),
    );
    assert_eq!(eps.restore().await.unwrap(), 1);
    assert_eq!(fresh.endpoints().unwrap(), h.dataplane.endpoints().unwrap());
    assert_eq!(run_cni(&h.env("DEL"), &h.conf()).await.0, 0);
    // Its veth is gone now: nothing to restore.
    let again = Arc::new(FakeDataplane::new());
    let eps = Endpoints::new(
        EndpointsConfig {
            state_dir: h.state_dir.clone(),
            mtu: 1442,
            pod_tx_checksum_off: true,
        },
        Arc::new(FakeAllocator::new("10.77.0.0/24".parse().unwrap(), 7001)),
        Arc::clone(&again),
        netlink::connect(Path::new("/")).unwrap(),
    );
    assert_eq!(eps.restore().await.unwrap(), 0);
    h.nothing_changed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_add_is_undone_and_a_retry_succeeds() {
    require_root!();
    let h = Harness::start("undo").await;
    // The data plane refuses the attach after the veth exists: everything is rolled back.
    h.dataplane.fail_attach();
    let v = assert_error(&run_cni(&h.env("ADD"), &h.conf()).await, 100);
    assert!(v["msg"].as_str().unwrap().contains("attach"), "{v}");
    h.nothing_changed().await;
    // The operator refuses the address: nothing is created at all.
    h.dataplane.heal();
    let mut e = h.env("ADD");
    e.retain(|(k, _)| k != "CNI_ARGS");
    e.push((
        "CNI_ARGS".into(),
        "K8S_POD_NAMESPACE=team;K8S_POD_NAME=web-0;IP=10.99.0.1".into(),
    ));
    assert_error(&run_cni(&e, &h.conf()).await, 101);
    h.nothing_changed().await;
    // The runtime retries ADD: it works, and DEL cleans up.
    assert_eq!(run_cni(&h.env("ADD"), &h.conf()).await.0, 0);
    assert_eq!(run_cni(&h.env("DEL"), &h.conf()).await.0, 0);
    h.nothing_changed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_waits_until_the_endpoint_rows_are_programmed() {
    require_root!();
    let h = Harness::start("prog").await;
    let (tx, rx) = tokio::sync::watch::channel(alkaid_agent::grpc::Status::default());
    // A second server over the same state: ADD must wait for table version 5.
    let eps = Arc::new(
        Endpoints::new(
            EndpointsConfig {
                state_dir: h.state_dir.clone(),
                mtu: 1442,
                pod_tx_checksum_off: true,
            },
            Arc::clone(&h.alloc),
            Arc::clone(&h.dataplane),
            netlink::connect(Path::new("/")).unwrap(),
        )
        .wait_programmed(rx, Duration::from_secs(30)),
    );
    let socket = h.socket.with_file_name("waiting.sock");
    let listener = server::bind(&socket).unwrap();
    tokio::spawn(server::serve(listener, eps, std::future::pending()));
    h.alloc.set_droplet_version(5);
    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "alkaid", "type": "alkaid-cni", "agentSocket": socket,
    })
    .to_string();
    let env = h.env("ADD");
    let add = tokio::spawn(async move { run_cni(&env, &conf).await });
    // The veth is up and attached while ADD still waits for the stream.
    let attached = tokio::time::timeout(Duration::from_secs(30), async {
        while h.dataplane.endpoints().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    attached.await.expect("attached in time");
    assert!(
        !add.is_finished(),
        "ADD answered before its rows were programmed"
    );
    tx.send_modify(|s| s.version = 5);
    let out = tokio::time::timeout(Duration::from_secs(30), add)
        .await
        .expect("ADD done")
        .unwrap();
    assert_eq!(out.0, 0, "{}", out.1);
    assert_eq!(run_cni(&h.env("DEL"), &h.conf()).await.0, 0);
    h.nothing_changed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn del_without_a_record_releases_by_name() {
    require_root!();
    let h = Harness::start("norec").await;
    let out = run_cni(&h.env("ADD"), &h.conf()).await;
    assert_eq!(out.0, 0, "ADD failed: {}", out.1);
    assert_eq!(h.alloc.allocated().len(), 1);
    // The record is lost (a wiped state dir, an ADD that died before writing it).
    for f in std::fs::read_dir(&h.state_dir).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let out = run_cni(&h.env("DEL"), &h.conf()).await;
    assert_eq!(out, (0, String::new()), "DEL without a record");
    // Released by (namespace, name): a pod recreated under the same name gets a fresh one.
    assert!(
        h.alloc.allocated().is_empty(),
        "still allocated: {:?}",
        h.alloc.allocated()
    );
    let out = run_cni(&h.env("DEL"), &h.conf()).await;
    assert_eq!(
        out,
        (0, String::new()),
        "releasing a missing endpoint is success"
    );
    let host = netlink::connect(Path::new("/")).unwrap();
    assert!(
        netlink::link_by_name(&host, &host_ifname(&h.container, "eth0"))
            .await
            .unwrap()
            .is_none(),
        "the host veth went with DEL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_del_without_a_record_spares_a_recreated_pods_endpoint() {
    require_root!();
    let h = Harness::start("late").await;
    let out = run_cni(&h.env("ADD"), &h.conf()).await;
    assert_eq!(out.0, 0, "ADD of the old container failed: {}", out.1);
    for f in std::fs::read_dir(&h.state_dir).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    // The pod is recreated under the same name (new container, new netns) before the old
    // container's DEL arrives.
    let pid = std::process::id();
    let ns2 = NamedNetns::create(&format!("alkcni-{pid}-late2")).unwrap();
    let new_ctr = format!("ctr{pid}late2");
    let _link2 = LinkGuard(host_ifname(&new_ctr, "eth0"));
    let with = |cmd: &str, ctr: &str, ns: &Path| {
        let mut env = h.env(cmd);
        for (k, v) in &mut env {
            match k.as_str() {
                "CNI_CONTAINERID" => *v = ctr.to_string(),
                "CNI_NETNS" => *v = ns.display().to_string(),
                _ => {}
            }
        }
        env
    };
    let out = run_cni(&with("ADD", &new_ctr, ns2.path()), &h.conf()).await;
    assert_eq!(out.0, 0, "ADD of the new container failed: {}", out.1);
    let out = run_cni(&h.env("DEL"), &h.conf()).await;
    assert_eq!(out, (0, String::new()), "late DEL of the old container");
    assert_eq!(
        h.alloc.allocated().len(),
        1,
        "the recreated pod keeps its endpoint"
    );
    let out = run_cni(&with("DEL", &new_ctr, ns2.path()), &h.conf()).await;
    assert_eq!(out, (0, String::new()), "DEL of the new container");
    assert!(h.alloc.allocated().is_empty());
}
