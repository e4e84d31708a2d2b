//! [`Scenario::validate`]: values the simulation cannot honour, each reported with its
//! dotted field name and the fix.

use alkaid_model::validate::{
    ROLE_COUNT, SUBNET_PREFIX_MAX, SUBNET_PREFIX_MIN, VPC_PREFIX_MAX, VPC_PREFIX_MIN,
};

use super::{CidrLayout, Scenario};
use crate::error::{Error, Result};

/// Droplet underlay addresses are 172.16.0.0/12 plus the droplet's index.
pub const MAX_DROPLETS: u32 = (1 << 20) - 2;

fn finite_nonneg(field: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::field(field, v, "use a finite number >= 0"))
    }
}

impl Scenario {
    /// Checks every value against what the model accepts and what the simulation needs.
    ///
    /// # Errors
    /// The first [`Error::InvalidField`], naming the field and the fix.
    pub fn validate(&self) -> Result<()> {
        if self.droplets == 0 || self.droplets > MAX_DROPLETS {
            return Err(Error::field(
                "droplets",
                self.droplets,
                format!("use 1 to {MAX_DROPLETS}"),
            ));
        }
        self.check_structure()?;
        self.check_churn()?;
        self.check_failures()?;
        if self.traffic.packets_per_flow == 0 {
            return Err(Error::field(
                "traffic.packets_per_flow",
                0,
                "use at least 1 (the first packet takes the bouncer path)",
            ));
        }
        let n = &self.network;
        finite_nonneg("network.base_ms", n.base_ms)?;
        finite_nonneg("network.per_row_us", n.per_row_us)?;
        finite_nonneg("network.jitter_ms", n.jitter_ms)?;
        finite_nonneg("network.ack_ms", n.ack_ms)?;
        if !(n.apply_rows_per_sec.is_finite() && n.apply_rows_per_sec > 0.0) {
            return Err(Error::field(
                "network.apply_rows_per_sec",
                n.apply_rows_per_sec,
                "use a rate above 0, e.g. 100000",
            ));
        }
        Ok(())
    }

    fn check_structure(&self) -> Result<()> {
        let v = &self.vpcs;
        if v.count == 0 || v.count > 1_000_000 {
            return Err(Error::field("vpcs.count", v.count, "use 1 to 1000000"));
        }
        let vp = v.cidr.prefix_len();
        if !(VPC_PREFIX_MIN..=VPC_PREFIX_MAX).contains(&vp) {
            return Err(Error::field(
                "vpcs.cidr",
                v.cidr,
                format!("use a prefix of /{VPC_PREFIX_MIN} to /{VPC_PREFIX_MAX}"),
            ));
        }
        if v.layout == CidrLayout::Disjoint {
            let first = u64::from(u32::from(v.cidr.network()));
            let end = first + v.cidr.size() * u64::from(v.count);
            if end > 1 << 32 {
                return Err(Error::field(
                    "vpcs.count",
                    v.count,
                    format!(
                        "{} disjoint blocks of {} do not fit below 255.255.255.255; \
                         use fewer VPCs, a longer prefix, or layout: overlapping",
                        v.count, v.cidr
                    ),
                ));
            }
        }
        let roles = format!("use {} to {}", ROLE_COUNT.start(), ROLE_COUNT.end());
        if !ROLE_COUNT.contains(&v.dividers) {
            return Err(Error::field("vpcs.dividers", v.dividers, roles));
        }
        let s = &self.subnets;
        if !ROLE_COUNT.contains(&s.bouncers) {
            return Err(Error::field("subnets.bouncers", s.bouncers, roles));
        }
        if !(SUBNET_PREFIX_MIN..=SUBNET_PREFIX_MAX).contains(&s.prefix) || s.prefix < vp {
            return Err(Error::field(
                "subnets.prefix",
                s.prefix,
                format!(
                    "use /{} to /{SUBNET_PREFIX_MAX} (inside the VPC's /{vp})",
                    vp.max(SUBNET_PREFIX_MIN)
                ),
            ));
        }
        let fit = 1u64 << (s.prefix - vp);
        if s.per_vpc == 0 || u64::from(s.per_vpc) > fit {
            return Err(Error::field(
                "subnets.per_vpc",
                s.per_vpc,
                format!("use 1 to {fit}: that many /{} fit in a /{vp}", s.prefix),
            ));
        }
        // Network, gateway and broadcast addresses are not for endpoints.
        let capacity = (1u64 << (32 - u32::from(s.prefix))) - 3;
        if u64::from(self.endpoints.per_subnet) > capacity {
            return Err(Error::field(
                "endpoints.per_subnet",
                self.endpoints.per_subnet,
                format!("a /{} holds at most {capacity} endpoints", s.prefix),
            ));
        }
        Ok(())
    }

    fn check_churn(&self) -> Result<()> {
        let c = &self.churn;
        finite_nonneg("churn.creates_per_sec", c.creates_per_sec)?;
        finite_nonneg("churn.deletes_per_sec", c.deletes_per_sec)?;
        finite_nonneg("churn.duration_s", c.duration_s)?;
        let events = (c.creates_per_sec + c.deletes_per_sec) * c.duration_s;
        if events > 1e8 {
            return Err(Error::field(
                "churn",
                format!("{events:.0} events"),
                "keep (creates_per_sec + deletes_per_sec) * duration_s under 100000000",
            ));
        }
        Ok(())
    }

    fn check_failures(&self) -> Result<()> {
        for (i, f) in self.failures.iter().enumerate() {
            let field = |name: &str| format!("failures[{i}].{name}");
            finite_nonneg(&field("at_s"), f.at_s)?;
            finite_nonneg(&field("detect_after_ms"), f.detect_after_ms)?;
            if f.droplets == 0 || f.droplets >= self.droplets {
                return Err(Error::field(
                    field("droplets"),
                    f.droplets,
                    format!(
                        "use 1 to {} (some droplets must stay up)",
                        self.droplets.saturating_sub(1)
                    ),
                ));
            }
            if let Some(r) = f.return_at_s {
                let detected = f.at_s + f.detect_after_ms / 1000.0;
                if !(r.is_finite() && r > detected) {
                    return Err(Error::field(
                        field("return_at_s"),
                        r,
                        format!(
                            "return after the failure is detected (at_s + detect_after_ms = \
                             {detected} s), or leave it out to keep them down"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
