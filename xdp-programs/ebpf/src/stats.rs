//! Per-CPU counters: one STATS slot per verdict and per drop reason. No atomics on bpfel: each
//! CPU owns its slot, the loader sums them.

use alkaid_xdp_common::{DropReason, Verdict};
use aya_ebpf::bindings::xdp_action;

use crate::maps::STATS;

#[inline(always)]
fn bump(index: u32) {
    if let Some(p) = STATS.get_ptr_mut(index) {
        // SAFETY: per-CPU array slot of this CPU; XDP runs with preemption disabled, so no other
        // writer touches it during the increment.
        unsafe { *p += 1 };
    }
}

/// Counts a verdict.
#[inline(always)]
pub fn verdict(v: Verdict) {
    bump(v.index());
}

/// Counts a drop and returns XDP_DROP.
#[inline(always)]
pub fn drop(r: DropReason) -> u32 {
    bump(r.index());
    xdp_action::XDP_DROP
}

/// Counts a drop and returns TC_ACT_SHOT.
#[inline(always)]
pub fn drop_tc(r: DropReason) -> i32 {
    bump(r.index());
    aya_ebpf::bindings::TC_ACT_SHOT
}
