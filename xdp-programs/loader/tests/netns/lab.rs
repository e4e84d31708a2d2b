//! Test scaffolding: a small lab in network namespaces (an underlay bridge, droplets, pods),
//! shared by the netns tests and the pod-to-pod bench.
//!
//! Scaffolding only, so it shells out to `ip` and `ethtool` (iproute2, installed by
//! scripts/setup.sh); product code configures interfaces through netlink (droplet-agent's
//! `netlink.rs`). Names carry the test tag and the pid, so parallel tests and leftovers of a
//! killed run never collide; [`Lab`]'s `Drop` deletes every namespace it made (which deletes
//! their interfaces) and the bpffs pin directory, also when a test panics.

use std::{fs::File, net::Ipv4Addr, os::fd::AsRawFd, path::PathBuf, process::Command};

pub type Mac = [u8; 6];

/// Runs a command, returning stdout; panics with its stderr on failure.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawning {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip <args>`.
pub fn ip(args: &[&str]) -> String {
    run("ip", args)
}

pub fn mac_str(m: Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Pins the calling thread to `cpu`. Returns whether it worked (if not, figures measured on
/// the thread are noisier, nothing else).
#[allow(dead_code, reason = "the benches pin; the tests do not")]
pub fn pin_thread(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes within it (cpu < CPU_SETSIZE for
    // any machine this runs on), and sched_setaffinity (0: the calling thread) only reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    rc == 0
}

/// Effective UID 0 (from /proc, no unsafe).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

/// The calling thread inside a network namespace until dropped (setns is per thread).
pub struct InNetns {
    back: File,
}

impl InNetns {
    pub fn enter(ns: &str) -> Self {
        let back = File::open("/proc/thread-self/ns/net").expect("own netns");
        let target = File::open(format!("/run/netns/{ns}")).expect("netns file");
        // SAFETY: setns on a valid namespace fd only changes this thread's network namespace.
        let rc = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
        Self { back }
    }
}

impl Drop for InNetns {
    fn drop(&mut self) {
        // SAFETY: as in `enter`, back to the namespace this thread came from.
        let rc = unsafe { libc::setns(self.back.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns back: {}", std::io::Error::last_os_error());
    }
}

/// ifindex of `dev` inside `ns`.
pub fn ifindex(ns: &str, dev: &str) -> u32 {
    let out = ip(&["-n", ns, "-o", "link", "show", "dev", dev]);
    out.split(':')
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ifindex in {out:?}"))
}

/// One droplet: a netns with `eth0` on the underlay bridge.
#[derive(Clone, Debug)]
pub struct Droplet {
    pub ns: String,
    pub ip: Ipv4Addr,
    pub mac: Mac,
    /// ifindex of eth0 inside `ns`.
    pub eth0: u32,
    /// Bridge-side end of eth0, in the underlay netns.
    pub port: String,
}

/// One pod: a netns with `eth0`, whose peer `host` lives in the droplet's netns.
#[derive(Clone, Debug)]
pub struct Pod {
    pub ns: String,
    pub ip: Ipv4Addr,
    pub mac: Mac,
    /// Host-side veth name (`v<name>`, in the droplet netns).
    pub host: String,
    /// Its ifindex there.
    pub host_ifindex: u32,
}

/// Owner of every namespace and pin created; cleans up on drop.
pub struct Lab {
    pub prefix: String,
    pub underlay: String,
    namespaces: Vec<String>,
    pub pin_dir: PathBuf,
}

impl Lab {
    /// An underlay netns with bridge `br0`. `tag` is at most 4 characters.
    pub fn new(tag: &str) -> Self {
        let prefix = format!("ak{tag}{}", std::process::id());
        let underlay = format!("{prefix}u");
        let mut lab = Self {
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/{prefix}")),
            prefix,
            underlay: underlay.clone(),
            namespaces: Vec::new(),
        };
        lab.netns(&underlay);
        ip(&["-n", &underlay, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &underlay, "link", "set", "br0", "up"]);
        lab
    }

    fn netns(&mut self, name: &str) {
        ip(&["netns", "add", name]);
        self.namespaces.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"]);
    }

    /// Droplet `n` (1..) at 192.168.77.n with MAC 02:00:00:77:00:n.
    pub fn droplet(&mut self, n: u8) -> Droplet {
        let ns = format!("{}d{n}", self.prefix);
        self.netns(&ns);
        let port = format!("u{n}");
        let mac = [0x02, 0, 0, 0x77, 0, n];
        let ip_addr = Ipv4Addr::new(192, 168, 77, n);
        let u = &self.underlay;
        ip(&[
            "-n", u, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip(&["-n", u, "link", "set", &port, "master", "br0", "up"]);
        ip(&["-n", &ns, "link", "set", "eth0", "address", &mac_str(mac)]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ip_addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        Droplet {
            eth0: ifindex(&ns, "eth0"),
            ns,
            ip: ip_addr,
            mac,
            port,
        }
    }

    /// A pod netns `name` on droplet `d`: eth0 with `addr/24`, MTU `mtu`, default route via
    /// `gw`; host side `v<name>` in the droplet.
    pub fn pod(&mut self, d: &Droplet, name: &str, addr: Ipv4Addr, gw: Ipv4Addr, mtu: u32) -> Pod {
        let ns = format!("{}p{name}", self.prefix);
        self.netns(&ns);
        let host = format!("v{name}");
        let o = addr.octets();
        let mac = [0x0a, 0x58, o[0], o[1], o[2], o[3] ^ (name.len() as u8 * 16)];
        ip(&[
            "-n", &d.ns, "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip(&["-n", &d.ns, "link", "set", &host, "up"]);
        ip(&["-n", &ns, "link", "set", "eth0", "address", &mac_str(mac)]);
        ip(&["-n", &ns, "link", "set", "eth0", "mtu", &mtu.to_string()]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&[
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            &gw.to_string(),
            "dev",
            "eth0",
        ]);
        Pod {
            host_ifindex: ifindex(&d.ns, &host),
            ns,
            ip: addr,
            mac,
            host,
        }
    }

    /// `ethtool -K <dev> <args>` inside `ns` (ip netns exec: this child only).
    pub fn ethtool(ns: &str, dev: &str, args: &[&str]) {
        let mut a = vec!["netns", "exec", ns, "ethtool", "-K", dev];
        a.extend_from_slice(args);
        ip(&a);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        if self.pin_dir.exists() {
            let _ = std::fs::remove_dir_all(&self.pin_dir);
        }
    }
}
