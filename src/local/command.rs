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
    /// Seconds the consumers hold alerts through a Slack outage before handing them back to
    /// their queues (as `alertops consume`); also what the routes' queue retention covers.
    #[arg(
        long,
        env = crate::consume::OUTAGE_TOLERANCE_ENV,
        default_value_t = 7200,
        value_parser = clap::value_parser!(u64).range(0..=crate::consume::MAX_OUTAGE_TOLERANCE.as_secs())
    )]
    pub slack_outage_tolerance_seconds: u64,
    /// Seconds the oldest message of a batch may have waited before the consumers drain it as
    /// a backlog into one storm summary (as `alertops consume`).
    #[arg(long, env = crate::consume::BACKLOG_AGE_ENV, default_value_t = 600)]
    pub backlog_age_seconds: u64,
    /// AWS rate limits.
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

/// The local mode's configuration from its flags.
fn local_config(args: LocalArgs) -> super::LocalConfig {
    let action_key = args.action_key.map(|k| k.0).unwrap_or_else(|| {
        // A fresh key per run: buttons from an earlier run are rejected, as they should be.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        crate::names::short_hash(&seed).repeat(4)
    });
    super::LocalConfig {
        manifests: args.manifests,
        cluster_id: args.cluster_id,
        listen: args.listen,
        slack_api_base: args.slack_api_base,
        slack_webhook_base: args.slack_webhook_base,
        signing_secret: args.signing_secret.0,
        action_key,
        consumer_wait: std::time::Duration::from_secs(args.consumer_wait_seconds),
        resync: std::time::Duration::from_secs(args.resync_seconds.max(5)),
        slack_outage_tolerance: std::time::Duration::from_secs(args.slack_outage_tolerance_seconds),
        backlog_age: std::time::Duration::from_secs(args.backlog_age_seconds),
    }
}

/// Runs the local mode until Ctrl-C or SIGTERM.
pub async fn run_command(args: LocalArgs) -> ExitCode {
    let aws_settings = args.aws.settings();
    let config = local_config(args);
    let aws = crate::aws::AwsClients::from_env(aws_settings).await;
    match super::run(config, aws, crate::telemetry::shutdown::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "local mode stopped");
            eprintln!("alertops local: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        local: LocalArgs,
    }

    fn config(args: &[&str]) -> Result<super::super::LocalConfig, clap::Error> {
        let mut argv = vec!["local", "--manifests", "m", "--signing-secret", "s"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|cli| local_config(cli.local))
    }

    #[test]
    fn the_outage_tolerance_reaches_the_local_consumers_two_hours_unless_set() {
        assert_eq!(
            config(&[]).unwrap().slack_outage_tolerance,
            Duration::from_secs(7200)
        );
        let scaled = config(&["--slack-outage-tolerance-seconds", "240"]).unwrap();
        assert_eq!(scaled.slack_outage_tolerance, Duration::from_secs(240));
        assert!(
            config(&["--slack-outage-tolerance-seconds", "39601"]).is_err(),
            "at most 11 hours, as for the consumers in a cluster"
        );
    }

    #[test]
    fn the_backlog_age_reaches_the_local_consumers_ten_minutes_unless_set() {
        assert_eq!(config(&[]).unwrap().backlog_age, Duration::from_secs(600));
        let scaled = config(&["--backlog-age-seconds", "20"]).unwrap();
        assert_eq!(scaled.backlog_age, Duration::from_secs(20));
    }
}
