//! `alertops consume`: the real-time half of the pipeline, one consumer per AlertRoute.
//!
//! [`Consumer`] long-polls the route's SQS queue, decodes each message into an alert, enriches
//! it, keeps the alerts the route matches, groups bursts, delivers them to Slack (posting, or
//! updating the message an earlier state of the same problem posted) and deletes each SQS
//! message only once Slack accepted the alert it carries. [`run_command`] is the `alertops
//! consume` workload around it: the route read through the Kubernetes API, AWS from the standard
//! environment, a clean stop on SIGTERM.

mod args;
pub(crate) mod attribute_groups;
pub(crate) mod circuit;
pub(crate) mod clock;
mod consumer;
pub(crate) mod email;
pub(crate) mod metrics;
pub(crate) mod plan;
pub(crate) mod queue;
pub(crate) mod receipts;
pub(crate) mod reminders;
pub(crate) mod store;
pub(crate) mod storm;

pub use args::ConsumeArgs;
pub use clock::{Clock, system_clock};
pub use consumer::{BatchReport, Consumer, ConsumerOptions, MAX_OUTAGE_TOLERANCE};
pub use metrics::ConsumerMetrics;
pub use store::{MAX_STORED_MESSAGES, MessageIndex, StoredMessage, config_map_name};

use std::sync::Arc;

use crate::aws::{AwsClients, AwsError};
use crate::k8s::{ClusterApi, ClusterError, KubeCluster};
use crate::resources::SlackDestination;
use crate::slack::{
    ActionSigner, ActionTokenError, RouteRef, SlackClient, SlackSettings, SlackTarget,
    SlackTargetError,
};

/// Environment variable holding the key that signs button values; the interaction server
/// verifies with the same key. The key is the variable's bytes as given (at least 32).
pub const ACTION_TOKEN_KEY_ENV: &str = "ALERTOPS_ACTION_TOKEN_KEY";

/// Environment variable of the Slack outage tolerance in seconds (controller and consumer).
pub const OUTAGE_TOLERANCE_ENV: &str = "ALERTOPS_SLACK_OUTAGE_TOLERANCE_SECONDS";

/// Environment variable of the backlog age in seconds (consumer and local mode).
pub const BACKLOG_AGE_ENV: &str = "ALERTOPS_BACKLOG_AGE_SECONDS";

/// Why a consumer batch, or the consumer, could not run.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// `--route` is not `NAMESPACE/NAME`.
    #[error("invalid route {0:?}: expected NAMESPACE/NAME")]
    InvalidRoute(String),
    /// The AlertRoute does not exist.
    #[error("AlertRoute {0} not found")]
    RouteNotFound(String),
    /// The controller has not created the route's queue yet.
    #[error(
        "AlertRoute {0} has no queue yet (status.queueUrl is empty); waiting for the controller"
    )]
    QueueNotReady(String),
    /// The route has neither a Slack nor an email destination.
    #[error("AlertRoute {0} has neither a Slack nor an email destination")]
    NoDestination(String),
    /// The route's Slack destination is incomplete (neither webhook nor bot token, no channel).
    #[error("AlertRoute {route}: {problem}")]
    InvalidDestination {
        /// `namespace/name`.
        route: String,
        /// What is missing.
        problem: &'static str,
    },
    /// A Secret the route names, or its key, is missing.
    #[error("AlertRoute {route}: Secret {secret} has no key {key:?} (the Slack {purpose})")]
    MissingSecret {
        /// `namespace/name` of the route.
        route: String,
        /// Name of the Secret.
        secret: String,
        /// Key in it.
        key: String,
        /// `webhook URL` or `bot token`.
        purpose: &'static str,
    },
    /// The button signing key is unusable.
    #[error("{ACTION_TOKEN_KEY_ENV}: {0}")]
    SigningKey(#[from] ActionTokenError),
    /// The Secret that should hold the button-signing key cannot be used.
    #[error("button-signing key Secret {location}: {problem}")]
    ActionKeySecret {
        /// `NAMESPACE/NAME/KEY` as configured.
        location: String,
        /// What is wrong.
        problem: String,
    },
    /// The health and metrics listener could not be bound or failed.
    #[error("serving {address}: {source}")]
    Http {
        /// The listen address.
        address: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No Kubernetes client could be built.
    #[error("Kubernetes client: {0}")]
    KubeClient(String),
    /// A Kubernetes API call failed.
    #[error("Kubernetes: {0}")]
    Cluster(#[from] ClusterError),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl ConsumeError {
    /// Short, stable label for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            ConsumeError::InvalidRoute(_) => "invalid_route",
            ConsumeError::RouteNotFound(_) => "route_not_found",
            ConsumeError::QueueNotReady(_) => "queue_not_ready",
            ConsumeError::NoDestination(_) | ConsumeError::InvalidDestination { .. } => {
                "destination"
            }
            ConsumeError::MissingSecret { .. } => "secret",
            ConsumeError::SigningKey(_) | ConsumeError::ActionKeySecret { .. } => "signing_key",
            ConsumeError::Http { .. } => "http",
            ConsumeError::KubeClient(_) | ConsumeError::Cluster(_) => "kubernetes",
            ConsumeError::Aws(_) => "aws",
        }
    }
}

/// Parses `NAMESPACE/NAME`.
pub fn parse_route(value: &str) -> Result<RouteRef, ConsumeError> {
    let invalid = || ConsumeError::InvalidRoute(value.to_string());
    let (namespace, name) = value.split_once('/').ok_or_else(invalid)?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    };
    if !valid(namespace) || !valid(name) {
        return Err(invalid());
    }
    Ok(RouteRef {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// The button signer from [`ACTION_TOKEN_KEY_ENV`]: `None` when the variable is unset or empty
/// (messages then carry no buttons), an error when the key is too short to be safe.
pub fn signer_from_env() -> Result<Option<ActionSigner>, ConsumeError> {
    match std::env::var_os(ACTION_TOKEN_KEY_ENV) {
        Some(key) if !key.is_empty() => Ok(Some(ActionSigner::new(key.as_encoded_bytes())?)),
        _ => Ok(None),
    }
}

/// The button signer of a consumer: the key in the Secret `secret_location`
/// (`NAMESPACE/NAME/KEY`) when set, else `direct_key` (`ALERTOPS_ACTION_TOKEN_KEY`: in a cluster
/// the route's own key, which the controller derives from the master key and the pod gets from
/// the route's Secret), else none (messages then carry no buttons). Either key must be the
/// route's derived key: the interaction server refuses buttons signed with anything else.
/// A configured Secret that is missing, empty or too short is an error: the interaction
/// server would refuse every button.
pub async fn load_signer<C: ClusterApi>(
    cluster: &C,
    secret_location: Option<&str>,
    direct_key: Option<&str>,
) -> Result<Option<ActionSigner>, ConsumeError> {
    let Some(location) = secret_location.filter(|l| !l.trim().is_empty()) else {
        return match direct_key.filter(|k| !k.is_empty()) {
            Some(key) => Ok(Some(ActionSigner::new(key.as_bytes())?)),
            None => Ok(None),
        };
    };
    let problem = |problem: String| ConsumeError::ActionKeySecret {
        location: location.to_string(),
        problem,
    };
    let parsed = crate::k8s::SecretLocation::parse(location).map_err(problem)?;
    let key = cluster
        .secret_value(&parsed.namespace, &parsed.name, &parsed.key)
        .await
        .map_err(|e| problem(format!("cannot read it: {e}")))?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| problem("the Secret or its key does not exist, or is empty".into()))?;
    ActionSigner::new(key.as_bytes())
        .map(Some)
        .map_err(|e| problem(e.to_string()))
}

/// The Slack target a route's destination names, with its secret read from the route's
/// namespace; errors name the route.
pub async fn resolve_target<C: ClusterApi>(
    cluster: &C,
    namespace: &str,
    route: &str,
    slack: &SlackDestination,
) -> Result<SlackTarget, ConsumeError> {
    crate::slack::resolve_target(cluster, namespace, slack)
        .await
        .map_err(|error| match error {
            SlackTargetError::MissingSecret {
                name, key, purpose, ..
            } => ConsumeError::MissingSecret {
                route: route.to_string(),
                secret: name,
                key,
                purpose,
            },
            SlackTargetError::InvalidDestination(problem) => ConsumeError::InvalidDestination {
                route: route.to_string(),
                problem,
            },
            SlackTargetError::Cluster(error) => ConsumeError::Cluster(error),
        })
}

/// `alertops consume`: runs the route's consumer in a cluster until SIGTERM (or Ctrl-C), with
/// its health and metrics endpoints on `http_listen`.
pub async fn run_command(args: ConsumeArgs) -> std::process::ExitCode {
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "consumer stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Serves the route until SIGTERM.
async fn run(command: ConsumeArgs) -> Result<(), ConsumeError> {
    let action_key_secret = command
        .action_key_secret
        .clone()
        .filter(|s| !s.trim().is_empty());
    let action_token_key = command
        .action_token_key
        .clone()
        .map(|s| s.0)
        .filter(|k| !k.is_empty());
    let route = parse_route(&command.route)?;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| ConsumeError::KubeClient(e.to_string()))?;
    let cluster = KubeCluster::new(client);
    let signer = load_signer(
        &cluster,
        action_key_secret.as_deref(),
        action_token_key.as_deref(),
    )
    .await?;
    if signer.is_none() {
        tracing::warn!(
            "neither ALERTOPS_ACTION_KEY_SECRET nor {ACTION_TOKEN_KEY_ENV} is set: Slack messages will have no Acknowledge or Retry buttons"
        );
    }
    let listener = tokio::net::TcpListener::bind(command.http_listen)
        .await
        .map_err(|source| ConsumeError::Http {
            address: command.http_listen,
            source,
        })?;
    let aws = AwsClients::from_env(command.aws.settings()).await;
    let slack = Arc::new(SlackClient::new(SlackSettings {
        api_base: command.slack_api_base.clone(),
        ..SlackSettings::default()
    }));
    let options = command.consumer_options();
    let mut consumer = Consumer::new(cluster, aws, slack, route.clone(), options);
    if let Some(signer) = signer {
        consumer = consumer.with_signer(signer);
    }
    tracing::info!(route = %format!("{}/{}", route.namespace, route.name), address = %command.http_listen, "consumer starting");
    run_with_telemetry(
        consumer,
        listener,
        crate::telemetry::shutdown::shutdown_signal(),
    )
    .await
}

/// Runs `consumer` until `shutdown`, serving on `listener` `/healthz`, `/readyz` (ready once
/// the route was read and its queue answered) and `/metrics` (the consumer's and the AWS
/// layer's counters, prefixed `alertops_`).
pub async fn run_with_telemetry<C: ClusterApi>(
    mut consumer: Consumer<C>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ConsumeError> {
    let address = listener.local_addr().map_err(|source| ConsumeError::Http {
        address: ([0, 0, 0, 0], 0).into(),
        source,
    })?;
    let mut registry = prometheus_client::registry::Registry::with_prefix("alertops");
    consumer.metrics().register(&mut registry);
    consumer.aws().metrics().register(&mut registry);
    let app = crate::telemetry::router(Arc::new(registry), consumer.readiness().clone());
    let mut server = tokio::spawn(async move { axum::serve(listener, app).await });
    let result = tokio::select! {
        () = consumer.run(shutdown) => Ok(()),
        served = &mut server => Err(ConsumeError::Http {
            address,
            source: match served {
                Ok(Ok(())) => std::io::Error::other("the HTTP server stopped"),
                Ok(Err(e)) => e,
                Err(e) => std::io::Error::other(e.to_string()),
            },
        }),
    };
    server.abort();
    result
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::k8s::MemoryCluster;
    use crate::resources::SecretKeyRef;

    #[test]
    fn route_argument_is_namespace_slash_name() {
        let r = parse_route("team-a/data-eng").unwrap();
        assert_eq!(
            (r.namespace.as_str(), r.name.as_str()),
            ("team-a", "data-eng")
        );
        for bad in ["data-eng", "/x", "x/", "a/b/c", "A/b", ""] {
            assert!(
                matches!(parse_route(bad), Err(ConsumeError::InvalidRoute(_))),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn consume_subcommand_flags() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: ConsumeArgs,
        }
        let args = Cli::try_parse_from(["consume", "--route", "team/data-eng"])
            .expect("parses")
            .args;
        assert_eq!(args.route, "team/data-eng");
        assert_eq!(args.slack_api_base, "https://slack.com/api/");
        assert_eq!(args.wait_seconds, 20);
        let args = Cli::try_parse_from([
            "consume",
            "--route",
            "t/r",
            "--slack-api-base",
            "http://127.0.0.1:3000/api/",
            "--wait-seconds",
            "2",
        ])
        .expect("parses")
        .args;
        assert_eq!(
            (args.slack_api_base.as_str(), args.wait_seconds),
            ("http://127.0.0.1:3000/api/", 2)
        );
        assert!(
            Cli::try_parse_from(["consume", "--route", "t/r", "--wait-seconds", "21"]).is_err(),
            "SQS long polls last at most 20 s"
        );
    }

    fn secret_ref(name: &str, key: &str) -> Option<SecretKeyRef> {
        Some(SecretKeyRef {
            name: name.into(),
            key: key.into(),
        })
    }

    /// Resolution itself is tested in `slack::target`; here, that errors name the route.
    #[tokio::test]
    async fn target_errors_name_the_route() {
        let cluster = MemoryCluster::new();
        let bot = SlackDestination {
            webhook_secret_ref: None,
            bot_token_secret_ref: secret_ref("slack", "nope"),
            channel: Some("C1".into()),
            mentions: vec![],
        };
        let error = resolve_target(&cluster, "team", "team/r", &bot)
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "AlertRoute team/r: Secret slack has no key \"nope\" (the Slack bot token)"
        );
        let no_channel = SlackDestination {
            channel: None,
            ..bot
        };
        assert!(matches!(
            resolve_target(&cluster, "team", "team/r", &no_channel).await,
            Err(ConsumeError::InvalidDestination { route, problem })
                if route == "team/r" && problem == "botTokenSecretRef needs a channel"
        ));
    }

    /// The consumer runs as a spawned task (the local mode runs one per route), and a
    /// shutdown that is already signalled stops an idle consumer without touching AWS.
    #[tokio::test]
    async fn consumer_runs_as_a_task_and_stops_on_shutdown() {
        let config = aws_config::SdkConfig::builder()
            .region(aws_types::region::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let aws = AwsClients::new(&config);
        let slack = Arc::new(SlackClient::new(SlackSettings::default()));
        let route = parse_route("team/r").unwrap();
        let mut consumer = Consumer::new(
            MemoryCluster::new(),
            aws.clone(),
            slack,
            route,
            ConsumerOptions::default(),
        );
        let task = tokio::spawn(async move { consumer.run(std::future::ready(())).await });
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops at once")
            .expect("does not panic");
        assert!(aws.call_log().snapshot().is_empty(), "no AWS call was made");
    }
}
