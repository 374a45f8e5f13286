//! The retry Job: `alertops retry ...` for one attempt of one original cluster.
//!
//! Its name is a function of the original cluster and the attempt only, so that every click that
//! asks for the same attempt (a double click, two people, Slack re-sending the request) names the
//! same Job, and `create` turns all but the first into "already exists".

use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json};

use crate::alert::Fingerprint;
use crate::names::{consumer_name, short_hash};
use crate::resources::AlertRoute;
use crate::slack::{PostedMessage, SlackMessage};
use crate::workloads::{container_security_context, pod_security_context};

/// `app.kubernetes.io/name` of retry Jobs.
pub const RETRY_APP: &str = "alertops-retry";
/// Label with the original cluster id of a retry Job.
pub const ORIGINAL_CLUSTER_LABEL: &str = "alertops.dev/original-cluster-id";
/// Label with the attempt number of a retry Job.
pub const ATTEMPT_LABEL: &str = "alertops.dev/retry-attempt";
/// Annotation naming who pressed Retry.
pub const REQUESTED_BY_ANNOTATION: &str = "alertops.dev/requested-by";
/// Environment variable carrying the interaction's response URL. The URL is a credential (anyone
/// holding it may rewrite the message for 30 minutes): the Job spec only references a Secret
/// ([`response_url_secret`]), so it shows in no command line, Job or Pod spec, or `describe`.
pub const RESPONSE_URL_ENV: &str = "ALERTOPS_RESPONSE_URL";
/// Key of the response URL in its Secret.
pub const RESPONSE_URL_KEY: &str = "response-url";
/// Environment variable carrying the Slack message to update, as JSON.
pub const SLACK_MESSAGE_ENV: &str = "ALERTOPS_SLACK_MESSAGE";
/// Container name of the retry Job.
pub const RETRY_CONTAINER: &str = "retry";
/// Seconds a retry may run before Kubernetes stops it (describe, list, submit: seconds normally).
pub const RETRY_ACTIVE_DEADLINE_SECONDS: i64 = 600;

/// Kubernetes object names are at most 63 characters where they become label values.
const MAX_JOB_NAME: usize = 63;

/// What a retry Job is built from.
#[derive(Clone, Debug)]
pub struct RetryJobRequest<'a> {
    /// The route (namespace, uid for the owner reference).
    pub route: &'a AlertRoute,
    /// The failed cluster.
    pub cluster_id: &'a str,
    /// The cluster the chain started from.
    pub original_cluster_id: &'a str,
    /// This attempt.
    pub attempt: u32,
    /// Who pressed.
    pub user_id: &'a str,
    /// The alert's fingerprint.
    pub fingerprint: &'a Fingerprint,
    /// Where to report.
    pub response_url: &'a str,
    /// The message to update, when Slack sent it.
    pub message: Option<&'a SlackMessage>,
    /// Channel and ts of the message, when known.
    pub posted: Option<&'a PostedMessage>,
}

/// Settings of every retry Job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryJobSettings {
    /// The alertops image.
    pub image: String,
    /// Web API base the Job reports to (Slack's, or a stand-in in the local mode).
    pub slack_api_base: String,
    /// AWS region passed on to the Job.
    pub aws_region: Option<String>,
    /// Seconds a finished Job is kept. Kept at least as long as a button stays valid, so that a
    /// replayed click on an old message still finds the Job and starts nothing.
    pub ttl_seconds_after_finished: i32,
    /// ServiceAccount of the Jobs when the workloads share one per namespace; `None` runs a Job
    /// as its route's consumer.
    pub service_account: Option<String>,
    /// `imagePullPolicy` of the Job's container.
    pub image_pull_policy: Option<String>,
}

/// Why a Job cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RetryJobError {
    /// The route lacks metadata the owner reference needs.
    #[error("AlertRoute has no {0}")]
    MissingRouteMetadata(&'static str),
    /// The built object does not fit the Job type (a bug).
    #[error("building the retry Job: {0}")]
    Build(#[from] serde_json::Error),
}

/// `alertops-retry-<original cluster id, lowercased>-<attempt>`, DNS-1123; a long or odd id is
/// shortened with a hash of the exact id so that names never collide.
pub fn retry_job_name(original_cluster_id: &str, attempt: u32) -> String {
    let cleaned: String = original_cluster_id
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let cleaned = cleaned.trim_matches('-');
    let exact = cleaned == original_cluster_id.to_ascii_lowercase();
    let suffix = format!("-{attempt}");
    let prefix = "alertops-retry-";
    if exact && !cleaned.is_empty() && prefix.len() + cleaned.len() + suffix.len() <= MAX_JOB_NAME {
        return format!("{prefix}{cleaned}{suffix}");
    }
    let hash = short_hash(original_cluster_id);
    let room = MAX_JOB_NAME - prefix.len() - suffix.len() - hash.len() - 1;
    let head: String = cleaned.chars().take(room).collect();
    let head = head.trim_end_matches('-');
    if head.is_empty() {
        format!("{prefix}{hash}{suffix}")
    } else {
        format!("{prefix}{head}-{hash}{suffix}")
    }
}

/// The command-line arguments of the Job's container (after the binary).
pub fn retry_args(request: &RetryJobRequest<'_>, settings: &RetryJobSettings) -> Vec<String> {
    let route = format!(
        "{}/{}",
        request
            .route
            .metadata
            .namespace
            .as_deref()
            .unwrap_or_default(),
        request.route.metadata.name.as_deref().unwrap_or_default()
    );
    let mut args = vec![
        "retry".to_string(),
        "--route".into(),
        route,
        "--cluster".into(),
        request.cluster_id.to_string(),
        "--attempt".into(),
        request.attempt.to_string(),
        "--user".into(),
        request.user_id.to_string(),
        "--fingerprint".into(),
        request.fingerprint.to_string(),
        "--slack-api-base".into(),
        settings.slack_api_base.clone(),
    ];
    if let Some(posted) = request.posted {
        args.extend([
            "--channel".to_string(),
            posted.channel.clone(),
            "--message-ts".to_string(),
            posted.ts.clone(),
        ]);
    }
    args
}

/// The retry Job for one attempt.
pub fn retry_job(
    request: &RetryJobRequest<'_>,
    settings: &RetryJobSettings,
) -> Result<Job, RetryJobError> {
    let route = request.route;
    let namespace = route
        .metadata
        .namespace
        .clone()
        .ok_or(RetryJobError::MissingRouteMetadata("metadata.namespace"))?;
    let route_name = route
        .metadata
        .name
        .clone()
        .ok_or(RetryJobError::MissingRouteMetadata("metadata.name"))?;
    let uid = route
        .metadata
        .uid
        .clone()
        .ok_or(RetryJobError::MissingRouteMetadata("metadata.uid"))?;
    let name = retry_job_name(request.original_cluster_id, request.attempt);
    let labels = json!({
        "app.kubernetes.io/name": RETRY_APP,
        "app.kubernetes.io/instance": label_value(&route_name),
        "app.kubernetes.io/managed-by": "alertops",
        ORIGINAL_CLUSTER_LABEL: label_value(request.original_cluster_id),
        ATTEMPT_LABEL: request.attempt.to_string(),
    });
    let mut env = vec![
        json!({"name": "ALERTOPS_LOG_FORMAT", "value": "json"}),
        json!({"name": RESPONSE_URL_ENV, "valueFrom": {"secretKeyRef": {
            "name": response_url_secret_name(&name),
            "key": RESPONSE_URL_KEY,
        }}}),
    ];
    if let Some(message) = request.message {
        env.push(json!({"name": SLACK_MESSAGE_ENV, "value": serde_json::to_string(message)?}));
    }
    if let Some(region) = &settings.aws_region {
        env.push(json!({"name": "AWS_REGION", "value": region}));
    }
    let value = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": { REQUESTED_BY_ANNOTATION: request.user_id },
            // Not a controller reference: the route's reconciler must not adopt or prune it.
            "ownerReferences": [{
                "apiVersion": "alertops.dev/v1alpha1",
                "kind": "AlertRoute",
                "name": route_name,
                "uid": uid,
                "controller": false,
                "blockOwnerDeletion": false,
            }],
        },
        "spec": {
            // One pod, never retried: a second pod could start a second cluster.
            "backoffLimit": 0,
            "parallelism": 1,
            "completions": 1,
            "activeDeadlineSeconds": RETRY_ACTIVE_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "serviceAccountName": settings
                        .service_account
                        .clone()
                        .filter(|n| !n.is_empty())
                        // The consumer's ServiceAccount may already read the route, its Slack
                        // secret and EMR; the retry runs as it.
                        .unwrap_or_else(|| consumer_name(&route_name)),
                    "restartPolicy": "Never",
                    "securityContext": pod_security_context(),
                    "containers": [{
                        "name": RETRY_CONTAINER,
                        "image": settings.image,
                        "imagePullPolicy": settings.image_pull_policy,
                        "args": retry_args(request, settings),
                        "env": env,
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"memory": "256Mi"},
                        },
                        "securityContext": container_security_context(),
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    });
    Ok(serde_json::from_value(value)?)
}

/// Name of the Secret holding a retry Job's response URL.
pub fn response_url_secret_name(job_name: &str) -> String {
    format!("{job_name}-response-url")
}

/// The Secret holding the response URL of `job` (as created, with its uid). It is owned by the
/// Job, so it is deleted with it (at the Job's TTL at the latest); the pod waits for it to exist
/// before its container starts. Only principals that may read Secrets in the namespace (the
/// route's consumer, which already reads the route's Slack credentials) can read it.
pub fn response_url_secret(
    job: &Job,
    response_url: &str,
) -> Result<k8s_openapi::api::core::v1::Secret, RetryJobError> {
    let name = job
        .metadata
        .name
        .as_deref()
        .ok_or(RetryJobError::MissingRouteMetadata("Job metadata.name"))?;
    let uid = job
        .metadata
        .uid
        .as_deref()
        .ok_or(RetryJobError::MissingRouteMetadata("Job metadata.uid"))?;
    let value = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": response_url_secret_name(name),
            "namespace": job.metadata.namespace,
            "labels": job.metadata.labels,
            "ownerReferences": [{
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": name,
                "uid": uid,
                "controller": false,
                "blockOwnerDeletion": false,
            }],
        },
        "type": "Opaque",
        "stringData": { RESPONSE_URL_KEY: response_url },
    });
    Ok(serde_json::from_value(value)?)
}

/// A label value (at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends).
fn label_value(text: &str) -> Value {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    Value::String(
        cleaned
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::AlertKind;

    fn route() -> AlertRoute {
        serde_json::from_value(json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": "emr-failures", "namespace": "data", "uid": "uid-1"},
            "spec": {"sources": [{"alarmPolicy": "emr"}], "slack": {"channel": "C1"}},
        }))
        .unwrap()
    }

    fn settings() -> RetryJobSettings {
        RetryJobSettings {
            image: "ghcr.io/alertops/alertops:1.0".into(),
            slack_api_base: "https://slack.com/api/".into(),
            aws_region: Some("eu-west-1".into()),
            ttl_seconds_after_finished: 604_800,
            service_account: None,
            image_pull_policy: None,
        }
    }

    #[test]
    fn job_names_depend_only_on_the_original_cluster_and_attempt() {
        assert_eq!(
            retry_job_name("j-2AXXXXXXGAPLF", 2),
            "alertops-retry-j-2axxxxxxgaplf-2"
        );
        assert_ne!(retry_job_name("j-ABC", 1), retry_job_name("j-ABC", 2));
        let odd = retry_job_name("J_weird/ID", 1);
        assert!(odd.starts_with("alertops-retry-j-weird-id-"), "{odd}");
        assert_ne!(
            odd,
            retry_job_name("J-weird-ID", 1),
            "cleaning must not merge ids"
        );
        let long = retry_job_name(&"j".repeat(200), 10);
        assert!(long.len() <= 63, "{long}");
        assert!(long.ends_with("-10"));
        for name in [odd, long, retry_job_name("---", 1)] {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{name}"
            );
            assert!(!name.ends_with('-') && !name.starts_with('-'));
        }
    }

    #[test]
    fn the_job_runs_retry_once_as_the_consumer_non_root() {
        let fingerprint = Fingerprint::of(AlertKind::EmrClusterStateChange, &["j-2"]);
        let posted = PostedMessage {
            channel: "C1".into(),
            ts: "1.2".into(),
        };
        let message = SlackMessage {
            text: "failed".into(),
            blocks: vec![],
        };
        let request = RetryJobRequest {
            route: &route(),
            cluster_id: "j-2",
            original_cluster_id: "j-1",
            attempt: 2,
            user_id: "U1",
            fingerprint: &fingerprint,
            response_url: "https://hooks.slack.com/actions/x",
            message: Some(&message),
            posted: Some(&posted),
        };
        let job = retry_job(&request, &settings()).unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some("alertops-retry-j-1-2"));
        assert_eq!(job.metadata.namespace.as_deref(), Some("data"));
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("AlertRoute", "uid-1", Some(false))
        );
        let spec = job.spec.clone().unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.ttl_seconds_after_finished, Some(604_800));
        let pod = spec.template.spec.unwrap();
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("emr-failures-consumer")
        );
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
        let container = &pod.containers[0];
        assert_eq!(
            container.args.as_ref().unwrap().join(" "),
            format!(
                "retry --route data/emr-failures --cluster j-2 --attempt 2 --user U1 --fingerprint {fingerprint} --slack-api-base https://slack.com/api/ --channel C1 --message-ts 1.2"
            )
        );
        let env: Vec<_> = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .filter_map(|e| Some((e.name.as_str(), e.value.clone()?)))
            .collect();
        // The response URL is a credential: the Job spec (readable by anyone who may list Jobs,
        // and shown by `kubectl describe`) only references the Secret that holds it.
        let job_json = serde_json::to_string(&job).unwrap();
        assert!(!job_json.contains("hooks.slack.com"), "{job_json}");
        let reference = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == RESPONSE_URL_ENV)
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.secret_key_ref.as_ref())
            .expect("the response URL comes from a Secret");
        assert_eq!(reference.name, "alertops-retry-j-1-2-response-url");
        assert_eq!(reference.key, RESPONSE_URL_KEY);
        let mut created = job.clone();
        created.metadata.uid = Some("job-uid".into());
        let secret = response_url_secret(&created, request.response_url).unwrap();
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some(reference.name.as_str())
        );
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Job", "job-uid"),
            "the Secret goes with the Job"
        );
        assert_eq!(
            secret.string_data.as_ref().unwrap()[RESPONSE_URL_KEY],
            "https://hooks.slack.com/actions/x"
        );
        assert!(env.contains(&(SLACK_MESSAGE_ENV, r#"{"text":"failed","blocks":[]}"#.into())));
        assert!(env.contains(&("AWS_REGION", "eu-west-1".into())));
        assert!(
            !container
                .args
                .as_ref()
                .unwrap()
                .iter()
                .any(|a| a.contains("hooks.slack.com")),
            "the response URL stays out of the command line"
        );

        let shared = RetryJobSettings {
            service_account: Some("alertops-workload".into()),
            image_pull_policy: Some("Always".into()),
            ..settings()
        };
        let pod = retry_job(&request, &shared)
            .unwrap()
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        assert_eq!(
            pod.service_account_name.as_deref(),
            Some("alertops-workload"),
            "the chart binds its Role to the shared ServiceAccount"
        );
        assert_eq!(
            pod.containers[0].image_pull_policy.as_deref(),
            Some("Always")
        );
    }

    #[test]
    fn a_route_without_uid_cannot_own_a_job() {
        let mut unsaved = route();
        unsaved.metadata.uid = None;
        let fingerprint = Fingerprint::from_raw("f");
        let request = RetryJobRequest {
            route: &unsaved,
            cluster_id: "j-1",
            original_cluster_id: "j-1",
            attempt: 1,
            user_id: "U1",
            fingerprint: &fingerprint,
            response_url: "u",
            message: None,
            posted: None,
        };
        assert!(matches!(
            retry_job(&request, &settings()),
            Err(RetryJobError::MissingRouteMetadata("metadata.uid"))
        ));
    }
}
