//! A `Fence` row drops every direct path learned to that droplet from the real DIRECT_PATH
//! map (and none other); `rows()` reports it held; after a restart a full sync applies it
//! again, since the new agent cannot know which paths the old one dropped.

use alkaid_agent::dataplane::{AyaDataplane, Dataplane};
use alkaid_agent::sync::{self, MapOp};
use alkaid_model::table::FenceEntry;
use alkaid_model::{RowKey, RowValue, Table};
use alkaid_xdp::Programs;

use super::restart::cfg;
use super::{Host, desired, ip};

fn with_fence(of: &str) -> Table {
    let mut t = desired();
    t.insert(RowKey::Fence { ip: ip(of) }, RowValue::Fence(FenceEntry {}));
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_drops_the_paths_to_its_droplet_and_survives_a_restart() {
    let Some(Host {
        u,
        underlay,
        pins,
        _cleanup,
        ..
    }) = Host::new("f").await
    else {
        return;
    };
    let maps_dir = pins.join("maps");
    let (gone, alive) = (ip("192.168.50.3"), ip("192.168.50.4"));

    let dp = AyaDataplane::open(cfg(&pins, underlay, &u)).unwrap();
    let report = dp
        .apply(&sync::full_sync(&dp.rows().unwrap(), &desired()))
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    // Paths the data plane learned: two to the droplet that goes, one elsewhere.
    let mut raw = Programs::load_pinned(&maps_dir).unwrap();
    let learn = |raw: &mut Programs| {
        let m = raw.maps_mut();
        m.set_direct_path(7, ip("10.0.1.20"), gone).unwrap();
        m.set_direct_path(8, ip("10.0.1.20"), gone).unwrap();
        m.set_direct_path(7, ip("10.0.1.21"), alive).unwrap();
    };
    learn(&mut raw);
    let paths = |raw: &Programs| {
        let mut v: Vec<_> = raw
            .maps()
            .direct_paths()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.vni, v.droplet_ip))
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(paths(&raw).len(), 3);

    let fence = MapOp::Upsert(RowKey::Fence { ip: gone }, RowValue::Fence(FenceEntry {}));
    let report = dp.apply(std::slice::from_ref(&fence)).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.applied, 1);
    assert_eq!(
        paths(&raw),
        vec![(7, alkaid_xdp_common::ip(alive.octets()))],
        "only the paths to the fenced droplet went"
    );
    assert_eq!(
        dp.rows().unwrap(),
        with_fence("192.168.50.3"),
        "the fence is held"
    );
    assert!(
        sync::full_sync(&dp.rows().unwrap(), &with_fence("192.168.50.3")).is_empty(),
        "nothing to do for a fence already applied"
    );

    // A restarted agent does not know which paths its predecessor dropped: its first full
    // sync applies the fence again (paths learned meanwhile from in-flight packets go too).
    drop(dp);
    learn(&mut raw);
    let dp = AyaDataplane::open(cfg(&pins, underlay, &u)).unwrap();
    let ops = sync::full_sync(&dp.rows().unwrap(), &with_fence("192.168.50.3"));
    assert!(ops.contains(&fence), "the fence is applied again: {ops:?}");
    assert!(dp.apply(&ops).unwrap().errors.is_empty());
    assert_eq!(paths(&raw).len(), 1);

    // The fence ending changes nothing in the maps.
    let report = dp
        .apply(&[MapOp::Delete(RowKey::Fence { ip: gone })])
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(paths(&raw).len(), 1);
    assert_eq!(dp.rows().unwrap(), desired());
}
