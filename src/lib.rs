//! alertops: AWS alerting declared as Kubernetes resources.
//!
//! One folder per concern:
//! - `resources`: the three CRD types (the source of truth for `crds/`);
//! - `reconcile`: validate → build the desired state → observe → plan → execute → status, one
//!   skeleton for the three resources;
//! - `aws`: the gateway: typed operations per service, per-API rate limits, call accounting,
//!   error classification, and an in-memory fake;
//! - `names`: every name alertops derives (AWS resources, ownership tags, workloads), recomputable
//!   from the resource alone;
//! - `workloads`: the Kubernetes objects of everything alertops runs (consumers, digests, and
//!   the security settings the retry Jobs share);
//! - `k8s`: the narrow Kubernetes interface (kube client or in-memory store), leader election;
//! - `controller`: the kube-runtime wiring of `alertops controller`;
//! - `local`: the local mode (manifests from a folder, no cluster);
//! - `telemetry`: metrics, health and readiness endpoints;
//! - `lint`: offline and in-cluster checks of manifests and alarms;
//! - `plan`: what applying manifests would change in AWS, read-only (the controller's own plan);
//! - `alert`: the alert model and the decoders of SNS, CloudWatch and EventBridge messages;
//! - `slack`: Block Kit rendering and delivery;
//! - `consume`: the per-route consumer (queue → Slack);
//! - `interact`: the Slack interaction endpoint (acknowledge, retry Jobs);
//! - `retry`: the retry Job's rebuild of a failed EMR cluster;
//! - `redrive`: moving a route's dead-lettered messages back to its queue;
//! - `email`: safe HTML and plain-text email, delivery through SES v2;
//! - `digest`: the scheduled digest run (drain, consolidate, email, delete after sending);
//! - `secret`: credentials from flags and environment, never printed;
//! - `cli`: composes the subcommands (each one's flags and entry point live with it).

pub mod alert;
pub mod aws;
pub mod cli;
pub mod consume;
pub mod controller;
pub mod digest;
pub mod email;
pub mod interact;
pub mod k8s;
pub mod lint;
pub mod local;
pub mod names;
pub mod plan;
pub mod reconcile;
pub mod redrive;
pub mod resources;
pub mod retry;
pub mod secret;
pub mod slack;
pub mod telemetry;
pub mod workloads;
