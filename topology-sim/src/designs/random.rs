//! Random placement, as the original Mizar did it: every bouncer and divider goes to a
//! uniformly random droplet, independently (two of one subnet may share a droplet). Mizar
//! never re-placed roles of a lost droplet; to compare like with like this model re-places
//! them uniformly at random among live droplets when the failure is detected, and (as
//! Mizar) moves nothing back when droplets return.
//!
//! The real placement's figures come from the model ([`built_roles`]).

use alkaid_model::ClusterState;
use rand::Rng;

use super::RoleLoad;
use crate::world::droplet_index;

/// Role holders per role object, by droplet index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles {
    /// Per subnet (global index): its bouncers.
    pub bouncers: Vec<Vec<u32>>,
    /// Per VPC: its dividers.
    pub dividers: Vec<Vec<u32>>,
}

impl Roles {
    /// Uniformly random placement of `bouncers` per subnet and `dividers` per VPC.
    pub fn random(
        subnets: usize,
        vpcs: usize,
        bouncers: u32,
        dividers: u32,
        droplets: u32,
        rng: &mut impl Rng,
    ) -> Self {
        let mut slots = |n: usize, k: u32| -> Vec<Vec<u32>> {
            (0..n)
                .map(|_| (0..k).map(|_| rng.random_range(0..droplets)).collect())
                .collect()
        };
        let bouncers = slots(subnets, bouncers);
        let dividers = slots(vpcs, dividers);
        Self { bouncers, dividers }
    }

    /// Placements on droplets where `down`, moved uniformly to droplets where `!down`.
    /// Returns how many moved.
    pub fn replace_down(&mut self, down: &[bool], rng: &mut impl Rng) -> u64 {
        let live: Vec<u32> = (0..down.len() as u32)
            .filter(|d| !down[*d as usize])
            .collect();
        let mut moved = 0;
        for holders in self.bouncers.iter_mut().chain(self.dividers.iter_mut()) {
            for h in holders.iter_mut() {
                if down[*h as usize] && !live.is_empty() {
                    *h = live[rng.random_range(0..live.len())];
                    moved += 1;
                }
            }
        }
        moved
    }

    /// (role objects with no holder outside `down`) for bouncers and for dividers.
    pub fn orphaned(&self, down: &[bool]) -> (u64, u64) {
        let count = |v: &[Vec<u32>]| {
            v.iter()
                .filter(|hs| hs.iter().all(|h| down[*h as usize]))
                .count() as u64
        };
        (count(&self.bouncers), count(&self.dividers))
    }

    /// Placements in `self` that are not in `other` (per object, as multisets).
    pub fn moved_from(&self, other: &Self) -> u64 {
        let diff = |a: &[Vec<u32>], b: &[Vec<u32>]| -> u64 {
            a.iter()
                .zip(b)
                .map(|(x, y)| {
                    let mut y = y.clone();
                    x.iter()
                        .filter(|h| match y.iter().position(|g| g == *h) {
                            Some(i) => {
                                y.swap_remove(i);
                                false
                            }
                            None => true,
                        })
                        .count() as u64
                })
                .sum()
        };
        diff(&self.bouncers, &other.bouncers) + diff(&self.dividers, &other.dividers)
    }

    /// Per-droplet load: roles, and bouncer directory rows given endpoints per subnet.
    pub fn load(&self, droplets: usize, eps_per_subnet: &[u64], live: &[bool]) -> RoleLoad {
        let mut roles = vec![0u64; droplets];
        let mut dir = vec![0u64; droplets];
        let mut colocated = 0;
        for (s, hs) in self.bouncers.iter().enumerate() {
            let mut seen: Vec<u32> = Vec::with_capacity(hs.len());
            for h in hs {
                roles[*h as usize] += 1;
                if seen.contains(h) {
                    colocated += 1;
                } else {
                    // A droplet holding two bouncers of one subnet holds its rows once.
                    dir[*h as usize] += eps_per_subnet.get(s).copied().unwrap_or(0);
                    seen.push(*h);
                }
            }
        }
        for hs in &self.dividers {
            for (i, h) in hs.iter().enumerate() {
                roles[*h as usize] += 1;
                colocated += u64::from(hs[..i].contains(h));
            }
        }
        RoleLoad::of(&roles, &dir, live, colocated)
    }
}

/// The model's current placement, in subnet and VPC index order (names `vpc-V-sK` and
/// `vpc-V` as the world creates them, mapped through `subnet_index`/`vpc_index`).
pub fn built_roles(
    state: &ClusterState,
    subnet_index: impl Fn(&str) -> Option<usize>,
    vpc_index: impl Fn(&str) -> Option<usize>,
    subnets: usize,
    vpcs: usize,
) -> Roles {
    let mut r = Roles {
        bouncers: vec![Vec::new(); subnets],
        dividers: vec![Vec::new(); vpcs],
    };
    for b in state.list_bouncers() {
        if let (Some(s), Some(d)) = (
            subnet_index(&b.spec.subnet),
            droplet_index(b.spec.droplet.as_str()),
        ) {
            r.bouncers[s].push(d);
        }
    }
    for v in state.list_dividers() {
        if let (Some(i), Some(d)) = (
            vpc_index(&v.spec.vpc),
            droplet_index(v.spec.droplet.as_str()),
        ) {
            r.dividers[i].push(d);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn replace_and_count() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut r = Roles {
            bouncers: vec![vec![0, 1], vec![1, 1]],
            dividers: vec![vec![2]],
        };
        let down = [false, true, false];
        assert_eq!(r.orphaned(&down), (1, 0));
        let before = r.clone();
        assert_eq!(r.replace_down(&down, &mut rng), 3);
        assert!(r.bouncers.iter().flatten().all(|h| *h != 1));
        assert_eq!(r.moved_from(&before), 3);
        assert_eq!(r.moved_from(&r.clone()), 0);
        let load = before.load(3, &[10, 5], &[true; 3]);
        assert_eq!(load.roles_max, 3);
        assert_eq!(load.dir_rows_max, 15);
        assert_eq!(load.colocated, 1);
    }

    #[test]
    fn random_is_seeded() {
        let a = Roles::random(10, 2, 2, 1, 50, &mut ChaCha8Rng::seed_from_u64(1));
        let b = Roles::random(10, 2, 2, 1, 50, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(a, b);
        assert!(a.bouncers.iter().all(|h| h.len() == 2));
    }
}
