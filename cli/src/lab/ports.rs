//! The operators' listen ports, chosen so that nothing else can take one between the choice
//! and the operator's bind, nor while an operator is stopped and later restarted.
//!
//! Two things could take it. An outgoing connection on this host, given the port as its
//! ephemeral source port: a port from `bind(0)` comes from that very range
//! (`net.ipv4.ip_local_port_range`), and operators of every lab dial each other all the
//! time. So ports come from outside the ephemeral range. And another lab choosing at the same
//! moment: so every lab's ports are recorded in one registry, `RUN_DIR/.ports/`, one file per
//! lab, read and written under an exclusive lock; `lab down` releases them.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The kernel's ephemeral range when /proc cannot be read (Linux's default).
const DEFAULT_EPHEMERAL: (u16, u16) = (32768, 60999);
/// Lowest port handed out: below are ports services conventionally own.
const LOWEST: u16 = 10000;
/// At most this many ports below the ephemeral range are used.
const SPAN: u16 = 16384;

/// The registry of every lab's ports on this host.
pub fn registry() -> PathBuf {
    Path::new(super::RUN_DIR).join(".ports")
}

/// The kernel's ephemeral port range, `(low, high)` inclusive.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| parse_range(&s))
        .unwrap_or(DEFAULT_EPHEMERAL)
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let mut it = s.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi)), None) if lo <= hi => Some((lo, hi)),
        _ => None,
    }
}

/// Where lab ports come from, given the ephemeral range: the larger of the stretch below it
/// (from [`LOWEST`], at most [`SPAN`] ports) and the stretch above it.
pub fn candidates((lo, hi): (u16, u16)) -> RangeInclusive<u16> {
    let below_start = LOWEST.max(lo.saturating_sub(SPAN));
    let below = (lo > below_start).then(|| below_start..=lo - 1);
    let above = (hi < u16::MAX).then(|| hi + 1..=u16::MAX);
    match (below, above) {
        (Some(b), Some(a)) => {
            if b.len() >= a.len() {
                b
            } else {
                a
            }
        }
        (Some(b), None) => b,
        (None, Some(a)) => a,
        // The ephemeral range covers everything from LOWEST up: nothing is outside it.
        (None, None) => 1024..=lo.max(1025) - 1,
    }
}

fn file_of(registry: &Path, lab: &str) -> PathBuf {
    registry.join(format!("{:016x}", super::fnv(lab)))
}

/// Parses a registry file: the lab's name on the first line, then one port per line.
fn parse_file(text: &str) -> BTreeSet<u16> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn lock(registry: &Path) -> Result<File> {
    std::fs::create_dir_all(registry).map_err(|e| Error::io("creating", registry, e))?;
    let path = registry.join(".lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("opening", &path, e))?;
    f.lock().map_err(|e| Error::io("locking", &path, e))?;
    Ok(f)
}

/// Ports other labs hold.
fn held_by_others(registry: &Path, mine: &Path) -> Result<BTreeSet<u16>> {
    let mut held = BTreeSet::new();
    let dir = std::fs::read_dir(registry).map_err(|e| Error::io("reading", registry, e))?;
    for entry in dir.flatten() {
        let p = entry.path();
        let name = entry.file_name();
        if p == mine || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&p) {
            held.extend(parse_file(&text));
        }
    }
    Ok(held)
}

/// Chooses `n` distinct ports for `lab`, free now and held by no other lab, from
/// [`candidates`]; records them as the lab's (replacing what it held before).
///
/// # Errors
/// [`Error::Io`] for the registry; [`Error::Lab`] when the range has too few free ports.
pub fn reserve(registry: &Path, lab: &str, n: usize) -> Result<Vec<u16>> {
    let _lock = lock(registry)?;
    let mine = file_of(registry, lab);
    let held = held_by_others(registry, &mine)?;
    let range = candidates(ephemeral_range());
    let (first, len) = (u32::from(*range.start()), range.len() as u32);
    // Each lab starts its search at its own place, so labs rarely probe the same ports.
    let start = (super::fnv(lab) % u64::from(len)) as u32;
    let mut ports = Vec::with_capacity(n);
    // Held open until all are chosen: proof each one was free, and that they differ.
    let mut probes = Vec::with_capacity(n);
    for k in 0..len {
        if ports.len() == n {
            break;
        }
        let port = (first + (start + k) % len) as u16;
        if held.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
            probes.push(l);
            ports.push(port);
        }
    }
    if ports.len() < n {
        return Err(Error::Lab(format!(
            "only {} of {n} free ports in {}-{} (the rest are in use or held by labs listed in {}; `alkaid lab down` releases a lab's)",
            ports.len(),
            range.start(),
            range.end(),
            registry.display()
        )));
    }
    let text = std::iter::once(lab.to_string())
        .chain(ports.iter().map(u16::to_string))
        .collect::<Vec<_>>()
        .join("\n");
    let tmp = mine.with_extension("tmp");
    std::fs::write(&tmp, text + "\n").map_err(|e| Error::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, &mine).map_err(|e| Error::io("writing", &mine, e))?;
    Ok(ports)
}

/// Releases what `lab` holds. Returns whether it held anything.
///
/// # Errors
/// [`Error::Io`].
pub fn release(registry: &Path, lab: &str) -> Result<bool> {
    if !registry.exists() {
        return Ok(false);
    }
    let _lock = lock(registry)?;
    let mine = file_of(registry, lab);
    match std::fs::remove_file(&mine) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("removing", &mine, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_range_is_parsed_or_refused() {
        assert_eq!(parse_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_range("1024 65535"), Some((1024, 65535)));
        assert_eq!(parse_range("60999 32768"), None);
        assert_eq!(parse_range("32768"), None);
        assert_eq!(parse_range("a b"), None);
        assert_eq!(parse_range("1 2 3"), None);
    }

    #[test]
    fn candidates_never_overlap_the_ephemeral_range() {
        for (lo, hi) in [
            (32768, 60999),
            (49152, 65535),
            (1024, 65535),
            (10000, 20000),
            (15000, 65000),
            (1024, 4999),
        ] {
            let c = candidates((lo, hi));
            assert!(!c.is_empty(), "{lo}-{hi}: {c:?}");
            let overlaps = *c.start() <= hi && lo <= *c.end();
            assert!(!overlaps || (lo, hi) == (1024, 65535), "{lo}-{hi}: {c:?}");
        }
        assert_eq!(candidates((32768, 60999)), 16384..=32767);
        assert_eq!(candidates((49152, 65535)), 32768..=49151);
        assert_eq!(candidates((10000, 20000)), 20001..=65535);
    }

    #[test]
    fn reservations_are_free_distinct_outside_the_ephemeral_range_and_exclusive_per_lab() {
        let reg = tempfile::tempdir().unwrap();
        let (lo, hi) = ephemeral_range();
        let a = reserve(reg.path(), "a", 6).unwrap();
        let b = reserve(reg.path(), "b", 6).unwrap();
        for p in a.iter().chain(&b) {
            assert!(!(lo..=hi).contains(p), "{p} is ephemeral ({lo}-{hi})");
        }
        let all: BTreeSet<u16> = a.iter().chain(&b).copied().collect();
        assert_eq!(all.len(), 12, "a {a:?} b {b:?}");
        // A lab reserving again replaces its own, and never takes another's.
        let a2 = reserve(reg.path(), "a", 6).unwrap();
        assert!(a2.iter().all(|p| !b.contains(p)), "a2 {a2:?} b {b:?}");
        assert!(release(reg.path(), "a").unwrap());
        assert!(!release(reg.path(), "a").unwrap());
        let held = held_by_others(reg.path(), &file_of(reg.path(), "none")).unwrap();
        assert_eq!(held, b.iter().copied().collect());
    }

    #[test]
    fn a_port_in_use_is_not_chosen() {
        let reg = tempfile::tempdir().unwrap();
        let first = reserve(reg.path(), "busy", 1).unwrap()[0];
        release(reg.path(), "busy").unwrap();
        let _taken = TcpListener::bind((Ipv4Addr::LOCALHOST, first)).unwrap();
        let again = reserve(reg.path(), "busy", 1).unwrap()[0];
        assert_ne!(again, first);
    }
}
