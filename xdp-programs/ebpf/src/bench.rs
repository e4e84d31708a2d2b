//! Bench harness entry points (`bench_agent`, `bench_transit`): never attached, loaded only by
//! the ns-per-packet bench.
//!
//! Non-live BPF_PROG_TEST_RUN with `repeat = N` runs a program N times over one buffer without
//! restoring it, so a path that rewrites the frame (encap, decap, retarget and its TTL
//! decrement) would take another path from the second iteration on. These wrappers run the real
//! program and then put the frame back: they move the head back by what the program moved it
//! and rewrite the first [`SAVED`] bytes (every header byte a path changes before its inner
//! Ethernet header: outer Ethernet, IPv4, UDP checksum). Inner MAC rewrites on delivery are
//! idempotent, so they need no undo. The wrappers' own cost is measured by the bench on a
//! pass-through frame and printed next to the figures.

use aya_ebpf::programs::XdpContext;

use crate::parse;

/// Bytes saved and restored: Ethernet (14) + IPv4 (20) + UDP (8).
const SAVED: usize = 42;

#[inline(always)]
pub fn restoring(ctx: &XdpContext, run: fn(&XdpContext) -> u32) -> u32 {
    let saved: Option<[u8; SAVED]> = parse::load(ctx, 0);
    let before = parse::frame_len(ctx) as i32;
    let action = run(ctx);
    let after = parse::frame_len(ctx) as i32;
    if after != before && parse::adjust_head(ctx, after - before).is_none() {
        return action;
    }
    if let Some(s) = saved {
        let _ = parse::store(ctx, 0, &s);
    }
    action
}
