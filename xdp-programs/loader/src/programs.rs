//! Loading, attaching, pinning and test-running the two programs.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use alkaid_xdp_common::{BenchFlows, maps as names};
use aya::{
    Ebpf, EbpfLoader,
    maps::MapInfo,
    programs::{
        SchedClassifier, TcAttachType, TestRun, TestRunOptions, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        tc::{self, SchedClassifierLink},
        xdp::XdpLink,
    },
};

use crate::{Counters, Error, Maps, OBJECT, Result};

/// One of the two programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prog {
    /// Host side of each endpoint veth.
    Agent,
    /// The droplet's underlay NIC.
    Transit,
    /// XDP_PASS, for the far end of a veth whose near end sends with XDP_TX in native mode
    /// (shared/notes/xdp-on-veth.md rule 2): the bridge-side end of a lab droplet's underlay
    /// veth, for `transit`'s retargets. Endpoint veths need none: `agent` only redirects
    /// (the ARP reply included), and GRO on the pod's end is enough for that (rule 1).
    Pass,
}

impl Prog {
    /// Program name in the object.
    pub const fn name(self) -> &'static str {
        match self {
            Prog::Agent => names::PROG_AGENT,
            Prog::Transit => names::PROG_TRANSIT,
            Prog::Pass => names::PROG_PASS,
        }
    }
}

/// One of the TC (clsact ingress) programs: the endpoint data path that keeps GSO/TSO for
/// bulk TCP (ARCHITECTURE.md "Hook choice"). Same maps and counters as the XDP programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcProg {
    /// `agent_tc`: ingress of the host side of an endpoint veth (encap with
    /// `bpf_skb_adjust_room`, `bpf_redirect` to the underlay).
    Agent,
    /// `transit_tc`: ingress of the underlay NIC (decap with `bpf_skb_adjust_room`,
    /// `bpf_redirect_peer` into the pod; retargets like `transit`).
    Transit,
}

impl TcProg {
    /// Program name in the object.
    pub const fn name(self) -> &'static str {
        match self {
            TcProg::Agent => names::PROG_AGENT_TC,
            TcProg::Transit => names::PROG_TRANSIT_TC,
        }
    }
}

/// XDP attach mode, chosen per interface (see shared/notes/xdp-on-veth.md: native on a veth
/// needs XDP on the peer; generic keeps the pod's TSO).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Driver (native) mode.
    Native,
    /// Generic (skb) mode.
    #[default]
    Generic,
}

impl From<Mode> for XdpMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Native => XdpMode::Driver,
            Mode::Generic => XdpMode::Skb,
        }
    }
}

/// Capacities of the maps that grow with the cluster. A hash map's memory is allocated when
/// it is created (about 100 bytes per ENDPOINTS or DIRECT_PATH slot, 200 per NETWORKS
/// slot), so size them for what one droplet holds: its local endpoints plus the directories of
/// the subnets it bounces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSizes {
    /// ENDPOINTS: local endpoints plus bounced directories.
    pub endpoints: u32,
    /// NETWORKS: subnets routed here.
    pub networks: u32,
    /// DIRECT_PATH: learned flows' destinations (LRU: a full map evicts, never refuses).
    pub direct_paths: u32,
    /// PEERS: droplets.
    pub peers: u32,
}

impl Default for MapSizes {
    fn default() -> Self {
        Self {
            endpoints: names::ENDPOINTS_MAX,
            networks: names::NETWORKS_MAX,
            direct_paths: names::DIRECT_PATH_MAX,
            peers: names::PEERS_MAX,
        }
    }
}

impl MapSizes {
    fn by_name(&self) -> [(&'static str, u32); 4] {
        [
            (names::ENDPOINTS, self.endpoints),
            (names::NETWORKS, self.networks),
            (names::DIRECT_PATH, self.direct_paths),
            (names::PEERS, self.peers),
        ]
    }
}

/// Outcome of one BPF_PROG_TEST_RUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// XDP action returned (`XDP_DROP` = 1, `XDP_PASS` = 2, `XDP_TX` = 3, `XDP_REDIRECT` = 4).
    pub action: u32,
    /// The packet as the program left it.
    pub data: Vec<u8>,
    /// Kernel-measured average time per run.
    pub duration: Duration,
}

/// The loaded programs and their maps.
pub struct Programs {
    ebpf: Ebpf,
    maps: Maps,
}

impl Programs {
    /// Loads the embedded object with fresh, unpinned maps of the default [`MapSizes`], and
    /// loads both programs into the kernel (this is where the verifier runs).
    ///
    /// # Errors
    /// Without root/CAP_BPF, or if the verifier rejects a program.
    pub fn load() -> Result<Self> {
        Self::load_with(None, &MapSizes::default())
    }

    /// Loads with every map pinned as `dir/NAME` on a bpffs: maps already pinned there are
    /// adopted with their contents (an agent restart keeps forwarding state), missing ones are
    /// created and pinned. `dir` is created if needed.
    ///
    /// # Errors
    /// As [`Programs::load`], or if `dir` is not on a bpffs.
    pub fn load_pinned(dir: &Path) -> Result<Self> {
        Self::load_with(Some(dir), &MapSizes::default())
    }

    /// [`Programs::load`] (`pin_dir` `None`) or [`Programs::load_pinned`], creating maps with
    /// `sizes`. An adopted pinned map keeps the size it was created with (its rows are the
    /// forwarding state); a difference from `sizes` is logged, and takes effect once the pin
    /// is removed (a planned maintenance: the next load starts that map empty).
    ///
    /// # Errors
    /// As [`Programs::load_pinned`]; [`Error::Invalid`] for a zero size.
    pub fn load_with(pin_dir: Option<&Path>, sizes: &MapSizes) -> Result<Self> {
        let mut loader = EbpfLoader::new();
        for (name, n) in sizes.by_name() {
            if n == 0 {
                return Err(Error::Invalid(format!("{name}: capacity 0")));
            }
            loader.map_max_entries(name, n);
        }
        let paths: Vec<(&'static str, PathBuf)> = match pin_dir {
            Some(dir) => {
                fs::create_dir_all(dir).map_err(|source| Error::Io {
                    path: dir.to_owned(),
                    source,
                })?;
                names::ALL.iter().map(|n| (*n, dir.join(n))).collect()
            }
            None => Vec::new(),
        };
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        if let Some(dir) = pin_dir {
            for (name, want) in sizes.by_name() {
                if let Ok(info) = MapInfo::from_pin(dir.join(name))
                    && info.max_entries() != want
                {
                    tracing::warn!(
                        map = name,
                        pinned = info.max_entries(),
                        requested = want,
                        "adopting a pinned map with its own capacity; remove its pin to resize"
                    );
                }
            }
        }
        let ebpf = loader.load(OBJECT).map_err(Error::Load)?;
        Self::finish(ebpf)
    }

    fn finish(mut ebpf: Ebpf) -> Result<Self> {
        for prog in [Prog::Agent, Prog::Transit, Prog::Pass] {
            xdp_mut(&mut ebpf, prog)?
                .load()
                .map_err(|source| Error::Program {
                    name: prog.name(),
                    source,
                })?;
        }
        for prog in [TcProg::Agent, TcProg::Transit] {
            tc_mut(&mut ebpf, prog)?
                .load()
                .map_err(|source| Error::Program {
                    name: prog.name(),
                    source,
                })?;
        }
        let maps = Maps::take_all(&mut ebpf)?;
        Ok(Self { ebpf, maps })
    }

    /// The maps.
    pub fn maps(&self) -> &Maps {
        &self.maps
    }

    /// The maps, for writing.
    pub fn maps_mut(&mut self) -> &mut Maps {
        &mut self.maps
    }

    /// Per-verdict and per-drop-reason totals over all CPUs.
    pub fn counters(&self) -> Result<Counters> {
        Counters::read(&self.maps)
    }

    /// Attaches `prog` to `ifindex`. The attachment lives as long as this `Programs` (bpf_link
    /// semantics): use [`Programs::attach_pinned`] for one that survives a restart.
    pub fn attach(&mut self, prog: Prog, ifindex: u32, mode: Mode) -> Result<()> {
        xdp_mut(&mut self.ebpf, prog)?
            .attach_to_if_index(ifindex, mode.into())
            .map_err(|source| Error::Program {
                name: prog.name(),
                source,
            })?;
        Ok(())
    }

    /// Attaches `prog` to `ifindex` through a bpf_link pinned at `link_path`, so it keeps
    /// forwarding when this process exits. If a link is already pinned there (a previous agent),
    /// it is atomically switched to this program instead: no packet sees a detached interface.
    pub fn attach_pinned(
        &mut self,
        prog: Prog,
        ifindex: u32,
        mode: Mode,
        link_path: &Path,
    ) -> Result<()> {
        let perr = |source| Error::Program {
            name: prog.name(),
            source,
        };
        let xdp = xdp_mut(&mut self.ebpf, prog)?;
        if link_path.exists() {
            let pinned = PinnedLink::from_pin(link_path)
                .map_err(|e| Error::Invalid(format!("pinned link {}: {e}", link_path.display())))?;
            let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|e| {
                Error::Invalid(format!(
                    "pinned link {} is not XDP: {e}",
                    link_path.display()
                ))
            })?;
            let id = xdp.attach_to_link(link).map_err(perr)?;
            // Keep the link alive past this process: it stays pinned; forget our handle.
            let link = xdp.take_link(id).map_err(perr)?;
            std::mem::forget(link);
            return Ok(());
        }
        let id = xdp.attach_to_if_index(ifindex, mode.into()).map_err(perr)?;
        let link = xdp.take_link(id).map_err(perr)?;
        let fd_link = FdLink::try_from(link).map_err(|e| {
            Error::Invalid(format!("attach of {} is not a bpf_link: {e}", prog.name()))
        })?;
        fd_link.pin(link_path).map_err(|source| Error::Pin {
            path: link_path.to_owned(),
            source,
        })?;
        Ok(())
    }

    /// Attaches a TC program at clsact ingress of `if_name` (resolved in the calling thread's
    /// network namespace). Uses a TCX bpf_link on kernels >= 6.6 (else a netlink filter; the
    /// clsact qdisc is added first either way). Lives as long as this `Programs`.
    pub fn attach_tc(&mut self, prog: TcProg, if_name: &str) -> Result<()> {
        add_clsact(if_name)?;
        tc_mut(&mut self.ebpf, prog)?
            .attach(if_name, TcAttachType::Ingress)
            .map_err(|source| Error::Program {
                name: prog.name(),
                source,
            })?;
        Ok(())
    }

    /// [`Programs::attach_tc`] through a TCX bpf_link pinned at `link_path`, so it keeps
    /// forwarding when this process exits; an existing pin is atomically switched to this
    /// program. Needs TCX (kernel >= 6.6): a netlink attachment cannot be pinned.
    pub fn attach_tc_pinned(
        &mut self,
        prog: TcProg,
        if_name: &str,
        link_path: &Path,
    ) -> Result<()> {
        let perr = |source| Error::Program {
            name: prog.name(),
            source,
        };
        add_clsact(if_name)?;
        let cls = tc_mut(&mut self.ebpf, prog)?;
        if link_path.exists() {
            let pinned = PinnedLink::from_pin(link_path)
                .map_err(|e| Error::Invalid(format!("pinned link {}: {e}", link_path.display())))?;
            let link = SchedClassifierLink::try_from(FdLink::from(pinned)).map_err(|e| {
                Error::Invalid(format!(
                    "pinned link {} is not a TC link: {e}",
                    link_path.display()
                ))
            })?;
            let id = cls.attach_to_link(link).map_err(perr)?;
            std::mem::forget(cls.take_link(id).map_err(perr)?);
            return Ok(());
        }
        let id = cls.attach(if_name, TcAttachType::Ingress).map_err(perr)?;
        let link = cls.take_link(id).map_err(perr)?;
        let fd_link = FdLink::try_from(link).map_err(|e| {
            Error::Invalid(format!(
                "{} on {if_name} is not a bpf_link (TCX needs kernel >= 6.6): {e}",
                prog.name()
            ))
        })?;
        fd_link.pin(link_path).map_err(|source| Error::Pin {
            path: link_path.to_owned(),
            source,
        })?;
        Ok(())
    }

    /// Runs a TC program over `packet` (an Ethernet frame) through BPF_PROG_TEST_RUN. The skb
    /// comes in on `lo` (ifindex 1). `action` in the result is the TC verdict (`TC_ACT_OK` 0,
    /// `TC_ACT_SHOT` 2, `TC_ACT_REDIRECT` 7).
    pub fn test_run_tc(&self, prog: TcProg, packet: &[u8], repeat: u32) -> Result<RunResult> {
        self.test_run_tc_ctx(prog, packet, None, repeat)
    }

    /// [`Programs::test_run_tc`] over a GSO skb: `gso_size` (payload bytes per segment, not 0)
    /// set through the `__sk_buff` context, as a pod's TSO/GSO super-frame arrives. The kernel
    /// lets a test run set `gso_size` and `gso_segs` but not the skb's `gso_type`, so the
    /// program sees a GSO skb of no type: helpers that check the type (`bpf_skb_adjust_room`
    /// grows only TCP and, with FIXED_GSO, UDP_L4 GSO skbs) refuse it.
    pub fn test_run_tc_gso(&self, prog: TcProg, packet: &[u8], gso_size: u32) -> Result<RunResult> {
        let segs = u32::try_from(packet.len())
            .unwrap_or(u32::MAX)
            .div_ceil(gso_size.max(1));
        self.test_run_tc_ctx(prog, packet, Some(&skb_ctx(gso_size, segs)), 1)
    }

    fn test_run_tc_ctx(
        &self,
        prog: TcProg,
        packet: &[u8],
        ctx: Option<&[u8]>,
        repeat: u32,
    ) -> Result<RunResult> {
        let name = prog.name();
        let cls: &SchedClassifier = self
            .ebpf
            .program(name)
            .ok_or_else(|| Error::Invalid(format!("no program {name}")))?
            .try_into()
            .map_err(|source| Error::Program { name, source })?;
        let mut out = vec![0u8; packet.len() + 512];
        let opts = TestRunOptions {
            data_in: Some(packet),
            data_out: Some(&mut out),
            ctx_in: ctx,
            repeat: repeat.max(1),
            ..TestRunOptions::default()
        };
        let r = cls
            .test_run(opts)
            .map_err(|source| Error::Program { name, source })?;
        out.truncate(r.data_size_out as usize);
        Ok(RunResult {
            action: r.return_value,
            data: out,
            duration: r.duration,
        })
    }

    /// Runs `prog` once over `packet` through BPF_PROG_TEST_RUN (no device involved; redirects
    /// return XDP_REDIRECT). `ingress_ifindex` must name an existing interface if set (the
    /// `agent` program keys AGENT_ENDPOINTS by it).
    pub fn test_run(
        &self,
        prog: Prog,
        packet: &[u8],
        ingress_ifindex: Option<u32>,
        repeat: u32,
    ) -> Result<RunResult> {
        self.test_run_named(prog.name(), packet, ingress_ifindex, repeat)
    }

    /// [`Programs::test_run`] with `meta` in front of the frame as its XDP metadata (a
    /// multiple of 4 bytes). test_run puts the frame 256 bytes into its buffer and takes the
    /// metadata out of that headroom, so the program has less room to prepend: kernel 6.18
    /// took up to 216 bytes (the headroom minus the 40-byte `struct xdp_frame`); older kernels
    /// capped XDP metadata at 32. The result's data is the frame without the metadata.
    pub fn test_run_with_meta(
        &self,
        prog: Prog,
        meta: &[u8],
        packet: &[u8],
        ingress_ifindex: Option<u32>,
    ) -> Result<RunResult> {
        self.test_run_meta(prog.name(), meta, packet, ingress_ifindex, 1)
    }

    /// Loads the bench harness programs (`bench_agent`, `bench_transit`: the real program, then
    /// the frame restored so a `repeat` loop measures one path). Never attached.
    pub fn load_bench_harness(&mut self) -> Result<()> {
        for name in [names::PROG_BENCH_AGENT, names::PROG_BENCH_TRANSIT] {
            let xdp: &mut Xdp = self
                .ebpf
                .program_mut(name)
                .ok_or_else(|| Error::Invalid(format!("no program {name} in the object")))?
                .try_into()
                .map_err(|source| Error::Program { name, source })?;
            xdp.load()
                .map_err(|source| Error::Program { name, source })?;
        }
        Ok(())
    }

    /// [`Programs::test_run`] of the bench harness wrapper of `prog` (see
    /// [`Programs::load_bench_harness`]).
    pub fn test_run_bench(
        &self,
        prog: Prog,
        packet: &[u8],
        ingress_ifindex: Option<u32>,
        repeat: u32,
    ) -> Result<RunResult> {
        self.test_run_named(bench_wrapper(prog), packet, ingress_ifindex, repeat)
    }

    /// [`Programs::test_run_bench`] with `flows` as the frame's XDP metadata: the wrapper
    /// steps the destination after every run, so `repeat` runs cycle through `flows.mask + 1`
    /// destinations (see `ebpf/src/bench.rs`). The result's data is the frame without it.
    pub fn test_run_bench_flows(
        &self,
        prog: Prog,
        packet: &[u8],
        ingress_ifindex: Option<u32>,
        repeat: u32,
        flows: BenchFlows,
    ) -> Result<RunResult> {
        let mut meta = [0u8; 4];
        meta[..2].copy_from_slice(&flows.dst_low_offset.to_ne_bytes());
        meta[2..].copy_from_slice(&flows.mask.to_ne_bytes());
        self.test_run_meta(bench_wrapper(prog), &meta, packet, ingress_ifindex, repeat)
    }

    fn test_run_named(
        &self,
        name: &'static str,
        packet: &[u8],
        ingress_ifindex: Option<u32>,
        repeat: u32,
    ) -> Result<RunResult> {
        self.test_run_meta(name, &[], packet, ingress_ifindex, repeat)
    }

    /// BPF_PROG_TEST_RUN of `name` over `meta` (XDP metadata: a multiple of 4 bytes, see
    /// [`Programs::test_run_with_meta`]) followed by `packet`.
    fn test_run_meta(
        &self,
        name: &'static str,
        meta: &[u8],
        packet: &[u8],
        ingress_ifindex: Option<u32>,
        repeat: u32,
    ) -> Result<RunResult> {
        let xdp: &Xdp = self
            .ebpf
            .program(name)
            .ok_or_else(|| Error::Invalid(format!("no program {name}")))?
            .try_into()
            .map_err(|source| Error::Program { name, source })?;
        let mut input = Vec::with_capacity(meta.len() + packet.len());
        input.extend_from_slice(meta);
        input.extend_from_slice(packet);
        // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex } (u32 each): data_end is the input's length, data where the frame
        // starts in it (the metadata before it).
        let mut ctx = [0u8; 24];
        let len = u32::try_from(input.len())
            .map_err(|_| Error::Invalid(format!("packet of {} bytes", packet.len())))?;
        ctx[..4].copy_from_slice(&(meta.len() as u32).to_ne_bytes());
        ctx[4..8].copy_from_slice(&len.to_ne_bytes());
        ctx[12..16].copy_from_slice(&ingress_ifindex.unwrap_or(0).to_ne_bytes());
        let mut out = vec![0u8; input.len() + 512];
        let opts = TestRunOptions {
            data_in: Some(&input),
            data_out: Some(&mut out),
            ctx_in: (ingress_ifindex.is_some() || !meta.is_empty()).then_some(&ctx[..]),
            repeat: repeat.max(1),
            ..TestRunOptions::default()
        };
        let r = xdp
            .test_run(opts)
            .map_err(|source| Error::Program { name, source })?;
        // The output starts at the metadata.
        out.truncate(r.data_size_out as usize);
        out.drain(..meta.len().min(out.len()));
        Ok(RunResult {
            action: r.return_value,
            data: out,
            duration: r.duration,
        })
    }
}

/// Size of `struct __sk_buff` (uapi/linux/bpf.h), and the offsets of the two fields
/// [`skb_ctx`] sets (after `tstamp` at 152 and `wire_len` at 160; `sk` sits between them).
const SKB_CTX_LEN: usize = 192;
const SKB_GSO_SEGS: usize = 164;
const SKB_GSO_SIZE: usize = 176;

/// A `struct __sk_buff` for BPF_PROG_TEST_RUN with `gso_size` and `gso_segs` set, every other
/// field zero (the kernel refuses non-zero bytes in the fields a caller may not set).
fn skb_ctx(gso_size: u32, gso_segs: u32) -> [u8; SKB_CTX_LEN] {
    let mut c = [0u8; SKB_CTX_LEN];
    c[SKB_GSO_SEGS..SKB_GSO_SEGS + 4].copy_from_slice(&gso_segs.to_ne_bytes());
    c[SKB_GSO_SIZE..SKB_GSO_SIZE + 4].copy_from_slice(&gso_size.to_ne_bytes());
    c
}

/// The bench harness wrapper of `prog` (`pass` has none: it is its own).
fn bench_wrapper(prog: Prog) -> &'static str {
    match prog {
        Prog::Agent => names::PROG_BENCH_AGENT,
        Prog::Transit => names::PROG_BENCH_TRANSIT,
        Prog::Pass => names::PROG_PASS,
    }
}

fn xdp_mut(ebpf: &mut Ebpf, prog: Prog) -> Result<&mut Xdp> {
    ebpf.program_mut(prog.name())
        .ok_or_else(|| Error::Invalid(format!("no program {} in the object", prog.name())))?
        .try_into()
        .map_err(|source| Error::Program {
            name: prog.name(),
            source,
        })
}

fn tc_mut(ebpf: &mut Ebpf, prog: TcProg) -> Result<&mut SchedClassifier> {
    ebpf.program_mut(prog.name())
        .ok_or_else(|| Error::Invalid(format!("no program {} in the object", prog.name())))?
        .try_into()
        .map_err(|source| Error::Program {
            name: prog.name(),
            source,
        })
}

/// Adds the clsact qdisc; one already there is fine.
fn add_clsact(if_name: &str) -> Result<()> {
    match tc::qdisc_add_clsact(if_name) {
        Ok(()) => Ok(()),
        Err(tc::TcError::IoError(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(Error::Tc {
            interface: if_name.to_owned(),
            source: e,
        }),
    }
}
