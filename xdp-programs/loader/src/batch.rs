//! Batched map operations: BPF_MAP_LOOKUP_BATCH, BPF_MAP_UPDATE_BATCH and
//! BPF_MAP_DELETE_BATCH (kernel 5.6+) on hash and LRU hash maps. aya 0.14 has one syscall per
//! row; these move thousands of rows per syscall, which is what makes a million-row full sync
//! (and listing the maps for its diff) take a fraction of a second instead of many seconds.
//!
//! The only `unsafe` in the loader: the bpf(2) syscall with pointers to our own buffers. The
//! attribute layout and command numbers are aya-obj's generated kernel bindings.

use std::mem::{MaybeUninit, size_of};
use std::os::fd::{AsFd, AsRawFd};

use aya::Pod;
use aya_obj::generated::{bpf_attr, bpf_cmd};

/// Rows per syscall. A hash-map lookup batch returns whole buckets, so this must exceed the
/// longest bucket (a handful of entries in practice; ENOSPC otherwise, then retried larger).
pub(crate) const CHUNK: usize = 8_192;

fn sys_bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> std::io::Result<()> {
    // SAFETY: `attr` is a valid, initialised bpf_attr whose pointer fields (set by the callers
    // below) point into live buffers of the sizes `count` implies; the kernel reads and writes
    // only within them and within `attr` itself (size passed).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            std::ptr::from_mut(attr),
            size_of::<bpf_attr>(),
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn zeroed_attr() -> bpf_attr {
    // SAFETY: bpf_attr is a C union of integer fields: all-zero is a valid value (and what the
    // kernel requires of unused fields).
    unsafe { MaybeUninit::<bpf_attr>::zeroed().assume_init() }
}

/// Every row of a hash or LRU hash map, in the map's bucket order.
pub(crate) fn lookup_all<K: Pod, V: Pod>(map: impl AsFd) -> std::io::Result<Vec<(K, V)>> {
    let fd = map.as_fd().as_raw_fd() as u32;
    let mut out = Vec::new();
    let mut chunk = CHUNK;
    // Hash maps' batch token is a bucket index (u32); room for any map's token.
    let mut in_batch = [0u8; 8];
    let mut out_batch = [0u8; 8];
    let mut first = true;
    loop {
        let mut keys: Vec<MaybeUninit<K>> = vec![MaybeUninit::uninit(); chunk];
        let mut values: Vec<MaybeUninit<V>> = vec![MaybeUninit::uninit(); chunk];
        let mut attr = zeroed_attr();
        attr.batch.in_batch = if first { 0 } else { in_batch.as_ptr() as u64 };
        attr.batch.out_batch = out_batch.as_mut_ptr() as u64;
        attr.batch.keys = keys.as_mut_ptr() as u64;
        attr.batch.values = values.as_mut_ptr() as u64;
        attr.batch.count = chunk as u32;
        attr.batch.map_fd = fd;
        let rc = sys_bpf(bpf_cmd::BPF_MAP_LOOKUP_BATCH, &mut attr);
        // SAFETY: reading back the integer the kernel wrote.
        let got = unsafe { attr.batch.count } as usize;
        let last = match rc {
            Ok(()) => false,
            // No more buckets.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && got == 0 => {
                // A bucket longer than the buffer: retry this batch with more room.
                chunk *= 4;
                continue;
            }
            Err(e) => return Err(e),
        };
        let got = got.min(chunk);
        for i in 0..got {
            // SAFETY: the kernel filled the first `got` keys and values; K and V are Pod (any
            // bytes are valid).
            out.push(unsafe { (keys[i].assume_init(), values[i].assume_init()) });
        }
        if last {
            return Ok(out);
        }
        in_batch = out_batch;
        first = false;
    }
}

/// Upserts `rows` (BPF_ANY), [`CHUNK`] per syscall, in order; on error the rows before the
/// failing one are written.
pub(crate) fn update<K: Pod, V: Pod>(map: impl AsFd, rows: &[(K, V)]) -> std::io::Result<()> {
    let fd = map.as_fd().as_raw_fd() as u32;
    for part in rows.chunks(CHUNK) {
        let keys: Vec<K> = part.iter().map(|(k, _)| *k).collect();
        let values: Vec<V> = part.iter().map(|(_, v)| *v).collect();
        let mut attr = zeroed_attr();
        attr.batch.keys = keys.as_ptr() as u64;
        attr.batch.values = values.as_ptr() as u64;
        attr.batch.count = part.len() as u32;
        attr.batch.map_fd = fd;
        sys_bpf(bpf_cmd::BPF_MAP_UPDATE_BATCH, &mut attr)?;
    }
    Ok(())
}

/// Deletes `keys`, [`CHUNK`] per syscall; keys already absent are skipped (the kernel stops
/// at the first one with ENOENT: the rest of that batch is resubmitted). Returns how many
/// were deleted.
pub(crate) fn delete<K: Pod>(map: impl AsFd, keys: &[K]) -> std::io::Result<usize> {
    let fd = map.as_fd().as_raw_fd() as u32;
    let mut deleted = 0;
    let mut rest = keys;
    while !rest.is_empty() {
        let part = &rest[..rest.len().min(CHUNK)];
        let mut attr = zeroed_attr();
        attr.batch.keys = part.as_ptr() as u64;
        attr.batch.count = part.len() as u32;
        attr.batch.map_fd = fd;
        let rc = sys_bpf(bpf_cmd::BPF_MAP_DELETE_BATCH, &mut attr);
        // SAFETY: reading back the integer the kernel wrote.
        let n = (unsafe { attr.batch.count } as usize).min(part.len());
        deleted += n;
        match rc {
            Ok(()) => rest = &rest[part.len()..],
            // Key `n` of this batch was absent: skip it, go on after it.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => rest = &rest[n + 1..],
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}
