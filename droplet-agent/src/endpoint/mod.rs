//! CNI ADD/DEL/CHECK on the agent side: allocate through the operator, build the veth,
//! attach the data plane, and keep a small record per attachment so DEL and CHECK know what
//! ADD did. Records are the agent's only local state; they describe interfaces on this host,
//! never table contents.
//!
//! ADD: allocate -> record (before any interface exists, so a crash still lets DEL release)
//! -> veth -> attach -> record with the result. A failure undoes all of it.
//! DEL: detach -> delete veth -> release -> remove record; every step tolerates absence.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rtnetlink::Handle;
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tracing::{debug, info, instrument, warn};

use crate::alloc::{AllocateRequest, Allocator};
use crate::cni::protocol::{AgentReply, AgentRequest, Command, EndpointInfo};
use crate::cni::spec::{CniError, ErrorCode};
use crate::dataplane::{Dataplane, EndpointAttachment};
use crate::error::{Error, Result};
use crate::netlink::{self, VethConfig};
use crate::pb::format_mac;

mod names;
mod record;

pub use names::{endpoint_mac, endpoint_name, host_ifname};
pub use record::{Record, Records};

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
    /// Turn tx checksum offload (hence TSO) off inside the pod: needed when XDP runs at the
    /// endpoint (xdp-on-veth rule 5); the TC hook keeps every offload.
    pub pod_tx_checksum_off: bool,
}

/// The agent's CNI backend.
pub struct Endpoints<A, D> {
    cfg: EndpointsConfig,
    records: Records,
    alloc: A,
    dataplane: Arc<D>,
    host: Handle,
    // CNI operations are rare and short; one at a time keeps ADD/DEL of one container
    // from interleaving without per-container lock bookkeeping.
    serial: Mutex<()>,
    programmed: Option<(watch::Receiver<crate::grpc::Status>, Duration)>,
}

impl<A: Allocator, D: Dataplane> Endpoints<A, D> {
    /// A backend using `host`, a netlink handle in the agent's own netns.
    pub fn new(cfg: EndpointsConfig, alloc: A, dataplane: Arc<D>, host: Handle) -> Self {
        Self {
            records: Records::new(cfg.state_dir.clone()),
            cfg,
            alloc,
            dataplane,
            host,
            serial: Mutex::new(()),
            programmed: None,
        }
    }

    /// Makes ADD wait (up to `timeout`) until the programming stream has applied the table
    /// version that holds the new endpoint's local rows, so the pod's first packets find
    /// them. On timeout ADD still succeeds (the rows follow; the pod may lose early packets).
    #[must_use]
    pub fn wait_programmed(
        mut self,
        status: watch::Receiver<crate::grpc::Status>,
        timeout: Duration,
    ) -> Self {
        self.programmed = Some((status, timeout));
        self
    }

    async fn await_version(&self, version: u64) {
        let Some((rx, timeout)) = &self.programmed else {
            return;
        };
        if version == 0 {
            return;
        }
        let mut rx = rx.clone();
        let reached = tokio::time::timeout(*timeout, rx.wait_for(|s| s.version >= version))
            .await
            .is_ok_and(|r| r.is_ok());
        if !reached {
            let held = rx.borrow().version;
            warn!(
                version,
                held, "endpoint rows not yet programmed; answering ADD anyway"
            );
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
        self.records.save(&record).map_err(to_cni)?;
        match self.build(&mut record, &netns, &alloc).await {
            Ok(info) => {
                self.await_version(alloc.droplet_version).await;
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
            temp_ifname: names::temp_ifname(&record.container_id, &record.ifname),
            netns: netns.to_path_buf(),
            ifname: record.ifname.clone(),
            mac,
            mtu: self.cfg.mtu,
            address: alloc.address,
            gateway: alloc.gateway,
            tx_checksum_off: self.cfg.pod_tx_checksum_off,
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
        self.records.save(record)?;
        Ok(info)
    }

    async fn del(&self, req: &AgentRequest) -> Result<(), CniError> {
        let record = self
            .records
            .load(&req.container_id, &req.ifname)
            .map_err(to_cni)?;
        let record = record.unwrap_or_else(|| Record {
            container_id: req.container_id.clone(),
            ifname: req.ifname.clone(),
            namespace: req.namespace.clone(),
            name: endpoint_name(req),
            host_ifname: host_ifname(&req.container_id, &req.ifname),
            info: None,
            attachment: None,
        });
        let known = self.records.path(&req.container_id, &req.ifname).exists();
        if let Some(att) = &record.attachment {
            self.dataplane.detach_endpoint(att).map_err(to_cni)?;
        }
        netlink::delete_link(&self.host, &record.host_ifname)
            .await
            .map_err(to_cni)?;
        // Without a record (an ADD that died before writing it, a wiped state dir) the
        // endpoint may still be allocated: release it by (namespace, name), or a pod
        // recreated under the same name would keep the stale one. Releasing a missing
        // endpoint is success. Skipped only when another live record on this droplet holds
        // that name: then a recreated pod's ADD came first and the endpoint is its.
        let other_owner = !known
            && self.records.all().iter().any(|r| {
                r.namespace == record.namespace
                    && r.name == record.name
                    && (r.container_id != req.container_id || r.ifname != req.ifname)
            });
        if !other_owner {
            let released = self
                .alloc
                .release(&record.namespace, &record.name)
                .await
                .map_err(to_cni)?;
            debug!(released, "endpoint released");
        }
        if known {
            self.records.remove(&record).map_err(to_cni)?;
        }
        info!(known, "endpoint deleted");
        Ok(())
    }

    async fn check(&self, req: &AgentRequest) -> Result<EndpointInfo, CniError> {
        let record = self
            .records
            .load(&req.container_id, &req.ifname)
            .map_err(to_cni)?;
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
            (
                self.cfg.pod_tx_checksum_off && state.tx_checksum,
                "tx checksum offload is on".to_string(),
            ),
            (
                !state.unsupported_gso.is_empty(),
                format!("{} on", state.unsupported_gso.join(", ")),
            ),
        ];
        if let Some((_, what)) = problems.into_iter().find(|(bad, _)| *bad) {
            return Err(fail(format!("{}: {what}", info.ifname)));
        }
        Ok(info)
    }

    /// The data plane's contents, for `alkaid lab tables`.
    ///
    /// # Errors
    /// What the data plane returns.
    pub fn dump(&self) -> Result<crate::cni::dump::TablesDump> {
        crate::cni::dump::collect(self.dataplane.as_ref())
    }

    /// After an agent restart: re-attaches every recorded endpoint whose host veth still
    /// has the recorded ifindex, so the data plane knows its local interfaces before the first
    /// full sync (a `LocalEndpoint` row without its interface would be withdrawn). Records
    /// whose veth is gone are left for DEL. Returns how many were re-attached.
    ///
    /// # Errors
    /// Netlink failures; a refused attach is logged and skipped.
    pub async fn restore(&self) -> Result<usize> {
        let _guard = self.serial.lock().await;
        let mut n = 0;
        for record in self.records.all() {
            let Some(att) = &record.attachment else {
                continue;
            };
            let link = netlink::link_by_name(&self.host, &att.host_ifname).await?;
            if link.map(|l| l.header.index) != Some(att.host_ifindex) {
                warn!(host_if = %att.host_ifname, "recorded veth is gone; waiting for DEL");
                continue;
            }
            match self.dataplane.attach_endpoint(att) {
                Ok(()) => n += 1,
                Err(e) => warn!(host_if = %att.host_ifname, error = %e, "re-attach failed"),
            }
        }
        info!(restored = n, "endpoints restored from records");
        Ok(n)
    }

    async fn teardown(&self, record: &Record) {
        if let Some(att) = &record.attachment {
            let _ = self.dataplane.detach_endpoint(att);
        }
        let _ = netlink::delete_link(&self.host, &record.host_ifname).await;
        let _ = self.alloc.release(&record.namespace, &record.name).await;
        let _ = self.records.remove(record);
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

#[cfg(test)]
mod tests {
    use super::*;

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
