//! The flags of `alertops consume` (the route's Deployment).

use std::time::Duration;

use clap::Args;

use crate::secret::Secret;

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
    /// Seconds the consumer holds alerts through a Slack outage (circuit open: nothing new is
    /// received, the held batch is probed at a growing interval); beyond it they go back to the
    /// queue and reach the dead-letter queue after `maxReceiveCount` receives. At most 11 hours.
    #[arg(
        long,
        env = super::OUTAGE_TOLERANCE_ENV,
        default_value_t = 7200,
        value_parser = clap::value_parser!(u64).range(0..=super::MAX_OUTAGE_TOLERANCE.as_secs())
    )]
    pub slack_outage_tolerance_seconds: u64,
    /// Seconds the oldest message of a batch may have waited in the queue before the batch is
    /// a backlog (the consumer was down, or restarted during a Slack outage) and is drained
    /// into one storm summary instead of a post per alert.
    #[arg(long, env = super::BACKLOG_AGE_ENV, default_value_t = 600)]
    pub backlog_age_seconds: u64,
    /// The button-signing key itself (the local mode), at least 32 bytes.
    #[arg(long, env = "ALERTOPS_ACTION_TOKEN_KEY", hide_env_values = true)]
    pub action_token_key: Option<Secret>,
    /// AWS rate limits.
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

impl ConsumeArgs {
    /// The consumer's options from these flags.
    pub fn consumer_options(&self) -> super::ConsumerOptions {
        super::ConsumerOptions {
            wait_time: Duration::from_secs(self.wait_seconds.min(20)),
            slack_outage_tolerance: Duration::from_secs(self.slack_outage_tolerance_seconds),
            backlog_age: Duration::from_secs(self.backlog_age_seconds),
            ..super::ConsumerOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        consume: ConsumeArgs,
    }

    fn options(args: &[&str]) -> super::super::ConsumerOptions {
        let mut argv = vec!["consume", "--route", "team/r"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .unwrap()
            .consume
            .consumer_options()
    }

    #[test]
    fn the_backlog_age_is_ten_minutes_unless_set() {
        assert_eq!(options(&[]).backlog_age, Duration::from_secs(600));
        assert_eq!(
            options(&[]).backlog_age,
            super::super::ConsumerOptions::default().backlog_age,
            "the flag's default is the consumer's"
        );
        assert_eq!(
            options(&["--backlog-age-seconds", "90"]).backlog_age,
            Duration::from_secs(90)
        );
    }
}
