use std::net::Ipv4Addr;

use alkaid_model::table::{PeerEntry, VpcEntry};
use alkaid_model::{MacAddr, Vni};

use super::*;

fn vpc(n: u64, dividers: &[u8]) -> (RowKey, RowValue) {
    (
        RowKey::Vpc {
            vni: Vni::new(n).unwrap(),
        },
        RowValue::Vpc(VpcEntry {
            dividers: dividers
                .iter()
                .map(|d| Ipv4Addr::new(192, 168, 0, *d))
                .collect(),
        }),
    )
}

fn peer(d: u8) -> (RowKey, RowValue) {
    (
        RowKey::Peer {
            ip: Ipv4Addr::new(192, 168, 0, d),
        },
        RowValue::Peer(PeerEntry {
            mac: MacAddr([2, 0, 0, 0, 0, d]),
        }),
    )
}

fn table(rows: &[(RowKey, RowValue)]) -> Table {
    rows.iter().cloned().collect()
}

fn up(r: (RowKey, RowValue)) -> MapOp {
    MapOp::Upsert(r.0, r.1)
}

fn del(r: (RowKey, RowValue)) -> MapOp {
    MapOp::Delete(r.0)
}

#[test]
fn full_sync_table() {
    // (case, actual, desired, expected ops in order)
    let cases: Vec<(&str, Table, Table, Vec<MapOp>)> = vec![
        ("both empty", table(&[]), table(&[]), vec![]),
        (
            "equal",
            table(&[vpc(1, &[1]), peer(1)]),
            table(&[vpc(1, &[1]), peer(1)]),
            vec![],
        ),
        (
            "from empty: peer first",
            table(&[]),
            table(&[vpc(1, &[1]), peer(1)]),
            vec![up(peer(1)), up(vpc(1, &[1]))],
        ),
        (
            "to empty: peer last",
            table(&[vpc(1, &[1]), peer(1)]),
            table(&[]),
            vec![del(vpc(1, &[1])), del(peer(1))],
        ),
        (
            "changed value",
            table(&[vpc(1, &[1])]),
            table(&[vpc(1, &[2])]),
            vec![up(vpc(1, &[2]))],
        ),
        (
            "move to a new peer",
            table(&[vpc(1, &[1]), peer(1)]),
            table(&[vpc(1, &[2]), peer(2)]),
            vec![up(peer(2)), up(vpc(1, &[2])), del(peer(1))],
        ),
        (
            "stray rows removed, kept rows untouched",
            table(&[vpc(1, &[1]), vpc(2, &[1]), vpc(3, &[1]), peer(1)]),
            table(&[vpc(2, &[1]), peer(1)]),
            vec![del(vpc(1, &[1])), del(vpc(3, &[1]))],
        ),
    ];
    for (name, actual, desired, want) in cases {
        let ops = full_sync(&actual, &desired);
        assert_eq!(ops, want, "{name}");
        let mut t = actual.clone();
        for op in ops {
            match op {
                MapOp::Upsert(k, v) => t.insert(k, v),
                MapOp::Delete(k) => t.remove(&k),
            };
        }
        assert_eq!(t, desired, "{name}: applying the plan reaches desired");
    }
}

#[test]
fn delta_checks_table() {
    let mut t = Tracker::new();
    t.applied_full(5, 9);
    let cases = [
        ((5, 6), DeltaCheck::Apply),
        ((5, 8), DeltaCheck::Apply),
        ((4, 5), DeltaCheck::Stale),
        ((3, 4), DeltaCheck::Stale),
        ((6, 7), DeltaCheck::Gap { ours: 5, base: 6 }),
        ((2, 7), DeltaCheck::Gap { ours: 5, base: 2 }),
        ((5, 5), DeltaCheck::Stale),
    ];
    for ((base, version), want) in cases {
        assert_eq!(t.check_delta(base, version), want, "{base}->{version}");
    }
    assert_eq!(t.hello(), (5, 9));
    t.require_full();
    assert_eq!(t.hello(), (0, 9));
    assert!(
        matches!(t.check_delta(5, 6), DeltaCheck::Gap { .. }),
        "nothing but a full sync after a gap"
    );
    t.applied_full(7, 9);
    assert_eq!(t.hello(), (7, 9));
}

#[test]
fn chunks_accumulate_until_last() {
    let mut t = Tracker::new();
    assert_eq!(t.full_chunk(3, 1, [vpc(1, &[1])], false), None);
    assert_eq!(t.full_chunk(3, 1, [vpc(2, &[1])], false), None);
    let done = t.full_chunk(3, 1, [peer(1)], true).unwrap();
    assert_eq!(done.version, 3);
    assert_eq!(done.desired, table(&[vpc(1, &[1]), vpc(2, &[1]), peer(1)]));
    // A chunk of another version restarts; a reset drops what was half received.
    assert_eq!(t.full_chunk(4, 1, [vpc(1, &[1])], false), None);
    let done = t.full_chunk(5, 1, [vpc(9, &[1])], true).unwrap();
    assert_eq!(done.desired, table(&[vpc(9, &[1])]));
    assert_eq!(t.full_chunk(6, 1, [vpc(1, &[1])], false), None);
    t.reset_stream();
    assert_eq!(t.full_chunk(6, 1, [], true).unwrap().desired, table(&[]));
}

fn ops(upserts: &[(RowKey, RowValue)], deletes: &[(RowKey, RowValue)]) -> Ops {
    Ops {
        upserts: upserts.to_vec(),
        deletes: deletes.iter().map(|r| r.0.clone()).collect(),
    }
}

#[test]
fn merge_keeps_the_last_operation_per_key() {
    let merged = merge(&[
        ops(&[vpc(1, &[1]), vpc(2, &[1]), vpc(3, &[1])], &[peer(9)]),
        ops(&[vpc(1, &[2]), peer(9)], &[vpc(2, &[1])]),
        ops(&[vpc(2, &[3])], &[vpc(3, &[1])]),
    ]);
    let mut upserts = merged.upserts.clone();
    upserts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![vpc(1, &[2]), vpc(2, &[3]), peer(9)];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(upserts, want);
    assert_eq!(merged.deletes, vec![vpc(3, &[1]).0]);
}

#[test]
fn merge_of_one_delta_is_that_delta() {
    let d = ops(&[vpc(1, &[1]), peer(2)], &[vpc(4, &[1])]);
    assert_eq!(merge(std::slice::from_ref(&d)), d);
    assert_eq!(merge(&[]), Ops::default());
}

/// Applies `ops` the way the data plane does (deletes of absent rows are fine).
fn apply(held: &mut std::collections::BTreeMap<RowKey, RowValue>, ops: &Ops) {
    for k in &ops.deletes {
        held.remove(k);
    }
    for (k, v) in &ops.upserts {
        held.insert(k.clone(), v.clone());
    }
}

proptest::proptest! {
    /// Applying the merge of a run of deltas leaves the maps exactly as applying them one
    /// after another does. Deltas are shaped as the operator sends them: each key at most
    /// once per delta.
    #[test]
    fn merged_deltas_apply_like_the_sequence(
        deltas in proptest::collection::vec(
            proptest::collection::btree_map(0u64..6, proptest::option::of(0u8..4), 0..6),
            0..8,
        ),
    ) {
        let deltas: Vec<Ops> = deltas
            .into_iter()
            .map(|d| {
                let mut o = Ops::default();
                for (k, v) in d {
                    match v {
                        Some(v) => o.upserts.push(vpc(k + 1, &[v])),
                        None => o.deletes.push(vpc(k + 1, &[0]).0),
                    }
                }
                o
            })
            .collect();
        let mut one_by_one = std::collections::BTreeMap::new();
        for d in &deltas {
            apply(&mut one_by_one, d);
        }
        let mut merged = std::collections::BTreeMap::new();
        apply(&mut merged, &merge(&deltas));
        proptest::prop_assert_eq!(merged, one_by_one);
    }
}
