//! Fences through `apply`: who holds them, when they go, and snapshots.

use std::net::Ipv4Addr;

use crate::resource::DropletPhase;
use crate::table::{FenceEntry, RowKey, RowValue};
use crate::types::{DropletName, MacAddr};
use crate::{ClusterState, Command, Outcome};

fn dn(i: u8) -> DropletName {
    DropletName::new(format!("d{i}")).unwrap()
}

fn ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 0, i)
}

fn register_at(i: u8, addr: Ipv4Addr) -> Command {
    Command::RegisterDroplet {
        name: dn(i),
        ip: addr,
        mac: MacAddr([2, 0, 0, 0, 0, i]),
        interface: "eth0".into(),
        node: format!("node{i}"),
        seen: 1,
    }
}

fn phase(i: u8, phase: DropletPhase) -> Command {
    Command::SetDropletPhase {
        name: dn(i),
        phase,
        seen: 2,
    }
}

fn ok(s: &mut ClusterState, cmd: Command) -> Outcome {
    let out = s.apply(cmd.clone());
    assert!(out.reply.is_ok(), "{cmd:?} refused: {:?}", out.reply);
    let desired = s.desired_tables();
    for (d, t) in &desired {
        assert_eq!(s.table(d.as_str()), Some(t), "table of {d} after {cmd:?}");
    }
    out
}

fn ack_all(s: &mut ClusterState, droplets: &[u8]) {
    for &i in droplets {
        let version = s.version(&format!("d{i}"));
        ok(
            s,
            Command::AckProgrammed {
                droplet: dn(i),
                version,
            },
        );
    }
}

/// Which of `droplets` hold `Fence{ip(of)}`.
fn holders(s: &ClusterState, droplets: &[u8], of: u8) -> Vec<u8> {
    let key = RowKey::Fence { ip: ip(of) };
    droplets
        .iter()
        .copied()
        .filter(|i| {
            s.table(&format!("d{i}")).and_then(|t| t.get(&key))
                == Some(&RowValue::Fence(FenceEntry {}))
        })
        .collect()
}

fn cluster(n: u8) -> ClusterState {
    let mut s = ClusterState::new();
    for i in 1..=n {
        ok(&mut s, register_at(i, ip(i)));
    }
    s
}

#[test]
fn an_unreachable_droplet_is_fenced_on_every_other_until_it_returns() {
    let mut s = cluster(4);
    let out = ok(&mut s, phase(3, DropletPhase::Unreachable));
    assert_eq!(holders(&s, &[1, 2, 3, 4], 3), vec![1, 2, 4]);
    let fenced: Vec<&str> = out
        .deltas
        .iter()
        .filter(|d| {
            d.upserts
                .iter()
                .any(|(k, _)| *k == RowKey::Fence { ip: ip(3) })
        })
        .map(|d| d.droplet.as_str())
        .collect();
    assert_eq!(fenced, ["d1", "d2", "d4"], "one delta per other droplet");
    // A droplet joining meanwhile holds the fence too.
    ok(&mut s, register_at(5, ip(5)));
    assert_eq!(holders(&s, &[1, 2, 4, 5], 3), vec![1, 2, 4, 5]);
    ok(&mut s, phase(3, DropletPhase::Ready));
    assert!(holders(&s, &[1, 2, 3, 4, 5], 3).is_empty());
}

#[test]
fn a_removed_droplet_stays_fenced_until_every_droplet_acknowledged() {
    let mut s = cluster(3);
    ack_all(&mut s, &[1, 2, 3]);
    ok(&mut s, Command::RemoveDroplet { name: dn(3) });
    assert_eq!(holders(&s, &[1, 2], 3), vec![1, 2]);
    ack_all(&mut s, &[1]);
    assert_eq!(
        holders(&s, &[1, 2], 3),
        vec![1, 2],
        "d2 has not acknowledged"
    );
    let version = s.version("d2");
    let out = ok(
        &mut s,
        Command::AckProgrammed {
            droplet: dn(2),
            version,
        },
    );
    assert!(
        holders(&s, &[1, 2], 3).is_empty(),
        "every droplet applied it"
    );
    assert_eq!(out.deltas.len(), 2, "the fence rows go from d1 and d2");
    assert!(
        out.deltas
            .iter()
            .all(|d| d.deletes == [RowKey::Fence { ip: ip(3) }])
    );
}

#[test]
fn removing_a_droplet_that_others_already_fence_ends_the_fence_at_once() {
    let mut s = cluster(3);
    ok(&mut s, phase(3, DropletPhase::Unreachable));
    ack_all(&mut s, &[1, 2]);
    ok(&mut s, Command::RemoveDroplet { name: dn(3) });
    assert!(
        holders(&s, &[1, 2], 3).is_empty(),
        "both had applied the fence"
    );
}

#[test]
fn waiting_ends_for_a_droplet_that_is_removed_too() {
    let mut s = cluster(3);
    ok(&mut s, Command::RemoveDroplet { name: dn(3) });
    ack_all(&mut s, &[1]);
    assert_eq!(holders(&s, &[1, 2], 3), vec![1, 2]);
    // d2 never acknowledges: it goes, and so does the fence.
    ok(&mut s, Command::RemoveDroplet { name: dn(2) });
    assert!(holders(&s, &[1], 3).is_empty());
    assert_eq!(
        holders(&s, &[1], 2),
        vec![1],
        "d2's own address is fenced now"
    );
}

#[test]
fn an_address_registered_again_is_no_longer_fenced() {
    let mut s = cluster(3);
    ok(&mut s, Command::RemoveDroplet { name: dn(3) });
    assert_eq!(holders(&s, &[1, 2], 3), vec![1, 2]);
    // A new droplet on the old address bounces stale paths itself.
    ok(&mut s, register_at(7, ip(3)));
    assert!(holders(&s, &[1, 2, 7], 3).is_empty());
}

#[test]
fn a_droplet_moving_to_a_new_address_retires_the_old_one() {
    let mut s = cluster(2);
    ack_all(&mut s, &[1, 2]);
    ok(&mut s, register_at(2, Ipv4Addr::new(192, 168, 0, 99)));
    assert_eq!(holders(&s, &[1], 2), vec![1]);
    ack_all(&mut s, &[1, 2]);
    assert!(holders(&s, &[1, 2], 2).is_empty());
}

#[test]
fn fences_survive_snapshots_and_format_1_snapshots_restore() {
    let mut s = cluster(3);
    ok(&mut s, phase(1, DropletPhase::Unreachable));
    ok(&mut s, Command::RemoveDroplet { name: dn(3) });
    let r = ClusterState::restore(&s.snapshot()).unwrap();
    assert!(r.same_as(&s));
    assert_eq!(holders(&r, &[2], 3), vec![2]);
    assert_eq!(holders(&r, &[2], 1), vec![2]);

    // Format 1: the same truth without the retired addresses after it.
    let plain = cluster(2);
    let v2 = plain.snapshot();
    let mut v1 = b"ALKAID\x00\x01".to_vec();
    v1.extend_from_slice(&v2[8..v2.len() - 1]);
    assert_eq!(v2[v2.len() - 1], 0, "an empty map encodes as one zero byte");
    assert!(ClusterState::restore(&v1).unwrap().same_as(&plain));
    let mut trailing = v1.clone();
    trailing.push(0);
    assert!(ClusterState::restore(&trailing).is_err());
}
