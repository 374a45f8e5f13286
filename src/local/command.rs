//! `alertops local`: the flags, and the run until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::secret::Secret;

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
    /// AWS rate limits.
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

/// Runs the local mode until Ctrl-C or SIGTERM.
pub async fn run_command(args: LocalArgs) -> ExitCode {
    let action_key = args.action_key.map(|k| k.0).unwrap_or_else(|| {
        // A fresh key per run: buttons from an earlier run are rejected, as they should be.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        crate::names::short_hash(&seed).repeat(4)
    });
    let config = super::LocalConfig {
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
    let aws = crate::aws::AwsClients::from_env(args.aws.settings()).await;
    match super::run(config, aws, crate::telemetry::shutdown::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "local mode stopped");
            eprintln!("alertops local: {e}");
            ExitCode::FAILURE
        }
    }
}
