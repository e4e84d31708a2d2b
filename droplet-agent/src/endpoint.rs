//! CNI ADD/DEL/CHECK on the agent side: allocate through the operator, build the veth,
//! attach the data plane, and keep a small record per attachment so DEL and CHECK know what
//! ADD did. Records are the agent's only local state; they describe interfaces on this host,
//! never table contents.
//!
//! ADD: allocate -> record (before any interface exists, so a crash still lets DEL release)
//! -> veth -> attach -> record with the result. A failure undoes all of it.
//! DEL: detach -> delete veth -> release -> remove record; every step tolerates absence.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rtnetlink::Handle;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tracing::{info, instrument, warn};

use crate::alloc::{AllocateRequest, Allocator};
use crate::cni::protocol::{AgentReply, AgentRequest, Command, EndpointInfo};
use crate::cni::spec::{CniError, ErrorCode};
use crate::dataplane::{Dataplane, EndpointAttachment};
use crate::error::{Error, Result};
use crate::netlink::{self, VethConfig};
use crate::pb::format_mac;

/// Geneve encapsulation overhead: Ethernet 14 + IPv4 20 + UDP 8 + Geneve 8 + return-to-sender
/// option 8 (`alkaid_xdp_common::wire::OVERHEAD`).
pub const ENCAP_OVERHEAD: u32 = 58;

/// Endpoint settings fixed for the agent's lifetime.
#[derive(Clone, Debug)]
pub struct EndpointsConfig {
    /// Where attachment records live (one JSON file per container interface).
    pub state_dir: PathBuf,
    /// MTU of endpoint interfaces (underlay MTU minus [`ENCAP_OVERHEAD`]).
    pub mtu: u32,
}

/// What ADD did, persisted for DEL and CHECK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// CNI_CONTAINERID.
    pub container_id: String,
    /// CNI_IFNAME.
    pub ifname: String,
    /// Endpoint namespace.
    pub namespace: String,
    /// Endpoint name.
    pub name: String,
    /// Host-side veth name.
    pub host_ifname: String,
    /// The finished endpoint, once the interface exists.
    #[serde(default)]
    pub info: Option<EndpointInfo>,
    /// The data-plane attachment, once made.
    #[serde(default)]
    pub attachment: Option<EndpointAttachment>,
}

/// The agent's CNI backend.
pub struct Endpoints<A, D> {
    cfg: EndpointsConfig,
    alloc: A,
    dataplane: Arc<D>,
    host: Handle,
    // CNI operations are rare and short; one at a time keeps ADD/DEL of one container
    // from interleaving without per-container lock bookkeeping.
    serial: Mutex<()>,
}

impl<A: Allocator, D: Dataplane> Endpoints<A, D> {
    /// A backend using `host`, a netlink handle in the agent's own netns.
    pub fn new(cfg: EndpointsConfig, alloc: A, dataplane: Arc<D>, host: Handle) -> Self {
        Self {
            cfg,
            alloc,
            dataplane,
            host,
            serial: Mutex::new(()),
        }
    }

    /// Serves one request from the plugin.
    #[instrument(skip_all, fields(cmd = ?req.command, container = %req.container_id, ifname = %req.ifname))]
    pub async fn handle(&self, req: AgentRequest) -> AgentReply {
        let _guard = self.serial.lock().await;
        let out = match req.command {
            Command::Add => self.add(&req).await.map(Some),
            Command::Del => self.del(&req).await.map(|()| None),
            Command::Check => self.check(&req).await.map(Some),
        };
        match out {
            Ok(info) => AgentReply::Ok(info),
            Err(e) => {
                warn!(error = %e, "cni request failed");
                AgentReply::Error(e)
            }
        }
    }

    async fn add(&self, req: &AgentRequest) -> Result<EndpointInfo, CniError> {
        let netns = req.netns.clone().ok_or_else(|| {
            CniError::new(
                ErrorCode::InvalidEnv,
                "invalid environment variable CNI_NETNS",
                "not set",
            )
        })?;
        if !netns.exists() {
            return Err(CniError::new(
                ErrorCode::InvalidEnv,
                "invalid environment variable CNI_NETNS",
                format!("{} does not exist", netns.display()),
            ));
        }
        let name = endpoint_name(req);
        let alloc = self
            .alloc
            .allocate(AllocateRequest {
                namespace: req.namespace.clone(),
                name: name.clone(),
                vpc: req.vpc.clone(),
                subnet: req.subnet.clone(),
                ip: req.ip,
                pod: format!("{}/{}", req.namespace, req.pod.as_deref().unwrap_or(&name)),
            })
            .await
            .map_err(to_cni)?;
        let mut record = Record {
            container_id: req.container_id.clone(),
            ifname: req.ifname.clone(),
            namespace: req.namespace.clone(),
            name,
            host_ifname: host_ifname(&req.container_id, &req.ifname),
            info: None,
            attachment: None,
        };
        self.save(&record).map_err(to_cni)?;
        match self.build(&mut record, &netns, &alloc).await {
            Ok(info) => {
                info!(endpoint = %info.endpoint, address = %info.address, "endpoint added");
                Ok(info)
            }
            Err(e) => {
                warn!(error = %e, "add failed, undoing");
                self.teardown(&record).await;
                Err(to_cni(e))
            }
        }
    }

    async fn build(
        &self,
        record: &mut Record,
        netns: &Path,
        alloc: &crate::alloc::Allocation,
    ) -> Result<EndpointInfo> {
        let mac = alloc
            .mac
            .unwrap_or_else(|| endpoint_mac(alloc.vni, alloc.address.addr()));
        let cfg = VethConfig {
            host_ifname: record.host_ifname.clone(),
            temp_ifname: temp_ifname(&record.container_id, &record.ifname),
            netns: netns.to_path_buf(),
            ifname: record.ifname.clone(),
            mac,
            mtu: self.cfg.mtu,
            address: alloc.address,
            gateway: alloc.gateway,
        };
        let veth = netlink::create_veth(&self.host, &cfg).await?;
        let attachment = EndpointAttachment {
            host_ifname: record.host_ifname.clone(),
            host_ifindex: veth.host_ifindex,
            vni: alloc.vni,
            ip: alloc.address.addr(),
            mac,
            subnet: alloc.address.trunc(),
            gateway: alloc.gateway,
        };
        record.attachment = Some(attachment.clone());
        self.dataplane.attach_endpoint(&attachment)?;
        let info = EndpointInfo {
            endpoint: format!("{}/{}", record.namespace, record.name),
            host_ifname: record.host_ifname.clone(),
            host_mac: format_mac(&veth.host_mac),
            ifname: record.ifname.clone(),
            mac: format_mac(&mac),
            netns: netns.to_path_buf(),
            address: alloc.address,
            gateway: alloc.gateway,
            mtu: self.cfg.mtu,
            vni: alloc.vni,
        };
        record.info = Some(info.clone());
        self.save(record)?;
        Ok(info)
    }

    async fn del(&self, req: &AgentRequest) -> Result<(), CniError> {
        let record = self.load(&req.container_id, &req.ifname).map_err(to_cni)?;
        let record = record.unwrap_or_else(|| Record {
            container_id: req.container_id.clone(),
            ifname: req.ifname.clone(),
            namespace: req.namespace.clone(),
            name: endpoint_name(req),
            host_ifname: host_ifname(&req.container_id, &req.ifname),
            info: None,
            attachment: None,
        });
        // Without a record we clean up the interface but release nothing: a pod recreated
        // under the same name may own that endpoint now.
        let known = self.record_path(&req.container_id, &req.ifname).exists();
        if let Some(att) = &record.attachment {
            self.dataplane.detach_endpoint(att).map_err(to_cni)?;
        }
        netlink::delete_link(&self.host, &record.host_ifname)
            .await
            .map_err(to_cni)?;
        if known {
            self.alloc
                .release(&record.namespace, &record.name)
                .await
                .map_err(to_cni)?;
            self.remove(&record).map_err(to_cni)?;
        }
        info!(known, "endpoint deleted");
        Ok(())
    }

    async fn check(&self, req: &AgentRequest) -> Result<EndpointInfo, CniError> {
        let record = self.load(&req.container_id, &req.ifname).map_err(to_cni)?;
        let Some(info) = record.and_then(|r| r.info) else {
            return Err(CniError::new(
                ErrorCode::UnknownContainer,
                format!(
                    "no endpoint for container {} interface {}",
                    req.container_id, req.ifname
                ),
                "ADD was never completed for it",
            ));
        };
        let fail = |what: String| to_cni(Error::CheckFailed { what });
        if netlink::link_by_name(&self.host, &info.host_ifname)
            .await
            .map_err(to_cni)?
            .is_none()
        {
            return Err(fail(format!("host veth {} is missing", info.host_ifname)));
        }
        let netns = req.netns.clone().unwrap_or_else(|| info.netns.clone());
        let state = netlink::inspect(&netns, &info.ifname)
            .await
            .map_err(to_cni)?;
        let Some(state) = state else {
            return Err(fail(format!(
                "{} is missing in {}",
                info.ifname,
                netns.display()
            )));
        };
        let problems = [
            (
                format_mac(&state.mac) != info.mac,
                format!("mac is {}", format_mac(&state.mac)),
            ),
            (state.mtu != info.mtu, format!("mtu is {}", state.mtu)),
            (!state.up, "link is down".to_string()),
            (
                !state.addresses.contains(&info.address),
                format!("addresses are {:?}", state.addresses),
            ),
            (
                !state
                    .routes
                    .iter()
                    .any(|(d, g)| d.prefix_len() == 0 && *g == Some(info.gateway)),
                format!("no default route via {}", info.gateway),
            ),
            (state.tx_checksum, "tx checksum offload is on".to_string()),
        ];
        if let Some((_, what)) = problems.into_iter().find(|(bad, _)| *bad) {
            return Err(fail(format!("{}: {what}", info.ifname)));
        }
        Ok(info)
    }

    async fn teardown(&self, record: &Record) {
        if let Some(att) = &record.attachment {
            let _ = self.dataplane.detach_endpoint(att);
        }
        let _ = netlink::delete_link(&self.host, &record.host_ifname).await;
        let _ = self.alloc.release(&record.namespace, &record.name).await;
        let _ = self.remove(record);
    }

    fn record_path(&self, container_id: &str, ifname: &str) -> PathBuf {
        self.cfg
            .state_dir
            .join(format!("{container_id}_{ifname}.json"))
    }

    fn save(&self, r: &Record) -> Result<()> {
        let path = self.record_path(&r.container_id, &r.ifname);
        std::fs::create_dir_all(&self.cfg.state_dir)
            .map_err(|e| Error::io("create state dir", &self.cfg.state_dir, e))?;
        let tmp = path.with_extension("tmp");
        let body = serde_json::to_vec_pretty(r).map_err(|source| Error::Json {
            what: "record",
            source,
        })?;
        std::fs::write(&tmp, body).map_err(|e| Error::io("write record", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename record", &path, e))
    }

    fn load(&self, container_id: &str, ifname: &str) -> Result<Option<Record>> {
        let path = self.record_path(container_id, ifname);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|source| Error::Json {
                    what: "record",
                    source,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read record", path, e)),
        }
    }

    fn remove(&self, r: &Record) -> Result<()> {
        let path = self.record_path(&r.container_id, &r.ifname);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove record", path, e)),
        }
    }
}

/// Maps an agent error onto a CNI error code.
pub fn to_cni(e: Error) -> CniError {
    let code = match &e {
        Error::Allocation {
            transient: true, ..
        }
        | Error::Connect { .. } => ErrorCode::TryAgainLater,
        Error::Allocation { .. } | Error::InvalidField { .. } => ErrorCode::AllocationFailed,
        Error::Netlink { .. }
        | Error::Netns { .. }
        | Error::Ethtool { .. }
        | Error::LinkNotFound { .. } => ErrorCode::InterfaceFailed,
        Error::CheckFailed { .. } => ErrorCode::CheckFailed,
        _ => ErrorCode::Internal,
    };
    let details = std::error::Error::source(&e)
        .map(ToString::to_string)
        .unwrap_or_default();
    CniError::new(code, e.to_string(), details)
}

/// The Endpoint object's name: the pod's name when the runtime gave it, else the container id
/// (lowercased and cut to 63 characters, a valid Kubernetes name).
pub fn endpoint_name(req: &AgentRequest) -> String {
    match &req.pod {
        Some(p) => p.clone(),
        None => req
            .container_id
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .take(63)
            .collect(),
    }
}

fn fnv64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The host-side veth name of a container interface: `alk` + 12 hex digits of a hash of
/// (container id, ifname), stable so DEL finds it without a record.
pub fn host_ifname(container_id: &str, ifname: &str) -> String {
    format!(
        "alk{:012x}",
        fnv64(&[container_id, ifname]) & 0xffff_ffff_ffff
    )
}

fn temp_ifname(container_id: &str, ifname: &str) -> String {
    format!(
        "alt{:012x}",
        fnv64(&[container_id, ifname]) & 0xffff_ffff_ffff
    )
}

/// The endpoint MAC when the operator chose none: `0a:VV:VV:II:II:II` (low 16 bits of the
/// VNI, low 24 bits of the IP), the same rule as the model's `MacAddr::for_endpoint`.
pub fn endpoint_mac(vni: u32, ip: Ipv4Addr) -> [u8; 6] {
    let v = vni.to_be_bytes();
    let i = ip.octets();
    [0x0a, v[2], v[3], i[1], i[2], i[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_valid_ifnames() {
        let a = host_ifname("abc", "eth0");
        assert_eq!(a, host_ifname("abc", "eth0"));
        assert_ne!(a, host_ifname("abc", "eth1"));
        assert_eq!(a.len(), 15);
        assert!(crate::cni::spec::is_valid_ifname(&a));
        assert_ne!(a[3..], temp_ifname("abc", "eth1")[3..]);
    }

    #[test]
    fn mac_rule() {
        assert_eq!(
            endpoint_mac(7001, Ipv4Addr::new(10, 0, 1, 5)),
            [0x0a, 0x1b, 0x59, 0, 1, 5]
        );
    }

    #[test]
    fn error_codes() {
        let e = Error::Allocation {
            namespace: "a".into(),
            name: "b".into(),
            message: "no leader".into(),
            transient: true,
        };
        assert_eq!(to_cni(e).code, ErrorCode::TryAgainLater);
        let e = Error::CheckFailed { what: "x".into() };
        assert_eq!(to_cni(e).code, ErrorCode::CheckFailed);
    }
}
