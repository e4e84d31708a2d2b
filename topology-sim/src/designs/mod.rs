//! The comparison designs, computed from the objects the real model holds (never from
//! product logic of their own):
//!
//! - [`full_mesh`]: every droplet hosting an endpoint of a VPC holds every endpoint row of
//!   that VPC, as most overlays do.
//! - [`random`]: bouncers and dividers placed uniformly at random, as the original Mizar did,
//!   against the model's real placement, on failure and rejoin.

pub mod full_mesh;
pub mod random;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stats::round;

/// A design the report compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// Bouncers and dividers as built (the real model). Always simulated.
    Built,
    /// Every droplet of a VPC holds the whole VPC.
    FullMesh,
    /// Uniformly random role placement (original Mizar).
    Random,
}

impl Design {
    /// Every design.
    pub const ALL: [Design; 3] = [Design::Built, Design::FullMesh, Design::Random];

    /// Parses `built`, `full-mesh` or `random`.
    ///
    /// # Errors
    /// [`Error::UnknownDesign`].
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "built" => Ok(Self::Built),
            "full-mesh" | "full_mesh" | "mesh" => Ok(Self::FullMesh),
            "random" => Ok(Self::Random),
            other => Err(Error::UnknownDesign {
                name: other.to_owned(),
            }),
        }
    }

    /// The name used in reports and file names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Built => "built",
            Self::FullMesh => "full-mesh",
            Self::Random => "random",
        }
    }
}

/// How evenly roles (and the bouncer directory rows they bring) are spread.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleLoad {
    /// Roles (bouncer or divider placements) on the busiest droplet.
    pub roles_max: u64,
    /// Mean roles per live droplet.
    pub roles_mean: f64,
    /// Busiest droplet's bouncer directory rows (`Endpoint` rows).
    pub dir_rows_max: u64,
    /// Mean directory rows per live droplet.
    pub dir_rows_mean: f64,
    /// Roles placed twice on one droplet (same subnet or VPC): lost redundancy.
    pub colocated: u64,
}

impl RoleLoad {
    /// Summarizes per-droplet roles and directory rows over the droplets where `live`.
    pub fn of(roles: &[u64], dir_rows: &[u64], live: &[bool], colocated: u64) -> Self {
        let n = live.iter().filter(|l| **l).count().max(1) as f64;
        let pick = |v: &[u64]| {
            let it = v.iter().zip(live).filter(|(_, l)| **l).map(|(x, _)| *x);
            let (max, sum) = it.fold((0, 0u64), |(m, s), x| (m.max(x), s + x));
            (max, round(sum as f64 / n))
        };
        let (roles_max, roles_mean) = pick(roles);
        let (dir_rows_max, dir_rows_mean) = pick(dir_rows);
        Self {
            roles_max,
            roles_mean,
            dir_rows_max,
            dir_rows_mean,
            colocated,
        }
    }
}

/// One design's view of a failure and the rejoin that follows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlacementOutcome {
    /// Subnets all of whose bouncers were on the failed droplets (black-holed until moved).
    pub subnets_without_live_bouncer: u64,
    /// VPCs all of whose dividers were on the failed droplets.
    pub vpcs_without_live_divider: u64,
    /// Role placements moved when the failure was detected.
    pub roles_moved_on_failure: u64,
    /// Load after the failure was handled.
    pub load_after_failure: RoleLoad,
    /// Role placements moved when the droplets came back.
    pub roles_moved_on_return: u64,
    /// Load after the return.
    pub load_after_return: RoleLoad,
}
