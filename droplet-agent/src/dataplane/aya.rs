//! The real data plane: rows written through the `alkaid-xdp` loader's typed maps, programs
//! attached through pinned bpf_links so they outlive the agent (xdp-on-veth rule 8).
//!
//! Row -> map: `LocalEndpoint`/`Endpoint` -> ENDPOINTS (one key: a local endpoint wins over
//! a directory entry for the same address, and needs its veth's ifindex, known once CNI
//! attached it), `Network` -> NETWORKS, `Vpc` -> VPCS, `Peer` -> PEERS; an attached endpoint
//! -> AGENT_ENDPOINTS and TX_PORTS. Removing or moving an endpoint, or removing a peer,
//! invalidates direct paths through it. [`Dataplane::rows`] lists what the pinned maps
//! actually hold (`alkaid_xdp::list_pinned`), so a full sync's diff removes what a previous
//! agent left in any map; a shadow of the written rows keeps what the maps cannot say
//! (a local endpoint's subnet and object, a directory entry masked by a local endpoint).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use alkaid_model::table::{EndpointEntry, NetworkEntry, PeerEntry, VpcEntry};
use alkaid_model::{Ipv4Cidr, MacAddr, RowKey, RowValue, Table, Vni};
use alkaid_xdp::{Listing, MapSizes, Mode, Prog, Programs, TcProg};
use alkaid_xdp_common::{
    AgentEndpoint, CONFIG_F_TC_AGENT, CONFIG_F_TC_DECAP, Config, ENDPOINT_F_LOCAL, EndpointKey,
    EndpointValue, MAX_BOUNCERS, MAX_DIVIDERS, NetworkValue, VpcValue, ip, ip_octets,
    network_prefix_len,
};
use tracing::warn;

use super::{ApplyReport, Counters, Dataplane, EndpointAttachment, EndpointHook};
use crate::error::{Error, Result};
use crate::sync::MapOp;

/// How to load and attach.
#[derive(Clone, Debug)]
pub struct AyaConfig {
    /// bpffs directory for pinned maps (`maps/`) and links (`links/`).
    pub pin_dir: PathBuf,
    /// This droplet's underlay address.
    pub droplet_ip: Ipv4Addr,
    /// Its underlay MAC.
    pub droplet_mac: [u8; 6],
    /// The underlay NIC's ifindex (`transit` attaches there).
    pub underlay_ifindex: u32,
    /// Its name (TC attachments resolve names in the agent's netns).
    pub underlay_ifname: String,
    /// Underlay MTU.
    pub underlay_mtu: u32,
    /// The virtual gateway MAC pods resolve every address to.
    pub gateway_mac: [u8; 6],
    /// XDP `transit` on the underlay NIC, in this mode; `None`: no XDP there, `transit_tc`
    /// does everything (needs [`EndpointHook::Tc`]).
    pub underlay_mode: Option<Mode>,
    /// XDP attach mode on endpoint veths with [`EndpointHook::Xdp`] (generic keeps the pod's
    /// TSO, rule 4).
    pub endpoint_mode: Mode,
    /// Where the endpoint data path runs.
    pub endpoint_hook: EndpointHook,
    /// Capacities of the maps created here (adopted pinned maps keep theirs).
    pub map_sizes: MapSizes,
}

struct Inner {
    progs: Programs,
    cfg: AyaConfig,
    shadow: Table,
    attached: BTreeMap<(u32, Ipv4Addr), EndpointAttachment>,
}

/// Endpoint ops of one [`Inner::apply_all`] run, not yet written.
#[derive(Default)]
struct EndpointRun {
    /// Addresses touched, in first-touch order, with the ENDPOINTS value before the run.
    touched: Vec<(Vni, Ipv4Addr, Option<EndpointValue>)>,
    seen: HashSet<(Vni, Ipv4Addr)>,
    /// Ops in the run (for the report).
    ops: usize,
}

/// [`Dataplane`] over the real maps.
pub struct AyaDataplane {
    inner: Mutex<Inner>,
}

fn dp_err(op: &'static str) -> impl Fn(alkaid_xdp::Error) -> Error {
    move |e| Error::Dataplane {
        op,
        message: e.to_string(),
    }
}

fn fixed<const N: usize>(ips: &[Ipv4Addr]) -> [u32; N] {
    let mut out = [0u32; N];
    for (o, a) in out.iter_mut().zip(ips) {
        *o = ip(a.octets());
    }
    out
}

/// Pin path of the XDP link `name` attached in `mode`. The mode is part of the name: an XDP
/// link keeps the mode it was made with, so a restart in another mode must replace the link,
/// not swap its program into the old one (see [`drop_xdp_links`]).
fn xdp_link(links: &Path, name: &str, mode: Mode) -> PathBuf {
    let mode = match mode {
        Mode::Native => "native",
        Mode::Generic => "generic",
    };
    links.join(format!("{name}-{mode}"))
}

/// Unpins the XDP links `name` of every mode but `keep` (all with `None`); unpinning the last
/// reference detaches the program. The kernel takes one XDP mode per interface at a time, so a
/// mode change goes through this: the interface runs no XDP program between the old link's
/// removal and the new one's attachment (a mode change only; a restart in the same mode swaps
/// programs atomically). An agent from before modes were named pinned `links/NAME`, mode
/// unknown: it goes too (once, on the upgrade). Returns whether it unpinned any.
fn drop_xdp_links(links: &Path, name: &str, keep: Option<Mode>) -> bool {
    let mut dropped = std::fs::remove_file(links.join(name)).is_ok();
    for mode in [Mode::Native, Mode::Generic] {
        if Some(mode) != keep {
            dropped |= std::fs::remove_file(xdp_link(links, name, mode)).is_ok();
        }
    }
    dropped
}

/// How long an XDP attach after a mode change may wait for the kernel to release the old link
/// (it frees links from a work queue, after the last reference is gone).
const XDP_RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Attaches `prog` in `mode` through the pinned link `name` ([`Programs::attach_pinned`]),
/// first dropping its links in other modes; after such a drop the attach is retried until the
/// old link is released or [`XDP_RELEASE_WAIT`] passes.
fn attach_xdp(
    progs: &mut Programs,
    prog: Prog,
    ifindex: u32,
    mode: Mode,
    links: &Path,
    name: &str,
) -> alkaid_xdp::Result<()> {
    let switched = drop_xdp_links(links, name, Some(mode));
    let link = xdp_link(links, name, mode);
    let deadline = Instant::now() + XDP_RELEASE_WAIT;
    loop {
        match progs.attach_pinned(prog, ifindex, mode, &link) {
            Err(_) if switched && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Pin directory of links.
fn links_dir(cfg: &AyaConfig) -> PathBuf {
    cfg.pin_dir.join("links")
}

/// Pin path of an endpoint's TC link (bpffs refuses dots in names).
fn endpoint_tc_link(cfg: &AyaConfig, host_ifname: &str) -> PathBuf {
    links_dir(cfg).join(format!("tc-{host_ifname}"))
}

impl AyaDataplane {
    /// Loads the programs, adopting maps pinned by a previous agent, writes CONFIG, and
    /// attaches `transit` (and with [`EndpointHook::Tc`], `transit_tc` behind it with
    /// `CONFIG_F_TC_DECAP`) to the underlay NIC through pinned links; links a previous agent
    /// pinned are switched to the new programs atomically, rows are left as they are.
    ///
    /// # Errors
    /// [`Error::Dataplane`] without root/CAP_BPF, if `pin_dir` is not on a bpffs, or if the
    /// verifier refuses a program.
    pub fn open(cfg: AyaConfig) -> Result<Self> {
        let links = links_dir(&cfg);
        std::fs::create_dir_all(&links).map_err(|e| Error::io("create pin dir", &links, e))?;
        let mut progs = Programs::load_with(Some(&cfg.pin_dir.join("maps")), &cfg.map_sizes)
            .map_err(dp_err("load"))?;
        let tc = cfg.endpoint_hook == EndpointHook::Tc;
        let config = |flags| Config {
            droplet_ip: ip(cfg.droplet_ip.octets()),
            underlay_ifindex: cfg.underlay_ifindex,
            mtu: cfg.underlay_mtu,
            flags,
            droplet_mac: cfg.droplet_mac,
            gateway_mac: cfg.gateway_mac,
            default_peer_mac: [0; 6],
            _pad: [0; 2],
        };
        let transit_tc = links.join("transit_tc");
        if !tc {
            // Local deliveries back in XDP before `transit_tc` goes (a hook switch); XDP
            // `agent` hands frames needing neighbour resolution to `agent_tc` behind it.
            progs
                .maps_mut()
                .set_config(&config(CONFIG_F_TC_AGENT))
                .map_err(dp_err("write config"))?;
            let _ = std::fs::remove_file(&transit_tc);
        }
        progs
            .maps_mut()
            .add_tx_port(cfg.underlay_ifindex)
            .map_err(dp_err("add tx port"))?;
        match cfg.underlay_mode {
            // A pinned link is switched to the new program atomically (a restart adopts it).
            Some(mode) => attach_xdp(
                &mut progs,
                Prog::Transit,
                cfg.underlay_ifindex,
                mode,
                &links,
                "transit",
            )
            .map_err(dp_err("attach transit"))?,
            None if !tc => {
                return Err(Error::Dataplane {
                    op: "attach transit",
                    message: "the XDP endpoint hook needs XDP transit on the underlay".into(),
                });
            }
            None => {}
        }
        if tc {
            // `transit_tc` is in place before XDP starts passing local deliveries up to it.
            progs
                .attach_tc_pinned(TcProg::Transit, &cfg.underlay_ifname, &transit_tc)
                .map_err(dp_err("attach transit_tc"))?;
            progs
                .maps_mut()
                .set_config(&config(CONFIG_F_TC_DECAP))
                .map_err(dp_err("write config"))?;
        }
        if cfg.underlay_mode.is_none() {
            // `transit_tc` carries everything now: a previous agent's XDP link goes last.
            drop_xdp_links(&links, "transit", None);
        }
        Ok(Self {
            inner: Mutex::new(Inner {
                progs,
                cfg,
                shadow: Table::default(),
                attached: BTreeMap::new(),
            }),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }
}

impl Inner {
    /// What ENDPOINTS[(vni, ip)] must hold given the shadow and the attachments: a local
    /// endpoint wins over a directory entry, and needs its veth attached.
    fn endpoint_value(&self, vni: Vni, addr: Ipv4Addr) -> Option<EndpointValue> {
        let local = self.shadow.get(&RowKey::LocalEndpoint { vni, ip: addr });
        let att = self.attached.get(&(vni.get(), addr));
        let entry = self.shadow.get(&RowKey::Endpoint { vni, ip: addr });
        match (local, att, entry) {
            (Some(RowValue::LocalEndpoint(l)), Some(a), _) => Some(EndpointValue {
                droplet_ip: ip(self.cfg.droplet_ip.octets()),
                ifindex: a.host_ifindex,
                flags: ENDPOINT_F_LOCAL,
                mac: l.mac.0,
                _pad: [0; 2],
            }),
            (_, _, Some(RowValue::Endpoint(e))) => Some(EndpointValue {
                droplet_ip: ip(e.droplet_ip.octets()),
                ifindex: 0,
                flags: 0,
                mac: e.mac.0,
                _pad: [0; 2],
            }),
            _ => None,
        }
    }

    /// Rewrites ENDPOINTS[(vni, ip)] from the shadow and the attachments.
    fn refresh_endpoint(&mut self, vni: Vni, addr: Ipv4Addr) -> Result<()> {
        let value = self.endpoint_value(vni, addr);
        let maps = self.progs.maps_mut();
        let old = maps
            .endpoint(vni.get(), addr)
            .map_err(dp_err("read endpoint"))?;
        match value {
            Some(v) => maps
                .upsert_endpoint(vni.get(), addr, &v)
                .map_err(dp_err("write endpoint"))?,
            None => {
                maps.remove_endpoint(vni.get(), addr)
                    .map_err(dp_err("remove endpoint"))?;
            }
        }
        // The endpoint left or moved: senders must not keep a learned path to it.
        if old.map(|o| o.droplet_ip) != value.map(|v| v.droplet_ip) {
            maps.invalidate_direct_path(vni.get(), addr)
                .map_err(dp_err("invalidate direct path"))?;
        }
        Ok(())
    }

    /// The listed maps as table rows. An ENDPOINTS row that is exactly what the shadow
    /// would write stands for the shadow's rows of that address; any other (a previous
    /// agent's, or a stale value) shows up as a directory entry, so a full sync rewrites or
    /// removes it. Rows whose VNI or prefix no table can name are skipped (and logged).
    fn table_of(&self, held: &Listing) -> Table {
        let mut rows = Table::default();
        let vni_of = |n: u32| {
            Vni::new(u64::from(n))
                .map_err(|e| warn!(vni = n, error = %e, "map row with an invalid vni"))
                .ok()
        };
        for (k, v) in &held.endpoints {
            let Some(vni) = vni_of(k.vni) else { continue };
            let addr = Ipv4Addr::from(ip_octets(k.ip));
            if self.endpoint_value(vni, addr).as_ref() == Some(v) {
                for key in [
                    RowKey::LocalEndpoint { vni, ip: addr },
                    RowKey::Endpoint { vni, ip: addr },
                ] {
                    if let Some(val) = self.shadow.get(&key) {
                        rows.insert(key, val.clone());
                    }
                }
                // A directory entry masked by a local endpoint is only in the shadow; the
                // local one is what the map holds.
                continue;
            }
            rows.insert(
                RowKey::Endpoint { vni, ip: addr },
                RowValue::Endpoint(EndpointEntry {
                    droplet_ip: Ipv4Addr::from(ip_octets(v.droplet_ip)),
                    mac: MacAddr(v.mac),
                }),
            );
        }
        // A local endpoint whose veth is not attached yet has no ENDPOINTS row to write:
        // the maps hold what it asks for (nothing), so it counts as held. A fence is held
        // once applied (its effect, paths dropped, is not a map row); after a restart the
        // shadow is empty, so a full sync applies every fence again.
        for (k, v) in self.shadow.rows() {
            let held = match k {
                RowKey::LocalEndpoint { vni, ip: addr } => {
                    self.endpoint_value(*vni, *addr).is_none()
                }
                RowKey::Fence { .. } => true,
                _ => false,
            };
            if held {
                rows.insert(k.clone(), v.clone());
            }
        }
        let addrs = |a: &[u32], n: u32| {
            a.iter()
                .take(n as usize)
                .map(|x| Ipv4Addr::from(ip_octets(*x)))
                .collect::<Vec<_>>()
        };
        for n in &held.networks {
            let Some(vni) = vni_of(n.vni) else { continue };
            let Ok(cidr) = Ipv4Cidr::new(n.net, n.prefix) else {
                warn!(net = %n.net, prefix = n.prefix, "NETWORKS row with an invalid prefix");
                continue;
            };
            rows.insert(
                RowKey::Network { vni, cidr },
                RowValue::Network(NetworkEntry {
                    bouncers: addrs(&n.value.bouncers, n.value.n_bouncers),
                    gateway: Ipv4Addr::from(ip_octets(n.value.gateway)),
                }),
            );
        }
        for (k, v) in &held.vpcs {
            let Some(vni) = vni_of(*k) else { continue };
            rows.insert(
                RowKey::Vpc { vni },
                RowValue::Vpc(VpcEntry {
                    dividers: addrs(&v.dividers, v.n_dividers),
                }),
            );
        }
        for (addr, mac) in &held.peers {
            rows.insert(
                RowKey::Peer { ip: *addr },
                RowValue::Peer(PeerEntry { mac: MacAddr(*mac) }),
            );
        }
        rows
    }

    /// Removes what no table row names but a previous agent may have left: AGENT_ENDPOINTS
    /// rows (and their TX_PORTS entries) of interfaces not attached now, and DIRECT_PATH rows
    /// to addresses that are local now (`agent` checks DIRECT_PATH first). Learned paths to
    /// other droplets stay: PEERS names only the droplets this table mentions, not every
    /// droplet a flow may come from, and paths through a departed peer go with its removal.
    fn prune(&mut self, held: &Listing) -> Result<usize> {
        let attached: BTreeSet<u32> = self.attached.values().map(|a| a.host_ifindex).collect();
        let local: BTreeSet<(u32, u32)> = held
            .endpoints
            .iter()
            .filter(|(_, v)| v.flags & ENDPOINT_F_LOCAL != 0)
            .map(|(k, _)| (k.vni, k.ip))
            .collect();
        let maps = self.progs.maps_mut();
        let mut n = 0;
        for (ifindex, _) in &held.agent_endpoints {
            if !attached.contains(ifindex) {
                maps.remove_agent_endpoint(*ifindex)
                    .map_err(dp_err("remove agent endpoint"))?;
                maps.remove_tx_port(*ifindex)
                    .map_err(dp_err("remove tx port"))?;
                n += 1;
            }
        }
        for (k, _) in &held.direct_paths {
            if local.contains(&(k.vni, k.ip)) {
                maps.invalidate_direct_path(k.vni, Ipv4Addr::from(ip_octets(k.ip)))
                    .map_err(dp_err("invalidate direct path"))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Applies `ops` in order. Runs of endpoint rows (a full sync's directory, most of any
    /// table) are written with batched syscalls: each address's final ENDPOINTS value once,
    /// thousands of rows per syscall; every other row goes through [`Inner::apply_one`], with
    /// the endpoint rows before it flushed first so order is kept.
    fn apply_all(&mut self, ops: &[MapOp]) -> ApplyReport {
        let mut report = ApplyReport::default();
        let mut run = EndpointRun::default();
        for op in ops {
            let key = match op {
                MapOp::Upsert(k, _) | MapOp::Delete(k) => k,
            };
            if let RowKey::LocalEndpoint { vni, ip } | RowKey::Endpoint { vni, ip } = key {
                if run.seen.insert((*vni, *ip)) {
                    // What ENDPOINTS holds for it before this run (the shadow is what was
                    // written).
                    let before = self.endpoint_value(*vni, *ip);
                    run.touched.push((*vni, *ip, before));
                }
                match op {
                    MapOp::Upsert(k, v) => self.shadow.insert(k.clone(), v.clone()),
                    MapOp::Delete(k) => self.shadow.remove(k),
                };
                run.ops += 1;
                continue;
            }
            self.flush(&mut run, &mut report);
            match self.apply_one(op) {
                Ok(()) => report.applied += 1,
                Err(e) => report.errors.push(e.to_string()),
            }
        }
        self.flush(&mut run, &mut report);
        report
    }

    /// Writes the ENDPOINTS rows of a run of endpoint ops: upserts and removals batched, and
    /// the direct paths to addresses whose droplet changed (moved or deleted) invalidated. A
    /// failed batch is retried row by row, so each bad row gets its own error.
    fn flush(&mut self, run: &mut EndpointRun, report: &mut ApplyReport) {
        if run.ops == 0 {
            return;
        }
        let droplet = |v: &Option<EndpointValue>| v.map(|v| v.droplet_ip);
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        let mut moved = Vec::new();
        for (vni, addr, before) in run.touched.drain(..) {
            let key = EndpointKey {
                vni: vni.get(),
                ip: ip(addr.octets()),
            };
            let now = self.endpoint_value(vni, addr);
            match now {
                Some(v) => upserts.push((key, v)),
                None => removals.push(key),
            }
            // Moved or deleted: a learned path to the old droplet is stale. A row that is new
            // here cannot have gone stale by this write (a path to an endpoint that moved
            // while this agent was not looking is bounced back by its old droplet, see
            // xdp-programs/README.md); a LOCAL row drops its path in `upsert_endpoints`.
            if before.is_some() && droplet(&before) != droplet(&now) {
                moved.push(key);
            }
        }
        let errors_before = report.errors.len();
        let maps = self.progs.maps_mut();
        if maps.upsert_endpoints(&upserts).is_err() {
            for (k, v) in &upserts {
                let addr = Ipv4Addr::from(ip_octets(k.ip));
                if let Err(e) = maps.upsert_endpoint(k.vni, addr, v) {
                    report.errors.push(dp_err("write endpoint")(e).to_string());
                }
            }
        }
        if let Err(e) = maps.remove_endpoints(&removals) {
            report
                .errors
                .push(dp_err("remove endpoints")(e).to_string());
        }
        // The endpoint left or moved: senders must not keep a learned path to it.
        if let Err(e) = maps.delete_direct_paths(&moved) {
            report
                .errors
                .push(dp_err("invalidate direct paths")(e).to_string());
        }
        let failed = report.errors.len() - errors_before;
        report.applied += run.ops.saturating_sub(failed);
        run.ops = 0;
        run.seen.clear();
    }

    fn apply_one(&mut self, op: &MapOp) -> Result<()> {
        let (key, value) = match op {
            MapOp::Upsert(k, v) => (k, Some(v)),
            MapOp::Delete(k) => (k, None),
        };
        match value {
            Some(v) => self.shadow.insert(key.clone(), v.clone()),
            None => self.shadow.remove(key),
        };
        let maps = self.progs.maps_mut();
        match (key, value) {
            (RowKey::LocalEndpoint { vni, ip } | RowKey::Endpoint { vni, ip }, _) => {
                return self.refresh_endpoint(*vni, *ip);
            }
            (RowKey::Network { vni, cidr }, Some(RowValue::Network(n))) => {
                if n.bouncers.len() > MAX_BOUNCERS {
                    return Err(Error::Dataplane {
                        op: "write network",
                        message: format!("{} bouncers, at most {MAX_BOUNCERS}", n.bouncers.len()),
                    });
                }
                let v = NetworkValue {
                    n_bouncers: n.bouncers.len() as u32,
                    gateway: ip(n.gateway.octets()),
                    bouncers: fixed(&n.bouncers),
                };
                maps.upsert_network(vni.get(), cidr.network(), cidr.prefix_len(), &v)
                    .map_err(dp_err("write network"))?;
            }
            (RowKey::Network { vni, cidr }, None) => {
                maps.remove_network(vni.get(), cidr.network(), cidr.prefix_len())
                    .map_err(dp_err("remove network"))?;
            }
            (RowKey::Vpc { vni }, Some(RowValue::Vpc(v))) => {
                if v.dividers.len() > MAX_DIVIDERS {
                    return Err(Error::Dataplane {
                        op: "write vpc",
                        message: format!("{} dividers, at most {MAX_DIVIDERS}", v.dividers.len()),
                    });
                }
                let value = VpcValue {
                    n_dividers: v.dividers.len() as u32,
                    dividers: fixed(&v.dividers),
                };
                maps.upsert_vpc(vni.get(), &value)
                    .map_err(dp_err("write vpc"))?;
            }
            (RowKey::Vpc { vni }, None) => {
                maps.remove_vpc(vni.get()).map_err(dp_err("remove vpc"))?;
            }
            (RowKey::Peer { ip }, Some(RowValue::Peer(p))) => {
                maps.upsert_peer(*ip, p.mac.0)
                    .map_err(dp_err("write peer"))?;
            }
            (RowKey::Peer { ip }, None) => {
                maps.remove_peer(*ip).map_err(dp_err("remove peer"))?;
                maps.invalidate_direct_paths_via(*ip)
                    .map_err(dp_err("invalidate direct paths"))?;
            }
            // A gone droplet cannot bounce stale paths back: drop every path learned to it.
            (RowKey::Fence { ip }, Some(RowValue::Fence(_))) => {
                maps.invalidate_direct_paths_via(*ip)
                    .map_err(dp_err("invalidate direct paths"))?;
            }
            (RowKey::Fence { .. }, None) => {}
            (k, Some(_)) => {
                return Err(Error::Dataplane {
                    op: "apply",
                    message: format!("{k:?}: value kind does not match the key"),
                });
            }
        }
        Ok(())
    }
}

impl Dataplane for AyaDataplane {
    fn apply(&self, ops: &[MapOp]) -> Result<ApplyReport> {
        Ok(self.with(|inner| inner.apply_all(ops)))
    }

    fn rows(&self) -> Result<Table> {
        self.with(|inner| {
            let held = alkaid_xdp::list_pinned(&inner.cfg.pin_dir.join("maps"))
                .map_err(dp_err("list maps"))?;
            Ok(inner.table_of(&held))
        })
    }

    fn prune(&self) -> Result<usize> {
        self.with(|inner| {
            let held = alkaid_xdp::list_pinned(&inner.cfg.pin_dir.join("maps"))
                .map_err(dp_err("list maps"))?;
            inner.prune(&held)
        })
    }

    fn attach_endpoint(&self, ep: &EndpointAttachment) -> Result<()> {
        self.with(|inner| {
            let links = links_dir(&inner.cfg);
            let tc_link = endpoint_tc_link(&inner.cfg, &ep.host_ifname);
            let mode = inner.cfg.endpoint_mode;
            // `agent_tc` runs with either hook: alone, or behind XDP `agent` as its slow path
            // (frames whose next hop only the kernel can resolve, `CONFIG_F_TC_AGENT`). An
            // XDP link left by the other hook (a switch across a restart) goes only once
            // `agent_tc` is attached: never a moment without a program.
            inner
                .progs
                .attach_tc_pinned(TcProg::Agent, &ep.host_ifname, &tc_link)
                .map_err(dp_err("attach agent_tc"))?;
            match inner.cfg.endpoint_hook {
                EndpointHook::Tc => {
                    drop_xdp_links(&links, &ep.host_ifname, None);
                }
                EndpointHook::Xdp => attach_xdp(
                    &mut inner.progs,
                    Prog::Agent,
                    ep.host_ifindex,
                    mode,
                    &links,
                    &ep.host_ifname,
                )
                .map_err(dp_err("attach agent"))?,
            }
            let maps = inner.progs.maps_mut();
            maps.add_tx_port(ep.host_ifindex)
                .map_err(dp_err("add tx port"))?;
            let value = AgentEndpoint {
                vni: ep.vni,
                ip: ip(ep.ip.octets()),
                mac: ep.mac,
                _pad: [0; 2],
                net_prefix_len: network_prefix_len(u32::from(ep.subnet.prefix_len())),
                net_ip: ip(ep.subnet.network().octets()),
                gateway: ip(ep.gateway.octets()),
            };
            maps.upsert_agent_endpoint(ep.host_ifindex, &value)
                .map_err(dp_err("write agent endpoint"))?;
            inner.attached.insert((ep.vni, ep.ip), ep.clone());
            let vni = Vni::new(u64::from(ep.vni)).map_err(|e| Error::Dataplane {
                op: "attach",
                message: e.to_string(),
            })?;
            // A restarted agent re-attaches (restore) before its first full sync, when it
            // knows no rows yet: the LOCAL row the previous agent wrote is still right and
            // packets are being delivered through it, so attaching only ever writes the row
            // once the table says this endpoint is local; the full sync's diff decides the rest.
            if inner
                .shadow
                .get(&RowKey::LocalEndpoint { vni, ip: ep.ip })
                .is_some()
            {
                inner.refresh_endpoint(vni, ep.ip)?;
            }
            Ok(())
        })
    }

    fn detach_endpoint(&self, ep: &EndpointAttachment) -> Result<bool> {
        self.with(|inner| {
            // Unpinning drops the last reference to the link; the veth is going away anyway.
            drop_xdp_links(&links_dir(&inner.cfg), &ep.host_ifname, None);
            let _ = std::fs::remove_file(endpoint_tc_link(&inner.cfg, &ep.host_ifname));
            let maps = inner.progs.maps_mut();
            let had = maps
                .remove_agent_endpoint(ep.host_ifindex)
                .map_err(dp_err("remove agent endpoint"))?;
            maps.remove_tx_port(ep.host_ifindex)
                .map_err(dp_err("remove tx port"))?;
            inner.attached.remove(&(ep.vni, ep.ip));
            if let Ok(vni) = Vni::new(u64::from(ep.vni)) {
                inner.refresh_endpoint(vni, ep.ip)?;
            }
            Ok(had)
        })
    }

    fn endpoints(&self) -> Result<Vec<EndpointAttachment>> {
        Ok(self.with(|inner| inner.attached.values().cloned().collect()))
    }

    fn counters(&self) -> Result<Counters> {
        self.with(|inner| {
            let c = inner.progs.counters().map_err(dp_err("read counters"))?;
            let verdicts = c
                .verdicts
                .iter()
                .map(|(v, n)| (format!("verdict.{}", v.name()), *n));
            let drops = c
                .drops
                .iter()
                .map(|(r, n)| (format!("drop.{}", r.name()), *n));
            Ok(verdicts.chain(drops).collect())
        })
    }
}
