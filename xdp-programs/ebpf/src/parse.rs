//! Bounds-checked packet access. Every read or write of packet memory goes through here: each
//! access checks `data + off + size_of::<T>() <= data_end` first, which is exactly the proof
//! the verifier wants. Headers are byte-array structs (alignment 1), copied in and out with
//! unaligned loads and stores.

use aya_ebpf::{
    helpers::bpf_xdp_adjust_head,
    programs::{TcContext, XdpContext},
};
use core::mem::size_of;

/// A program context with direct packet access: `[data, data_end)` is the (linear) packet.
pub trait Packet {
    fn data(&self) -> usize;
    fn data_end(&self) -> usize;
}

impl Packet for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }
}

impl Packet for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }
}

/// Ethernet header.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub proto: [u8; 2],
}

/// IPv4 header without options.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Ipv4Hdr {
    pub vihl: u8,
    pub tos: u8,
    pub tot_len: [u8; 2],
    pub id: [u8; 2],
    pub frag: [u8; 2],
    pub ttl: u8,
    pub proto: u8,
    pub csum: [u8; 2],
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

impl Ipv4Hdr {
    /// Header length in bytes if version 4 and IHL >= 5.
    #[inline(always)]
    pub fn header_len(&self) -> Option<usize> {
        let ihl = (self.vihl & 0x0f) as usize;
        if self.vihl >> 4 != 4 || ihl < 5 {
            return None;
        }
        Some(ihl * 4)
    }

    #[inline(always)]
    pub fn src(&self) -> u32 {
        u32::from_ne_bytes(self.src)
    }

    #[inline(always)]
    pub fn dst(&self) -> u32 {
        u32::from_ne_bytes(self.dst)
    }

    /// More-fragments flag or a non-zero offset.
    #[inline(always)]
    pub fn is_fragment(&self) -> bool {
        u16::from_be_bytes(self.frag) & 0x3fff != 0
    }
}

/// UDP header.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UdpHdr {
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub len: [u8; 2],
    pub csum: [u8; 2],
}

/// Geneve base header (RFC 8926).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GeneveHdr {
    /// Version (2 bits) and option length in 4-byte words (6 bits).
    pub ver_optlen: u8,
    pub flags: u8,
    pub proto: [u8; 2],
    pub vni: [u8; 3],
    pub rsvd: u8,
}

/// Geneve option TLV header.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GeneveOpt {
    pub class: [u8; 2],
    pub typ: u8,
    /// Reserved (3 bits) and data length in 4-byte words (5 bits).
    pub len: u8,
}

/// ARP for Ethernet/IPv4.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ArpHdr {
    pub htype: [u8; 2],
    pub ptype: [u8; 2],
    pub hlen: u8,
    pub plen: u8,
    pub op: [u8; 2],
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tha: [u8; 6],
    pub tpa: [u8; 4],
}

/// Copies a `T` out of the packet at `off`, or `None` if it would cross `data_end`.
#[inline(always)]
pub fn load<T: Copy, P: Packet>(ctx: &P, off: usize) -> Option<T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    // SAFETY: [start + off, start + off + size_of::<T>()) lies inside the packet (checked just
    // above against data_end); T is a plain byte struct, so any bytes are a valid T, and the
    // read is unaligned-safe.
    Some(unsafe { ((start + off) as *const T).read_unaligned() })
}

/// Writes `v` into the packet at `off`; `None` if it would cross `data_end`.
#[inline(always)]
pub fn store<T: Copy, P: Packet>(ctx: &P, off: usize, v: &T) -> Option<()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    // SAFETY: same bounds proof as `load`; packet memory is writable in XDP and in TC after a pull (callers pull first), and nothing else
    // holds a reference into it (callers only keep copies).
    unsafe { ((start + off) as *mut T).write_unaligned(*v) };
    Some(())
}

/// Frame length in bytes.
#[inline(always)]
pub fn frame_len<P: Packet>(ctx: &P) -> usize {
    ctx.data_end() - ctx.data()
}

/// Moves the packet start by `delta` bytes (negative = prepend headroom). Invalidates every
/// offset computed before; callers re-derive them.
#[inline(always)]
pub fn adjust_head(ctx: &XdpContext, delta: i32) -> Option<()> {
    // SAFETY: ctx.ctx is the xdp_md the kernel passed to this program invocation.
    let rc = unsafe { bpf_xdp_adjust_head(ctx.ctx, delta) };
    if rc == 0 {
        Some(())
    } else {
        None
    }
}
