//! The STATS dump: per-CPU slots summed per verdict and per drop reason.

use std::fmt;

use alkaid_xdp_common::{DropReason, Verdict};

use crate::{Error, Maps, Result};

/// Totals since load (or since the pinned STATS map was created).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Every verdict with its count, in index order.
    pub verdicts: Vec<(Verdict, u64)>,
    /// Every drop reason with its count, in index order.
    pub drops: Vec<(DropReason, u64)>,
}

impl Counters {
    pub(crate) fn read(maps: &Maps) -> Result<Self> {
        let slot = |index: u32| -> Result<u64> {
            let per_cpu = maps.stats.get(&index, 0).map_err(|source| Error::Map {
                name: "STATS",
                source,
            })?;
            Ok(per_cpu.iter().copied().sum())
        };
        let verdicts = Verdict::ALL
            .iter()
            .map(|v| Ok((*v, slot(v.index())?)))
            .collect::<Result<_>>()?;
        let drops = DropReason::ALL
            .iter()
            .map(|r| Ok((*r, slot(r.index())?)))
            .collect::<Result<_>>()?;
        Ok(Self { verdicts, drops })
    }

    /// Count of one verdict.
    pub fn verdict(&self, v: Verdict) -> u64 {
        self.verdicts
            .iter()
            .find(|(x, _)| *x == v)
            .map_or(0, |(_, n)| *n)
    }

    /// Count of one drop reason.
    pub fn drop(&self, r: DropReason) -> u64 {
        self.drops
            .iter()
            .find(|(x, _)| *x == r)
            .map_or(0, |(_, n)| *n)
    }

    /// Sum of all drops.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }

    /// Per-slot difference `self - earlier` (saturating).
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            verdicts: self
                .verdicts
                .iter()
                .map(|(v, n)| (*v, n.saturating_sub(earlier.verdict(*v))))
                .collect(),
            drops: self
                .drops
                .iter()
                .map(|(r, n)| (*r, n.saturating_sub(earlier.drop(*r))))
                .collect(),
        }
    }
}

impl fmt::Display for Counters {
    /// One `name count` line per non-zero slot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (v, n) in &self.verdicts {
            if *n > 0 {
                writeln!(f, "verdict {} {n}", v.name())?;
            }
        }
        for (r, n) in &self.drops {
            if *n > 0 {
                writeln!(f, "drop {} {n}", r.name())?;
            }
        }
        Ok(())
    }
}
