//! VNI allocation: a user-chosen VNI is honoured if free; otherwise the lowest free VNI at or
//! above [`VNI_BASE`] is allocated (wrapping to [`Vni::MIN`]). Unique among live VPCs; freed on
//! delete and reusable.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::types::Vni;

/// Where allocation starts; lower VNIs stay free for users who pick their own.
pub const VNI_BASE: u32 = 1000;

/// The VNIs in use and the VPC holding each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VniPool {
    used: BTreeMap<Vni, String>,
}

impl VniPool {
    /// The VPC holding `vni`, if any.
    pub fn owner(&self, vni: Vni) -> Option<&str> {
        self.used.get(&vni).map(String::as_str)
    }

    /// Takes `vni` for `vpc`.
    ///
    /// # Errors
    /// [`Error::DuplicateVni`] if another VPC holds it.
    pub fn reserve(&mut self, vni: Vni, vpc: &str) -> Result<()> {
        self.check(vni, vpc)?;
        self.used.insert(vni, vpc.to_owned());
        Ok(())
    }

    /// Checks that `vpc` could take `vni`, changing nothing.
    ///
    /// # Errors
    /// [`Error::DuplicateVni`] if another VPC holds it.
    pub fn check(&self, vni: Vni, vpc: &str) -> Result<()> {
        match self.used.get(&vni) {
            Some(other) if other != vpc => Err(Error::DuplicateVni {
                vni: vni.get(),
                vpc: vpc.to_owned(),
                other: other.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// The VNI [`allocate`](Self::allocate) would return, changing nothing.
    ///
    /// # Errors
    /// [`Error::VniExhausted`] if every VNI is in use.
    pub fn peek(&self, vpc: &str) -> Result<Vni> {
        self.lowest_free(VNI_BASE, Vni::MAX)
            .or_else(|| self.lowest_free(Vni::MIN, Vni::MAX))
            .ok_or_else(|| Error::VniExhausted {
                vpc: vpc.to_owned(),
            })
    }

    /// The lowest VNI in `from..=max` not in use. O(VNIs in use from `from`).
    fn lowest_free(&self, from: u32, max: u32) -> Option<Vni> {
        let mut want = from;
        for (vni, _) in self.used.range(Vni::new(u64::from(from)).ok()?..) {
            if vni.get() != want {
                break;
            }
            want = want.checked_add(1)?;
        }
        (want <= max)
            .then(|| Vni::new(u64::from(want)).ok())
            .flatten()
    }

    /// Allocates the lowest free VNI at or above [`VNI_BASE`] for `vpc`.
    ///
    /// # Errors
    /// [`Error::VniExhausted`] if every VNI is in use.
    pub fn allocate(&mut self, vpc: &str) -> Result<Vni> {
        let vni = self.peek(vpc)?;
        self.used.insert(vni, vpc.to_owned());
        Ok(vni)
    }

    /// Frees `vni`.
    pub fn release(&mut self, vni: Vni) {
        self.used.remove(&vni);
    }

    /// Number of VNIs in use.
    pub fn len(&self) -> usize {
        self.used.len()
    }

    /// Whether no VNI is in use.
    pub fn is_empty(&self) -> bool {
        self.used.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vni(v: u32) -> Vni {
        Vni::new(u64::from(v)).unwrap()
    }

    #[test]
    fn allocation_table() {
        // (steps, expected result of each step)
        enum Step {
            Alloc(&'static str, Result<u32, &'static str>),
            Reserve(u32, &'static str, Result<(), &'static str>),
            Release(u32),
        }
        use Step::*;
        let steps = [
            Alloc("a", Ok(1000)),
            Alloc("b", Ok(1001)),
            Reserve(1002, "c", Ok(())),
            Alloc("d", Ok(1003)),
            Reserve(
                1001,
                "e",
                Err("vni 1001 requested by vpc \"e\" is already used by vpc \"b\""),
            ),
            Reserve(1001, "b", Ok(())), // re-reserving one's own is fine
            Release(1001),
            Alloc("f", Ok(1001)), // freed and reused, lowest first
            Reserve(7, "g", Ok(())),
            Alloc("h", Ok(1004)), // user picks below the base do not matter
        ];
        let mut pool = VniPool::default();
        for (i, step) in steps.into_iter().enumerate() {
            match step {
                Alloc(vpc, want) => match (pool.allocate(vpc), want) {
                    (Ok(v), Ok(w)) => assert_eq!(v.get(), w, "step {i}"),
                    (Err(e), Err(w)) => assert!(e.to_string().contains(w), "step {i}: {e}"),
                    (got, want) => panic!("step {i}: got {got:?}, want {want:?}"),
                },
                Reserve(v, vpc, want) => match (pool.reserve(vni(v), vpc), want) {
                    (Ok(()), Ok(())) => {}
                    (Err(e), Err(w)) => assert!(e.to_string().contains(w), "step {i}: {e}"),
                    (got, want) => panic!("step {i}: got {got:?}, want {want:?}"),
                },
                Release(v) => pool.release(vni(v)),
            }
        }
        assert_eq!(pool.owner(vni(1001)), Some("f"));
        assert_eq!(pool.len(), 6);
    }

    #[test]
    fn wraps_below_base_when_top_is_full() {
        let mut pool = VniPool::default();
        for v in VNI_BASE..VNI_BASE + 5 {
            pool.used.insert(vni(v), "x".into());
        }
        // With the top of the range ending right after the used block, allocation wraps.
        assert_eq!(pool.lowest_free(VNI_BASE, VNI_BASE + 4), None);
        assert_eq!(pool.lowest_free(Vni::MIN, VNI_BASE + 4).unwrap().get(), 1);
        assert_eq!(
            pool.lowest_free(VNI_BASE, VNI_BASE + 5).unwrap().get(),
            VNI_BASE + 5
        );
    }
}
