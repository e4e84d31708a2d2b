//! The Alkaid data plane on a [`Lab`]: loads one [`Programs`] per droplet and programs its maps
//! directly through the loader API, as the droplet agent will.

use std::net::Ipv4Addr;

use alkaid_xdp::{
    Mode, Prog, Programs, TcProg,
    common::{AgentEndpoint, Config, ENDPOINT_F_LOCAL, EndpointValue, NetworkValue, ip, wire},
};

use crate::lab::{Droplet, InNetns, Lab, Pod};

/// The virtual gateway MAC every pod ARP is answered with.
pub const GW_MAC: [u8; 6] = [0x02, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa];
/// Underlay MTU of the lab.
pub const MTU: u32 = 1500;
/// Pod MTU: underlay minus the encapsulation overhead.
pub const POD_MTU: u32 = MTU - wire::OVERHEAD;

/// Which endpoint data path a lab runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// XDP everywhere, native mode. Pods' eth0 get GRO on, as the droplet agent sets them up
    /// (xdp-on-veth rule 1: `agent`'s and `transit`'s redirects into a pod, the ARP reply
    /// included); `pass` runs on the bridge side of each droplet's underlay veth only (rule 2:
    /// `transit`'s XDP_TX retargets, where the lab's bridge stands in for a NIC).
    XdpNative,
    /// XDP everywhere, generic (skb) mode.
    XdpGeneric,
    /// TC at the endpoints: `agent_tc` on host veths, `transit_tc` on the underlay NIC (keeps
    /// GSO/TSO; pods keep checksum offload).
    Tc,
    /// [`Variant::Tc`] with XDP `transit` (generic) in front of `transit_tc` on the underlay
    /// NIC and `CONFIG_F_TC_DECAP`: XDP keeps the retargets, TC decapsulates.
    TcBehindXdp,
}

impl Variant {
    /// TC at the endpoints.
    pub fn tc_endpoints(self) -> bool {
        matches!(self, Variant::Tc | Variant::TcBehindXdp)
    }
}

impl Variant {
    fn mode(self) -> Mode {
        match self {
            Variant::XdpNative => Mode::Native,
            Variant::XdpGeneric | Variant::Tc | Variant::TcBehindXdp => Mode::Generic,
        }
    }
}

fn v4(a: Ipv4Addr) -> u32 {
    ip(a.octets())
}

/// Loads and attaches a droplet's programs: CONFIG, PEERS for every other droplet, the
/// underlay NIC as a TX port, `transit` on eth0 through a link pinned in the lab's pin
/// directory (pinned from this process: the root mount namespace).
pub fn droplet(lab: &Lab, d: &Droplet, all: &[Droplet], v: Variant) -> Programs {
    let mut p = Programs::load().expect("load programs");
    let m = p.maps_mut();
    m.set_config(&Config {
        droplet_ip: v4(d.ip),
        underlay_ifindex: d.eth0,
        mtu: MTU,
        flags: if v == Variant::TcBehindXdp {
            alkaid_xdp::common::CONFIG_F_TC_DECAP
        } else {
            0
        },
        droplet_mac: d.mac,
        gateway_mac: GW_MAC,
        default_peer_mac: [0; 6],
        _pad: [0; 2],
    })
    .unwrap();
    for o in all.iter().filter(|o| o.ip != d.ip) {
        m.upsert_peer(o.ip, o.mac).unwrap();
    }
    {
        // TX_PORTS and attachments resolve ifindexes in the caller's netns.
        let _ns = InNetns::enter(&d.ns);
        p.maps_mut().add_tx_port(d.eth0).unwrap();
        std::fs::create_dir_all(&lab.pin_dir).unwrap();
        let link = lab.pin_dir.join(format!("transit-{}", d.ns));
        if v.tc_endpoints() {
            p.attach_tc_pinned(TcProg::Transit, "eth0", &link)
                .expect("attach transit_tc");
        }
        if v == Variant::TcBehindXdp {
            let xdp_link = lab.pin_dir.join(format!("transit-xdp-{}", d.ns));
            p.attach_pinned(Prog::Transit, d.eth0, Mode::Generic, &xdp_link)
                .expect("attach transit");
        } else if !v.tc_endpoints() {
            p.attach_pinned(Prog::Transit, d.eth0, v.mode(), &link)
                .expect("attach transit");
        }
    }
    if v == Variant::XdpNative {
        // The lab's stand-in for a NIC: `transit`'s retargets leave by XDP_TX, which a native
        // veth delivers only if its peer runs an XDP program (xdp-on-veth rule 2).
        let _ns = InNetns::enter(&lab.underlay);
        let port = crate::lab::ifindex(&lab.underlay, &d.port);
        p.attach(Prog::Pass, port, Mode::Native)
            .expect("attach pass");
    }
    p
}

/// Makes `pod` an endpoint of (vni, subnet) on its droplet `d`: AGENT_ENDPOINTS, the LOCAL
/// ENDPOINTS row, TX port, `agent` (or `agent_tc`) on the host-side veth; in native mode GRO on
/// the pod's eth0 (no program there), as the droplet agent sets pods up. With XDP, pod tx
/// checksum offload goes off (XDP on veth leaves CHECKSUM_PARTIAL packets with a bad L4
/// checksum: xdp-on-veth rule 5); TC keeps the offload state intact, so it stays on.
pub fn pod(p: &mut Programs, d: &Droplet, pod: &Pod, vni: u32, subnet: (Ipv4Addr, u8), v: Variant) {
    let gw = Ipv4Addr::from(u32::from(subnet.0) + 1);
    let m = p.maps_mut();
    m.upsert_agent_endpoint(
        pod.host_ifindex,
        &AgentEndpoint::new(
            vni,
            v4(pod.ip),
            pod.mac,
            v4(subnet.0),
            subnet.1.into(),
            v4(gw),
        ),
    )
    .unwrap();
    m.upsert_endpoint(
        vni,
        pod.ip,
        &EndpointValue {
            droplet_ip: v4(d.ip),
            ifindex: pod.host_ifindex,
            flags: ENDPOINT_F_LOCAL,
            mac: pod.mac,
            _pad: [0; 2],
        },
    )
    .unwrap();
    {
        let _ns = InNetns::enter(&d.ns);
        p.maps_mut().add_tx_port(pod.host_ifindex).unwrap();
        if v.tc_endpoints() {
            p.attach_tc(TcProg::Agent, &pod.host)
                .expect("attach agent_tc");
        } else {
            p.attach(Prog::Agent, pod.host_ifindex, v.mode())
                .expect("attach agent");
        }
    }
    if v == Variant::XdpNative {
        // As the droplet agent does (its netlink.rs): GRO on the pod's end, no XDP program
        // there. Enough for redirects into the pod (xdp-on-veth rule 1), the ARP reply
        // included, which is why `agent` answers ARP with a redirect and not XDP_TX (rule 2).
        Lab::ethtool(&pod.ns, "eth0", &["gro", "on"]);
    }
    if !v.tc_endpoints() {
        Lab::ethtool(&pod.ns, "eth0", &["tx", "off"]);
    }
}

/// A bouncer's directory row: (vni, pod ip) lives on `droplet`.
pub fn directory(p: &mut Programs, vni: u32, pod: &Pod, droplet: &Droplet) {
    p.maps_mut()
        .upsert_endpoint(
            vni,
            pod.ip,
            &EndpointValue {
                droplet_ip: v4(droplet.ip),
                ifindex: 0,
                flags: 0,
                mac: pod.mac,
                _pad: [0; 2],
            },
        )
        .unwrap();
}

/// The NETWORKS row of (vni, subnet) with its bouncers.
pub fn network(p: &mut Programs, vni: u32, subnet: (Ipv4Addr, u8), bouncers: &[&Droplet]) {
    let mut v = NetworkValue {
        n_bouncers: bouncers.len() as u32,
        gateway: v4(Ipv4Addr::from(u32::from(subnet.0) + 1)),
        bouncers: [0; 16],
    };
    for (i, b) in bouncers.iter().enumerate() {
        v.bouncers[i] = v4(b.ip);
    }
    p.maps_mut()
        .upsert_network(vni, subnet.0, subnet.1, &v)
        .unwrap();
}
