//! An RCU grace period from user space: `membarrier(MEMBARRIER_CMD_GLOBAL)`, which the kernel
//! implements as `synchronize_rcu()` (kernel/sched/membarrier.c). When it returns, every BPF
//! program run that was in flight when it was called has finished.

/// `MEMBARRIER_CMD_GLOBAL` (linux/membarrier.h).
const MEMBARRIER_CMD_GLOBAL: libc::c_int = 1;

/// Waits for an RCU grace period (some milliseconds).
///
/// # Errors
/// `EINVAL` on `nohz_full` kernels, which refuse this command.
pub(crate) fn synchronize_rcu() -> std::io::Result<()> {
    // SAFETY: membarrier takes two integers and no pointers; it touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
