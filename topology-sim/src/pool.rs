//! [`Pool`]: a set of ids with O(1) insert, remove and uniform random pick, whose order
//! depends only on the sequence of operations (so picks are reproducible for a seed).

use std::collections::HashMap;

use rand::Rng;

/// Ids in a dense vector plus each id's position.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    items: Vec<u64>,
    pos: HashMap<u64, u32>,
}

impl Pool {
    /// Adds `id` (no effect if present).
    pub fn insert(&mut self, id: u64) {
        if self.pos.contains_key(&id) {
            return;
        }
        self.pos.insert(id, self.items.len() as u32);
        self.items.push(id);
    }

    /// Removes `id`; returns whether it was there.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(at) = self.pos.remove(&id) else {
            return false;
        };
        let last = self.items.pop().expect("non-empty");
        if last != id {
            self.items[at as usize] = last;
            self.pos.insert(last, at);
        }
        true
    }

    /// A uniformly random id.
    pub fn pick(&self, rng: &mut impl Rng) -> Option<u64> {
        if self.items.is_empty() {
            None
        } else {
            Some(self.items[rng.random_range(0..self.items.len())])
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The ids, in pool order.
    pub fn ids(&self) -> &[u64] {
        &self.items
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn insert_remove_pick() {
        let mut p = Pool::default();
        for i in 0..10 {
            p.insert(i);
        }
        p.insert(3);
        assert_eq!(p.len(), 10);
        assert!(p.remove(3));
        assert!(!p.remove(3));
        assert!(p.remove(9));
        assert_eq!(p.len(), 8);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            let id = p.pick(&mut rng).unwrap();
            assert!(id != 3 && id != 9 && id < 10);
        }
        let mut ids = p.ids().to_vec();
        ids.sort_unstable();
        assert_eq!(ids, vec![0, 1, 2, 4, 5, 6, 7, 8]);
        assert!(Pool::default().pick(&mut rng).is_none());
    }
}
