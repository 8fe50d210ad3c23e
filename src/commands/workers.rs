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
