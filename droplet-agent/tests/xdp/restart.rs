//! An agent restart keeps forwarding: the old agent goes away (its process state dropped, as
//! on exit), a new one adopts the pinned maps and links, re-attaches its endpoints (restore)
//! and full-syncs by diff. After every step a Geneve packet for the local endpoint, run
//! through `transit` over the same pinned maps, is still decapsulated and delivered.

use std::path::Path;

use alkaid_agent::dataplane::{AyaConfig, AyaDataplane, Dataplane, EndpointHook};
use alkaid_agent::sync::{self, MapOp};
use alkaid_model::{RowKey, Vni};
use alkaid_xdp::{Mode, Prog, Programs, TcProg};
use netlink_packet_route::link::{LinkAttribute, LinkXdp, XdpAttached};

use super::{Host, desired, ip};

const XDP_REDIRECT: u32 = 4;

fn csum(words: &[u8]) -> u16 {
    let mut sum: u32 = words
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload_len: usize) -> Vec<u8> {
    let total = (20 + payload_len) as u16;
    let mut h = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0];
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// droplet 192.168.50.2 -> us (192.168.50.1), VNI 7, inner 10.0.1.9 -> 10.0.1.5 (local).
fn geneve_to_local() -> Vec<u8> {
    let mut inner = vec![0x0a, 0, 7, 0, 1, 5, 2, 0xa1, 0xca, 0x1d, 0, 1, 0x08, 0x00];
    let payload = b"restart";
    inner.extend(ipv4([10, 0, 1, 9], [10, 0, 1, 5], 17, 8 + payload.len()));
    inner.extend_from_slice(&[0x30, 0x39, 0x1e, 0x61]);
    inner.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    inner.extend_from_slice(&[0, 0]);
    inner.extend_from_slice(payload);
    // Geneve: ver 0, opt_len 2 words, proto 0x6558, VNI 7; return-to-sender option.
    let mut geneve = vec![0x02, 0x00, 0x65, 0x58, 0, 0, 7, 0];
    geneve.extend_from_slice(&[0xff, 0xf1, 0x01, 0x01, 192, 168, 50, 2]);
    geneve.extend(inner);
    let udp_len = 8 + geneve.len();
    let mut udp = vec![0xc0, 0x01, 0x17, 0xc1];
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend(geneve);
    let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    frame.extend(ipv4([192, 168, 50, 2], [192, 168, 50, 1], 17, udp.len()));
    frame.extend(udp);
    frame
}

const XDP_PASS: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

/// The packet through the underlay NIC's programs over the pinned maps: delivered. XDP hook:
/// `transit` redirects it into the veth. TC hook: `transit` (if `xdp_transit`) passes it up
/// (`CONFIG_F_TC_DECAP`) and `transit_tc` redirects it into the pod.
fn assert_delivers(probe: &Programs, hook: EndpointHook, xdp_transit: bool, step: &str) {
    let frame = geneve_to_local();
    let xdp = probe.test_run(Prog::Transit, &frame, None, 1).unwrap();
    let counters = || probe.counters().unwrap().drops;
    match hook {
        EndpointHook::Xdp => assert_eq!(
            xdp.action,
            XDP_REDIRECT,
            "{step}: a packet for the local endpoint was not delivered; {:?}",
            counters()
        ),
        EndpointHook::Tc => {
            if xdp_transit {
                assert_eq!(xdp.action, XDP_PASS, "{step}: not passed up to TC");
            }
            let tc = probe.test_run_tc(TcProg::Transit, &frame, 1).unwrap();
            assert_eq!(
                tc.action,
                TC_ACT_REDIRECT,
                "{step}: transit_tc did not deliver; {:?}",
                counters()
            );
        }
    }
}

pub(super) fn cfg(pins: &Path, underlay: u32, underlay_ifname: &str) -> AyaConfig {
    cfg_hook(pins, underlay, underlay_ifname, EndpointHook::Xdp)
}

fn cfg_hook(pins: &Path, underlay: u32, underlay_ifname: &str, hook: EndpointHook) -> AyaConfig {
    AyaConfig {
        pin_dir: pins.to_owned(),
        droplet_ip: ip("192.168.50.1"),
        droplet_mac: [2, 0, 0, 0, 0, 1],
        underlay_ifindex: underlay,
        underlay_ifname: underlay_ifname.into(),
        underlay_mtu: 1500,
        gateway_mac: [2, 0xa1, 0xca, 0x1d, 0, 1],
        underlay_mode: Some(alkaid_xdp::Mode::Generic),
        endpoint_mode: alkaid_xdp::Mode::Generic,
        endpoint_hook: hook,
        map_sizes: alkaid_xdp::MapSizes::default(),
    }
}

const GENERIC: Option<alkaid_xdp::Mode> = Some(alkaid_xdp::Mode::Generic);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_adopts_and_never_stops_delivery_xdp() {
    restart_case(EndpointHook::Xdp, [GENERIC, GENERIC], "x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_adopts_and_never_stops_delivery_tc() {
    restart_case(EndpointHook::Tc, [GENERIC, GENERIC], "t").await;
}

/// TC alone on the underlay (`--xdp-mode-underlay off`), and a restart that switches to it
/// from XDP in front of TC: the XDP link goes only once `transit_tc` carries everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_switches_the_underlay_to_tc_alone_without_a_gap() {
    restart_case(EndpointHook::Tc, [GENERIC, None], "o").await;
}

/// `underlay`: XDP mode on the underlay of the agent before and after the restart.
async fn restart_case(hook: EndpointHook, underlay: [Option<alkaid_xdp::Mode>; 2], tag: &str) {
    let Some(Host {
        u,
        underlay: underlay_ifindex,
        e,
        att,
        pins,
        _cleanup,
    }) = Host::new(&format!("r{tag}")).await
    else {
        return;
    };

    let cfg = |i: usize| AyaConfig {
        underlay_mode: underlay[i],
        ..cfg_hook(&pins, underlay_ifindex, &u, hook)
    };
    let old = AyaDataplane::open(cfg(0)).unwrap();
    let report = old
        .apply(&sync::full_sync(&old.rows().unwrap(), &desired()))
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    old.attach_endpoint(&att).unwrap();
    // Our own view of the pinned maps, as a packet source (the maps are shared through pins).
    let probe = Programs::load_pinned(&pins.join("maps")).unwrap();
    assert_delivers(&probe, hook, underlay[0].is_some(), "before the restart");
    let agent_link = match hook {
        EndpointHook::Xdp => format!("{e}-generic"),
        EndpointHook::Tc => format!("tc-{e}"),
    };
    let links = |step: &str, xdp_transit: bool| {
        let tc = (hook == EndpointHook::Tc).then_some("transit_tc");
        for l in [agent_link.as_str()].into_iter().chain(tc) {
            assert!(
                pins.join("links").join(l).exists(),
                "{step}: link {l} pinned"
            );
        }
        assert_eq!(
            pins.join("links/transit-generic").exists(),
            xdp_transit,
            "{step}: XDP transit link pinned?"
        );
    };
    let (before, after) = (underlay[0].is_some(), underlay[1].is_some());
    links("before the restart", before);

    drop(old);
    assert_delivers(&probe, hook, before, "agent gone");
    links("agent gone", before);

    let new = AyaDataplane::open(cfg(1)).unwrap();
    assert_delivers(&probe, hook, after, "new agent loaded");
    links("new agent loaded", after);
    // restore(): the records say this veth is ours; no table has arrived yet.
    new.attach_endpoint(&att).unwrap();
    assert_delivers(&probe, hook, after, "endpoint re-attached before any sync");
    links("re-attached", after);

    let ops = sync::full_sync(&new.rows().unwrap(), &desired());
    for op in &ops {
        if let MapOp::Delete(k) = op {
            let same_key_upserted = ops
                .iter()
                .any(|o| matches!(o, MapOp::Upsert(u, _) if same_address(u, k)));
            assert!(
                desired().get(k).is_none() && same_key_upserted,
                "the full sync after a restart deletes a row it wants: {op:?}"
            );
        }
    }
    let report = new.apply(&ops).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_delivers(&probe, hook, after, "after the first full sync");
    assert_eq!(
        sync::full_sync(&new.rows().unwrap(), &desired()),
        Vec::<MapOp>::new(),
        "converged"
    );
    let local = probe
        .maps()
        .endpoint(7, ip("10.0.1.5"))
        .unwrap()
        .expect("local row");
    assert_eq!(local.ifindex, att.host_ifindex);
}

/// The only delete a restart's sync may do: a LOCAL row seen as a directory entry, replaced
/// by the LocalEndpoint row for the same address.
fn same_address(a: &RowKey, b: &RowKey) -> bool {
    let addr = |k: &RowKey| -> Option<(Vni, std::net::Ipv4Addr)> {
        match k {
            RowKey::LocalEndpoint { vni, ip } | RowKey::Endpoint { vni, ip } => Some((*vni, *ip)),
            _ => None,
        }
    };
    addr(a).is_some() && addr(a) == addr(b)
}

/// How the kernel has XDP attached to the root-netns link `name`.
async fn xdp_attached(name: &str) -> Option<XdpAttached> {
    let h = alkaid_agent::netlink::connect(Path::new("/")).unwrap();
    let link = alkaid_agent::netlink::link_by_name(&h, name)
        .await
        .unwrap()
        .expect("link");
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Xdp(x) => x.iter().find_map(|x| match x {
            LinkXdp::Attached(m) => Some(*m),
            _ => None,
        }),
        _ => None,
    })
}

/// An XDP link keeps the mode it was made with: an agent restarted in another XDP mode (on the
/// underlay and the endpoints) replaces the links instead of swapping its programs into the old
/// ones, and the kernel then runs them in the new mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_another_xdp_mode_switches_the_mode() {
    let Some(Host {
        u,
        underlay: underlay_ifindex,
        e,
        att,
        pins,
        _cleanup,
    }) = Host::new("rm").await
    else {
        return;
    };
    let cfg = |mode: Mode| AyaConfig {
        underlay_mode: Some(mode),
        endpoint_mode: mode,
        ..cfg_hook(&pins, underlay_ifindex, &u, EndpointHook::Xdp)
    };
    let links = pins.join("links");
    for (mode, attached, name, other) in [
        (
            Mode::Generic,
            XdpAttached::SocketBuffer,
            "generic",
            "native",
        ),
        (Mode::Native, XdpAttached::Driver, "native", "generic"),
        (
            Mode::Generic,
            XdpAttached::SocketBuffer,
            "generic",
            "native",
        ),
    ] {
        let dp = AyaDataplane::open(cfg(mode)).unwrap();
        dp.attach_endpoint(&att).unwrap();
        for ifname in [&u, &e] {
            assert_eq!(
                xdp_attached(ifname).await,
                Some(attached),
                "{ifname} in {name} mode"
            );
        }
        assert!(links.join(format!("transit-{name}")).exists());
        assert!(links.join(format!("{e}-{name}")).exists());
        assert!(!links.join(format!("transit-{other}")).exists());
        assert!(!links.join(format!("{e}-{other}")).exists());
        drop(dp);
    }
}

/// An agent from before XDP link pins named their mode left `links/transit` and
/// `links/<veth>`: a new agent replaces them (their mode is unknown) instead of failing to
/// attach next to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_replaces_links_pinned_without_a_mode() {
    let Some(Host {
        u,
        underlay,
        e,
        att,
        pins,
        _cleanup,
    }) = Host::new("ru").await
    else {
        return;
    };
    let links = pins.join("links");
    std::fs::create_dir_all(&links).unwrap();
    {
        let mut old = Programs::load().unwrap();
        old.attach_pinned(
            Prog::Transit,
            underlay,
            Mode::Generic,
            &links.join("transit"),
        )
        .unwrap();
        old.attach_pinned(
            Prog::Agent,
            att.host_ifindex,
            Mode::Generic,
            &links.join(&e),
        )
        .unwrap();
    }
    let dp = AyaDataplane::open(cfg_hook(&pins, underlay, &u, EndpointHook::Xdp)).unwrap();
    dp.attach_endpoint(&att).unwrap();
    for name in ["transit".to_string(), e.clone()] {
        assert!(!links.join(&name).exists(), "{name}: the old pin is gone");
        assert!(
            links.join(format!("{name}-generic")).exists(),
            "{name}: pinned anew"
        );
    }
    for ifname in [&u, &e] {
        assert_eq!(xdp_attached(ifname).await, Some(XdpAttached::SocketBuffer));
    }
}
