//! In-memory cluster.

/// Placeholder.
#[derive(Clone)]
pub struct MemoryCluster;
