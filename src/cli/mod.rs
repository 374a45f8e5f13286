//! The `alertops` command line: one binary, one subcommand per workload.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::reconcile::OperatorSettings;

/// alertops: AWS alerting declared as Kubernetes resources.
#[derive(Parser, Debug)]
#[command(name = "alertops", version, about)]
pub struct Cli {
    /// Log format: `json` for clusters (one object per line), `text` for people.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "ALERTOPS_LOG_FORMAT", global = true)]
    pub log_format: LogFormat,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON objects with the resource and alert fingerprint as fields.
    Json,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller: reconcile the alertops resources into AWS (leader-elected).
    Controller(ControllerArgs),
    /// Print the CustomResourceDefinitions, or write them to a folder.
    Crds(CrdsArgs),
    /// Validate manifests offline against the CRD schemas and the alarm lint rules.
    Lint(LintArgs),
    /// Consume one AlertRoute's queue and deliver its alerts to Slack (the route's Deployment).
    Consume(ConsumeArgs),
    /// Serve Slack's interactivity Request URL: acknowledge alerts, start retry Jobs.
    Interact(InteractArgs),
    /// Retry a failed EMR cluster (the command of the Jobs `interact` creates).
    Retry(RetryArgs),
    /// Run a DigestSchedule once: drain its queue, email the summary, delete what was sent.
    Digest(DigestArgs),
    /// Run everything without a cluster: manifests from a folder, AWS from the standard
    /// environment (an emulator for the demo), Slack at a given URL.
    Local(LocalArgs),
}

/// Flags shared by every workload that reconciles or names AWS resources.
#[derive(Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Identifies this Kubernetes cluster in AWS names and ownership tags; two clusters sharing an
    /// AWS account must use different ids.
    #[arg(long, env = "ALERTOPS_CLUSTER_ID")]
    pub cluster_id: String,
    /// Seconds between two comparisons of a Ready resource with AWS.
    #[arg(long, env = "ALERTOPS_RESYNC_SECONDS", default_value_t = 600)]
    pub resync_seconds: u64,
    /// Image of the workloads alertops runs per resource (consumers, digest jobs); defaults to
    /// this release's image.
    #[arg(long, env = "ALERTOPS_WORKLOAD_IMAGE")]
    pub workload_image: Option<String>,
    /// `KEY=VALUE` annotation for the workloads' service accounts (repeatable), e.g.
    /// `eks.amazonaws.com/role-arn=arn:aws:iam::123456789012:role/alertops-consumer` for IRSA.
    #[arg(long = "workload-service-account-annotation", value_name = "KEY=VALUE")]
    pub workload_service_account_annotations: Vec<String>,
    /// The workloads' service-account annotations as one JSON object (what the Helm chart
    /// passes); `--workload-service-account-annotation` entries are added over it.
    #[arg(
        long = "workload-service-account-annotations",
        env = "ALERTOPS_WORKLOAD_SERVICE_ACCOUNT_ANNOTATIONS",
        value_name = "JSON"
    )]
    pub workload_service_account_annotations_json: Option<String>,
    /// One ServiceAccount name for the workloads of every namespace (the chart binds its
    /// Roles to it); unset, each consumer and digest gets its own.
    #[arg(long, env = "ALERTOPS_WORKLOAD_SERVICE_ACCOUNT")]
    pub workload_service_account: Option<String>,
    /// `imagePullPolicy` of the workloads (Always, IfNotPresent or Never).
    #[arg(long, env = "ALERTOPS_WORKLOAD_IMAGE_PULL_POLICY")]
    pub workload_image_pull_policy: Option<String>,
    /// The Secret key that signs Slack buttons, as `NAMESPACE/NAME/KEY`; the consumers read it
    /// at start (the interaction server gets the same key from the Secret as environment).
    #[arg(long, env = "ALERTOPS_ACTION_KEY_SECRET")]
    pub action_key_secret: Option<String>,
    /// Base URL of Slack's Web API (or a Slack-compatible endpoint) for consumers and digests.
    #[arg(long, env = "ALERTOPS_SLACK_API_BASE")]
    pub slack_api_base: Option<String>,
    /// AWS endpoint of this process's SDK, passed on to the workloads (a test cluster's AWS
    /// emulator); unset uses AWS itself.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
}

impl OperatorArgs {
    /// The reconcilers' settings.
    pub fn settings(&self) -> Result<OperatorSettings, String> {
        let mut settings = OperatorSettings::new(self.cluster_id.clone());
        settings.resync_interval = Duration::from_secs(self.resync_seconds.max(10));
        if let Some(image) = self.workload_image.clone().filter(|i| !i.is_empty()) {
            settings.workload_image = image;
        }
        if let Some(json) = self
            .workload_service_account_annotations_json
            .as_deref()
            .filter(|j| !j.trim().is_empty())
        {
            let annotations: std::collections::BTreeMap<String, String> =
                serde_json::from_str(json).map_err(|e| {
                    format!(
                        "service-account annotations must be a JSON object of strings ({e}): {json}"
                    )
                })?;
            settings.service_account_annotations.extend(annotations);
        }
        for annotation in &self.workload_service_account_annotations {
            let (key, value) = annotation.split_once('=').ok_or_else(|| {
                format!("service-account annotation {annotation:?} must be KEY=VALUE")
            })?;
            settings
                .service_account_annotations
                .insert(key.to_string(), value.to_string());
        }
        let set = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        settings.workload_service_account = set(&self.workload_service_account);
        settings.workload_image_pull_policy = set(&self.workload_image_pull_policy);
        settings.action_key_secret = set(&self.action_key_secret);
        settings.slack_api_base = set(&self.slack_api_base);
        settings.aws_endpoint_url = set(&self.aws_endpoint_url);
        settings.validate()?;
        Ok(settings)
    }
}

/// `alertops controller`.
#[derive(Args, Debug)]
pub struct ControllerArgs {
    /// Operator settings.
    #[command(flatten)]
    pub operator: OperatorArgs,
    /// Namespace of the leader-election Lease (the controller's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "alertops-system")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "alertops-controller")]
    pub lease_name: String,
    /// Identity of this replica in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "ALERTOPS_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub http_listen: std::net::SocketAddr,
    /// Watch only this namespace (the chart then grants a namespaced Role); all when unset.
    #[arg(long, env = "ALERTOPS_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
}

/// `alertops crds`.
#[derive(Args, Debug)]
pub struct CrdsArgs {
    /// Write one file per CRD into this folder instead of printing them.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Print the Markdown reference of every field instead of the CRDs.
    #[arg(long, conflicts_with = "output_dir")]
    pub reference: bool,
}

/// `alertops lint`.
#[derive(Args, Debug)]
pub struct LintArgs {
    /// A manifest file or a folder of manifests.
    #[arg(short = 'f', long = "filename")]
    pub path: PathBuf,
}

/// `alertops consume`.
#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// The AlertRoute to serve, as `NAMESPACE/NAME`.
    #[arg(long, env = "ALERTOPS_ROUTE")]
    pub route: String,
    /// Base URL of Slack's Web API.
    #[arg(
        long,
        env = "ALERTOPS_SLACK_API_BASE",
        default_value = "https://slack.com/api/"
    )]
    pub slack_api_base: String,
    /// Long-poll wait of each ReceiveMessage, in seconds (0 to 20).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wait_seconds: u64,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "ALERTOPS_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    pub http_listen: std::net::SocketAddr,
    /// The Secret key that signs Slack buttons, `NAMESPACE/NAME/KEY` (set by the controller);
    /// without it, `ALERTOPS_ACTION_TOKEN_KEY` holds the key itself.
    #[arg(long, env = "ALERTOPS_ACTION_KEY_SECRET")]
    pub action_key_secret: Option<String>,
    /// The button-signing key itself (the local mode), at least 32 bytes.
    #[arg(long, env = "ALERTOPS_ACTION_TOKEN_KEY", hide_env_values = true)]
    pub action_token_key: Option<Secret>,
}

/// A secret read from the command line or the environment; never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// `alertops interact`.
#[derive(Args, Debug)]
pub struct InteractArgs {
    /// Address to listen on.
    #[arg(long, env = "ALERTOPS_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,
    /// Base URL of Slack's Web API (user groups); passed on to the retry Jobs.
    #[arg(
        long,
        env = "ALERTOPS_SLACK_API_BASE",
        default_value = "https://slack.com/api/"
    )]
    pub slack_api_base: String,
    /// The Slack app's signing secret (set it through the environment).
    #[arg(long, env = "ALERTOPS_SLACK_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Secret,
    /// The key that signs button values, at least 32 bytes; the same as the consumers' (set it
    /// through the environment).
    #[arg(long, env = "ALERTOPS_ACTION_TOKEN_KEY", hide_env_values = true)]
    pub action_token_key: Secret,
    /// The alertops image the retry Jobs run.
    #[arg(long, env = "ALERTOPS_WORKLOAD_IMAGE")]
    pub workload_image: String,
    /// `imagePullPolicy` of the retry Jobs.
    #[arg(long, env = "ALERTOPS_WORKLOAD_IMAGE_PULL_POLICY")]
    pub workload_image_pull_policy: Option<String>,
    /// ServiceAccount of the retry Jobs when the workloads share one per namespace; unset, a
    /// Job runs as its route's consumer.
    #[arg(long, env = "ALERTOPS_WORKLOAD_SERVICE_ACCOUNT")]
    pub workload_service_account: Option<String>,
    /// Hours a button stays usable after its message was posted; finished retry Jobs are kept as
    /// long, so a replayed click still finds its Job.
    #[arg(long, env = "ALERTOPS_BUTTON_MAX_AGE_HOURS", default_value_t = 168)]
    pub button_max_age_hours: u32,
}

/// `alertops retry` (the retry Job's command line, written by `interact`).
#[derive(Args, Debug)]
pub struct RetryArgs {
    /// The AlertRoute whose retry policy applies, `namespace/name`.
    #[arg(long)]
    pub route: String,
    /// The failed EMR cluster to rebuild.
    #[arg(long)]
    pub cluster: String,
    /// This attempt's number (the failed cluster's attempt tag + 1).
    #[arg(long)]
    pub attempt: u32,
    /// Slack user id of who pressed Retry.
    #[arg(long)]
    pub user: String,
    /// Fingerprint of the alert, to update its part of the message.
    #[arg(long)]
    pub fingerprint: Option<String>,
    /// The interaction's response URL.
    #[arg(long, env = "ALERTOPS_RESPONSE_URL", hide_env_values = true)]
    pub response_url: Option<Secret>,
    /// The Slack message to update, as JSON `{"text", "blocks"}`.
    #[arg(long, env = "ALERTOPS_SLACK_MESSAGE", hide_env_values = true)]
    pub message_json: Option<String>,
    /// Channel of the message, for a thread reply with the route's bot token.
    #[arg(long, requires = "message_ts")]
    pub channel: Option<String>,
    /// Timestamp of the message, for a thread reply.
    #[arg(long, requires = "channel")]
    pub message_ts: Option<String>,
    /// Base URL of Slack's Web API.
    #[arg(
        long,
        env = "ALERTOPS_SLACK_API_BASE",
        default_value = "https://slack.com/api/"
    )]
    pub slack_api_base: String,
}

impl RetryArgs {
    /// The request these flags describe, or what is wrong with them.
    pub fn request(&self) -> Result<crate::retry::RetryRequest, String> {
        let (namespace, name) = self
            .route
            .split_once('/')
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
            .ok_or_else(|| format!("--route must be namespace/name, not {:?}", self.route))?;
        if self.attempt == 0 {
            return Err("--attempt counts from 1".into());
        }
        let message = match &self.message_json {
            Some(json) if !json.trim().is_empty() => {
                Some(serde_json::from_str(json).map_err(|e| {
                    format!("the Slack message is not {{\"text\", \"blocks\"}} JSON: {e}")
                })?)
            }
            _ => None,
        };
        Ok(crate::retry::RetryRequest {
            route: crate::slack::RouteRef {
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
            cluster_id: self.cluster.clone(),
            attempt: self.attempt,
            user_id: self.user.clone(),
            fingerprint: self
                .fingerprint
                .clone()
                .map(crate::alert::Fingerprint::from_raw),
            response_url: self
                .response_url
                .clone()
                .map(|s| s.0)
                .filter(|u| !u.is_empty()),
            message,
            posted: self
                .channel
                .clone()
                .zip(self.message_ts.clone())
                .map(|(channel, ts)| crate::slack::PostedMessage { channel, ts }),
        })
    }
}

/// `alertops digest`.
#[derive(Args, Debug)]
pub struct DigestArgs {
    /// The DigestSchedule to run, as `NAMESPACE/NAME`.
    #[arg(long, value_parser = parse_namespaced_name)]
    pub schedule: (String, String),
    /// Base URL of the Slack Web API (the Slack summary, when the schedule has one).
    #[arg(
        long,
        env = "ALERTOPS_SLACK_API_BASE",
        default_value = "https://slack.com/api/"
    )]
    pub slack_api_base: String,
}

/// Parses `NAMESPACE/NAME`.
fn parse_namespaced_name(value: &str) -> Result<(String, String), String> {
    match value.split_once('/') {
        Some((namespace, name))
            if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
        {
            Ok((namespace.to_string(), name.to_string()))
        }
        _ => Err(format!("expected NAMESPACE/NAME, got {value:?}")),
    }
}

/// `alertops local`.
#[derive(Args, Debug)]
pub struct LocalArgs {
    /// A manifest file or folder (Secrets included), validated like `alertops lint`.
    #[arg(long)]
    pub manifests: PathBuf,
    /// Cluster id used in AWS names and ownership tags.
    #[arg(long, env = "ALERTOPS_CLUSTER_ID", default_value = "local")]
    pub cluster_id: String,
    /// Address of the Slack interaction endpoint (`/slack/interactions`), `/metrics` and
    /// `POST /local/digests/NAMESPACE/NAME` (run a digest now).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Base URL of Slack's Web API (a stand-in for tests and demos).
    #[arg(
        long,
        env = "ALERTOPS_SLACK_API_BASE",
        default_value = "https://slack.com/api/"
    )]
    pub slack_api_base: String,
    /// Send incoming webhooks here instead of https://hooks.slack.com/.
    #[arg(long)]
    pub slack_webhook_base: Option<String>,
    /// Slack signing secret of the interaction endpoint.
    #[arg(long, env = "ALERTOPS_SLACK_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Secret,
    /// Key of the signed button values (at least 32 characters); random when unset.
    #[arg(long, env = "ALERTOPS_ACTION_TOKEN_KEY", hide_env_values = true)]
    pub action_key: Option<Secret>,
    /// Long-poll wait of the consumers, in seconds.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub consumer_wait_seconds: u64,
    /// Seconds between two comparisons of every resource with AWS.
    #[arg(long, default_value_t = 60)]
    pub resync_seconds: u64,
}

/// Sets up logging (see [`crate::telemetry::logging`]).
pub fn init_logging(format: LogFormat) {
    crate::telemetry::logging::init(format);
}

/// Runs the command line.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crds(args) => crds(args),
        Command::Lint(args) => lint(args),
        Command::Consume(args) => {
            init_logging(cli.log_format);
            let command = crate::consume::ConsumeCommand {
                route: args.route,
                slack_api_base: args.slack_api_base,
                wait_seconds: args.wait_seconds,
                http_listen: args.http_listen,
                action_key_secret: args.action_key_secret.filter(|s| !s.trim().is_empty()),
                action_token_key: args.action_token_key.map(|s| s.0).filter(|k| !k.is_empty()),
            };
            match crate::consume::run_command(command).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "consumer stopped");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Interact(args) => {
            init_logging(cli.log_format);
            match crate::interact::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "interact stopped");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Digest(args) => {
            init_logging(cli.log_format);
            digest(args).await
        }
        Command::Local(args) => {
            init_logging(cli.log_format);
            local(args).await
        }
        Command::Retry(args) => {
            init_logging(cli.log_format);
            crate::retry::run_command(args).await
        }
        Command::Controller(args) => {
            init_logging(cli.log_format);
            match crate::controller::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "controller stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Runs the local mode until Ctrl-C or SIGTERM.
async fn local(args: LocalArgs) -> ExitCode {
    let action_key = args.action_key.map(|k| k.0).unwrap_or_else(|| {
        // A fresh key per run: buttons from an earlier run are rejected, as they should be.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        crate::reconcile::names::short_hash(&seed).repeat(4)
    });
    let config = crate::local::LocalConfig {
        manifests: args.manifests,
        cluster_id: args.cluster_id,
        listen: args.listen,
        slack_api_base: args.slack_api_base,
        slack_webhook_base: args.slack_webhook_base,
        signing_secret: args.signing_secret.0,
        action_key,
        consumer_wait: std::time::Duration::from_secs(args.consumer_wait_seconds),
        resync: std::time::Duration::from_secs(args.resync_seconds.max(5)),
    };
    let aws = crate::aws::AwsClients::from_env(crate::aws::AwsSettings::default()).await;
    match crate::local::run(config, aws, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "local mode stopped");
            eprintln!("alertops local: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Runs one digest; a failed run exits non-zero so that the CronJob's Job shows it.
async fn digest(args: DigestArgs) -> ExitCode {
    let (namespace, name) = args.schedule;
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot reach the Kubernetes API");
            return ExitCode::FAILURE;
        }
    };
    let cluster = crate::k8s::KubeCluster::new(client);
    let aws = crate::aws::AwsClients::from_env(crate::aws::AwsSettings::default()).await;
    let slack = crate::slack::SlackClient::new(crate::slack::SlackSettings {
        api_base: args.slack_api_base,
        ..Default::default()
    });
    match crate::digest::run_digest(
        &cluster,
        &aws,
        &slack,
        &namespace,
        &name,
        chrono::Utc::now(),
    )
    .await
    {
        Ok(report) => {
            tracing::info!(
                schedule = %report.schedule,
                alerts = report.run.alert_count,
                sent = report.run.sent,
                "digest done"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "digest run failed");
            ExitCode::FAILURE
        }
    }
}

fn crds(args: CrdsArgs) -> ExitCode {
    use crate::resources::crd;
    if args.reference {
        print!("{}", crd::reference_markdown());
        return ExitCode::SUCCESS;
    }
    match args.output_dir {
        None => {
            print!("{}", crd::all_yaml());
            ExitCode::SUCCESS
        }
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("cannot create {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
            for c in crd::all() {
                let path = dir.join(crd::file_name(&c));
                if let Err(e) = std::fs::write(&path, crd::to_yaml(&c)) {
                    eprintln!("cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
    }
}

fn lint(args: LintArgs) -> ExitCode {
    match crate::lint::lint_path(&args.path) {
        Ok(report) => {
            print!("{}", report.render());
            if report.has_errors() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("alertops lint: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operator(args: &[&str]) -> Result<OperatorSettings, String> {
        let mut argv = vec!["alertops", "controller", "--cluster-id", "prod"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        let Command::Controller(args) = cli.command else {
            panic!("not the controller");
        };
        args.operator.settings()
    }

    #[test]
    fn annotations_come_as_json_and_as_key_value_pairs() {
        let settings = operator(&[
            "--workload-service-account-annotations",
            r#"{"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/a", "x": "1"}"#,
            "--workload-service-account-annotation",
            "x=2",
        ])
        .unwrap();
        assert_eq!(
            settings.service_account_annotations["eks.amazonaws.com/role-arn"],
            "arn:aws:iam::1:role/a"
        );
        assert_eq!(settings.service_account_annotations["x"], "2", "pairs win");
        let error = operator(&["--workload-service-account-annotations", "[1]"]).unwrap_err();
        assert!(error.contains("JSON object"), "{error}");
        assert!(operator(&["--workload-service-account-annotations", ""]).is_ok());
    }

    #[test]
    fn controller_passes_workload_settings_on() {
        let settings = operator(&[
            "--action-key-secret",
            "alertops-system/alertops-action-key/key",
            "--slack-api-base",
            "https://slack.example/api/",
            "--workload-service-account",
            "alertops-workload",
            "--workload-image-pull-policy",
            "Always",
        ])
        .unwrap();
        assert_eq!(
            settings.action_key_secret.as_deref(),
            Some("alertops-system/alertops-action-key/key")
        );
        assert_eq!(
            settings.slack_api_base.as_deref(),
            Some("https://slack.example/api/")
        );
        assert_eq!(
            settings.workload_service_account.as_deref(),
            Some("alertops-workload")
        );
        assert_eq!(
            settings.workload_image_pull_policy.as_deref(),
            Some("Always")
        );
        assert!(operator(&["--action-key-secret", "only/two"]).is_err());
    }
}
