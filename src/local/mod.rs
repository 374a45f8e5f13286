//! The local mode: the same reconcilers and workloads without a Kubernetes cluster. Manifests
//! come from a folder into an in-memory API server (`MemoryCluster`); AWS is whatever the
//! standard AWS environment points at (the emulator by default in the demo); Slack is a URL.
//!
//! It is the project's demo and its fastest end-to-end test bed.

pub(crate) mod command;
pub(crate) mod driver;
pub(crate) mod runtime;

pub use driver::{LoadError, LocalDriver, ReconcileSummary};
pub use runtime::{LocalConfig, LocalError, run};
