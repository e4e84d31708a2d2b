//! A full sync removes what a previous agent left in ANY map: stray rows written straight
//! into ENDPOINTS, NETWORKS, VPCS, PEERS, AGENT_ENDPOINTS and DIRECT_PATH are listed by
//! `rows()` (or pruned after the sync), and after a restart + full sync the pinned maps hold
//! exactly what they held before the strays were written.

use alkaid_agent::dataplane::{AyaDataplane, Dataplane};
use alkaid_agent::sync;
use alkaid_model::{RowKey, Vni};
use alkaid_xdp::Programs;
use alkaid_xdp_common::{AgentEndpoint, EndpointValue, NetworkValue, VpcValue, ip as wire};

use super::restart::cfg;
use super::{Host, desired, ip};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_removes_stray_rows_from_every_map() {
    let Some(Host {
        u,
        underlay,
        att,
        pins,
        _cleanup,
        ..
    }) = Host::new("s").await
    else {
        return;
    };
    let maps_dir = pins.join("maps");

    let old = AyaDataplane::open(cfg(&pins, underlay, &u)).unwrap();
    old.attach_endpoint(&att).unwrap();
    let report = old
        .apply(&sync::full_sync(&old.rows().unwrap(), &desired()))
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(
        old.rows().unwrap(),
        desired(),
        "rows() is what the maps hold"
    );
    let clean = alkaid_xdp::list_pinned(&maps_dir).unwrap();
    drop(old);

    // Someone (an older agent, a crash mid-sync) leaves a row in every map.
    let mut raw = Programs::load_pinned(&maps_dir).unwrap();
    let m = raw.maps_mut();
    let d2 = wire([192, 168, 50, 2]);
    m.upsert_peer(ip("192.168.50.99"), [2, 0, 0, 0, 0, 0x99])
        .unwrap();
    m.upsert_endpoint(
        7,
        ip("10.0.1.77"),
        &EndpointValue {
            droplet_ip: d2,
            ifindex: 0,
            flags: 0,
            mac: [0x0a, 0, 7, 0, 1, 77],
            _pad: [0; 2],
        },
    )
    .unwrap();
    let mut bouncers = [0; alkaid_xdp_common::MAX_BOUNCERS];
    bouncers[0] = d2;
    m.upsert_network(
        7,
        ip("10.0.9.0"),
        24,
        &NetworkValue {
            n_bouncers: 1,
            gateway: wire([10, 0, 9, 1]),
            bouncers,
        },
    )
    .unwrap();
    let mut dividers = [0; alkaid_xdp_common::MAX_DIVIDERS];
    dividers[0] = d2;
    m.upsert_vpc(
        99,
        &VpcValue {
            n_dividers: 1,
            dividers,
        },
    )
    .unwrap();
    m.upsert_agent_endpoint(
        att.host_ifindex + 1000,
        &AgentEndpoint {
            vni: 7,
            ip: wire([10, 0, 1, 66]),
            mac: [0x0a, 0, 7, 0, 1, 66],
            _pad: [0; 2],
            net_prefix_len: 32 + 24,
            net_ip: wire([10, 0, 1, 0]),
            gateway: wire([10, 0, 1, 1]),
        },
    )
    .unwrap();
    m.set_direct_path(7, ip("10.0.1.88"), ip("192.168.50.99"))
        .unwrap();
    m.set_direct_path(7, ip("10.0.1.5"), ip("192.168.50.2"))
        .unwrap();
    let dirty = alkaid_xdp::list_pinned(&maps_dir).unwrap();
    assert_ne!(dirty, clean);
    drop(raw);

    let new = AyaDataplane::open(cfg(&pins, underlay, &u)).unwrap();
    new.attach_endpoint(&att).unwrap();
    let seen = new.rows().unwrap();
    let v7 = Vni::new(7).unwrap();
    for key in [
        RowKey::Peer {
            ip: ip("192.168.50.99"),
        },
        RowKey::Endpoint {
            vni: v7,
            ip: ip("10.0.1.77"),
        },
        RowKey::Network {
            vni: v7,
            cidr: "10.0.9.0/24".parse().unwrap(),
        },
        RowKey::Vpc {
            vni: Vni::new(99).unwrap(),
        },
    ] {
        assert!(seen.get(&key).is_some(), "rows() misses stray {key:?}");
    }
    let report = new.apply(&sync::full_sync(&seen, &desired())).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // The stray AGENT_ENDPOINTS row at least (the direct paths may already have gone with
    // the stray peer and the rewritten local row); a second prune has nothing left.
    assert!(new.prune().unwrap() >= 1);
    assert_eq!(new.prune().unwrap(), 0);
    assert_eq!(new.rows().unwrap(), desired());
    let after = alkaid_xdp::list_pinned(&maps_dir).unwrap();
    assert_eq!(after, clean, "the maps hold exactly what they held before");
}
