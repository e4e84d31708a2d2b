//! Endpoint interfaces through rtnetlink: the veth pair, the pod side moved into the pod's
//! netns and configured there, and their removal. Never shells out to `ip` or `ethtool`.
//!
//! Work inside a pod netns runs on a dedicated OS thread that enters the namespace with
//! `setns(2)`, opens its own netlink socket there (a socket stays bound to the namespace it
//! was created in), runs a current-thread runtime, and exits. No thread of the agent's own
//! runtime ever changes namespace.

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlag, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, IpVersion};
use tracing::{debug, instrument};

use crate::error::{Error, Result};
use crate::sys;

/// What to build for one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VethConfig {
    /// Host-side name (in the agent's netns).
    pub host_ifname: String,
    /// Temporary name of the pod side before it is moved and renamed.
    pub temp_ifname: String,
    /// The pod netns path.
    pub netns: PathBuf,
    /// Pod-side name (CNI_IFNAME).
    pub ifname: String,
    /// Pod-side MAC.
    pub mac: [u8; 6],
    /// MTU of both ends.
    pub mtu: u32,
    /// Pod address and subnet prefix.
    pub address: Ipv4Net,
    /// The subnet gateway (default route).
    pub gateway: Ipv4Addr,
    /// Turn tx checksum offload off in the pod (XDP at the endpoint, rule 5).
    pub tx_checksum_off: bool,
}

/// What was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VethInfo {
    /// Host-side ifindex (XDP attaches here).
    pub host_ifindex: u32,
    /// Host-side MAC.
    pub host_mac: [u8; 6],
}

/// A link as seen from inside a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkState {
    /// ifindex in its namespace.
    pub index: u32,
    /// MAC.
    pub mac: Vec<u8>,
    /// MTU.
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// IPv4 addresses with prefixes.
    pub addresses: Vec<Ipv4Net>,
    /// IPv4 routes through it in the main table: (destination, gateway).
    pub routes: Vec<(Ipv4Net, Option<Ipv4Addr>)>,
    /// tx checksum offload on.
    pub tx_checksum: bool,
    /// GRO on.
    pub gro: bool,
    /// Which of [`POD_GSO_OFF`] are active.
    pub unsupported_gso: Vec<String>,
}

/// Segmentation offloads a pod's interface must not offer: the TC encapsulation cannot carry
/// GSO frames of a pod's own tunnel (the kernel will not describe a tunnel inside a tunnel)
/// nor SCTP (`bpf_skb_adjust_room` segments TCP and UDP only), so with these off the pod's
/// kernel segments such frames before they leave it. TCP and UDP keep their offloads.
pub const POD_GSO_OFF: &[&str] = &[
    "tx-udp_tnl-segmentation",
    "tx-udp_tnl-csum-segmentation",
    "tx-gre-segmentation",
    "tx-gre-csum-segmentation",
    "tx-ipxip4-segmentation",
    "tx-ipxip6-segmentation",
    "tx-sctp-segmentation",
];

/// Runs `f` with a netlink handle opened inside the network namespace at `netns`, on a
/// dedicated thread that is the only one ever to enter it.
///
/// # Errors
/// [`Error::Netns`] if the namespace cannot be opened or entered, else what `f` returns.
pub async fn in_netns<F, Fut, T>(netns: &Path, f: F) -> Result<T>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>> + 'static,
    T: Send + 'static,
{
    let path = netns.to_path_buf();
    let file = File::open(&path).map_err(|source| Error::Netns {
        path: path.clone(),
        op: "open",
        source,
    })?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread_path = path.clone();
    std::thread::Builder::new()
        .name("alkaid-netns".into())
        .spawn(move || {
            let run = || -> Result<T> {
                sys::setns_net(&file).map_err(|source| Error::Netns {
                    path: thread_path.clone(),
                    op: "setns",
                    source,
                })?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|source| Error::Netns {
                        path: thread_path.clone(),
                        op: "start runtime",
                        source,
                    })?;
                rt.block_on(async {
                    let handle = connect(&thread_path)?;
                    f(handle).await
                })
            };
            // The receiver only goes away if the caller was cancelled.
            let _ = tx.send(run());
        })
        .map_err(|source| Error::Netns {
            path: path.clone(),
            op: "spawn thread",
            source,
        })?;
    rx.await.unwrap_or_else(|_| {
        Err(Error::Netns {
            path,
            op: "run",
            source: std::io::Error::other("netns thread panicked"),
        })
    })
}

/// Opens a netlink connection in the calling thread's namespace; its driver runs on the
/// current runtime.
///
/// # Errors
/// [`Error::Netns`] if the socket cannot be opened.
pub fn connect(ns: &Path) -> Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|source| Error::Netns {
        path: ns.to_path_buf(),
        op: "open netlink socket",
        source,
    })?;
    tokio::spawn(conn);
    Ok(handle)
}

/// The link named `name`, or None.
///
/// # Errors
/// Netlink errors other than "no such device".
pub async fn link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkMessage>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(e) => Err(Error::netlink("get link", name, e)),
    }
}

/// Creates the endpoint's veth pair and configures both ends. Idempotent: an existing host
/// end of the same name is removed first. On failure nothing is left behind.
///
/// # Errors
/// [`Error::Netns`] or [`Error::Netlink`] naming the step that failed.
#[instrument(skip(host), fields(host_if = %cfg.host_ifname, netns = %cfg.netns.display()))]
pub async fn create_veth(host: &Handle, cfg: &VethConfig) -> Result<VethInfo> {
    delete_link(host, &cfg.host_ifname).await?;
    delete_link(host, &cfg.temp_ifname).await?;
    host.link()
        .add()
        .veth(cfg.host_ifname.clone(), cfg.temp_ifname.clone())
        .execute()
        .await
        .map_err(|e| Error::netlink("create veth", &cfg.host_ifname, e))?;
    match configure(host, cfg).await {
        Ok(info) => Ok(info),
        Err(e) => {
            // Deleting one end deletes both, wherever the peer went.
            let _ = delete_link(host, &cfg.host_ifname).await;
            Err(e)
        }
    }
}

async fn configure(host: &Handle, cfg: &VethConfig) -> Result<VethInfo> {
    let ns = File::open(&cfg.netns).map_err(|source| Error::Netns {
        path: cfg.netns.clone(),
        op: "open",
        source,
    })?;
    let peer = require(host, &cfg.temp_ifname, None).await?;
    host.link()
        .set(peer.header.index)
        .setns_by_fd(ns.as_raw_fd())
        .execute()
        .await
        .map_err(|e| Error::netlink("move into netns", &cfg.temp_ifname, e))?;
    let host_link = require(host, &cfg.host_ifname, None).await?;
    host.link()
        .set(host_link.header.index)
        .mtu(cfg.mtu)
        .up()
        .execute()
        .await
        .map_err(|e| Error::netlink("set mtu and up", &cfg.host_ifname, e))?;

    let inner = cfg.clone();
    in_netns(&cfg.netns, move |h| async move {
        configure_pod_side(&h, &inner).await
    })
    .await?;

    let mac = link_mac(&host_link);
    debug!(index = host_link.header.index, "veth ready");
    Ok(VethInfo {
        host_ifindex: host_link.header.index,
        host_mac: mac.try_into().unwrap_or_default(),
    })
}

async fn configure_pod_side(h: &Handle, cfg: &VethConfig) -> Result<()> {
    let ns = Some(cfg.netns.clone());
    let link = require(h, &cfg.temp_ifname, ns.clone()).await?;
    let idx = link.header.index;
    h.link()
        .set(idx)
        .name(cfg.ifname.clone())
        .address(cfg.mac.to_vec())
        .mtu(cfg.mtu)
        .execute()
        .await
        .map_err(|e| Error::netlink("rename and set mac/mtu", &cfg.ifname, e))?;
    h.link()
        .set(idx)
        .up()
        .execute()
        .await
        .map_err(|e| Error::netlink("set up", &cfg.ifname, e))?;
    if let Some(lo) = link_by_name(h, "lo").await? {
        h.link()
            .set(lo.header.index)
            .up()
            .execute()
            .await
            .map_err(|e| Error::netlink("set up", "lo", e))?;
    }
    // The subnet route comes with the address (a connected route); the default goes via
    // the gateway, which the host-side program answers for.
    h.address()
        .add(
            idx,
            IpAddr::V4(cfg.address.addr()),
            cfg.address.prefix_len(),
        )
        .replace()
        .execute()
        .await
        .map_err(|e| Error::netlink("add address", cfg.address.to_string(), e))?;
    h.route()
        .add()
        .v4()
        .output_interface(idx)
        .gateway(cfg.gateway)
        .replace()
        .execute()
        .await
        .map_err(|e| Error::netlink("add default route", cfg.gateway.to_string(), e))?;
    // xdp-on-veth rule 5: a CHECKSUM_PARTIAL skb through XDP on veth leaves with a bad L4
    // checksum, so the pod computes checksums itself.
    // The TC hook keeps CHECKSUM_PARTIAL valid (adjust_room moves csum_start), so pods
    // behind it keep tx offload and TSO.
    if cfg.tx_checksum_off {
        sys::set_tx_checksum(&cfg.ifname, false).map_err(|source| Error::Ethtool {
            op: "tx checksum off",
            ifname: cfg.ifname.clone(),
            source,
        })?;
    }
    sys::set_features(&cfg.ifname, POD_GSO_OFF, false).map_err(|source| Error::Ethtool {
        op: "tunnel and SCTP segmentation off",
        ifname: cfg.ifname.clone(),
        source,
    })?;
    // Rule 1: frames XDP_REDIRECTed into the host end (native mode) are dropped unless the
    // peer, this end, has GRO on (or an XDP program).
    sys::set_gro(&cfg.ifname, true).map_err(|source| Error::Ethtool {
        op: "gro on",
        ifname: cfg.ifname.clone(),
        source,
    })
}

/// Deletes the link `name` in `handle`'s namespace. Returns whether it existed.
///
/// # Errors
/// Netlink errors other than "no such device".
pub async fn delete_link(handle: &Handle, name: &str) -> Result<bool> {
    let Some(link) = link_by_name(handle, name).await? else {
        return Ok(false);
    };
    match handle.link().del(link.header.index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(false),
        Err(e) => Err(Error::netlink("delete link", name, e)),
    }
}

/// Deletes the host links `names` (root netns), best effort, from any context: on a fresh
/// thread with its own runtime, so a drop guard may call it inside or outside a tokio
/// runtime, and during a panic. Errors are ignored (the link may already be gone).
pub fn delete_host_links_blocking(names: Vec<String>) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let h = connect(std::path::Path::new("/")).ok()?;
            for name in names {
                let _ = delete_link(&h, &name).await;
            }
            Some(())
        })
    })
    .join();
}

/// Reads the state of `ifname` inside the namespace at `netns`, or None if it is absent.
///
/// # Errors
/// [`Error::Netns`] or [`Error::Netlink`].
pub async fn inspect(netns: &Path, ifname: &str) -> Result<Option<LinkState>> {
    let name = ifname.to_string();
    in_netns(netns, move |h| async move { inspect_here(&h, &name).await }).await
}

/// [`inspect`] in `h`'s namespace (the caller's thread must be in it for the ethtool query).
///
/// # Errors
/// [`Error::Netlink`].
pub async fn inspect_here(h: &Handle, ifname: &str) -> Result<Option<LinkState>> {
    let Some(link) = link_by_name(h, ifname).await? else {
        return Ok(None);
    };
    let index = link.header.index;
    let mut addresses = Vec::new();
    let mut addrs = h.address().get().set_link_index_filter(index).execute();
    while let Some(a) = addrs
        .try_next()
        .await
        .map_err(|e| Error::netlink("list addresses", ifname, e))?
    {
        for attr in &a.attributes {
            if let AddressAttribute::Address(IpAddr::V4(ip)) = attr
                && let Ok(net) = Ipv4Net::new(*ip, a.header.prefix_len)
            {
                addresses.push(net);
            }
        }
    }
    let mut routes = Vec::new();
    let mut rs = h.route().get(IpVersion::V4).execute();
    while let Some(r) = rs
        .try_next()
        .await
        .map_err(|e| Error::netlink("list routes", ifname, e))?
    {
        let (mut dst, mut gw, mut oif) = (Ipv4Addr::UNSPECIFIED, None, None);
        for attr in &r.attributes {
            match attr {
                RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = *a,
                RouteAttribute::Gateway(RouteAddress::Inet(a)) => gw = Some(*a),
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        if oif == Some(index)
            && r.header.table == 254
            && let Ok(net) = Ipv4Net::new(dst, r.header.destination_prefix_length)
        {
            routes.push((net, gw));
        }
    }
    let mtu = link
        .attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Mtu(m) => Some(*m),
            _ => None,
        })
        .unwrap_or_default();
    Ok(Some(LinkState {
        index,
        mac: link_mac(&link),
        mtu,
        up: link.header.flags.contains(&LinkFlag::Up),
        addresses,
        routes,
        tx_checksum: sys::tx_checksum(ifname).unwrap_or(true),
        gro: sys::gro(ifname).unwrap_or(false),
        unsupported_gso: sys::active_features(ifname, POD_GSO_OFF).unwrap_or_default(),
    }))
}

async fn require(h: &Handle, name: &str, in_netns: Option<PathBuf>) -> Result<LinkMessage> {
    link_by_name(h, name)
        .await?
        .ok_or_else(|| Error::LinkNotFound {
            name: name.to_string(),
            in_netns,
        })
}

/// The hardware address of `link` (empty when it has none).
pub fn link_mac(link: &LinkMessage) -> Vec<u8> {
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(m) => Some(m.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.code.map(|c| c.get()) == Some(-errno))
}
