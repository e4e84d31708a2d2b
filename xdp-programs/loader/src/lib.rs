//! Host side of the Alkaid XDP data plane: loads the embedded eBPF object, attaches `agent`
//! and `transit`, pins, and gives typed access to every map. The only crate that imports aya.
//!
//! Layout:
//! - [`Programs`] (`programs.rs`): load (fresh or adopting pinned maps), attach per interface
//!   in native or generic mode, pin programs, links and maps under a bpffs directory, and run a
//!   program through BPF_PROG_TEST_RUN ([`Programs::test_run`]).
//! - [`Maps`] (`maps.rs`): typed upsert/remove/get for each map in
//!   [`alkaid_xdp_common::maps`], direct-path invalidation.
//! - [`Counters`] (`counters.rs`): the per-CPU STATS summed per verdict and drop reason.
//! - `batch.rs`: BPF_MAP_{LOOKUP,UPDATE,DELETE}_BATCH for the large hash maps (thousands of
//!   rows per syscall) and `grace.rs` (an RCU grace period through membarrier): the crate's
//!   only `unsafe`.
//! - `slots.rs`: AGENT_SLOTS, the ARRAY copy of AGENT_ENDPOINTS `agent` reads first, and the
//!   zero / grace period / rewrite protocol that keeps it safe to share with the programs.
//!
//! Data flows one way: the droplet agent computes rows (from the control plane's per-droplet
//! tables) and writes them through [`Maps`]; the programs read them per packet and bump STATS.
#![deny(unsafe_code)]

#[allow(
    unsafe_code,
    reason = "the bpf(2) batch syscalls aya 0.14 lacks; see the module docs"
)]
mod batch;
mod counters;
mod error;
#[allow(
    unsafe_code,
    reason = "the membarrier(2) syscall, which libc exposes only as a raw syscall"
)]
mod grace;
mod list;
mod maps;
mod programs;
mod slots;

pub use alkaid_xdp_common as common;
pub use counters::Counters;
pub use error::{Error, Result};
pub use list::{Listing, NetworkRow, list_pinned};
pub use maps::Maps;
pub use programs::{MapSizes, Mode, Prog, Programs, RunResult, TcProg};

/// The compiled eBPF object (bpfel), embedded at build time.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/alkaid-xdp"));
