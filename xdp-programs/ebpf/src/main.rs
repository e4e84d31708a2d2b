//! Alkaid XDP programs. Entry points only; the logic lives in one module per program.
//!
//! - `agent` ([`agent`]): host side of each endpoint veth. ARP responder, anti-spoofing,
//!   same-droplet delivery, direct path or bouncer choice, Geneve encapsulation.
//! - `transit` ([`transit`]): the droplet's underlay NIC. Geneve parsing, local delivery with
//!   direct-path learning, bouncer retarget, divider forwarding, pass-through of the rest.
//!
//! Shared: [`parse`] (bounds-checked packet access, the only module touching packet memory),
//! [`geneve`] (build and parse the tunnel header), [`route`] (next hop from NETWORKS/VPCS),
//! [`arp`], [`maps`] (map definitions and typed lookups), [`stats`] (per-CPU counters).
#![no_std]
#![no_main]
// BPF inline asm for word-sized packet access (parse::word); the crate is built with
// RUSTC_BOOTSTRAP=1 (build-std needs it anyway).
#![feature(asm_experimental_arch)]

mod agent;
mod arp;
mod bench;
mod geneve;
mod icmp;
mod maps;
mod parse;
mod route;
mod stats;
mod tc;
mod transit;

use aya_ebpf::{
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};

/// Egress of an endpoint: attached to the host-side end of its veth.
#[xdp]
pub fn agent(ctx: XdpContext) -> u32 {
    agent::run(&ctx)
}

/// Ingress of the droplet: attached to the underlay NIC.
#[xdp]
pub fn transit(ctx: XdpContext) -> u32 {
    transit::run(&ctx)
}

/// TC variant of `agent` (clsact ingress of the host side of an endpoint veth), see [`tc`].
#[classifier]
pub fn agent_tc(ctx: TcContext) -> i32 {
    tc::agent(&ctx)
}

/// TC variant of `transit` (clsact ingress of the underlay NIC), see [`tc`].
#[classifier]
pub fn transit_tc(ctx: TcContext) -> i32 {
    tc::transit(&ctx)
}

/// XDP_PASS: for the far end of a veth whose near end runs native XDP and sends with XDP_TX
/// (xdp-on-veth rule 2: delivered only if the peer has a program; for XDP_REDIRECT into a
/// veth, rule 1, GRO on the peer is enough). In the lab: the bridge side of a droplet's
/// underlay veth, for `transit`'s retargets.
#[xdp]
pub fn pass(_ctx: XdpContext) -> u32 {
    aya_ebpf::bindings::xdp_action::XDP_PASS
}

/// Bench harness only (see [`bench`]): `agent`, then the frame restored for the next repeat.
#[xdp]
pub fn bench_agent(ctx: XdpContext) -> u32 {
    bench::restoring(&ctx, agent::run)
}

/// Bench harness only (see [`bench`]): `transit`, then the frame restored for the next repeat.
#[xdp]
pub fn bench_transit(ctx: XdpContext) -> u32 {
    bench::restoring(&ctx, transit::run)
}

/// Kernel license string: GPL-compatible, so GPL-only helpers stay available to the programs.
#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // Unreachable in a verified program: the verifier rejects code that could reach it.
    loop {}
}
