//! The number of worker threads the parallel pipelines (create, extract, check) use, and the
//! allocator tuning they share.
//!
//! The count comes from `--workers N`, else the `HOARD_WORKERS` environment variable, else
//! the number of CPUs the process may use; the CLI resolves it once with [`resolve`] and
//! passes it to the commands in their options. 1 means the sequential code paths.

use crate::options::Env;

/// Environment variable with the worker count (`--workers` wins).
pub const WORKERS_ENV: &str = "HOARD_WORKERS";

/// The worker count: `option` (`--workers`), else `HOARD_WORKERS` of `env`, else the number
/// of cores. An invalid `HOARD_WORKERS` is an error.
pub fn resolve(option: Option<usize>, env: &Env) -> Result<usize, String> {
    if let Some(n) = option {
        return Ok(n.max(1));
    }
    match env.var(WORKERS_ENV) {
        Some(v) if !v.trim().is_empty() => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!(
                "{WORKERS_ENV}: invalid worker count {v:?} (expected a number >= 1)"
            )),
        },
        _ => Ok(cores()),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How a command wants glibc's allocator tuned (see [`tune_allocator`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorProfile {
    /// create: big chunks and read buffers go straight back to the system when freed, so the
    /// peak stays close to what is actually in flight (fixed 4 MiB mmap threshold).
    ReturnBuffers,
    /// extract: chunk-sized buffers stay on the heap for reuse (32 MiB mmap threshold, 16 MiB
    /// trim threshold): buffers allocated on workers and freed on another thread otherwise
    /// become fresh zero-filled pages for every chunk, which costs more than decoding them.
    KeepBuffers,
    /// check: only the shared arena.
    SharedArena,
    /// mount: chunk buffers (up to 8 MiB, allocated and freed on every cache miss) are mapped
    /// and returned when freed (256 KiB mmap threshold) instead of glibc's dynamic threshold
    /// moving them onto the heap, where interleaving with cached chunks fragments it and the
    /// resident size creeps up to several times the cache budget. Keeps per-thread arenas.
    MappedBuffers,
}

/// Tunes glibc's allocator for a command. The pipeline profiles use one arena for all threads: with chunks allocated on one thread and freed on another, per-thread arenas each
/// keep their high-water mark and peak memory grows with the thread count.
pub fn tune_allocator(profile: AllocatorProfile) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    unsafe {
        if profile != AllocatorProfile::MappedBuffers {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
        match profile {
            AllocatorProfile::ReturnBuffers => {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
            }
            AllocatorProfile::KeepBuffers => {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
            }
            AllocatorProfile::MappedBuffers => {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
            }
            AllocatorProfile::SharedArena => {}
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = profile;
}
