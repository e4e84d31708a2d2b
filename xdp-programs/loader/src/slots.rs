//! AGENT_SLOTS and LOCAL_SLOTS: direct-mapped ARRAY copies of AGENT_ENDPOINTS and of the
//! LOCAL rows of ENDPOINTS, which the programs read before those hash maps.
//!
//! Why. On this kernel (x86-64 with the SRSO "Safe RET" mitigation) every kernel function
//! return costs about as much as a mispredicted branch, and a hash-map lookup from BPF is four
//! of them (`__htab_map_lookup_elem`, the hash, the bucket walk, `memcmp`): about 30 ns of an
//! encapsulation's budget. An ARRAY lookup is inlined by the verifier: no call at all. The
//! rows copied are the few a droplet's own endpoints need on every packet; a slot two rows
//! map to serves the first, the other is found in the hash map.
//!
//! The protocol that makes an ARRAY safe to share. A hash-map update replaces the element
//! atomically (readers see the old or the new row); an ARRAY update is a `memcpy` into the
//! slot a program may be reading. So a slot is never changed in place: it is zeroed, and
//! rewritten only after an RCU grace period (`membarrier(MEMBARRIER_CMD_GLOBAL)`, which is
//! `synchronize_rcu()`; XDP and TC programs run inside RCU read-side sections). A program that
//! sees the new key therefore started after the zeroing, and reads only zeros or the new row's
//! bytes, never one endpoint's key with another's VNI, MAC or interface. A zeroed slot misses,
//! and the program falls back to the hash map, which is written first: no packet is dropped
//! for want of a slot. Many changes share one grace period ([`Slots::apply`]).
//!
//! Without `membarrier` (a `nohz_full` kernel refuses it) slots are only ever zeroed and
//! filled when never used since load: everything still works through the hash maps.

use std::collections::BTreeSet;

use alkaid_xdp_common::{
    AgentRecord, AgentSlot, EndpointKey, EndpointRecord, LocalSlot, agent_slot, local_slot,
    maps::{self as names, AGENT_SLOTS_MAX, LOCAL_SLOTS_MAX},
};
use aya::{
    Pod,
    maps::{Array, MapData},
};

use crate::{Error, Result};

/// A slot type: an ARRAY value holding one keyed row, or nothing.
pub(crate) trait Slot: Pod + Default + PartialEq {
    type Key: Copy + PartialEq;
    type Row: Copy;
    const NAME: &'static str;
    const LEN: u32;
    /// Where `key` lives.
    fn index(key: Self::Key) -> u32;
    /// The key held, `None` if empty.
    fn key(&self) -> Option<Self::Key>;
    fn new(key: Self::Key, row: Self::Row) -> Self;
    fn row(&self) -> &Self::Row;
}

impl Slot for AgentSlot {
    type Key = u32;
    type Row = AgentRecord;
    const NAME: &'static str = names::AGENT_SLOTS;
    const LEN: u32 = AGENT_SLOTS_MAX;
    fn index(ifindex: u32) -> u32 {
        agent_slot(ifindex)
    }
    fn key(&self) -> Option<u32> {
        (self.ifindex != 0).then_some(self.ifindex)
    }
    fn new(ifindex: u32, rec: AgentRecord) -> Self {
        Self { ifindex, rec }
    }
    fn row(&self) -> &AgentRecord {
        &self.rec
    }
}

impl Slot for LocalSlot {
    type Key = EndpointKey;
    type Row = EndpointRecord;
    const NAME: &'static str = names::LOCAL_SLOTS;
    const LEN: u32 = LOCAL_SLOTS_MAX;
    fn index(k: EndpointKey) -> u32 {
        local_slot(k.vni, k.ip)
    }
    fn key(&self) -> Option<EndpointKey> {
        (self.key.vni != 0).then_some(self.key)
    }
    fn new(key: EndpointKey, rec: EndpointRecord) -> Self {
        Self { key, rec }
    }
    fn row(&self) -> &EndpointRecord {
        &self.rec
    }
}

/// The slots and a mirror of what each holds (the loader is their only writer).
pub(crate) struct Slots<S: Slot> {
    map: Array<MapData, S>,
    mirror: Vec<S>,
    /// Slots zeroed since the last grace period: not writable before the next one.
    zeroed: BTreeSet<u32>,
    /// False once `membarrier` has failed: no slot is reused after that.
    grace_works: bool,
}

/// What a key's slot should hold: `Some(row)` that row, `None` nothing (removed, or no longer
/// a row the slots copy).
pub(crate) type Want<S> = (<S as Slot>::Key, Option<<S as Slot>::Row>);

impl<S: Slot> Slots<S> {
    /// Takes the map and reads every slot (adopted pins keep a previous agent's slots).
    pub(crate) fn new(map: Array<MapData, S>) -> Result<Self> {
        let mirror = (0..S::LEN)
            .map(|i| map.get(&i, 0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| Error::Map {
                name: S::NAME,
                source,
            })?;
        Ok(Self {
            map,
            mirror,
            zeroed: BTreeSet::new(),
            grace_works: true,
        })
    }

    /// The row in the slot of `key`, if that slot holds `key`.
    pub(crate) fn get(&self, key: S::Key) -> Option<&S::Row> {
        let s = &self.mirror[S::index(key) as usize];
        (s.key() == Some(key)).then(|| s.row())
    }

    /// True if slot `i` holds nothing.
    pub(crate) fn is_free(&self, i: u32) -> bool {
        self.mirror[i as usize].key().is_none()
    }

    /// The keys held, in slot order.
    pub(crate) fn held(&self) -> impl Iterator<Item = S::Key> + '_ {
        self.mirror.iter().filter_map(S::key)
    }

    /// Brings the slots of `wants` in line: a slot its key holds is zeroed if the row changed
    /// or went away, and rewritten with the new row after one grace period for the whole
    /// batch; a free slot is taken (the first want of a batch wins it); a slot another key
    /// holds is left alone (that row is served from the hash map).
    pub(crate) fn apply(&mut self, wants: impl IntoIterator<Item = Want<S>>) -> Result<()> {
        let mut writes = Vec::new();
        for (key, want) in wants {
            let i = S::index(key);
            let cur = &self.mirror[i as usize];
            let new = want.map(|row| S::new(key, row));
            match (cur.key(), new) {
                (Some(k), Some(new)) if k == key && *cur == new => {}
                (Some(k), new) if k == key => {
                    self.zero(i)?;
                    writes.extend(new.map(|n| (i, n)));
                }
                (None, Some(new)) => writes.push((i, new)),
                _ => {}
            }
        }
        if writes.iter().any(|(i, _)| self.zeroed.contains(i)) {
            self.grace();
        }
        for (i, slot) in writes {
            if self.mirror[i as usize].key().is_some() || self.zeroed.contains(&i) {
                continue;
            }
            self.write(i, slot)?;
        }
        Ok(())
    }

    fn zero(&mut self, i: u32) -> Result<()> {
        self.write(i, S::default())?;
        self.zeroed.insert(i);
        Ok(())
    }

    fn write(&mut self, i: u32, slot: S) -> Result<()> {
        self.map.set(i, slot, 0).map_err(|source| Error::Map {
            name: S::NAME,
            source,
        })?;
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
                    map = S::NAME,
                    "membarrier(MEMBARRIER_CMD_GLOBAL) failed; slots will not be reused \
                     (their rows are then found in the hash map)"
                );
                self.grace_works = false;
            }
        }
    }
}
