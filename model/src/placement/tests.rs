use super::*;

fn names(n: usize) -> Vec<DropletName> {
    (0..n)
        .map(|i| DropletName::new(format!("droplet-{i}")).unwrap())
        .collect()
}

fn cands<'a>(ds: &'a [DropletName], loads: &'a [u32]) -> impl Iterator<Item = Candidate<'a>> {
    ds.iter().zip(loads).map(|(d, l)| Candidate {
        name: d,
        hash: name_hash(d.as_str()),
        load: *l,
    })
}

#[test]
fn hash_is_stable_across_runs_and_platforms() {
    // Fixed values: a change here changes every placement in every cluster.
    assert_eq!(name_hash(""), mix(0xcbf2_9ce4_8422_2325));
    assert_eq!(name_hash("droplet-1"), name_hash("droplet-1"));
    assert_ne!(name_hash("droplet-1"), name_hash("droplet-2"));
}

#[test]
fn pick_table() {
    let ds = names(10);
    let zero = [0u32; 10];
    // (n wanted, candidates available, expected count)
    for (n, avail, want) in [
        (1, 10, 1),
        (3, 10, 3),
        (16, 10, 10),
        (2, 1, 1),
        (1, 0, 0),
        (0, 10, 0),
    ] {
        let got = pick(
            object_hash("bouncer", "s"),
            cands(&ds[..avail], &zero[..avail]),
            n,
            u32::MAX,
        );
        assert_eq!(got.len(), want, "n={n} avail={avail}");
        let mut dedup = got.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), got.len(), "distinct");
    }
}

#[test]
fn rendezvous_moves_only_what_it_must() {
    let ds = names(50);
    let loads = [0u32; 50];
    for obj in 0..200 {
        let o = object_hash("bouncer", &format!("s{obj}"));
        let all = pick(o, cands(&ds, &loads), 3, u32::MAX);
        // Removing a droplet that is not chosen changes nothing.
        let unchosen = ds.iter().position(|d| !all.contains(d)).unwrap();
        let mut fewer = ds.clone();
        fewer.remove(unchosen);
        assert_eq!(pick(o, cands(&fewer, &loads), 3, u32::MAX), all);
        // Removing a chosen one keeps the other two.
        let chosen = ds.iter().position(|d| *d == all[0]).unwrap();
        let mut fewer = ds.clone();
        fewer.remove(chosen);
        let again = pick(o, cands(&fewer, &loads), 3, u32::MAX);
        assert!(all[1..].iter().all(|d| again.contains(d)));
    }
}

#[test]
fn load_bound_spreads() {
    let ds = names(20);
    let mut loads = vec![0u32; 20];
    let mut placed = 0u64;
    for obj in 0..500 {
        let bound = load_bound(placed, 2, 20);
        let got = pick(
            object_hash("divider", &format!("v{obj}")),
            cands(&ds, &loads),
            2,
            bound,
        );
        for d in got {
            let i = ds.iter().position(|x| *x == d).unwrap();
            assert!(loads[i] < bound, "picked a droplet at the bound");
            loads[i] += 1;
            placed += 1;
        }
    }
    let max = *loads.iter().max().unwrap();
    assert!(max <= load_bound(placed, 0, 20), "max {max}");
    assert_eq!(load_bound(0, 1, 10), 2);
    assert_eq!(load_bound(100, 0, 10), 14);
}

#[test]
fn bound_falls_back_when_everyone_is_full() {
    let ds = names(3);
    let got = pick(1, cands(&ds, &[5, 5, 5]), 2, 1);
    assert_eq!(got.len(), 2);
}

#[test]
fn lowest_ranked_is_the_complement_of_pick() {
    let ds = names(6);
    let o = object_hash("bouncer", "x");
    let holders: Vec<_> = ds
        .iter()
        .map(|d| (d.clone(), name_hash(d.as_str())))
        .collect();
    let best = pick(o, cands(&ds, &[0; 6]), 4, u32::MAX);
    let worst = lowest_ranked(o, &holders, 2);
    assert!(worst.iter().all(|d| !best.contains(d)));
}
