//! The agent's raw system calls: `setns(2)` and the ethtool `ioctl(2)` (legacy value commands
//! and named features). All `unsafe` in the crate lives here, each block with its `SAFETY:`
//! argument.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SIOCETHTOOL` from `<linux/sockios.h>`.
const SIOCETHTOOL: libc::c_ulong = 0x8946;
/// `ETHTOOL_GTXCSUM` / `ETHTOOL_STXCSUM` from `<linux/ethtool.h>`: legacy commands the
/// kernel still maps onto the `tx-checksum-*` features (`ethtool -K IF tx on|off`).
const ETHTOOL_GTXCSUM: u32 = 0x16;
const ETHTOOL_STXCSUM: u32 = 0x17;
/// `ETHTOOL_GGRO` / `ETHTOOL_SGRO`: generic receive offload (`ethtool -K IF gro on|off`).
const ETHTOOL_GGRO: u32 = 0x2b;
const ETHTOOL_SGRO: u32 = 0x2c;

/// Named features (`ethtool -k/-K IF NAME on|off`): the `ETH_SS_FEATURES` string set gives
/// each feature's bit; `ETHTOOL_GFEATURES`/`ETHTOOL_SFEATURES` read and write them in blocks
/// of 32.
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETHTOOL_SFEATURES: u32 = 0x3b;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;

/// `struct ethtool_sset_info` asking for one string set.
#[repr(C)]
struct SsetInfo {
    cmd: u32,
    reserved: u32,
    sset_mask: u64,
    count: u32,
}

/// `struct ethtool_value`.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `struct ifreq` with the `ifr_data` member of its union (40 bytes on 64-bit Linux).
#[repr(C)]
struct IfReqData {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 24 - std::mem::size_of::<*mut libc::c_void>()],
}

/// Moves the calling thread into the network namespace `ns` (an open `/var/run/netns/x` or
/// `/proc/PID/ns/net`). Only call it on a thread that is dedicated to that namespace.
///
/// # Errors
/// The OS error from `setns(2)` (EINVAL: not a netns file; EPERM: not root).
pub fn setns_net(ns: &File) -> io::Result<()> {
    // SAFETY: setns only reads the descriptor, which `ns` keeps open for the call's
    // duration; it changes the calling thread's netns, which callers confine to a thread
    // they own.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn ethtool(ifname: &str, cmd: u32, data: u32) -> io::Result<u32> {
    let mut value = EthtoolValue { cmd, data };
    // SAFETY: `value` is a live `struct ethtool_value`, all a get/set-value command touches.
    unsafe { ethtool_raw(ifname, (&raw mut value).cast())? };
    Ok(value.data)
}

/// One `SIOCETHTOOL` ioctl on `ifname` with the command struct at `cmd`.
///
/// # Safety
/// `cmd` must point at a live ethtool command struct, laid out as `<linux/ethtool.h>` says and
/// as large as what the kernel reads and writes for its command (variable-length structs
/// included), for the duration of the call.
unsafe fn ethtool_raw(ifname: &str, cmd: *mut libc::c_void) -> io::Result<()> {
    let bytes = ifname.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: plain socket(2) call; the returned descriptor is checked and then owned.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh, valid descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReqData {
        name: [0; libc::IFNAMSIZ],
        data: cmd,
        _pad: [0; 24 - std::mem::size_of::<*mut libc::c_void>()],
    };
    req.name[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: `req` is a correctly laid out, NUL-terminated `struct ifreq` whose `ifr_data`
    // is `cmd`, valid for the call by this function's contract; the kernel reads and writes
    // only those two objects.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &raw mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The names of `ifname`'s features, by bit.
fn feature_names(ifname: &str) -> io::Result<Vec<String>> {
    let mut info = SsetInfo {
        cmd: ETHTOOL_GSSET_INFO,
        reserved: 0,
        sset_mask: 1 << ETH_SS_FEATURES,
        count: 0,
    };
    // SAFETY: `info` is a `struct ethtool_sset_info` with room for the one count asked for.
    unsafe { ethtool_raw(ifname, (&raw mut info).cast())? };
    let count = info.count as usize;
    // `struct ethtool_gstrings`: cmd, string_set, len, then len * 32 bytes, as u32 words.
    let mut buf = vec![0u32; 3 + count * ETH_GSTRING_LEN / 4];
    buf[..3].copy_from_slice(&[ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count as u32]);
    // SAFETY: `buf` holds the header and `count` strings, what the kernel writes for the
    // feature string set of `count` entries.
    unsafe { ethtool_raw(ifname, buf.as_mut_ptr().cast())? };
    let bytes: Vec<u8> = buf[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(bytes
        .chunks(ETH_GSTRING_LEN)
        .map(|c| {
            let end = c.iter().position(|b| *b == 0).unwrap_or(c.len());
            String::from_utf8_lossy(&c[..end]).into_owned()
        })
        .collect())
}

/// Turns the named features of `ifname` on or off in the calling thread's netns
/// (`ethtool -K IF NAME on|off`); names the interface does not have are skipped. Returns how
/// many it has.
///
/// # Errors
/// The OS error (ENODEV: no such interface in this netns).
pub fn set_features(ifname: &str, names: &[&str], on: bool) -> io::Result<usize> {
    let all = feature_names(ifname)?;
    let blocks = all.len().div_ceil(32);
    // `struct ethtool_sfeatures`: cmd, size, then size blocks of {valid, requested}.
    let mut buf = vec![0u32; 2 + 2 * blocks];
    buf[..2].copy_from_slice(&[ETHTOOL_SFEATURES, blocks as u32]);
    let mut found = 0;
    for (bit, _) in all
        .iter()
        .enumerate()
        .filter(|(_, n)| names.contains(&n.as_str()))
    {
        let (block, mask) = (2 + 2 * (bit / 32), 1u32 << (bit % 32));
        buf[block] |= mask;
        if on {
            buf[block + 1] |= mask;
        }
        found += 1;
    }
    // SAFETY: `buf` is a `struct ethtool_sfeatures` of `blocks` blocks, as many as the
    // interface's feature set has; the kernel reads it and writes back only its header.
    unsafe { ethtool_raw(ifname, buf.as_mut_ptr().cast())? };
    Ok(found)
}

/// Which of the named features of `ifname` are active (names it does not have are not).
///
/// # Errors
/// The OS error (ENODEV: no such interface in this netns).
pub fn active_features(ifname: &str, names: &[&str]) -> io::Result<Vec<String>> {
    let all = feature_names(ifname)?;
    let blocks = all.len().div_ceil(32);
    // `struct ethtool_gfeatures`: cmd, size, then size blocks of {available, requested,
    // active, never_changed}.
    let mut buf = vec![0u32; 2 + 4 * blocks];
    buf[..2].copy_from_slice(&[ETHTOOL_GFEATURES, blocks as u32]);
    // SAFETY: `buf` is a `struct ethtool_gfeatures` with room for `blocks` blocks, all the
    // kernel writes for an interface with this many features.
    unsafe { ethtool_raw(ifname, buf.as_mut_ptr().cast())? };
    Ok(all
        .iter()
        .enumerate()
        .filter(|(bit, n)| {
            names.contains(&n.as_str()) && buf[2 + 4 * (bit / 32) + 2] & (1 << (bit % 32)) != 0
        })
        .map(|(_, n)| n.clone())
        .collect())
}

/// Turns tx checksum offload on or off for `ifname` in the calling thread's netns
/// (`ethtool -K IF tx on|off`).
///
/// # Errors
/// The OS error (ENODEV: no such interface in this netns).
pub fn set_tx_checksum(ifname: &str, on: bool) -> io::Result<()> {
    ethtool(ifname, ETHTOOL_STXCSUM, u32::from(on)).map(|_| ())
}

/// Whether tx checksum offload is on for `ifname` in the calling thread's netns.
///
/// # Errors
/// The OS error (ENODEV: no such interface in this netns).
pub fn tx_checksum(ifname: &str) -> io::Result<bool> {
    ethtool(ifname, ETHTOOL_GTXCSUM, 0).map(|v| v != 0)
}

/// Turns GRO on or off for `ifname` in the calling thread's netns.
///
/// # Errors
/// The OS error (ENODEV: no such interface in this netns).
pub fn set_gro(ifname: &str, on: bool) -> io::Result<()> {
    ethtool(ifname, ETHTOOL_SGRO, u32::from(on)).map(|_| ())
}

/// Whether GRO is on for `ifname` in the calling thread's netns.
///
/// # Errors
/// The OS error (ENODEV: no such interface in this netns).
pub fn gro(ifname: &str) -> io::Result<bool> {
    ethtool(ifname, ETHTOOL_GGRO, 0).map(|v| v != 0)
}

/// Moves the calling thread into a new, empty network namespace.
///
/// # Errors
/// The OS error from `unshare(2)`.
pub fn unshare_net() -> io::Result<()> {
    // SAFETY: unshare takes no pointers; it only changes the calling thread's netns, and
    // callers run it on a thread they own and then discard.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn cstr(p: &std::path::Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Bind-mounts `src` onto the existing file `dst` (`mount --bind`).
///
/// # Errors
/// The OS error from `mount(2)`.
pub fn bind_mount(src: &std::path::Path, dst: &std::path::Path) -> io::Result<()> {
    let (s, d) = (cstr(src)?, cstr(dst)?);
    // SAFETY: both pointers are valid NUL-terminated strings that outlive the call; fstype
    // and data may be NULL for MS_BIND.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Lazily unmounts `path` (`umount -l`).
///
/// # Errors
/// The OS error from `umount2(2)` (EINVAL: not a mount point).
pub fn umount_detach(path: &std::path::Path) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: `p` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
