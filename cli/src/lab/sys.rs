//! Namespaces and processes, through nix's safe wrappers (no `unsafe` in this crate).
//!
//! A named netns is what `ip netns add` makes: a file under /run/netns bind-mounted over a
//! thread's `/proc/thread-self/ns/net` after `unshare(CLONE_NEWNET)`. The unsharing thread is
//! discarded, so no other thread of ours ever leaves the root netns. Everything stays in the
//! root mount namespace, so bpffs under /sys/fs/bpf stays visible (unlike `ip netns exec`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Where named network namespaces live.
pub const NETNS_DIR: &str = "/run/netns";

/// `/run/netns/NAME`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Creates the named netns (idempotent: an existing one is kept).
///
/// # Errors
/// [`Error::Sys`]/[`Error::Io`] (needs root).
pub fn create_netns(name: &str) -> Result<PathBuf> {
    let path = netns_path(name);
    if path.exists() && File::open(&path).is_ok() && is_netns(&path) {
        return Ok(path);
    }
    std::fs::create_dir_all(NETNS_DIR).map_err(|e| Error::io("creating", NETNS_DIR, e))?;
    File::create(&path).map_err(|e| Error::io("creating", &path, e))?;
    let p = path.clone();
    let r = std::thread::spawn(move || -> Result<()> {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::sys("unshare(CLONE_NEWNET)", e))?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| Error::sys(format!("bind-mounting the netns on {}", p.display()), e))
    })
    .join()
    .map_err(|_| Error::Lab("netns thread panicked".into()))?;
    if let Err(e) = r {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Whether `path` is a bind-mounted netns (its inode differs from the empty file's).
fn is_netns(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = path.display().to_string();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_str()))
}

/// Unmounts and removes a named netns; `Ok(false)` if it did not exist.
///
/// # Errors
/// [`Error::Io`] if the file cannot be removed.
pub fn delete_netns(name: &str) -> Result<bool> {
    let path = netns_path(name);
    if !path.exists() {
        return Ok(false);
    }
    // Several mounts may be stacked when a create raced; peel them all.
    while is_netns(&path) {
        if nix::mount::umount2(&path, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
    std::fs::remove_file(&path).map_err(|e| Error::io("removing", &path, e))?;
    Ok(true)
}

/// Names under /run/netns starting with `prefix`.
pub fn list_netns(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// Moves the calling thread into the netns at `path`.
///
/// # Errors
/// [`Error::Io`]/[`Error::Sys`].
pub fn enter_netns(path: &Path) -> Result<()> {
    let f = File::open(path).map_err(|e| Error::io("opening netns", path, e))?;
    nix::sched::setns(&f, CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::sys(format!("setns into {}", path.display()), e))
}

/// Enters the netns and replaces this process with `argv` (call before any other thread
/// exists, so the whole process is in the netns). Returns only on failure.
pub fn exec_in_netns(path: &Path, argv: &[String]) -> Error {
    use std::os::unix::process::CommandExt as _;
    if let Err(e) = enter_netns(path) {
        return e;
    }
    let Some((prog, args)) = argv.split_first() else {
        return Error::Usage("no command given after --".into());
    };
    let e = std::process::Command::new(prog).args(args).exec();
    Error::io("executing", prog, e)
}

/// Whether `pid` runs (zombies count as gone) and its command line mentions `marker`.
pub fn alive(pid: u32, marker: &str) -> bool {
    if pid == 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next());
    if matches!(state, None | Some("Z") | Some("X")) {
        return false;
    }
    let c = cmdline(pid);
    // Mid-execve the command line reads empty for a moment: still ours.
    c.contains(marker) || (c.is_empty() && !marker.is_empty() && exists_since_spawn(pid))
}

/// Whether `pid` is a user process (kernel threads have no `exe`).
fn exists_since_spawn(pid: u32) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Pids whose command line mentions `marker` (the lab's directory is in every lab process's
/// arguments), excluding ourselves.
pub fn pids_with(marker: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut v: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&p| p != me && alive(p, marker) && !cmdline(p).is_empty())
        .collect();
    v.sort_unstable();
    v
}

/// SIGTERM, then SIGKILL after `grace`; waits until gone (at most `grace` + 5 s).
///
/// # Errors
/// [`Error::Timeout`] if it does not die.
pub fn terminate(pid: u32, marker: &str, grace: Duration) -> Result<()> {
    if !alive(pid, marker) {
        return Ok(());
    }
    let p = Pid::from_raw(pid as i32);
    let _ = nix::sys::signal::kill(p, Signal::SIGTERM);
    if wait_gone(pid, marker, grace) {
        return Ok(());
    }
    let _ = nix::sys::signal::kill(p, Signal::SIGKILL);
    if wait_gone(pid, marker, Duration::from_secs(5)) {
        return Ok(());
    }
    Err(Error::Timeout {
        what: format!("process {pid} to exit"),
        secs: grace.as_secs() + 5,
    })
}

/// SIGKILL right away (crash injection), waiting until gone.
pub fn kill_now(pid: u32, marker: &str) {
    if alive(pid, marker) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        wait_gone(pid, marker, Duration::from_secs(5));
    }
}

fn wait_gone(pid: u32, marker: &str, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if !alive(pid, marker) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(pid, marker)
}

/// Removes a bpffs directory tree of pins (unpinning maps and links).
pub fn remove_pins(dir: &Path) -> bool {
    dir.exists() && std::fs::remove_dir_all(dir).is_ok()
}
