//! `alkaid lab status` (and the summary `lab up` prints): what the lab holds, whether each
//! process runs, who leads, and each droplet's phase as the operators see it.

use std::time::Duration;

use alkaid_proto::v1 as pb;
use serde_json::{Value, json};

use super::{Lab, State, sys};
use crate::client::Target;
use crate::output::{self, Format};

/// Leader id and droplet phases from the operators; empty when none answers in 3 s.
async fn observe(st: &State) -> (u64, Vec<(String, String)>) {
    let target = Target {
        addrs: st.control_addrs(),
        tls: st.tls.clone(),
    };
    let fut = async {
        let mut api = target.connect().await.ok()?;
        let leader = api
            .cluster_info(pb::ClusterInfoRequest {})
            .await
            .ok()?
            .into_inner()
            .leader_id;
        let list = api
            .list(pb::ListRequest {
                kind: pb::Kind::Droplet as i32,
                namespace: String::new(),
                stale: true,
            })
            .await
            .ok()?
            .into_inner();
        let phases = list
            .resources
            .iter()
            .filter_map(|r| match &r.kind {
                Some(pb::resource::Kind::Droplet(d)) => Some((
                    d.metadata
                        .as_ref()
                        .map(|m| m.name.clone())
                        .unwrap_or_default(),
                    d.status
                        .as_ref()
                        .map(|s| s.phase.clone())
                        .unwrap_or_default(),
                )),
                _ => None,
            })
            .collect();
        Some((leader, phases))
    };
    tokio::time::timeout(Duration::from_secs(3), fut)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The status document (`lab status -o json`).
pub async fn json(lab: &Lab) -> crate::Result<Value> {
    let Some(st) = State::load(&lab.dir)? else {
        return Ok(json!({"name": lab.name, "up": false, "dir": lab.dir}));
    };
    let marker = lab.marker();
    let (leader, phases) = observe(&st).await;
    let phase = |n: &str| {
        phases
            .iter()
            .find(|(d, _)| d == n)
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    };
    Ok(json!({
        "name": st.name,
        "up": true,
        "dir": st.dir,
        "stateFile": State::file(&st.dir),
        "underlay": {"bridge": st.bridge, "cidr": st.underlay, "gateway": st.bridge_ip},
        "mtls": st.tls.is_some(),
        "mtlsNote": st.tls_note,
        "tls": st.tls,
        "dataplane": st.dataplane,
        "endpointHook": st.endpoint_hook,
        "xdpMode": st.xdp_mode,
        "pins": st.pin_root,
        "leader": leader,
        "operators": st.operators.iter().map(|o| json!({
            "id": o.id, "raft": o.raft, "control": o.control, "pid": o.pid,
            "running": sys::alive(o.pid, &marker), "stopped": o.stopped,
            "leader": o.id == leader, "dataDir": o.data_dir, "log": o.log,
        })).collect::<Vec<_>>(),
        "droplets": st.droplets.iter().map(|d| json!({
            "name": d.name, "ip": d.ip, "mac": d.mac, "netns": d.netns_path,
            "hostVeth": d.host_veth, "pid": d.pid, "running": sys::alive(d.pid, &marker),
            "stopped": d.stopped, "phase": phase(&d.name), "cniSocket": d.cni_socket,
            "pinDir": d.pin_dir, "log": d.log,
            "bridgePortPass": super::xdp::pass_link(&st.pin_root, &d.name).exists(),
        })).collect::<Vec<_>>(),
        "pods": st.pods.iter().map(super::pod::pod_json).collect::<Vec<_>>(),
    }))
}

/// Human rendering of the status document.
pub fn render(v: &Value, format: Format) -> String {
    if matches!(format, Format::Json | Format::Yaml) {
        return output::structured(v, format);
    }
    if v["up"] != json!(true) {
        return format!(
            "lab {} is not up (run `alkaid lab up`)\n",
            output::text(&v["name"])
        );
    }
    let t = output::text;
    let mut out = format!(
        "lab {}   state {}\nunderlay: bridge {} {} (host {})   dataplane {}   endpoint hook {}   mTLS {}\n\n",
        t(&v["name"]),
        t(&v["stateFile"]),
        t(&v["underlay"]["bridge"]),
        t(&v["underlay"]["cidr"]),
        t(&v["underlay"]["gateway"]),
        t(&v["dataplane"]),
        match &v["xdpMode"] {
            Value::String(m) => format!("{} ({m})", t(&v["endpointHook"])),
            _ => t(&v["endpointHook"]),
        },
        if v["mtls"] == json!(true) {
            "on".to_string()
        } else {
            format!("off ({})", t(&v["mtlsNote"]))
        },
    );
    let run = |x: &Value| {
        if x["stopped"] == json!(true) {
            "stopped".to_string()
        } else if x["running"] == json!(true) {
            format!("running ({})", t(&x["pid"]))
        } else {
            "DEAD".to_string()
        }
    };
    let ops: Vec<Vec<String>> = v["operators"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            vec![
                t(&o["id"]),
                t(&o["control"]),
                t(&o["raft"]),
                run(o),
                if o["leader"] == json!(true) {
                    "*".into()
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    out.push_str(&output::table(
        &["OPERATOR", "CONTROL", "RAFT", "PROCESS", "LEADER"],
        &ops,
    ));
    out.push('\n');
    let drs: Vec<Vec<String>> = v["droplets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            vec![
                t(&d["name"]),
                t(&d["ip"]),
                t(&d["netns"]),
                run(d),
                t(&d["phase"]),
            ]
        })
        .collect();
    out.push_str(&output::table(
        &["DROPLET", "UNDERLAY-IP", "NETNS", "AGENT", "PHASE"],
        &drs,
    ));
    if let Some(p) = v["pods"].as_array().filter(|p| !p.is_empty()) {
        out.push('\n');
        out.push_str(&super::pod::render_list(p));
    }
    out
}
