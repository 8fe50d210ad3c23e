//! The number of worker threads the parallel pipelines use.

/// The worker count: `HOARD_WORKERS` when it is a positive integer, else the number of CPUs
/// the process may use (`std::thread::available_parallelism`), at least 1.
pub fn worker_count() -> usize {
    std::env::var("HOARD_WORKERS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

/// Tunes the allocator (glibc) for the parallel pipelines: all threads share one arena, so a
/// buffer freed by any thread is reused by any other. With `keep_buffers`, buffers up to
/// 32 MiB also come from the heap instead of fresh mappings and up to 16 MiB of freed heap is
/// kept: data buffers allocated on worker threads and freed on another thread otherwise
/// become new zero-filled pages on every chunk, which costs more than the decoding itself
/// (at the price of some retained memory; peak memory stays bounded by the byte budgets).
pub fn tune_allocator(keep_buffers: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        if keep_buffers {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * 1024 * 1024);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 16 * 1024 * 1024);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = keep_buffers;
}
