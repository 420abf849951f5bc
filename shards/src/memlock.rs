//! Locked memory for io_uring. Each glommio executor registers its `io_memory` buffer
//! with three rings (main, latency, poll), which counts 3 × `io_memory` against
//! RLIMIT_MEMLOCK, and refuses to start below a 512 KiB limit. We raise the limit when
//! running as root and otherwise size `io_memory` so that every shard fits.

use std::io;

/// glommio refuses to build a reactor under this RLIMIT_MEMLOCK.
pub const GLOMMIO_MIN_MEMLOCK_BYTES: u64 = 512 * 1024;
/// Rings each executor registers its io_memory with.
pub const RINGS_PER_EXECUTOR: u64 = 3;
/// io_memory per shard when the limit allows it. corelog's storage uses buffered
/// (page cache) files, which do not draw from this pool; it serves DMA reads only.
pub const DEFAULT_IO_MEMORY_BYTES: usize = 1280 * 1024;
/// glommio's own floor for io_memory.
pub const MIN_IO_MEMORY_BYTES: usize = 64 * 1024;

/// The soft and hard RLIMIT_MEMLOCK, `u64::MAX` meaning unlimited.
pub fn memlock_limit() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit the kernel writes into.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let unlimited = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            u64::MAX
        } else {
            v
        }
    };
    Ok((unlimited(limit.rlim_cur), unlimited(limit.rlim_max)))
}

/// Raises RLIMIT_MEMLOCK to unlimited when the process may (root, or CAP_SYS_RESOURCE).
/// Returns the soft limit in force afterwards.
pub fn raise_memlock_limit() -> io::Result<u64> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `unlimited` is a valid rlimit; failure is reported through errno.
    let raised = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } == 0;
    if !raised {
        // Not privileged: at least lift the soft limit to the hard one.
        let (_, hard) = memlock_limit()?;
        let to_hard = libc::rlimit {
            rlim_cur: if hard == u64::MAX {
                libc::RLIM_INFINITY
            } else {
                hard
            },
            rlim_max: if hard == u64::MAX {
                libc::RLIM_INFINITY
            } else {
                hard
            },
        };
        // SAFETY: as above.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &to_hard) };
    }
    Ok(memlock_limit()?.0)
}

/// The io_memory each of `shards` executors gets under a soft limit of `limit` bytes,
/// or an explanation of why they cannot start.
pub fn io_memory_for(shards: usize, limit: u64) -> Result<usize, String> {
    if limit < GLOMMIO_MIN_MEMLOCK_BYTES {
        return Err(format!(
            "locked memory limit (ulimit -l) is {} KiB; io_uring executors need at least {} KiB \
             (raise it with `ulimit -l`, or run as root)",
            limit / 1024,
            GLOMMIO_MIN_MEMLOCK_BYTES / 1024
        ));
    }
    let per_shard = limit / (RINGS_PER_EXECUTOR * shards.max(1) as u64);
    let io_memory = (per_shard.min(DEFAULT_IO_MEMORY_BYTES as u64) as usize) & !(64 * 1024 - 1);
    if io_memory < MIN_IO_MEMORY_BYTES {
        return Err(format!(
            "locked memory limit (ulimit -l) is {} KiB: too little for {shards} shards, which \
             need {} KiB each (use fewer shards, raise `ulimit -l`, or run as root)",
            limit / 1024,
            RINGS_PER_EXECUTOR * MIN_IO_MEMORY_BYTES as u64 / 1024
        ));
    }
    Ok(io_memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_shards_fit_an_eight_mib_limit_with_the_default_io_memory() {
        let io_memory = io_memory_for(2, 8 << 20).unwrap();
        assert_eq!(io_memory, DEFAULT_IO_MEMORY_BYTES);
        assert!(2 * 3 * io_memory as u64 <= 8 << 20);
    }

    #[test]
    fn many_shards_share_the_limit() {
        let io_memory = io_memory_for(16, 8 << 20).unwrap();
        assert!(16 * 3 * io_memory as u64 <= 8 << 20, "{io_memory}");
        assert!(io_memory >= MIN_IO_MEMORY_BYTES);
    }

    #[test]
    fn a_tiny_limit_is_explained() {
        assert!(
            io_memory_for(1, 64 << 10)
                .unwrap_err()
                .contains("ulimit -l")
        );
        assert!(
            io_memory_for(64, 1 << 20)
                .unwrap_err()
                .contains("fewer shards")
        );
    }
}
