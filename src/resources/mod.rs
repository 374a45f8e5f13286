//! The three custom resources of group `alertops.dev`, version `v1alpha1`.
//!
//! The Rust types are the single source of truth: `crds/` and the chart's CRDs are generated from
//! them (`alertops crds`), and a test fails when the checked-in files drift.

pub mod alarm_policy;
pub(crate) mod alert_route;
pub(crate) mod common;
pub mod composite_rule;
pub mod crd;
pub mod digest_schedule;
pub mod filter_pattern;

pub use alarm_policy::{AlarmPolicy, AlarmPolicySpec, AlarmPolicyStatus};
pub use alert_route::{AlertRoute, AlertRouteSpec, AlertRouteStatus};
pub use common::*;
pub use digest_schedule::{DigestSchedule, DigestScheduleSpec, DigestScheduleStatus};

/// API group of every alertops resource.
pub const GROUP: &str = "alertops.dev";
/// API version of every alertops resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "alertops.dev/v1alpha1";
