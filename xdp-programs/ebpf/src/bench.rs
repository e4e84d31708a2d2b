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
//!
//! Many flows: given [`BenchFlows`] as XDP metadata, the wrappers then step the frame's
//! destination to the next address in a range, so one repeat loop cycles through many flows
//! (and misses the per-CPU caches as real traffic to many destinations would). The programs
//! never read the inner IPv4 checksum, which this leaves stale.

use alkaid_xdp_common::BenchFlows;
use aya_ebpf::programs::XdpContext;

use crate::parse;

/// Bytes saved and restored: Ethernet (14) + IPv4 (20) + UDP (8), rounded up to whole u64s.
const SAVED_WORDS: usize = 6;
const SAVED: usize = SAVED_WORDS * 8;

/// The first [`SAVED`] bytes as u64 words. These programs only ever run under
/// BPF_PROG_TEST_RUN, whose frames start 8-byte aligned (a kmalloc'ed buffer plus 256 bytes of
/// headroom; the verifier forbids checking a packet pointer's alignment), and restore the head
/// to where it started, so the copies are aligned word moves.
/// Returns false (saving nothing) for frames shorter than [`SAVED`]. Writes into `w` rather
/// than returning an `Option`, so no register is left undefined on the short path (the
/// verifier rejects spilling one).
#[inline(always)]
fn save(ctx: &XdpContext, w: &mut [u64; SAVED_WORDS]) -> bool {
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + SAVED > end {
        return false;
    }
    let p = data as *const u64;
    for (i, v) in w.iter_mut().enumerate() {
        // SAFETY: [data, data + SAVED) is inside the packet (checked above) and `data` is
        // 8-byte aligned under test_run (see above): an aligned u64 read of packet memory.
        *v = unsafe { p.add(i).read() };
    }
    true
}

#[inline(always)]
fn restore(ctx: &XdpContext, w: &[u64; SAVED_WORDS]) {
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + SAVED > end {
        return;
    }
    let p = data as *mut u64;
    // SAFETY: as in `save`; packet memory is writable in XDP.
    unsafe {
        for (i, v) in w.iter().enumerate() {
            p.add(i).write(*v);
        }
    }
}

#[inline(always)]
pub fn restoring(ctx: &XdpContext, run: fn(&XdpContext) -> u32) -> u32 {
    let mut w = [0u64; SAVED_WORDS];
    let saved = save(ctx, &mut w);
    let before = parse::frame_len(ctx) as i32;
    let action = run(ctx);
    let after = parse::frame_len(ctx) as i32;
    if after != before && parse::adjust_head(ctx, after - before).is_none() {
        return action;
    }
    if saved {
        restore(ctx, &w);
    }
    next_flow(ctx);
    action
}

/// Steps the destination as [`BenchFlows`] in the metadata says; nothing without metadata.
#[inline(always)]
fn next_flow(ctx: &XdpContext) {
    let (meta, data, end) = (ctx.metadata(), ctx.data(), ctx.data_end());
    if meta + size_of::<BenchFlows>() > data {
        return;
    }
    // SAFETY: [meta, meta + 4) is inside the metadata area (checked just above); BenchFlows
    // is plain u16s, read unaligned.
    let flows = unsafe { (meta as *const BenchFlows).read_unaligned() };
    let off = usize::from(flows.dst_low_offset) & 0x1ff;
    if data + off + 2 > end {
        return;
    }
    let p = (data + off) as *mut [u8; 2];
    // SAFETY: [data + off, data + off + 2) is inside the packet (checked just above); packet
    // memory is writable in XDP.
    unsafe {
        let low = u16::from_be_bytes(p.read());
        let next = (low & !flows.mask) | (low.wrapping_add(1) & flows.mask);
        p.write(next.to_be_bytes());
    }
}
