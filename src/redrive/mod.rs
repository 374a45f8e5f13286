//! `alertops redrive`: moves the messages of an AlertRoute's dead-letter queue back to its queue,
//! so that its consumer delivers them again (after the cause — a refused destination, an outage
//! longer than the tolerance — is fixed).
//!
//! SQS's own `StartMessageMoveTask` would do this, but the AWS emulator the tests run against
//! does not implement it, so the move is ours: receive from the dead-letter queue, send the same
//! body to the route's queue, and delete from the dead-letter queue only what SQS accepted.
//! Nothing is lost: a crash between the send and the delete leaves the message in both queues
//! (the copy in the dead-letter queue reappears after [`MOVE_VISIBILITY`] and a second run moves
//! it again), so it can only be delivered twice. A moved message is a new SQS message: its
//! receive count starts again, and the delivery receipts of the old one (which destination
//! already had it) do not carry over, so a route with Slack and email may send it to both.
//!
//! At most the number of messages the dead-letter queue held when the run began is moved, so a
//! message that fails again and returns meanwhile is not cycled.

use std::time::Duration;

use clap::Args;

use crate::aws::sqs::{self, ReceiveRequest, SQS_BATCH, SqsQueues};
use crate::aws::{AwsClients, AwsError, AwsSettings};
use crate::k8s::{ClusterApi, ClusterError, KubeCluster};
use crate::resources::AlertRoute;

/// How long a message received from the dead-letter queue stays invisible while it is moved.
pub const MOVE_VISIBILITY: Duration = Duration::from_secs(120);

/// `alertops redrive`.
#[derive(Args, Debug)]
pub struct RedriveArgs {
    /// Namespace of the AlertRoute.
    #[arg(long)]
    pub namespace: String,
    /// Name of the AlertRoute.
    #[arg(long)]
    pub route: String,
    /// Move at most this many messages (default: all the dead-letter queue holds now).
    #[arg(long)]
    pub max_messages: Option<usize>,
}

/// Why a redrive could not run.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// The AlertRoute does not exist.
    #[error("AlertRoute {0} not found")]
    RouteNotFound(String),
    /// The controller has not recorded the route's queues.
    #[error("AlertRoute {0} has no queue or dead-letter queue in its status yet")]
    NoQueues(String),
    /// No Kubernetes client could be built.
    #[error("Kubernetes client: {0}")]
    KubeClient(String),
    /// A Kubernetes API call failed.
    #[error("Kubernetes: {0}")]
    Cluster(#[from] ClusterError),
    /// An AWS call failed; what was moved before it stays moved.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// What a redrive did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// Messages the dead-letter queue held when the run began.
    pub waiting: usize,
    /// Messages sent to the route's queue and deleted from the dead-letter queue.
    pub moved: usize,
    /// Messages SQS refused to send: they stay in the dead-letter queue.
    pub refused: usize,
    /// Messages sent whose delete from the dead-letter queue failed: in both queues now, so
    /// they may be delivered twice.
    pub copied: usize,
}

/// Moves the dead-letter queue of the route `namespace/name` back to its queue.
pub async fn redrive_route<C: ClusterApi>(
    cluster: &C,
    aws: &AwsClients,
    namespace: &str,
    name: &str,
    max_messages: Option<usize>,
) -> Result<RedriveReport, RedriveError> {
    let key = format!("{namespace}/{name}");
    let route: AlertRoute = cluster
        .get(namespace, name)
        .await?
        .ok_or_else(|| RedriveError::RouteNotFound(key.clone()))?;
    let status = route.status.unwrap_or_default();
    let (Some(queue), Some(dead_letter)) = (
        status.queue_url.filter(|u| !u.is_empty()),
        status.dead_letter_queue_url.filter(|u| !u.is_empty()),
    ) else {
        return Err(RedriveError::NoQueues(key));
    };
    let waiting = aws
        .queue_attributes(&dead_letter)
        .await?
        .get("ApproximateNumberOfMessages")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = max_messages.map_or(waiting, |max| max.min(waiting));
    let mut report = move_messages(aws, &dead_letter, &queue, limit).await?;
    report.waiting = waiting;
    tracing::info!(route = %key, ?report, "redrive done");
    Ok(report)
}

/// Moves up to `limit` messages from `from` to `to`: send, then delete what was sent.
pub async fn move_messages(
    aws: &AwsClients,
    from: &str,
    to: &str,
    limit: usize,
) -> Result<RedriveReport, AwsError> {
    let mut report = RedriveReport::default();
    while report.moved + report.refused + report.copied < limit {
        let room = (limit - report.moved - report.refused - report.copied).min(SQS_BATCH);
        let request = ReceiveRequest {
            max: room,
            wait_seconds: 1,
            visibility_timeout: Some(MOVE_VISIBILITY.as_secs() as i32),
            attributes: &[],
        };
        let received: Vec<(String, String)> = sqs::receive(aws, from, request)
            .await?
            .into_iter()
            .filter_map(|m| {
                Some((
                    m.receipt_handle()?.to_string(),
                    m.body().unwrap_or_default().to_string(),
                ))
            })
            .collect();
        if received.is_empty() {
            break;
        }
        let bodies: Vec<&str> = received.iter().map(|(_, b)| b.as_str()).collect();
        let sent = sqs::send(aws, to, &bodies).await?;
        for refused in &sent.refused {
            tracing::warn!(reason = %refused.reason(), "SQS refused to send a dead-lettered message back; it stays in the dead-letter queue");
        }
        let handles: Vec<&str> = received
            .iter()
            .enumerate()
            .filter(|(i, _)| !sent.refused.iter().any(|r| r.index == *i))
            .map(|(_, (handle, _))| handle.as_str())
            .collect();
        let deleted = sqs::delete(aws, from, &handles).await?;
        for refused in &deleted.refused {
            tracing::warn!(reason = %refused.reason(), "a message was sent back but not deleted from the dead-letter queue; it may be delivered twice");
        }
        report.moved += deleted.succeeded;
        report.copied += deleted.refused.len();
        report.refused += sent.refused.len();
    }
    Ok(report)
}

/// Runs `alertops redrive` with the in-cluster (or kubeconfig) Kubernetes client and AWS from the
/// standard environment; prints what it did.
pub async fn run_command(args: RedriveArgs) -> std::process::ExitCode {
    let result = async {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| RedriveError::KubeClient(e.to_string()))?;
        let cluster = KubeCluster::new(client);
        let aws = AwsClients::from_env(AwsSettings::default()).await;
        redrive_route(
            &cluster,
            &aws,
            &args.namespace,
            &args.route,
            args.max_messages,
        )
        .await
    }
    .await;
    match result {
        Ok(report) => {
            println!(
                "AlertRoute {}/{}: moved {} of {} dead-lettered messages back to its queue \
                 ({} refused and left in the dead-letter queue, {} in both queues)",
                args.namespace,
                args.route,
                report.moved,
                report.waiting,
                report.refused,
                report.copied
            );
            if report.refused + report.copied == 0 {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("redrive failed: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::MemoryCluster;

    #[test]
    fn flags() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: RedriveArgs,
        }
        let args = Cli::try_parse_from(["redrive", "--namespace", "team", "--route", "ops"])
            .unwrap()
            .args;
        assert_eq!(
            (
                args.namespace.as_str(),
                args.route.as_str(),
                args.max_messages
            ),
            ("team", "ops", None)
        );
        assert!(Cli::try_parse_from(["redrive", "--namespace", "team"]).is_err());
    }

    #[tokio::test]
    async fn a_route_without_queues_is_refused_before_any_aws_call() {
        let cluster = MemoryCluster::new();
        cluster
            .apply_manifest(serde_json::json!({
                "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
                "metadata": {"name": "ops", "namespace": "team"},
                "spec": {"sources": [{"topicArn": "arn:aws:sns:us-east-1:1:t"}],
                         "email": {"from": "a@example.com", "to": ["b@example.com"]}},
            }))
            .unwrap();
        let config = aws_config::SdkConfig::builder()
            .region(aws_types::region::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let aws = AwsClients::new(&config);
        let error = redrive_route(&cluster, &aws, "team", "ops", None)
            .await
            .unwrap_err();
        assert!(
            matches!(error, RedriveError::NoQueues(ref r) if r == "team/ops"),
            "{error}"
        );
        assert!(matches!(
            redrive_route(&cluster, &aws, "team", "nope", None).await,
            Err(RedriveError::RouteNotFound(_))
        ));
        assert!(aws.call_log().snapshot().is_empty(), "no AWS call was made");
    }
}
