//! `alkaid lab down`: removes every process, namespace, link, pin and file a lab made.
//!
//! It works from the state file when there is one AND by scanning for lab-named objects
//! (netns `alkaid-lab.LAB.*`, links `alkb<tag>*`/`alkd<tag>x*`, processes whose arguments
//! hold the lab directory, `/sys/fs/bpf/alkaid-lab/LAB`), so a crash at any point, or a lost
//! state file, leaves nothing behind. Running it twice is harmless.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{Lab, State, net, ports, sys};
use crate::error::{Error, Result};

/// What was removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct Removed {
    /// Process ids stopped.
    pub processes: Vec<u32>,
    /// Network namespaces deleted.
    pub namespaces: Vec<String>,
    /// Links deleted.
    pub links: Vec<String>,
    /// Pin directory removed.
    pub pins: Option<String>,
    /// State directory removed.
    pub dir: Option<String>,
}

impl Removed {
    /// One line per kind of object.
    pub fn summary(&self, lab: &str) -> String {
        format!(
            "lab {lab} is down: {} processes, {} namespaces, {} links{}{}",
            self.processes.len(),
            self.namespaces.len(),
            self.links.len(),
            self.pins
                .as_ref()
                .map(|p| format!(", pins {p}"))
                .unwrap_or_default(),
            self.dir
                .as_ref()
                .map(|d| format!(", dir {d}"))
                .unwrap_or_default(),
        )
    }
}

/// Stops lab processes: SIGTERM to all, SIGKILL to what is left after `grace`.
fn stop_all(pids: &BTreeSet<u32>, marker: &str, grace: Duration) {
    for &p in pids {
        if sys::alive(p, marker) {
            let _ = nix::sys::signal::kill(Pid::from_raw(p as i32), Signal::SIGTERM);
        }
    }
    let end = Instant::now() + grace;
    while Instant::now() < end && pids.iter().any(|&p| sys::alive(p, marker)) {
        std::thread::sleep(Duration::from_millis(25));
    }
    for &p in pids {
        sys::kill_now(p, marker);
    }
}

/// Tears the lab down.
///
/// # Errors
/// Only for failures that leave something behind (a netns or link that cannot be removed).
pub async fn down(lab: &Lab) -> Result<Removed> {
    super::require_root()?;
    let mut out = Removed::default();
    let state = State::load(&lab.dir).ok().flatten();
    let marker = lab.marker();

    let mut pids: BTreeSet<u32> = sys::pids_with(&marker).into_iter().collect();
    if let Some(st) = &state {
        pids.extend(
            st.droplets
                .iter()
                .map(|d| d.pid)
                .filter(|&p| p != 0 && sys::alive(p, &marker)),
        );
        pids.extend(
            st.operators
                .iter()
                .map(|o| o.pid)
                .filter(|&p| p != 0 && sys::alive(p, &marker)),
        );
    }
    stop_all(&pids, &marker, Duration::from_secs(5));
    out.processes = pids.into_iter().collect();

    let mut names: BTreeSet<String> = sys::list_netns(&lab.netns_prefix()).into_iter().collect();
    if let Some(st) = &state {
        names.extend(st.droplets.iter().map(|d| d.netns.clone()));
        names.extend(st.pods.iter().filter_map(|p| {
            p.netns
                .file_name()
                .and_then(|n| n.to_str())
                .map(String::from)
        }));
    }
    let mut failures = Vec::new();
    for n in names {
        match sys::delete_netns(&n) {
            Ok(true) => out.namespaces.push(n),
            Ok(false) => {}
            Err(e) => failures.push(e.to_string()),
        }
    }

    let host = net::connect(None)?;
    let mut prefixes = lab.link_prefixes();
    if let Some(st) = &state {
        prefixes.push(st.bridge.clone());
        prefixes.extend(st.droplets.iter().map(|d| d.host_veth.clone()));
    }
    for l in net::links_with(&host, &prefixes).await? {
        match net::delete_link(&host, &l).await {
            Ok(true) => out.links.push(l),
            Ok(false) => {}
            Err(e) => failures.push(e.to_string()),
        }
    }

    let pins = state
        .as_ref()
        .map(|s| s.pin_root.clone())
        .unwrap_or_else(|| lab.pin_root());
    if sys::remove_pins(&pins) {
        out.pins = Some(pins.display().to_string());
    }
    if let Err(e) = ports::release(&ports::registry(), &lab.name) {
        failures.push(e.to_string());
    }
    if lab.dir.exists() {
        std::fs::remove_dir_all(&lab.dir).map_err(|e| Error::io("removing", &lab.dir, e))?;
        out.dir = Some(lab.dir.display().to_string());
    }
    if failures.is_empty() {
        Ok(out)
    } else {
        Err(Error::Lab(format!(
            "lab {} left things behind: {}",
            lab.name,
            failures.join("; ")
        )))
    }
}
