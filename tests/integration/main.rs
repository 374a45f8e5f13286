//! The integration tests: one test binary, one module per area.

mod alarm_policy;
mod aws_layer;
mod cli;
mod crds;
mod digest;
mod harness;
mod lint;
