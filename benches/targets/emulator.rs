//! The AWS emulator (`moto_server`) for the benchmarks, started as the integration tests start
//! it: `MOTO_SERVER`, else the project's `.venv`, else `PATH`; a free port; readiness polling; a
//! supervising shell that stops the emulator when this process exits, however it exits.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alertops::aws::{AwsClients, AwsSettings};
use aws_config::BehaviorVersion;
use aws_sdk_sqs::config::{Credentials, Region};

/// The region every benchmark uses.
pub const REGION: &str = "us-east-1";

/// How long the emulator may take to answer its first request.
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// Runs the emulator in the background and kills it when this shell's standard input closes
/// (when the bench process exits). Arguments: `$1` program, `$2` port, `$3` log file.
const SUPERVISOR: &str = r#"
exec 3<&0
"$1" -H 127.0.0.1 -p "$2" </dev/null >"$3" 2>&1 &
pid=$!
{ cat <&3 >/dev/null; kill "$pid" 2>/dev/null; } &
exec 3<&-
wait "$pid"
"#;

/// The running emulator.
pub struct Moto {
    endpoint: String,
    // Its piped stdin closing when this is dropped (or the process exits) stops the emulator.
    _supervisor: Child,
}

impl Moto {
    /// Starts the emulator and waits until it answers.
    pub async fn start() -> Result<Moto, String> {
        let program = program();
        let port = free_port()?;
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-moto-{port}.log"));
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("moto-supervisor")
            .arg(&program)
            .arg(port.to_string())
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot run sh: {error}"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|error| format!("HTTP client: {error}"))?;
        let deadline = tokio::time::Instant::now() + STARTUP_DEADLINE;
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        loop {
            poll.tick().await;
            if let Ok(Some(status)) = supervisor.try_wait() {
                return Err(format!(
                    "{} exited ({status}); run `make venv` or set MOTO_SERVER; log {}",
                    program.display(),
                    log.display()
                ));
            }
            let ready = http
                .get(format!("{endpoint}/moto-api/"))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return Ok(Moto {
                    endpoint,
                    _supervisor: supervisor,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{} did not answer within {STARTUP_DEADLINE:?}; log {}",
                    program.display(),
                    log.display()
                ));
            }
        }
    }

    /// The emulator's base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// AWS clients pointed at the emulator, with `settings` (rate limits) and their own call log.
    pub async fn clients(&self, settings: AwsSettings) -> AwsClients {
        clients_at(&self.endpoint, settings).await
    }
}

/// AWS clients pointed at `endpoint` (the emulator, or a proxy in front of it), with static test
/// credentials, `settings` (rate limits) and their own call log.
pub async fn clients_at(endpoint: &str, settings: AwsSettings) -> AwsClients {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "alertops-bench",
        ))
        .load()
        .await;
    AwsClients::from_sdk_config(&config, settings)
}

fn program() -> PathBuf {
    if let Some(program) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(program);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("moto_server")
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|error| format!("no free local port: {error}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| format!("no local address: {error}"))
}
