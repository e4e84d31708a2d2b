//! `alkaid lab`: the whole system for real on one machine.
//!
//! | module | role |
//! |---|---|
//! | [`state`] | the state file: everything a lab made |
//! | [`sys`] | named netns create/enter/delete, exec, process liveness and signals (nix) |
//! | [`net`] | bridge, veths and addresses through rtnetlink |
//! | [`certs`] | the lab CA and certificates (rcgen) |
//! | [`ports`] | operator ports: outside the ephemeral range, reserved host-wide per lab |
//! | [`up`] | `lab up`: bridge -> droplet netns + veths -> operators -> agents -> ready |
//! | [`down`] | `lab down`: from the state file and by scanning for lab-named objects |
//! | [`status`] | `lab status` and the summary `lab up` prints |
//! | [`pod`] | `lab pod add|del|list` through the real `alkaid-cni`, `lab exec` |
//! | [`tables`] | `lab tables`: the droplet's pinned BPF maps and counters |
//! | [`fault`] | `lab droplet|operator stop|start` |
//! | [`echo`] | `lab serve`/`lab probe`: an echo service answering with its pod's name |
//! | [`xdp`] | `--xdp-mode native`: the `pass` program on the bridge-side ports (the lab's NIC) |
//!
//! Naming makes every object findable without the state file: netns `alkaid-lab.LAB.*`,
//! links `alkb<tag>` / `alkd<tag>x<i>` (tag = 6 hex digits of the lab name's hash), pins under
//! `/sys/fs/bpf/alkaid-lab/LAB` (agents' pins in `<droplet>/`, the lab's own in `underlay/`),
//! and every process has the lab directory in its arguments.

pub mod certs;
pub mod down;
pub mod echo;
pub mod fault;
pub mod net;
pub mod pod;
pub mod ports;
pub mod state;
pub mod status;
pub mod sys;
pub mod tables;
pub mod up;
pub mod xdp;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::client::Target;
use crate::error::{Error, Result};
pub use state::State;

/// Root of every lab's pins.
pub const PIN_ROOT: &str = "/sys/fs/bpf/alkaid-lab";
/// Default parent of lab state directories.
pub const RUN_DIR: &str = "/run/alkaid-lab";

/// A lab's identity and where its pieces go.
#[derive(Clone, Debug)]
pub struct Lab {
    /// Lab name.
    pub name: String,
    /// State directory.
    pub dir: PathBuf,
    /// Directory of alkaid-operator, alkaid-agent, alkaid-cni.
    pub bin_dir: PathBuf,
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Lab {
    /// The lab called `name`; `dir` and `bin_dir` default to /run/alkaid-lab/NAME and the
    /// directory of the running executable.
    pub fn new(name: &str, dir: Option<PathBuf>, bin_dir: Option<PathBuf>) -> Self {
        let bin_dir = bin_dir.unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_default()
        });
        Self {
            name: name.to_string(),
            dir: dir.unwrap_or_else(|| Path::new(RUN_DIR).join(name)),
            bin_dir,
        }
    }

    /// 6 hex digits naming this lab's links.
    pub fn tag(&self) -> String {
        format!("{:06x}", fnv(&self.name) & 0xff_ffff)
    }

    /// The underlay bridge.
    pub fn bridge(&self) -> String {
        format!("alkb{}", self.tag())
    }

    /// The root-side veth of droplet number `i` (1-based).
    pub fn host_veth(&self, i: usize) -> String {
        format!("alkd{}x{i}", self.tag())
    }

    /// Prefixes of every link this lab makes.
    pub fn link_prefixes(&self) -> Vec<String> {
        vec![self.bridge(), format!("alkd{}x", self.tag())]
    }

    /// Prefix of every netns of this lab.
    pub fn netns_prefix(&self) -> String {
        format!("alkaid-lab.{}.", self.name)
    }

    /// A droplet's netns name.
    pub fn droplet_netns(&self, droplet: &str) -> String {
        format!("{}{droplet}", self.netns_prefix())
    }

    /// A pod's netns name.
    pub fn pod_netns(&self, pod: &str) -> String {
        format!("{}pod.{pod}", self.netns_prefix())
    }

    /// This lab's pins.
    pub fn pin_root(&self) -> PathBuf {
        Path::new(PIN_ROOT).join(&self.name)
    }

    /// The string every lab process carries in its arguments.
    pub fn marker(&self) -> String {
        format!("{}/", self.dir.display())
    }

    /// The default underlay: a /24 in 198.18.0.0/15 (RFC 2544, unused on real networks)
    /// picked by the lab name.
    pub fn default_underlay(&self) -> ipnet::Ipv4Net {
        let k = (fnv(&self.name) >> 24) % 510 + 1;
        let base = u32::from(Ipv4Addr::new(198, 18, 0, 0)) + ((k as u32) << 8);
        ipnet::Ipv4Net::new(Ipv4Addr::from(base), 24).unwrap_or_default()
    }

    /// A binary of ours.
    ///
    /// # Errors
    /// [`Error::Lab`] saying how to build it when missing.
    pub fn bin(&self, name: &str) -> Result<PathBuf> {
        let p = self.bin_dir.join(name);
        if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Lab(format!(
                "{} not found: build it (`cargo build -p alkaid-operator -p alkaid-agent`) or set ALKAID_BIN_DIR",
                p.display()
            )))
        }
    }

    /// The state, which must exist.
    ///
    /// # Errors
    /// [`Error::Lab`] when the lab is not up.
    pub fn state(&self) -> Result<State> {
        State::load(&self.dir)?.ok_or_else(|| {
            Error::Lab(format!(
                "lab {:?} is not up (no {}): run `alkaid lab up`",
                self.name,
                State::file(&self.dir).display()
            ))
        })
    }

    /// Where the CLI finds this lab's operators.
    ///
    /// # Errors
    /// As [`Lab::state`].
    pub fn target(&self) -> Result<Target> {
        let s = self.state()?;
        Ok(Target {
            addrs: s.control_addrs(),
            tls: s.tls.clone(),
        })
    }
}

/// Fails unless we are root (the lab creates namespaces, links and BPF pins).
///
/// # Errors
/// [`Error::Lab`].
pub fn require_root() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::Lab(
            "the lab needs root (network namespaces, links, BPF): run it with sudo".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_limits_and_differ_per_lab() {
        let a = Lab::new("default", None, None);
        let b = Lab::new("e2e-two-tenants-1234", None, None);
        for l in [&a, &b] {
            assert!(l.bridge().len() <= 15);
            assert!(l.host_veth(64).len() < 15, "the peer name adds a p");
        }
        assert_ne!(a.tag(), b.tag());
        assert_ne!(a.default_underlay(), b.default_underlay());
        assert!(
            ipnet::Ipv4Net::new(Ipv4Addr::new(198, 18, 0, 0), 15)
                .unwrap()
                .contains(&a.default_underlay())
        );
        assert_eq!(a.marker(), "/run/alkaid-lab/default/");
        assert_eq!(a.droplet_netns("d1"), "alkaid-lab.default.d1");
    }
}
