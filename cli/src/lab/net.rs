//! Links and addresses through rtnetlink (never by shelling out to `ip`).
//!
//! A [`Handle`] speaks for the netns its socket was opened in: [`connect`] opens one in any
//! netns from a throw-away thread that entered it, so no long-lived thread changes netns.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd as _;
use std::path::Path;

use futures::TryStreamExt as _;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::Handle;

use crate::error::{Error, Result};

/// Opens a netlink handle in the netns at `netns` (`None`: ours). Must run inside a tokio
/// runtime; the connection task is spawned on it.
///
/// # Errors
/// [`Error::Io`]/[`Error::Sys`] when the netns cannot be entered or the socket opened.
pub fn connect(netns: Option<&Path>) -> Result<Handle> {
    let rt = tokio::runtime::Handle::current();
    let ns = netns.map(Path::to_path_buf);
    let (conn, handle) = std::thread::spawn(move || -> Result<_> {
        if let Some(p) = &ns {
            super::sys::enter_netns(p)?;
        }
        let _guard = rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| Error::io("opening netlink in", ns.clone().unwrap_or_default(), e))?;
        Ok((conn, handle))
    })
    .join()
    .map_err(|_| Error::Lab("netlink thread panicked".into()))??;
    tokio::spawn(conn);
    Ok(handle)
}

/// A link by name; `Ok(None)` if absent.
///
/// # Errors
/// Netlink failures other than "no such device".
pub async fn link(h: &Handle, name: &str) -> Result<Option<LinkMessage>> {
    let mut s = h
        .clone()
        .link()
        .get()
        .match_name(name.to_string())
        .execute();
    match s.try_next().await {
        Ok(m) => Ok(m),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(Error::netlink(format!("looking up {name}"), e)),
    }
}

/// Every link name starting with one of `prefixes`.
///
/// # Errors
/// Netlink.
pub async fn links_with(h: &Handle, prefixes: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut s = h.clone().link().get().execute();
    while let Some(m) = s
        .try_next()
        .await
        .map_err(|e| Error::netlink("listing links", e))?
    {
        if let Some(n) = name_of(&m)
            && prefixes.iter().any(|p| n.starts_with(p.as_str()))
        {
            out.push(n);
        }
    }
    Ok(out)
}

/// The link's name.
pub fn name_of(m: &LinkMessage) -> Option<String> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

/// The link's MAC as `aa:bb:cc:dd:ee:ff`.
pub fn mac_of(m: &LinkMessage) -> String {
    m.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(b) => Some(
                b.iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

async fn need(h: &Handle, name: &str) -> Result<LinkMessage> {
    link(h, name)
        .await?
        .ok_or_else(|| Error::Lab(format!("link {name} vanished while being set up")))
}

/// Creates the bridge (if absent) with `ip/prefix` and brings it up.
///
/// # Errors
/// Netlink.
pub async fn ensure_bridge(h: &Handle, name: &str, ip: Ipv4Addr, prefix: u8) -> Result<u32> {
    if link(h, name).await?.is_none() {
        h.link()
            .add()
            .bridge(name.to_string())
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("creating bridge {name}"), e))?;
    }
    let idx = need(h, name).await?.header.index;
    add_addr(h, idx, ip, prefix).await?;
    set_up(h, idx, true).await?;
    Ok(idx)
}

/// Adds an address, accepting "already there".
///
/// # Errors
/// Netlink.
pub async fn add_addr(h: &Handle, idx: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
    match h.address().add(idx, IpAddr::V4(ip), prefix).execute().await {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => Ok(()),
        Err(e) => Err(Error::netlink(format!("adding {ip}/{prefix}"), e)),
    }
}

/// Sets a link up or down.
///
/// # Errors
/// Netlink.
pub async fn set_up(h: &Handle, idx: u32, up: bool) -> Result<()> {
    let req = h.link().set(idx);
    let req = if up { req.up() } else { req.down() };
    req.execute().await.map_err(|e| {
        Error::netlink(
            format!("setting link {idx} {}", if up { "up" } else { "down" }),
            e,
        )
    })
}

/// Sets a link up or down by name.
///
/// # Errors
/// Netlink; [`Error::Lab`] if absent.
pub async fn set_up_by_name(h: &Handle, name: &str, up: bool) -> Result<()> {
    let idx = need(h, name).await?.header.index;
    set_up(h, idx, up).await
}

/// Deletes a link by name; `Ok(false)` if absent.
///
/// # Errors
/// Netlink.
pub async fn delete_link(h: &Handle, name: &str) -> Result<bool> {
    let Some(m) = link(h, name).await? else {
        return Ok(false);
    };
    match h.clone().link().del(m.header.index).execute().await {
        Ok(()) => Ok(true),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(false),
        Err(e) => Err(Error::netlink(format!("deleting {name}"), e)),
    }
}

/// A droplet's underlay: veth `host` on `bridge` in our netns, its peer moved into `netns`
/// as `eth0` with `ip/prefix`, `lo` up. Returns the MAC of the netns side.
///
/// # Errors
/// Netlink or netns failures.
pub async fn droplet_link(
    host: &Handle,
    bridge: u32,
    host_if: &str,
    netns: &Path,
    ip: Ipv4Addr,
    prefix: u8,
) -> Result<String> {
    let peer = format!("{host_if}p");
    let inner = connect(Some(netns))?;
    if link(&inner, "eth0").await?.is_none() {
        delete_link(host, host_if).await?;
        host.link()
            .add()
            .veth(host_if.to_string(), peer.clone())
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("creating veth {host_if}"), e))?;
        let p = need(host, &peer).await?.header.index;
        let f = std::fs::File::open(netns).map_err(|e| Error::io("opening netns", netns, e))?;
        host.link()
            .set(p)
            .setns_by_fd(f.as_raw_fd())
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("moving {peer} into {}", netns.display()), e))?;
        let idx = need(&inner, &peer).await?.header.index;
        inner
            .link()
            .set(idx)
            .name("eth0".into())
            .execute()
            .await
            .map_err(|e| Error::netlink("renaming the droplet's veth to eth0", e))?;
    }
    let h = need(host, host_if).await?.header.index;
    host.link()
        .set(h)
        .controller(bridge)
        .execute()
        .await
        .map_err(|e| Error::netlink(format!("attaching {host_if} to the bridge"), e))?;
    set_up(host, h, true).await?;
    let eth0 = need(&inner, "eth0").await?;
    add_addr(&inner, eth0.header.index, ip, prefix).await?;
    set_up(&inner, eth0.header.index, true).await?;
    let lo = need(&inner, "lo").await?.header.index;
    set_up(&inner, lo, true).await?;
    Ok(mac_of(&eth0))
}

/// Brings `lo` up inside `netns` (pods need it for local services).
///
/// # Errors
/// Netlink.
pub async fn lo_up(netns: &Path) -> Result<()> {
    let inner = connect(Some(netns))?;
    let lo = need(&inner, "lo").await?.header.index;
    set_up(&inner, lo, true).await
}
