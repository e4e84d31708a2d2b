//! The real data plane: rows written through the `alkaid-xdp` loader's typed maps, programs
//! attached through pinned bpf_links so they outlive the agent (xdp-on-veth rule 8).
//!
//! Row -> map: `LocalEndpoint`/`Endpoint` -> ENDPOINTS (one key: a local endpoint wins over
//! a directory entry for the same address, and needs its veth's ifindex, known once CNI
//! attached it), `Network` -> NETWORKS, `Vpc` -> VPCS, `Peer` -> PEERS; an attached endpoint
//! -> AGENT_ENDPOINTS and TX_PORTS. Removing or moving an endpoint, or removing a peer,
//! invalidates direct paths through it. A shadow of the written rows answers [`Dataplane::rows`],
//! checked against ENDPOINTS, the one map the loader can enumerate.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;

use alkaid_model::table::EndpointEntry;
use alkaid_model::{MacAddr, RowKey, RowValue, Table, Vni};
use alkaid_xdp::{Mode, Prog, Programs};
use alkaid_xdp_common::{
    AgentEndpoint, Config, ENDPOINT_F_LOCAL, EndpointValue, MAX_BOUNCERS, MAX_DIVIDERS,
    NetworkValue, VpcValue, ip, ip_octets, network_prefix_len,
};

use super::{ApplyReport, Counters, Dataplane, EndpointAttachment};
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
    /// Underlay MTU.
    pub underlay_mtu: u32,
    /// The virtual gateway MAC pods resolve every address to.
    pub gateway_mac: [u8; 6],
    /// Attach mode on the underlay NIC.
    pub underlay_mode: Mode,
    /// Attach mode on endpoint veths (generic keeps the pod's TSO, rule 4).
    pub endpoint_mode: Mode,
}

struct Inner {
    progs: Programs,
    cfg: AyaConfig,
    shadow: Table,
    attached: BTreeMap<(u32, Ipv4Addr), EndpointAttachment>,
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

impl AyaDataplane {
    /// Loads the programs, adopting maps pinned by a previous agent, writes CONFIG, and
    /// attaches `transit` to the underlay NIC through a pinned link.
    ///
    /// # Errors
    /// [`Error::Dataplane`] without root/CAP_BPF, if `pin_dir` is not on a bpffs, or if the
    /// verifier refuses a program.
    pub fn open(cfg: AyaConfig) -> Result<Self> {
        let links = cfg.pin_dir.join("links");
        std::fs::create_dir_all(&links).map_err(|e| Error::io("create pin dir", &links, e))?;
        let mut progs = Programs::load_pinned(&cfg.pin_dir.join("maps")).map_err(dp_err("load"))?;
        let maps = progs.maps_mut();
        maps.set_config(&Config {
            droplet_ip: ip(cfg.droplet_ip.octets()),
            underlay_ifindex: cfg.underlay_ifindex,
            mtu: cfg.underlay_mtu,
            flags: 0,
            droplet_mac: cfg.droplet_mac,
            gateway_mac: cfg.gateway_mac,
            default_peer_mac: [0; 6],
            _pad: [0; 2],
        })
        .map_err(dp_err("write config"))?;
        maps.add_tx_port(cfg.underlay_ifindex)
            .map_err(dp_err("add tx port"))?;
        progs
            .attach_pinned(
                Prog::Transit,
                cfg.underlay_ifindex,
                cfg.underlay_mode,
                &links.join("transit"),
            )
            .map_err(dp_err("attach transit"))?;
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
    /// Rewrites ENDPOINTS[(vni, ip)] from the shadow and the attachments.
    fn refresh_endpoint(&mut self, vni: Vni, addr: Ipv4Addr) -> Result<()> {
        let local = self.shadow.get(&RowKey::LocalEndpoint { vni, ip: addr });
        let att = self.attached.get(&(vni.get(), addr));
        let entry = self.shadow.get(&RowKey::Endpoint { vni, ip: addr });
        let value = match (local, att, entry) {
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
        };
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
        Ok(self.with(|inner| {
            let mut report = ApplyReport::default();
            for op in ops {
                match inner.apply_one(op) {
                    Ok(()) => report.applied += 1,
                    Err(e) => report.errors.push(e.to_string()),
                }
            }
            report
        }))
    }

    fn rows(&self) -> Result<Table> {
        self.with(|inner| {
            let mut rows = inner.shadow.clone();
            // ENDPOINTS rows we did not write (a previous agent's) show up as directory
            // entries, so a full sync removes them or rewrites them.
            let held = inner
                .progs
                .maps()
                .endpoints()
                .map_err(dp_err("read endpoints"))?;
            for (k, v) in held {
                let Ok(vni) = Vni::new(u64::from(k.vni)) else {
                    continue;
                };
                let addr = Ipv4Addr::from(ip_octets(k.ip));
                let local = RowKey::LocalEndpoint { vni, ip: addr };
                let entry = RowKey::Endpoint { vni, ip: addr };
                if rows.get(&local).is_none() && rows.get(&entry).is_none() {
                    rows.insert(
                        entry,
                        RowValue::Endpoint(EndpointEntry {
                            droplet_ip: Ipv4Addr::from(ip_octets(v.droplet_ip)),
                            mac: MacAddr(v.mac),
                        }),
                    );
                }
            }
            Ok(rows)
        })
    }

    fn attach_endpoint(&self, ep: &EndpointAttachment) -> Result<()> {
        self.with(|inner| {
            let link = inner.cfg.pin_dir.join("links").join(&ep.host_ifname);
            let mode = inner.cfg.endpoint_mode;
            inner
                .progs
                .attach_pinned(Prog::Agent, ep.host_ifindex, mode, &link)
                .map_err(dp_err("attach agent"))?;
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
            let link = inner.cfg.pin_dir.join("links").join(&ep.host_ifname);
            // Unpinning drops the last reference to the link; the veth is going away anyway.
            let _ = std::fs::remove_file(&link);
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
