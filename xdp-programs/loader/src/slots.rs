//! AGENT_SLOTS: the direct-mapped ARRAY copy of AGENT_ENDPOINTS that `agent` reads first.
//!
//! Why. On this kernel (x86-64 with the SRSO "Safe RET" mitigation) every kernel function
//! return costs about as much as a mispredicted branch, and a hash-map lookup from BPF is four
//! of them (`__htab_map_lookup_elem`, the hash, the bucket walk, `memcmp`): about 30 ns of an
//! encapsulation's budget. An ARRAY lookup is inlined by the verifier: no call at all.
//!
//! The protocol that makes an ARRAY safe to share. A hash-map update replaces the element
//! atomically (readers see the old or the new row); an ARRAY update is a `memcpy` into the
//! slot a program may be reading. So a slot is never changed in place: it is zeroed, and
//! rewritten only after an RCU grace period (`membarrier(MEMBARRIER_CMD_GLOBAL)`, which is
//! `synchronize_rcu()`; XDP and TC programs run inside RCU read-side sections). A program that
//! sees the new tag therefore started after the zeroing, and reads only zeros or the new row's
//! bytes, never one endpoint's tag with another's VNI. A zeroed slot misses, and the program
//! falls back to AGENT_ENDPOINTS, which is written first and removed last: no packet is dropped
//! for want of a slot. Many changes share one grace period ([`Slots::apply`]).
//!
//! Without `membarrier` (a `nohz_full` kernel refuses it) slots are only ever zeroed and
//! filled when never used since load: everything still works through AGENT_ENDPOINTS.

use std::collections::BTreeSet;

use alkaid_xdp_common::{AgentRecord, AgentSlot, agent_slot, maps::AGENT_SLOTS_MAX};
use aya::maps::{Array, MapData};

use crate::{Error, Result};

const NAME: &str = alkaid_xdp_common::maps::AGENT_SLOTS;

/// The slots and a mirror of what each holds (the loader is their only writer).
pub(crate) struct Slots {
    map: Array<MapData, AgentSlot>,
    mirror: Vec<AgentSlot>,
    /// Slots zeroed since the last grace period: not writable before the next one.
    zeroed: BTreeSet<u32>,
    /// False once `membarrier` has failed: no slot is reused after that.
    grace_works: bool,
}

/// What one endpoint's slot should hold: `Some(rec)` its row, `None` nothing (removed).
pub(crate) type Want = (u32, Option<AgentRecord>);

impl Slots {
    /// Takes the map and reads every slot (adopted pins keep a previous agent's slots).
    pub(crate) fn new(map: Array<MapData, AgentSlot>) -> Result<Self> {
        let mirror = (0..AGENT_SLOTS_MAX)
            .map(|i| map.get(&i, 0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::Map { name: NAME, source })?;
        Ok(Self {
            map,
            mirror,
            zeroed: BTreeSet::new(),
            grace_works: true,
        })
    }

    /// What the slot of `ifindex` holds, if it holds `ifindex`.
    pub(crate) fn get(&self, ifindex: u32) -> Option<&AgentRecord> {
        let s = &self.mirror[agent_slot(ifindex) as usize];
        (s.ifindex == ifindex && ifindex != 0).then_some(&s.rec)
    }

    /// The ifindexes held, in slot order.
    pub(crate) fn held(&self) -> impl Iterator<Item = u32> + '_ {
        self.mirror.iter().map(|s| s.ifindex).filter(|&i| i != 0)
    }

    /// Brings the slots of `wants` in line: a slot held by its ifindex is zeroed if the row
    /// changed or went away, and (re)written with the new row after one grace period for the
    /// whole batch; a free slot is taken; a slot another ifindex holds is left alone (that row
    /// is served from AGENT_ENDPOINTS).
    pub(crate) fn apply(&mut self, wants: impl IntoIterator<Item = Want>) -> Result<()> {
        let mut writes = Vec::new();
        for (ifindex, want) in wants {
            if ifindex == 0 {
                continue;
            }
            let i = agent_slot(ifindex);
            let cur = self.mirror[i as usize];
            let new = want.map(|rec| AgentSlot { ifindex, rec });
            match (cur.ifindex, new) {
                (t, Some(new)) if t == ifindex && cur == new => {}
                (t, new) if t == ifindex => {
                    self.zero(i)?;
                    writes.extend(new.map(|n| (i, n)));
                }
                (0, Some(new)) => writes.push((i, new)),
                _ => {}
            }
        }
        if writes.iter().any(|(i, _)| self.zeroed.contains(i)) {
            self.grace();
        }
        for (i, slot) in writes {
            // Each slot at most once per batch; a later want for the same slot wins below.
            if self.mirror[i as usize].ifindex != 0 || self.zeroed.contains(&i) {
                continue;
            }
            self.write(i, slot)?;
        }
        Ok(())
    }

    fn zero(&mut self, i: u32) -> Result<()> {
        self.write(i, AgentSlot::default())?;
        self.zeroed.insert(i);
        Ok(())
    }

    fn write(&mut self, i: u32, slot: AgentSlot) -> Result<()> {
        self.map
            .set(i, slot, 0)
            .map_err(|source| Error::Map { name: NAME, source })?;
        self.mirror[i as usize] = slot;
        Ok(())
    }

    /// Waits for every program that could have read a zeroed slot's old bytes to finish.
    fn grace(&mut self) {
        if !self.grace_works {
            return;
        }
        match crate::grace::synchronize_rcu() {
            Ok(()) => self.zeroed.clear(),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "membarrier(MEMBARRIER_CMD_GLOBAL) failed; AGENT_SLOTS will not reuse slots \
                     (endpoints are then found through AGENT_ENDPOINTS)"
                );
                self.grace_works = false;
            }
        }
    }
}
