//! The integration tests: one test binary, one module per area.

mod aws_layer;
mod harness;
