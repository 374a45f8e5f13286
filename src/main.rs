use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    alertops::cli::run(alertops::cli::parse()).await
}
