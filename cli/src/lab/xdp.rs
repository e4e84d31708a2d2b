//! `--endpoint-hook xdp --xdp-mode native`: the lab as the NIC and switch of native XDP.
//!
//! A droplet's underlay NIC is a veth whose peer, the bridge-side port `alkd<tag>x<i>` in the
//! root netns, stands in for the wire. In native mode the agent's XDP `agent` encapsulates
//! into `eth0` with XDP_REDIRECT, and a frame redirected into a veth is dropped unless the
//! peer runs an XDP program or has GRO on (shared/notes/xdp-on-veth.md rule 1; a native
//! XDP_TX out of `eth0` needs the program, GRO is not enough: rule 2). So every bridge-side
//! port gets the `pass` program (XDP_PASS) in native mode, through a bpf_link pinned at
//! `PIN_ROOT/LAB/underlay/pass-<droplet>` that outlives this process. `lab down` deletes the
//! ports (which detaches it) and the pin root (which frees the link).
//!
//! Cost on the port: native XDP there turns off TSO on `eth0` (rule 3), which the droplet's
//! own traffic (gRPC to the operators) does not notice; the pods behind XDP run without tx
//! offload anyway.

use std::path::{Path, PathBuf};

use alkaid_xdp::{MapSizes, Mode, Prog, Programs};
use netlink_packet_route::link::{LinkAttribute, LinkMessage, LinkXdp};
use rtnetlink::Handle;

use super::{State, net};
use crate::error::{Error, Result};

/// Where the link attaching `pass` to `droplet`'s bridge-side port is pinned.
pub fn pass_link(pin_root: &Path, droplet: &str) -> PathBuf {
    // bpffs refuses dots in names.
    pin_root.join("underlay").join(format!("pass-{droplet}"))
}

/// The id of the program attached to the link in driver (native) mode, if any.
fn native_prog(m: &LinkMessage) -> Option<u32> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::Xdp(x) => x.iter().find_map(|x| match x {
            LinkXdp::DrvProgId(id) if *id != 0 => Some(*id),
            _ => None,
        }),
        _ => None,
    })
}

/// Makes sure every droplet's bridge-side port runs `pass` in native mode through its pinned
/// link. Idempotent: a port already running it is left alone; a pin whose port went away (a
/// link recreated by `lab up`) is replaced. Returns the ports it attached now.
///
/// # Errors
/// [`Error::Lab`] for a port running a native XDP program the lab did not pin;
/// [`Error::Xdp`] if loading (root, bpffs) or attaching fails; netlink and I/O failures.
pub async fn pass_on_bridge_ports(host: &Handle, st: &State) -> Result<Vec<String>> {
    let mut todo = Vec::new();
    for d in &st.droplets {
        let m = net::link(host, &d.host_veth)
            .await?
            .ok_or_else(|| Error::Lab(format!("bridge port {} is missing", d.host_veth)))?;
        let pin = pass_link(&st.pin_root, &d.name);
        match (native_prog(&m), pin.exists()) {
            (Some(_), true) => {}
            (Some(id), false) => {
                return Err(Error::Lab(format!(
                    "bridge port {} runs native XDP program {id}, which the lab did not attach: detach it or run `alkaid lab down`",
                    d.host_veth
                )));
            }
            (None, had_pin) => {
                if had_pin {
                    // The link it pinned died with an earlier incarnation of the port.
                    std::fs::remove_file(&pin).map_err(|e| Error::io("removing", &pin, e))?;
                }
                todo.push((d.host_veth.clone(), m.header.index, pin));
            }
        }
    }
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let dir = st.pin_root.join("underlay");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    // Loading runs the verifier: off the async workers.
    tokio::task::spawn_blocking(move || attach(&todo))
        .await
        .map_err(|e| Error::Lab(format!("attaching pass: {e}")))?
}

fn attach(todo: &[(String, u32, PathBuf)]) -> Result<Vec<String>> {
    let xdp = |what: String| {
        move |e| Error::Xdp {
            what,
            source: Box::new(e),
        }
    };
    // Only `pass` is attached; the object's maps come along, as small as the loader allows.
    let tiny = MapSizes {
        endpoints: 16,
        networks: 16,
        direct_paths: 16,
        peers: 16,
    };
    let mut progs = Programs::load_with(None, &tiny)
        .map_err(xdp("loading the XDP programs (for `pass`)".into()))?;
    let mut done = Vec::new();
    for (port, ifindex, pin) in todo {
        progs
            .attach_pinned(Prog::Pass, *ifindex, Mode::Native, pin)
            .map_err(xdp(format!(
                "attaching pass to bridge port {port} (native)"
            )))?;
        done.push(port.clone());
    }
    // The pinned links hold the program; the rest goes with `progs`.
    Ok(done)
}
