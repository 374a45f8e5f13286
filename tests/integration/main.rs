//! The integration tests: one test binary, one module per area.

mod alarm_policy;
mod alert_route;
mod architecture;
mod aws_layer;
mod chart_env;
mod cli;
mod cloudwatch_emulator;
mod consume;
mod crds;
mod digest;
mod digest_schedule;
mod harness;
mod iam_policy;
mod interact;
mod inventory;
mod lint;
mod local;
mod log_lines;
mod metric_names;
mod outage;
mod plan;
