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

/// Makes the allocator keep and reuse freed chunk-sized buffers (glibc): buffers up to 32 MiB
/// come from the heap instead of fresh mappings, and freed heap memory is not handed back
/// right away. Data buffers allocated on worker threads and freed on another thread otherwise
/// become new zero-filled pages on every chunk, which costs more than the decoding itself.
/// Peak memory stays bounded by the pipelines' byte budgets.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    }
}
