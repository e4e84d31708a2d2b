//! Every BPF map key and value shared by the Alkaid XDP programs (`alkaid-xdp-ebpf`) and their
//! host-side users (`alkaid-xdp`, the droplet agent). One definition, layout asserted.
//!
//! Layout:
//! - [`maps`]: map names (the names the loader looks up) and capacities.
//! - [`types`]: `#[repr(C)]` keys and values, each with a size assertion.
//! - [`counters`]: [`Verdict`] and [`DropReason`], the indices of the per-CPU `STATS` array.
//! - [`wire`]: Geneve constants, the return-to-sender option, MTU overhead.
//! - [`hash`] and [`csum`]: the flow hash and the Internet checksum, pure functions used by the
//!   programs and by tests (so tests compute the same bouncer choice and checksums).
//!
//! Conventions: an IPv4 address is a `u32` holding the four wire bytes in memory order
//! (`u32::from_ne_bytes(addr.octets())`), so the programs never swap bytes; [`ip`] converts. A
//! VNI is a host-order `u32` (low 24 bits). MACs are `[u8; 6]` in wire order.
#![no_std]
#![deny(unsafe_code)]

pub mod counters;
pub mod csum;
pub mod hash;
pub mod maps;
pub mod types;
pub mod wire;

#[cfg(feature = "user")]
mod pod;

pub use counters::{DropReason, Verdict};
pub use types::*;

/// Converts IPv4 octets to the in-map representation (wire bytes in memory order).
#[inline(always)]
pub const fn ip(octets: [u8; 4]) -> u32 {
    u32::from_ne_bytes(octets)
}

/// Converts the in-map representation of an IPv4 address back to octets.
#[inline(always)]
pub const fn ip_octets(ip: u32) -> [u8; 4] {
    ip.to_ne_bytes()
}
