//! Shared fixtures of the integration tests: one AWS emulator (`moto_server`) per test process
//! with CloudWatch served over RPC-v2 CBOR by `cloudwatch_cbor.py` in front of it (moto speaks
//! only the Query protocol, the SDK only CBOR; see the README's testing notes), AWS clients
//! pointed at them, and per-test unique names (tests share the emulator and run in parallel, so
//! they never reset it).

#![allow(dead_code)] // Each test module uses a different part of the harness.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alertops::aws::{ApiRate, AwsClients, AwsSettings};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sqs::config::{Credentials, Region};
use tokio::sync::OnceCell;

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// How long the emulator may take to answer its first request (Python start-up on a busy
/// two-core machine takes a few seconds).
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// How many free ports to try if the emulator dies at start (another process took the port).
const START_ATTEMPTS: usize = 3;

/// Runs a server in the background and kills it when the standard input of this shell closes,
/// which happens when the test process exits however it exits. The shell itself exits when the
/// server does, so a server that fails to start is noticed at once.
/// Arguments: `$1` log file, then the server's command line.
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

/// The running emulator of this test process.
#[derive(Debug)]
pub struct Moto {
    server: Server,
    cloudwatch: Server,
}

impl Moto {
    /// The emulator's base URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.server.endpoint
    }

    /// The base URL of CloudWatch (RPC-v2 CBOR, translated to the emulator's Query protocol).
    pub fn cloudwatch_endpoint(&self) -> &str {
        &self.cloudwatch.endpoint
    }

    /// The file the emulator logs to (every request it served).
    pub fn log(&self) -> &Path {
        &self.server.log
    }
}

/// A server process of the harness.
#[derive(Debug)]
struct Server {
    endpoint: String,
    log: PathBuf,
    // Kept for the whole process: its piped stdin closing at exit is what stops the server.
    // None for a server this harness did not start.
    _supervisor: Option<Child>,
}

static MOTO: OnceCell<Moto> = OnceCell::const_new();

/// The emulator of this test process, started on first use.
pub async fn moto() -> &'static Moto {
    MOTO.get_or_init(start_moto).await
}

/// AWS clients pointed at the emulator (region `us-east-1`, static test credentials) with rate
/// limits high enough never to slow a test down. Each call makes fresh clients with their own
/// call log.
pub async fn aws_clients() -> AwsClients {
    clients_with(&sdk_config().await, test_settings()).await
}

/// Clients for `config` and `settings`, with CloudWatch at the emulator's CloudWatch endpoint
/// (the other services at the endpoint of `config`).
pub async fn clients_with(config: &SdkConfig, settings: AwsSettings) -> AwsClients {
    AwsClients::from_sdk_config(config, settings)
        .with_cloudwatch_endpoint(moto().await.cloudwatch_endpoint())
}

/// The SDK configuration of [`aws_clients`], for tests that build clients themselves. Its
/// endpoint is the emulator's, which does not serve CloudWatch: build clients with
/// [`clients_with`].
pub async fn sdk_config() -> SdkConfig {
    let moto = moto().await;
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "alertops-tests",
        ))
        .load()
        .await
}

/// Settings with generous rates for every API.
pub fn test_settings() -> AwsSettings {
    AwsSettings::default().with_all_rates(ApiRate::per_second(10_000))
}

/// A name no other test in this process uses: `<prefix>-<pid>-<n>` (letters, digits and
/// hyphens, valid for queues, topics, rules and alarms).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The emulator's state dump (`/moto-api/data.json`), keyed by service then model.
pub async fn moto_data() -> serde_json::Value {
    let url = format!("{}/moto-api/data.json", moto().await.endpoint());
    // The dump checks each attribute, then serialises them all; a model another test changes
    // in between (an EMR cluster's EC2 instances gaining block devices) makes it answer 500.
    // That race is the emulator's, so ask again a few times.
    let mut attempts = 0;
    let response = loop {
        let response = reqwest::get(&url)
            .await
            .unwrap_or_else(|error| panic!("GET {url}: {error}"));
        attempts += 1;
        if response.status().is_server_error() && attempts < 5 {
            continue;
        }
        break response;
    };
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response
        .json()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: not JSON: {error}"))
}

/// Every email the emulator's SES has sent, from every test of this process (filter by a
/// unique subject or recipient). Each is
/// `{"id", "source", "subject", "body", "destinations": {"ToAddresses": [..], ..}}`.
pub async fn sent_emails() -> Vec<serde_json::Value> {
    match moto_data().await["ses"]["Message"].take() {
        serde_json::Value::Array(messages) => messages,
        _ => Vec::new(),
    }
}

/// Where the emulator is: `MOTO_SERVER`, else the project's `.venv`, else `PATH`.
fn moto_program() -> PathBuf {
    if let Some(program) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(program);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("moto_server")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|error| panic!("no free local port: {error}"));
    listener
        .local_addr()
        .unwrap_or_else(|error| panic!("no local address: {error}"))
        .port()
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

/// The CBOR-to-Query translator in front of the emulator.
fn cloudwatch_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/harness/cloudwatch_cbor.py")
}

async fn start_moto() -> Moto {
    let program = moto_program();
    let server = start_server(
        "moto",
        &program.display().to_string(),
        "/moto-api/",
        |port| {
            vec![
                program.clone().into_os_string(),
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string().into(),
            ]
        },
    )
    .await;
    // Another CloudWatch to test against (e.g. ministack, to compare): `CLOUDWATCH_ENDPOINT`.
    if let Some(endpoint) = std::env::var("CLOUDWATCH_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
    {
        let cloudwatch = Server {
            endpoint,
            log: PathBuf::new(),
            _supervisor: None,
        };
        return Moto { server, cloudwatch };
    }
    let python = python_next_to(&program);
    let cloudwatch = start_server(
        "cloudwatch-cbor",
        &format!("{} {}", python.display(), cloudwatch_script().display()),
        "/ping",
        |port| {
            vec![
                python.clone().into_os_string(),
                cloudwatch_script().into_os_string(),
                "--port".into(),
                port.to_string().into(),
                "--upstream".into(),
                server.endpoint.clone().into(),
            ]
        },
    )
    .await;
    Moto { server, cloudwatch }
}

/// Starts `command(port)` on a free port and waits until `GET ready_path` answers 2xx.
async fn start_server(
    name: &str,
    description: &str,
    ready_path: &str,
    command: impl Fn(u16) -> Vec<std::ffi::OsString>,
) -> Server {
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        match try_start(name, ready_path, &command).await {
            Ok(server) => return server,
            Err(failure) => failures.push(failure),
        }
    }
    panic!(
        "could not start {name} ({description}; set MOTO_SERVER, or run `make venv`):\n{}",
        failures.join("\n---\n")
    );
}

async fn try_start(
    name: &str,
    ready_path: &str,
    command: &impl Fn(u16) -> Vec<std::ffi::OsString>,
) -> Result<Server, String> {
    let port = free_port();
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{port}.log"));
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
                "{name} exited ({status}); its log {}:\n{}",
                log.display(),
                log_tail(&log)
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
                log,
                _supervisor: Some(supervisor),
            });
        }
        if tokio::time::Instant::now() >= deadline {
            // Dropping the stdin stops the server.
            drop(supervisor.stdin.take());
            return Err(format!(
                "{name} did not answer within {STARTUP_DEADLINE:?}; its log {}:\n{}",
                log.display(),
                log_tail(&log)
            ));
        }
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
pub mod slack;
