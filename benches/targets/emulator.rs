//! The AWS emulator (`moto_server`) for the benchmarks, started as the integration tests start
//! it: `MOTO_SERVER`, else the project's `.venv`, else `PATH`; a free port; readiness polling; a
//! supervising shell that stops the emulator when this process exits, however it exits. As in
//! the tests, CloudWatch is served over RPC-v2 CBOR by the harness's `cloudwatch_cbor.py` in front
//! of it (which also pages DescribeAlarms as CloudWatch does; moto ignores `MaxRecords`).

use std::ffi::OsString;
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

/// Runs a server in the background and kills it when this shell's standard input closes (when
/// the bench process exits). Arguments: `$1` log file, then the server's command line.
const SUPERVISOR: &str = r#"
log=$1
shift
exec 3<&0
"$@" </dev/null >"$log" 2>&1 &
pid=$!
{ cat <&3 >/dev/null; kill "$pid" 2>/dev/null; } &
exec 3<&-
wait "$pid"
"#;

/// The running emulator.
pub struct Moto {
    moto: Server,
    cloudwatch: Server,
}

/// A server process.
struct Server {
    endpoint: String,
    // Its piped stdin closing when this is dropped (or the process exits) stops the server.
    _supervisor: Child,
}

impl Moto {
    /// Starts the emulator and its CloudWatch translator and waits until they answer.
    pub async fn start() -> Result<Moto, String> {
        let program = program();
        let moto = Server::start("moto", "/moto-api/", |port| {
            vec![
                program.clone().into_os_string(),
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string().into(),
            ]
        })
        .await?;
        let python = python_next_to(&program);
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/integration/harness/cloudwatch_cbor.py");
        let cloudwatch = Server::start("cloudwatch-cbor", "/ping", |port| {
            vec![
                python.clone().into_os_string(),
                script.clone().into_os_string(),
                "--port".into(),
                port.to_string().into(),
                "--upstream".into(),
                moto.endpoint.clone().into(),
            ]
        })
        .await?;
        Ok(Moto { moto, cloudwatch })
    }

    /// The emulator's base URL.
    pub fn endpoint(&self) -> &str {
        &self.moto.endpoint
    }

    /// The CloudWatch translator's base URL.
    pub fn cloudwatch_endpoint(&self) -> &str {
        &self.cloudwatch.endpoint
    }

    /// AWS clients pointed at the emulator, with `settings` (rate limits) and their own call log.
    pub async fn clients(&self, settings: AwsSettings) -> AwsClients {
        clients_at(&self.moto.endpoint, settings)
            .await
            .with_cloudwatch_endpoint(&self.cloudwatch.endpoint)
    }
}

impl Server {
    /// Starts `command(port)` on a free port and waits until `GET ready_path` answers 2xx.
    async fn start(
        name: &str,
        ready_path: &str,
        command: impl Fn(u16) -> Vec<OsString>,
    ) -> Result<Server, String> {
        let port = free_port()?;
        let log =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{name}-{port}.log"));
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg(format!("{name}-supervisor"))
            .arg(&log)
            .args(command(port))
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
                    "{name} exited ({status}); run `make venv` or set MOTO_SERVER; log {}",
                    log.display()
                ));
            }
            let ready = http
                .get(format!("{endpoint}{ready_path}"))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return Ok(Server {
                    endpoint,
                    _supervisor: supervisor,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{name} did not answer within {STARTUP_DEADLINE:?}; log {}",
                    log.display()
                ));
            }
        }
    }
}

/// The python that runs `cloudwatch_cbor.py`: the one of the emulator's virtualenv (it needs
/// botocore, which moto brings), else `python3`.
fn python_next_to(program: &Path) -> PathBuf {
    let python = program.with_file_name("python");
    if program
        .parent()
        .is_some_and(|dir| !dir.as_os_str().is_empty())
        && python.is_file()
    {
        return python;
    }
    PathBuf::from("python3")
}

/// AWS clients pointed at `endpoint` (CloudWatch included: see [`Moto::clients`]), with static
/// test credentials, `settings` (rate limits) and their own call log.
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
