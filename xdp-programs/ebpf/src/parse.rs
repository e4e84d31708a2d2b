//! Bounds-checked packet access. Every read or write of packet memory goes through here: each
//! access checks `data + off + size_of::<T>() <= data_end` first, which is exactly the proof
//! the verifier wants. Headers are byte-array structs (alignment 1), copied in and out with
//! unaligned loads and stores.

use aya_ebpf::{
    helpers::{bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
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

/// What may be copied in and out of a packet: plain byte structs (alignment 1, any bytes
/// valid), never an [`Aligned`] copy (its padding would be written too).
pub trait Bytes: Copy {}
impl<const N: usize> Bytes for [u8; N] {}
impl Bytes for u8 {}
impl Bytes for EthHdr {}
impl Bytes for Ipv4Hdr {}
impl Bytes for UdpHdr {}
impl Bytes for GeneveHdr {}
impl Bytes for GeneveOpt {}
impl Bytes for ArpHdr {}

/// A copy of packet bytes in an 8-byte-aligned stack slot: LLVM then reads its fields with
/// word loads (the BPF target has no misaligned access, so an align-1 byte struct anywhere
/// else costs one load per byte, plus the shifts to reassemble words).
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct Aligned<T>(pub T);

impl<T> core::ops::Deref for Aligned<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Word-sized packet loads and stores, as BPF instructions. Packet memory has no alignment
/// guarantee, and Rust forbids misaligned typed accesses, while the BPF ISA allows them on
/// packet memory (the verifier checks alignment only under BPF_F_STRICT_ALIGNMENT, which the
/// kernel sets only for architectures without efficient unaligned access; the JIT emits plain
/// loads): so the access is written as the instruction itself. Callers prove the bounds first
/// (`data + off + size <= data_end`), which is what the verifier checks.
mod word {
    use core::arch::asm;

    macro_rules! access {
        ($ld:ident, $st:ident, $t:ty, $w:literal) => {
            /// Loads from packet memory at `addr`.
            ///
            /// # Safety
            /// `addr .. addr + size` lies inside the packet.
            #[inline(always)]
            pub unsafe fn $ld(addr: usize) -> $t {
                let v: u64;
                // SAFETY: the caller's bounds proof; a load has no other effect.
                unsafe {
                    asm!(
                        concat!("{v} = *(", $w, " *)({a} + 0)"),
                        a = in(reg) addr,
                        v = lateout(reg) v,
                        options(nostack, readonly, preserves_flags)
                    );
                }
                v as $t
            }

            /// Stores into packet memory at `addr`.
            ///
            /// # Safety
            /// `addr .. addr + size` lies inside writable packet memory.
            #[inline(always)]
            pub unsafe fn $st(addr: usize, v: $t) {
                // SAFETY: the caller's bounds proof; nothing else refers to packet memory.
                unsafe {
                    asm!(
                        concat!("*(", $w, " *)({a} + 0) = {v}"),
                        a = in(reg) addr,
                        v = in(reg) v as u64,
                        options(nostack, preserves_flags)
                    );
                }
            }
        };
    }
    access!(ld64, st64, u64, "u64");
    access!(ld32, st32, u32, "u32");
    access!(ld16, st16, u16, "u16");
    access!(ld8, st8, u8, "u8");
}

/// Copies `n` packet bytes at `src` to the 8-aligned `dst`, widest words first (`n` is a
/// constant at every call site: the copy unrolls to a few loads and stores).
///
/// # Safety
/// `src .. src + n` is inside the packet; `dst` is 8-aligned with room for `n` bytes.
#[inline(always)]
unsafe fn copy_in(src: usize, dst: *mut u8, n: usize) {
    let mut i = 0;
    // SAFETY: each step stays inside both ranges; `dst + i` is aligned to the word written
    // (i advances by 8 while >= 8 remain, then by 4, 2, 1).
    unsafe {
        while i + 8 <= n {
            dst.add(i).cast::<u64>().write(word::ld64(src + i));
            i += 8;
        }
        if i + 4 <= n {
            dst.add(i).cast::<u32>().write(word::ld32(src + i));
            i += 4;
        }
        if i + 2 <= n {
            dst.add(i).cast::<u16>().write(word::ld16(src + i));
            i += 2;
        }
        if i < n {
            dst.add(i).write(word::ld8(src + i));
        }
    }
}

/// Copies `n` bytes from the 8-aligned `src` to packet memory at `dst`.
///
/// # Safety
/// As [`copy_in`], reversed; `dst .. dst + n` is writable packet memory.
#[inline(always)]
unsafe fn copy_out(src: *const u8, dst: usize, n: usize) {
    let mut i = 0;
    // SAFETY: as in `copy_in`.
    unsafe {
        while i + 8 <= n {
            word::st64(dst + i, src.add(i).cast::<u64>().read());
            i += 8;
        }
        if i + 4 <= n {
            word::st32(dst + i, src.add(i).cast::<u32>().read());
            i += 4;
        }
        if i + 2 <= n {
            word::st16(dst + i, src.add(i).cast::<u16>().read());
            i += 2;
        }
        if i < n {
            word::st8(dst + i, src.add(i).read());
        }
    }
}

/// Copies a `T` out of the packet at `off` into an aligned slot, or `None` if it would cross
/// `data_end`. `T` is a plain byte struct (any bytes are a valid `T`).
#[inline(always)]
pub fn load<T: Bytes, P: Packet>(ctx: &P, off: usize) -> Option<Aligned<T>> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    let mut out = core::mem::MaybeUninit::<Aligned<T>>::uninit();
    // SAFETY: [start + off, start + off + size_of::<T>()) lies inside the packet (checked just
    // above against data_end); `out` is an 8-aligned slot of at least that size, and every
    // byte of T is written, so it is initialised (T is plain bytes).
    unsafe {
        copy_in(start + off, out.as_mut_ptr().cast::<u8>(), size_of::<T>());
        Some(out.assume_init())
    }
}

/// Writes `v` into the packet at `off`; `None` if it would cross `data_end`.
#[inline(always)]
pub fn store<T: Bytes, P: Packet>(ctx: &P, off: usize, v: &T) -> Option<()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    let a = Aligned(*v);
    // SAFETY: same bounds proof as `load`; packet memory is writable in XDP and in TC (the
    // verifier makes a TC program's skb writable before its first direct write), and nothing
    // else holds a reference into it (callers only keep copies).
    unsafe { copy_out((&raw const a).cast::<u8>(), start + off, size_of::<T>()) };
    Some(())
}

/// `N` packet bytes at a fixed offset, bounds-checked once: the stores below need no further
/// check (the verifier knows every pointer derived from a checked one with a constant offset
/// within range), and each goes straight from a register to the packet, never through the
/// stack. Offsets are checked at compile time (`AT + size <= N`).
#[derive(Clone, Copy)]
pub struct Span<const N: usize> {
    addr: usize,
}

/// The span of `N` bytes at `off`, or `None` if it would cross `data_end`.
#[inline(always)]
pub fn span<const N: usize, P: Packet>(ctx: &P, off: usize) -> Option<Span<N>> {
    let addr = ctx.data() + off;
    if addr + N > ctx.data_end() {
        return None;
    }
    Some(Span { addr })
}

macro_rules! span_store {
    ($name:ident, $st:ident, $t:ty) => {
        /// Stores `v` (its native-order bytes are the wire bytes) at byte `AT` of the span.
        #[inline(always)]
        pub fn $name<const AT: usize>(&self, v: $t) {
            const { assert!(AT + size_of::<$t>() <= N) };
            // SAFETY: `addr .. addr + N` is inside the packet (checked by `span`) and
            // writable (see `store`); `AT + size <= N` (checked above).
            unsafe { word::$st(self.addr + AT, v) }
        }
    };
}

impl<const N: usize> Span<N> {
    span_store!(put_u64, st64, u64);
    span_store!(put_u32, st32, u32);
    span_store!(put_u16, st16, u16);

    /// Stores a MAC address (6 bytes) at byte `AT`.
    #[inline(always)]
    pub fn put_mac<const AT: usize>(&self, mac: &[u8; 6]) {
        const { assert!(AT + 6 <= N) };
        let lo = u32::from_ne_bytes([mac[0], mac[1], mac[2], mac[3]]);
        let hi = u16::from_ne_bytes([mac[4], mac[5]]);
        // SAFETY: as in the stores above: bytes AT..AT+6 of the checked span.
        unsafe {
            word::st32(self.addr + AT, lo);
            word::st16(self.addr + AT + 4, hi);
        }
    }
}

/// Writes an Ethernet header at `off` from registers (two MACs and the EtherType); `None` if
/// it would cross `data_end`.
#[inline(always)]
pub fn store_eth<P: Packet>(ctx: &P, off: usize, eth: &EthHdr) -> Option<()> {
    let s = span::<{ size_of::<EthHdr>() }, _>(ctx, off)?;
    s.put_mac::<0>(&eth.dst);
    s.put_mac::<6>(&eth.src);
    s.put_u16::<12>(u16::from_ne_bytes(eth.proto));
    Some(())
}

/// A header assembled in registers as little-endian 64-bit words (`W` of them) and stored
/// with one instruction per word: building it field by field in memory and copying it out
/// would stall every word load on the narrower stores before it. Fields are given as their
/// wire bytes, first byte in the low bits (`be16`, `ne32`, `mac48` make them). Offsets are
/// constants at every call site, so `put` folds to a shift and an or.
#[derive(Clone, Copy)]
pub struct Words<const W: usize>(pub [u64; W]);

#[cfg(target_endian = "big")]
compile_error!("Words assumes little-endian words (bpfel)");

impl<const W: usize> Words<W> {
    /// All zero.
    #[inline(always)]
    pub const fn new() -> Self {
        Self([0; W])
    }

    /// ORs the `len` wire bytes `bytes` in at byte offset `off`.
    #[inline(always)]
    pub fn put(&mut self, off: usize, len: usize, bytes: u64) {
        let (w, shift) = (off / 8, (off % 8) * 8);
        self.0[w] |= bytes << shift;
        if shift != 0 && shift + len * 8 > 64 {
            self.0[w + 1] |= bytes >> (64 - shift);
        }
    }
}

/// A 16-bit field in network order, as wire bytes for [`Words::put`].
#[inline(always)]
pub const fn be16(v: u16) -> u64 {
    v.to_be() as u64
}

/// A field already in wire order (addresses as stored in maps, checksums as computed).
#[inline(always)]
pub const fn ne32(v: u32) -> u64 {
    v as u64
}

/// A MAC address as wire bytes.
#[inline(always)]
pub const fn mac48(m: &[u8; 6]) -> u64 {
    u64::from_le_bytes([m[0], m[1], m[2], m[3], m[4], m[5], 0, 0])
}

/// Frame length in bytes.
#[inline(always)]
pub fn frame_len<P: Packet>(ctx: &P) -> usize {
    ctx.data_end() - ctx.data()
}

/// Moves the packet end by `delta` bytes (negative = cut). Invalidates packet pointers.
#[inline(always)]
pub fn adjust_tail(ctx: &XdpContext, delta: i32) -> Option<()> {
    // SAFETY: ctx.ctx is the xdp_md the kernel passed to this program invocation.
    let rc = unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta) };
    (rc == 0).then_some(())
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
