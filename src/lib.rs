//! alertops: AWS alerting declared as Kubernetes resources.
//!
//! One folder per concern:
//! - `resources`: the three CRD types (the source of truth for `crds/`);
//! - `reconcile`: validate → build desired state → apply → status, per resource;
//! - `aws`: SDK clients, per-API rate limits, call accounting, error classification;
//! - `k8s`: the narrow Kubernetes interface (kube client or in-memory store) and controller wiring;
//! - `lint`: offline and in-cluster checks of manifests and alarms;
//! - `alert`: the alert model and the decoders of SNS, CloudWatch and EventBridge messages;
//! - `slack`: Block Kit rendering and delivery;
//! - `email`: safe HTML and plain-text email, delivery through SES v2;
//! - `digest`: the scheduled digest run (drain, consolidate, email, delete after sending);
//! - `cli`: the `alertops` subcommands.

pub mod alert;
pub mod aws;
pub mod cli;
pub mod controller;
pub mod digest;
pub mod email;
pub mod k8s;
pub mod lint;
pub mod reconcile;
pub mod resources;
pub mod slack;
