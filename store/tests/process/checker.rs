//! A Wing-Gong/Lowe (Porcupine-style) linearizability checker for one register per key.
//!
//! An operation has an invocation time and, if its outcome is known, a return time. Writes
//! whose outcome is unknown (timeouts, a killed leader) may take effect at any point after
//! their invocation, or never. The search linearizes, one at a time, any operation invoked
//! before every pending operation's return, memoizing (set of linearized ops, register value).

use std::collections::{BTreeMap, HashSet};

/// What a client did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Wrote a (unique) value.
    Put(Vec<u8>),
    /// Read and saw this value.
    Get(Option<Vec<u8>>),
}

/// One operation on one key.
#[derive(Debug, Clone)]
pub struct Event {
    pub key: Vec<u8>,
    pub op: Op,
    pub invoke: u64,
    /// `None`: outcome unknown (only meaningful for writes).
    pub ret: Option<u64>,
}

/// Checks every key's history; returns the first non-linearizable key.
pub fn check(history: &[Event]) -> Result<(), String> {
    let mut by_key: BTreeMap<&[u8], Vec<&Event>> = BTreeMap::new();
    for e in history {
        by_key.entry(&e.key).or_default().push(e);
    }
    for (key, events) in by_key {
        if !check_key(&events) {
            return Err(format!(
                "history of key {:?} ({} ops) is not linearizable",
                String::from_utf8_lossy(key),
                events.len()
            ));
        }
    }
    Ok(())
}

fn check_key(events: &[&Event]) -> bool {
    let n = events.len();
    let mut done = vec![false; n];
    let mut memo: HashSet<(Vec<u64>, Option<Vec<u8>>)> = HashSet::new();
    // Recursive DFS: depth is at most the number of operations on the key.
    search(events, &mut done, None, &mut memo)
}

fn bits(done: &[bool]) -> Vec<u64> {
    let mut v = vec![0u64; done.len().div_ceil(64)];
    for (i, d) in done.iter().enumerate() {
        if *d {
            v[i / 64] |= 1 << (i % 64);
        }
    }
    v
}

fn search(
    events: &[&Event],
    done: &mut [bool],
    state: Option<Vec<u8>>,
    memo: &mut HashSet<(Vec<u64>, Option<Vec<u8>>)>,
) -> bool {
    // Finished when every operation with a known outcome is linearized; unknown writes may
    // simply never have happened.
    if events
        .iter()
        .zip(done.iter())
        .all(|(e, d)| *d || e.ret.is_none())
    {
        return true;
    }
    if !memo.insert((bits(done), state.clone())) {
        return false;
    }
    let horizon = events
        .iter()
        .zip(done.iter())
        .filter(|(_, d)| !**d)
        .filter_map(|(e, _)| e.ret)
        .min()
        .unwrap_or(u64::MAX);
    for i in 0..events.len() {
        if done[i] || events[i].invoke > horizon {
            continue;
        }
        let next = match &events[i].op {
            Op::Put(v) => Some(v.clone()),
            Op::Get(seen) => {
                if *seen != state {
                    continue;
                }
                state.clone()
            }
        };
        done[i] = true;
        if search(events, done, next, memo) {
            return true;
        }
        done[i] = false;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(op: Op, invoke: u64, ret: Option<u64>) -> Event {
        Event {
            key: b"k".to_vec(),
            op,
            invoke,
            ret,
        }
    }
    fn put(v: &str) -> Op {
        Op::Put(v.into())
    }
    fn get(v: Option<&str>) -> Op {
        Op::Get(v.map(|s| s.as_bytes().to_vec()))
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = [
            ev(get(None), 0, Some(1)),
            ev(put("a"), 2, Some(3)),
            ev(get(Some("a")), 4, Some(5)),
        ];
        assert!(check(&h).is_ok());
    }

    #[test]
    fn concurrent_reads_may_see_either_value() {
        let h = [
            ev(put("a"), 0, Some(1)),
            ev(put("b"), 2, Some(10)),
            ev(get(Some("b")), 3, Some(4)),
            ev(get(Some("b")), 5, Some(6)),
        ];
        assert!(check(&h).is_ok());
    }

    #[test]
    fn stale_read_after_acknowledged_write_is_rejected() {
        let h = [
            ev(put("a"), 0, Some(1)),
            ev(put("b"), 2, Some(3)),
            ev(get(Some("a")), 4, Some(5)),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn value_flapping_back_is_rejected() {
        // Both reads overlap both writes, but once "b" is seen, "a" cannot come back.
        let h = [
            ev(put("a"), 0, Some(10)),
            ev(put("b"), 0, Some(10)),
            ev(get(Some("b")), 1, Some(2)),
            ev(get(Some("a")), 3, Some(4)),
            ev(get(Some("b")), 5, Some(6)),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn lost_acknowledged_write_is_rejected() {
        let h = [ev(put("a"), 0, Some(1)), ev(get(None), 2, Some(3))];
        assert!(check(&h).is_err());
    }

    #[test]
    fn unknown_write_may_apply_late_or_never() {
        let late = [
            ev(put("a"), 0, None),
            ev(get(None), 5, Some(6)),
            ev(get(Some("a")), 7, Some(8)),
        ];
        assert!(check(&late).is_ok());
        let never = [ev(put("a"), 0, None), ev(get(None), 5, Some(6))];
        assert!(check(&never).is_ok());
    }
}
