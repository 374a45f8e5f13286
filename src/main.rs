use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    alertops::cli::run(alertops::cli::Cli::parse()).await
}
