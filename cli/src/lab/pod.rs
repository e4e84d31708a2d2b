//! `alkaid lab pod add|del|list` and `lab exec`.
//!
//! A pod is a network namespace wired by the real `alkaid-cni` binary, invoked exactly as a
//! container runtime invokes a CNI plugin: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
//! `CNI_IFNAME=eth0`, `CNI_PATH`, `CNI_ARGS` (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `IP`) in
//! the environment and the network configuration as JSON on stdin; it runs inside the
//! droplet's netns and talks to that droplet's agent over its unix socket.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use alkaid_proto::v1 as pb;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use super::state::{DropletState, PodState};
use super::{Lab, State, net, sys};
use crate::client::Target;
use crate::error::{Error, Result};
use crate::output;

/// What `lab pod add` was asked for.
#[derive(Clone, Debug, Default)]
pub struct PodSpec {
    /// Pod name.
    pub name: String,
    /// Hosting droplet.
    pub droplet: String,
    /// VPC.
    pub vpc: Option<String>,
    /// Subnet.
    pub subnet: Option<String>,
    /// Fixed address.
    pub ip: Option<std::net::Ipv4Addr>,
    /// Kubernetes-style namespace.
    pub namespace: String,
}

/// The JSON shape of a pod (`lab pod add -o json`, `lab status -o json`).
pub fn pod_json(p: &PodState) -> Value {
    json!({
        "name": p.name, "namespace": p.namespace, "ip": p.ip, "address": p.address,
        "gateway": p.gateway, "mac": p.mac, "netns": p.netns, "droplet": p.droplet,
        "vpc": p.vpc, "subnet": p.subnet, "containerId": p.container_id,
    })
}

/// A table of pods.
pub fn render_list(pods: &[Value]) -> String {
    let t = output::text;
    let rows: Vec<Vec<String>> = pods
        .iter()
        .map(|p| {
            vec![
                t(&p["name"]),
                t(&p["ip"]),
                t(&p["mac"]),
                t(&p["droplet"]),
                t(&p["vpc"]),
                t(&p["subnet"]),
                t(&p["netns"]),
            ]
        })
        .collect();
    output::table(
        &["POD", "IP", "MAC", "DROPLET", "VPC", "SUBNET", "NETNS"],
        &rows,
    )
}

fn network_config(d: &DropletState, spec: &PodSpec) -> Value {
    let mut conf = json!({
        "cniVersion": "1.0.0",
        "name": "alkaid",
        "type": "alkaid-cni",
        "agentSocket": d.cni_socket,
    });
    if let Some(v) = &spec.vpc {
        conf["vpc"] = json!(v);
    }
    if let Some(s) = &spec.subnet {
        conf["subnet"] = json!(s);
    }
    conf
}

/// Runs `alkaid-cni` inside the droplet's netns; returns its stdout on success.
async fn cni(
    st: &State,
    d: &DropletState,
    command: &str,
    container_id: &str,
    netns: &Path,
    spec: &PodSpec,
) -> Result<Value> {
    let plugin = st.bin_dir.join("alkaid-cni");
    let me = std::env::current_exe().map_err(|e| Error::io("finding", "alkaid", e))?;
    let mut args = format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={}",
        spec.namespace, spec.name
    );
    if let Some(ip) = spec.ip {
        args.push_str(&format!(";IP={ip}"));
    }
    let mut child = tokio::process::Command::new(me)
        .arg("lab")
        .arg("netns-exec")
        .arg(&d.netns_path)
        .arg("--")
        .arg(&plugin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container_id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", &st.bin_dir)
        .env("CNI_ARGS", args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::io("running", &plugin, e))?;
    let conf = serde_json::to_vec(&network_config(d, spec)).unwrap_or_default();
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&conf)
            .await
            .map_err(|e| Error::io("writing CNI config to", &plugin, e))?;
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .map_err(|_| Error::Timeout {
            what: format!("alkaid-cni {command}"),
            secs: 60,
        })?
        .map_err(|e| Error::io("running", &plugin, e))?;
    let stdout: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if out.status.success() {
        return Ok(stdout);
    }
    let msg = if stdout.is_object() {
        format!(
            "code {}: {}{}",
            output::text(&stdout["code"]),
            output::text(&stdout["msg"]),
            stdout
                .get("details")
                .map(|d| format!(": {}", output::text(d)))
                .unwrap_or_default()
        )
    } else {
        String::from_utf8_lossy(&out.stderr).trim().to_string()
    };
    Err(Error::Lab(format!(
        "CNI {command} of pod {} on {} failed ({msg})",
        spec.name, d.name
    )))
}

async fn endpoint(st: &State, ns: &str, name: &str) -> Option<pb::EndpointSpec> {
    let target = Target {
        addrs: st.control_addrs(),
        tls: st.tls.clone(),
    };
    let fut = async {
        let mut api = target.connect().await.ok()?;
        let r = api
            .get(pb::GetRequest {
                kind: pb::Kind::Endpoint as i32,
                name: name.into(),
                namespace: ns.into(),
                stale: false,
            })
            .await
            .ok()?
            .into_inner();
        match r.resource?.kind? {
            pb::resource::Kind::Endpoint(e) => e.spec,
            _ => None,
        }
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}

/// `lab pod add`: netns + CNI ADD; the pod's record is saved in the state file.
///
/// # Errors
/// The CNI error (code and message) or netns failures; nothing is left behind on failure.
pub async fn add(lab: &Lab, spec: &PodSpec) -> Result<PodState> {
    super::require_root()?;
    let st = lab.state()?;
    if let Some(p) = st.pods.iter().find(|p| p.name == spec.name) {
        if p.droplet == spec.droplet {
            return Ok(p.clone());
        }
        return Err(Error::Lab(format!(
            "pod {} already exists on {}: delete it first",
            spec.name, p.droplet
        )));
    }
    let d = st.droplet(&spec.droplet)?.clone();
    let ns_name = lab.pod_netns(&spec.name);
    let netns = sys::create_netns(&ns_name)?;
    let container_id = format!("{}-{}", lab.name, spec.name);
    let result = async {
        net::lo_up(&netns).await?;
        cni(&st, &d, "ADD", &container_id, &netns, spec).await
    }
    .await;
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = sys::delete_netns(&ns_name);
            return Err(e);
        }
    };
    let address = output::text(&result["ips"][0]["address"]);
    let ip = address.split('/').next().unwrap_or_default().to_string();
    let mac = result["interfaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i.get("sandbox").is_some_and(|s| !s.is_null()))
        .map(|i| output::text(&i["mac"]))
        .unwrap_or_default();
    let ep = endpoint(&st, &spec.namespace, &spec.name)
        .await
        .unwrap_or_default();
    let pod = PodState {
        name: spec.name.clone(),
        namespace: spec.namespace.clone(),
        ip,
        address,
        gateway: output::text(&result["ips"][0]["gateway"]),
        mac,
        netns,
        droplet: d.name.clone(),
        vpc: if ep.vpc.is_empty() {
            spec.vpc.clone().unwrap_or_default()
        } else {
            ep.vpc
        },
        subnet: if ep.subnet.is_empty() {
            spec.subnet.clone().unwrap_or_default()
        } else {
            ep.subnet
        },
        container_id,
    };
    // Re-read: another command may have changed the state meanwhile.
    let mut st = lab.state()?;
    st.pods.retain(|p| p.name != pod.name);
    st.pods.push(pod.clone());
    st.save()?;
    Ok(pod)
}

/// `lab pod del`: CNI DEL, then the netns.
///
/// # Errors
/// The CNI error (the pod is kept so the delete can be retried).
pub async fn del(lab: &Lab, name: &str) -> Result<()> {
    super::require_root()?;
    let st = lab.state()?;
    let p = st.pod(name)?.clone();
    let d = st.droplet(&p.droplet)?.clone();
    let spec = PodSpec {
        name: p.name.clone(),
        droplet: p.droplet.clone(),
        namespace: p.namespace.clone(),
        ..Default::default()
    };
    cni(&st, &d, "DEL", &p.container_id, &p.netns, &spec).await?;
    for pid in sys::pids_with(&pod_marker(&st, name)) {
        sys::kill_now(pid, &pod_marker(&st, name));
    }
    if let Some(n) = p.netns.file_name().and_then(|n| n.to_str()) {
        sys::delete_netns(n)?;
    }
    let mut st = lab.state()?;
    st.pods.retain(|x| x.name != name);
    st.save()
}

fn pod_marker(st: &State, pod: &str) -> String {
    format!("{}/pods/{pod}/", st.dir.display())
}

/// `lab serve POD`: starts the echo service inside the pod, detached, and waits until it
/// listens. `lab pod del` and `lab down` stop it.
///
/// # Errors
/// Unknown pod, or the server not ready within 10 s.
pub async fn serve(lab: &Lab, pod: &str, port: u16) -> Result<String> {
    let st = lab.state()?;
    let p = st.pod(pod)?;
    let dir = st.dir.join("pods").join(pod);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    let ready = dir.join(format!("ready-{port}"));
    let _ = std::fs::remove_file(&ready);
    let me = std::env::current_exe().map_err(|e| Error::io("finding", "alkaid", e))?;
    let argv: Vec<String> = vec![
        me.display().to_string(),
        "lab".into(),
        "echo-server".into(),
        "--name".into(),
        pod.into(),
        "--port".into(),
        port.to_string(),
        "--ready-file".into(),
        ready.display().to_string(),
        "--marker".into(),
        pod_marker(&st, pod),
    ];
    let pid = super::up::spawn(&argv, Some(&p.netns), &dir.join("echo.log"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        if std::time::Instant::now() > deadline || !sys::alive(pid, &pod_marker(&st, pod)) {
            return Err(Error::Lab(format!(
                "echo server in pod {pod} did not start: {}",
                super::up::tail(&dir.join("echo.log"), 5)
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(format!(
        "echo server in pod {pod} ({}): tcp/udp {port}, http {}, bulk {}",
        p.ip,
        port + 1,
        port + 2
    ))
}
