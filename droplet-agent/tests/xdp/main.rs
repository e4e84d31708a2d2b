//! Privileged: the aya data plane over the real programs and pinned maps. Needs root, a
//! bpffs at /sys/fs/bpf and the embedded eBPF object; skips with a message otherwise.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use alkaid_agent::dataplane::{
    AyaConfig, AyaDataplane, Dataplane, EndpointAttachment, EndpointHook,
};
use alkaid_agent::netlink;
use alkaid_agent::sync::{self, MapOp};
use alkaid_model::table::{EndpointEntry, LocalEndpoint, NetworkEntry, PeerEntry, VpcEntry};
use alkaid_model::{EndpointKey, Ipv4Cidr, MacAddr, RowKey, RowValue, Table, Vni};

mod fence;
mod restart;
mod stray;

/// A privileged test that cannot run here prints why and passes, unless
/// `ALKAID_REQUIRE_PRIVILEGED` is set (scripts/test.sh sets it when run as root, as in CI):
/// then it fails, so a missing setup step cannot pass as a skip.
pub(crate) fn skip(why: &str) {
    assert!(
        std::env::var_os("ALKAID_REQUIRE_PRIVILEGED").is_none(),
        "privileged test cannot run: {why} (ALKAID_REQUIRE_PRIVILEGED is set)"
    );
    eprintln!("SKIP: {why}");
}

fn skip_reason() -> Option<&'static str> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        Some("needs root")
    } else if !Path::new("/sys/fs/bpf").is_dir() {
        Some("needs a bpffs at /sys/fs/bpf")
    } else if alkaid_xdp::OBJECT.is_empty() {
        Some("the eBPF object was not built (AYA_BUILD_SKIP)")
    } else {
        None
    }
}

/// Deletes host links and the pin directory on drop, even on panic.
struct Cleanup {
    links: Vec<String>,
    pins: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        netlink::delete_host_links_blocking(std::mem::take(&mut self.links));
        let _ = std::fs::remove_dir_all(&self.pins);
    }
}

/// What an aya data plane test runs on: an underlay veth pair (host end `u`, ifindex
/// `underlay`), an endpoint veth pair (host end `e`, attached as `att`: 10.0.1.5 in
/// 10.0.1.0/24, VNI 7) and a pin directory, named from the test's tag and the pid and removed
/// when `_cleanup` drops, even on panic.
pub(crate) struct Host {
    pub(crate) u: String,
    pub(crate) underlay: u32,
    pub(crate) e: String,
    pub(crate) att: EndpointAttachment,
    pub(crate) pins: PathBuf,
    pub(crate) _cleanup: Cleanup,
}

impl Host {
    /// `tag` keeps names apart between tests (interface names stay under 16 bytes for tags of
    /// up to 8). `None`, after saying why ([`skip`]), where the machine cannot run these tests.
    pub(crate) async fn new(tag: &str) -> Option<Self> {
        if let Some(why) = skip_reason() {
            skip(why);
            return None;
        }
        let pid = std::process::id() % 100_000;
        let name = |end: char| format!("a{tag}{end}{pid}");
        let (u, e) = (name('u'), name('e'));
        let pins = PathBuf::from(format!("/sys/fs/bpf/alkaid-agent-{tag}-{pid}"));
        let cleanup = Cleanup {
            links: vec![u.clone(), e.clone()],
            pins: pins.clone(),
        };
        let underlay = veth(&u, &name('v')).await;
        let host_ifindex = veth(&e, &name('f')).await;
        let att = EndpointAttachment {
            host_ifname: e.clone(),
            host_ifindex,
            vni: 7,
            ip: ip("10.0.1.5"),
            mac: [0x0a, 0, 7, 0, 1, 5],
            subnet: "10.0.1.0/24".parse().unwrap(),
            gateway: ip("10.0.1.1"),
        };
        Some(Self {
            u,
            underlay,
            e,
            att,
            pins,
            _cleanup: cleanup,
        })
    }
}

async fn veth(a: &str, b: &str) -> u32 {
    let h = netlink::connect(Path::new("/")).unwrap();
    h.link()
        .add()
        .veth(a.into(), b.into())
        .execute()
        .await
        .unwrap();
    for n in [a, b] {
        let l = netlink::link_by_name(&h, n).await.unwrap().unwrap();
        h.link().set(l.header.index).up().execute().await.unwrap();
    }
    netlink::link_by_name(&h, a)
        .await
        .unwrap()
        .unwrap()
        .header
        .index
}

fn v(n: u64) -> Vni {
    Vni::new(n).unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn desired() -> Table {
    [
        (
            RowKey::Peer {
                ip: ip("192.168.50.2"),
            },
            RowValue::Peer(PeerEntry {
                mac: MacAddr([2, 0, 0, 0, 0, 2]),
            }),
        ),
        (
            RowKey::Vpc { vni: v(7) },
            RowValue::Vpc(VpcEntry {
                dividers: vec![ip("192.168.50.2")],
            }),
        ),
        (
            RowKey::Network {
                vni: v(7),
                cidr: Ipv4Cidr::new(ip("10.0.1.0"), 24).unwrap(),
            },
            RowValue::Network(NetworkEntry {
                bouncers: vec![ip("192.168.50.2")],
                gateway: ip("10.0.1.1"),
            }),
        ),
        (
            RowKey::Endpoint {
                vni: v(7),
                ip: ip("10.0.1.9"),
            },
            RowValue::Endpoint(EndpointEntry {
                droplet_ip: ip("192.168.50.2"),
                mac: MacAddr([0x0a, 0, 7, 0, 1, 9]),
            }),
        ),
        (
            RowKey::LocalEndpoint {
                vni: v(7),
                ip: ip("10.0.1.5"),
            },
            RowValue::LocalEndpoint(LocalEndpoint {
                mac: MacAddr([0x0a, 0, 7, 0, 1, 5]),
                subnet_cidr: Ipv4Cidr::new(ip("10.0.1.0"), 24).unwrap(),
                gateway: ip("10.0.1.1"),
                endpoint: EndpointKey::new("team", "web-0"),
            }),
        ),
    ]
    .into_iter()
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_attach_and_adoption_over_pinned_maps() {
    let Some(Host {
        u,
        underlay,
        e,
        att,
        pins,
        _cleanup,
    }) = Host::new("x").await
    else {
        return;
    };
    let cfg = AyaConfig {
        pin_dir: pins.clone(),
        droplet_ip: ip("192.168.50.1"),
        droplet_mac: [2, 0, 0, 0, 0, 1],
        underlay_ifindex: underlay,
        underlay_ifname: u.clone(),
        underlay_mtu: 1500,
        gateway_mac: [2, 0xa1, 0xca, 0x1d, 0, 1],
        underlay_mode: Some(alkaid_xdp::Mode::Generic),
        endpoint_mode: alkaid_xdp::Mode::Generic,
        endpoint_hook: EndpointHook::Xdp,
        map_sizes: alkaid_xdp::MapSizes::default(),
    };
    let dp = AyaDataplane::open(cfg.clone()).unwrap();
    let report = dp
        .apply(&sync::full_sync(&dp.rows().unwrap(), &desired()))
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(dp.rows().unwrap(), desired());

    dp.attach_endpoint(&att).unwrap();
    dp.attach_endpoint(&att).unwrap();
    assert_eq!(dp.endpoints().unwrap(), vec![att.clone()]);
    assert!(
        pins.join("links").join(format!("{e}-generic")).exists(),
        "agent link pinned"
    );
    assert!(
        pins.join("links/transit-generic").exists(),
        "transit link pinned"
    );
    assert!(
        dp.counters()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("drop."))
    );
    assert!(dp.detach_endpoint(&att).unwrap());
    assert!(!dp.detach_endpoint(&att).unwrap(), "detach is idempotent");

    // Leave one directory row, then restart: the new agent adopts the pinned maps, sees the
    // row it did not write, and a full sync to an empty table removes it.
    let ops = [MapOp::Delete(RowKey::LocalEndpoint {
        vni: v(7),
        ip: ip("10.0.1.5"),
    })];
    assert!(dp.apply(&ops).unwrap().errors.is_empty());
    drop(dp);
    let dp = AyaDataplane::open(cfg).unwrap();
    let seen = dp.rows().unwrap();
    assert!(
        seen.get(&RowKey::Endpoint {
            vni: v(7),
            ip: ip("10.0.1.9")
        })
        .is_some(),
        "{seen:?}"
    );
    let report = dp
        .apply(&sync::full_sync(&seen, &Table::default()))
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(dp.rows().unwrap(), Table::default());
}
