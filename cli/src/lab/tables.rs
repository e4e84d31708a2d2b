//! `alkaid lab tables DROPLET`: what the droplet's BPF maps hold now, read straight from the
//! maps the agent pinned under its pin directory (`maps/NAME`), plus the STATS counters.
//!
//! JSON: `{"droplet", "pinDir", "rows": [{"map", "vni", ...}], "counters": {name: n}}`;
//! every row carries its `vni` (0 for the two maps that are not VPC-scoped: PEERS, CONFIG).

use std::net::Ipv4Addr;
use std::path::Path;

use alkaid_xdp_common::{
    AgentRecord, DirectPathValue, DropReason, ENDPOINT_F_LOCAL, EndpointKey, EndpointRecord,
    NetworkKey, NetworkRecord, PeerValue, Verdict, VpcValue, ip_octets, maps as names,
};
use aya::maps::{HashMap, Map, MapData, PerCpuArray, lpm_trie::LpmTrie};
use serde_json::{Value, json};

use super::Lab;
use crate::config::Dataplane;
use crate::error::{Error, Result};
use crate::output::{self, Format};

fn ip(v: u32) -> String {
    Ipv4Addr::from(ip_octets(v)).to_string()
}

fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn open(dir: &Path, name: &str) -> Result<Map> {
    let p = dir.join(name);
    let bad = |e: aya::maps::MapError| Error::Bpf {
        path: p.display().to_string(),
        reason: e.to_string(),
    };
    let data = MapData::from_pin(&p).map_err(bad)?;
    Map::from_map_data(data).map_err(bad)
}

fn err(dir: &Path, name: &str) -> impl Fn(aya::maps::MapError) -> Error {
    let path = dir.join(name).display().to_string();
    move |e| Error::Bpf {
        path: path.clone(),
        reason: e.to_string(),
    }
}

/// Reads every row of the maps pinned in `dir` (`PIN/maps`).
///
/// # Errors
/// [`Error::Bpf`] naming the map.
pub fn rows(dir: &Path) -> Result<Vec<Value>> {
    let mut rows = Vec::new();
    let e = |n| err(dir, n);
    let m: HashMap<_, EndpointKey, EndpointRecord> =
        HashMap::try_from(open(dir, names::ENDPOINTS)?).map_err(e(names::ENDPOINTS))?;
    for r in m.iter() {
        let (k, rec) = r.map_err(e(names::ENDPOINTS))?;
        let v = rec.ep;
        rows.push(json!({"map": "ENDPOINTS", "vni": k.vni, "ip": ip(k.ip),
            "dropletIp": ip(v.droplet_ip), "dropletMac": mac(&rec.droplet_mac), "ifindex": v.ifindex,
            "local": v.flags & ENDPOINT_F_LOCAL != 0, "mac": mac(&v.mac)}));
    }
    let m: LpmTrie<_, NetworkKey, NetworkRecord> =
        LpmTrie::try_from(open(dir, names::NETWORKS)?).map_err(e(names::NETWORKS))?;
    for r in m.iter() {
        let (k, rec) = r.map_err(e(names::NETWORKS))?;
        let v = rec.net;
        let key = k.data();
        let n = (v.n_bouncers as usize).min(v.bouncers.len());
        rows.push(json!({"map": "NETWORKS", "vni": key.vni,
            "cidr": format!("{}/{}", ip(key.ip), k.prefix_len().saturating_sub(32)),
            "gateway": ip(v.gateway), "bouncers": v.bouncers[..n].iter().map(|b| ip(*b)).collect::<Vec<_>>()}));
    }
    let m: HashMap<_, u32, VpcValue> =
        HashMap::try_from(open(dir, names::VPCS)?).map_err(e(names::VPCS))?;
    for r in m.iter() {
        let (k, v) = r.map_err(e(names::VPCS))?;
        let n = (v.n_dividers as usize).min(v.dividers.len());
        rows.push(json!({"map": "VPCS", "vni": k, "dividers": v.dividers[..n].iter().map(|b| ip(*b)).collect::<Vec<_>>()}));
    }
    let m: HashMap<_, u32, AgentRecord> =
        HashMap::try_from(open(dir, names::AGENT_ENDPOINTS)?).map_err(e(names::AGENT_ENDPOINTS))?;
    for r in m.iter() {
        let (k, rec) = r.map_err(e(names::AGENT_ENDPOINTS))?;
        let v = rec.ep;
        rows.push(json!({"map": "AGENT_ENDPOINTS", "vni": v.vni, "ifindex": k, "ip": ip(v.ip), "mac": mac(&v.mac),
            "subnet": format!("{}/{}", ip(v.net_ip), v.net_prefix_len.saturating_sub(32)), "gateway": ip(v.gateway)}));
    }
    let m: HashMap<_, EndpointKey, DirectPathValue> =
        HashMap::try_from(open(dir, names::DIRECT_PATH)?).map_err(e(names::DIRECT_PATH))?;
    for r in m.iter() {
        let (k, v) = r.map_err(e(names::DIRECT_PATH))?;
        rows.push(json!({"map": "DIRECT_PATH", "vni": k.vni, "ip": ip(k.ip), "dropletIp": ip(v.droplet_ip), "learned": v.flags & 1 != 0}));
    }
    let m: HashMap<_, u32, PeerValue> =
        HashMap::try_from(open(dir, names::PEERS)?).map_err(e(names::PEERS))?;
    for r in m.iter() {
        let (k, v) = r.map_err(e(names::PEERS))?;
        rows.push(json!({"map": "PEERS", "vni": 0, "ip": ip(k), "mac": mac(&v.mac)}));
    }
    Ok(rows)
}

/// Sums the per-CPU STATS slots into `{name: count}` (every verdict and drop reason).
///
/// # Errors
/// [`Error::Bpf`].
pub fn counters(dir: &Path) -> Result<serde_json::Map<String, Value>> {
    let stats: PerCpuArray<_, u64> =
        PerCpuArray::try_from(open(dir, names::STATS)?).map_err(err(dir, names::STATS))?;
    let sum = |i: u32| stats.get(&i, 0).map(|v| v.iter().sum::<u64>()).unwrap_or(0);
    let mut out = serde_json::Map::new();
    for v in Verdict::ALL {
        out.insert(v.name().into(), json!(sum(v.index())));
    }
    for d in DropReason::ALL {
        out.insert(format!("drop_{}", d.name()), json!(sum(d.index())));
    }
    Ok(out)
}

/// The document `lab tables -o json` prints.
///
/// # Errors
/// [`Error::Lab`] for a fake-dataplane lab or an unknown droplet; [`Error::Bpf`].
pub fn dump(lab: &Lab, droplet: &str) -> Result<Value> {
    super::require_root()?;
    let st = lab.state()?;
    let d = st.droplet(droplet)?;
    if st.dataplane == Dataplane::Fake {
        return Err(Error::Lab(format!(
            "lab {} runs the fake data plane: {droplet} has no BPF maps (bring it up with --dataplane aya)",
            st.name
        )));
    }
    let dir = d.pin_dir.join("maps");
    if !dir.exists() {
        return Err(Error::Lab(format!(
            "{} does not exist: the agent of {droplet} has not loaded its maps (see {})",
            dir.display(),
            d.log.display()
        )));
    }
    let mut rows = rows(&dir)?;
    rows.sort_by_key(|r| {
        (
            output::text(&r["map"]),
            r["vni"].as_u64(),
            output::text(&r["ip"]),
            output::text(&r["cidr"]),
        )
    });
    Ok(json!({"droplet": droplet, "pinDir": d.pin_dir, "rows": rows, "counters": counters(&dir)?}))
}

/// Human rendering: one line per row, then the non-zero counters.
pub fn render(v: &Value, format: Format) -> String {
    if matches!(format, Format::Json | Format::Yaml) {
        return output::structured(v, format);
    }
    let t = output::text;
    let rows: Vec<Vec<String>> = v["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let rest: Vec<String> = r
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k != "map" && *k != "vni")
                .map(|(k, v)| format!("{k}={}", t(v)))
                .collect();
            vec![t(&r["map"]), t(&r["vni"]), rest.join(" ")]
        })
        .collect();
    let mut out = format!("droplet {} (pins {})\n", t(&v["droplet"]), t(&v["pinDir"]));
    out.push_str(&output::table(&["MAP", "VNI", "ROW"], &rows));
    let nz: Vec<String> = v["counters"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect();
    out.push_str(&format!(
        "\ncounters: {}\n",
        if nz.is_empty() {
            "all zero".into()
        } else {
            nz.join(" ")
        }
    ));
    out
}
