//! Sizing policy settings (docs/sizing.md): their names and defaults. The policy itself is
//! in [`crate::resources`]; the names live here so config validation needs nothing from it.

/// CPU overcommit factor: worker cores = floor(cpus × factor).
pub const CPU_OVERCOMMIT: &str = "sizing_policy.cpu_overcommit";
/// Largest derived daemon heap, MiB.
pub const DAEMON_MEMORY_MAX_MB: &str = "sizing_policy.daemon_memory_max_mb";
/// Smallest derived daemon heap, MiB.
pub const DAEMON_MEMORY_MIN_MB: &str = "sizing_policy.daemon_memory_min_mb";
/// Fixed part of the JVM-overhead reserve, MiB.
pub const OVERHEAD_MB: &str = "sizing_policy.overhead_mb";
/// Proportional part of the JVM-overhead reserve, percent of the container memory.
pub const OVERHEAD_PERCENT: &str = "sizing_policy.overhead_percent";
/// Smallest worker memory accepted, MiB.
pub const MIN_WORKER_MEMORY_MB: &str = "sizing_policy.min_worker_memory_mb";
/// Whether a container too small for a worker is an error (default: true for role `worker`).
pub const REQUIRE_WORKER_MEMORY: &str = "sizing_policy.require_worker_memory";
/// Default CPU overcommit factor.
pub const DEFAULT_CPU_OVERCOMMIT: f64 = 1.0;
/// Default largest daemon heap (Spark's own default SPARK_DAEMON_MEMORY).
pub const DEFAULT_DAEMON_MEMORY_MAX_MB: u64 = 1024;
/// Default smallest daemon heap.
pub const DEFAULT_DAEMON_MEMORY_MIN_MB: u64 = 128;
/// Default fixed reserve: Spark's minimum executor memoryOverhead.
pub const DEFAULT_OVERHEAD_MB: u64 = 384;
/// Default proportional reserve: Spark's memoryOverheadFactor (10 %).
pub const DEFAULT_OVERHEAD_PERCENT: u64 = 10;
/// Default smallest worker memory.
pub const DEFAULT_MIN_WORKER_MEMORY_MB: u64 = 256;
