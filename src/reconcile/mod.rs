//! Reconcilers: for each resource, validate → build the desired state → observe → plan → execute
//! → write status, through one skeleton ([`lifecycle`]). Validation, building and planning are
//! pure; AWS is reached through the gateway ([`crate::aws::ControllerAws`]), Kubernetes through
//! [`crate::k8s::ClusterApi`].

pub mod alarm_policy;
pub mod alert_route;
pub(crate) mod conditions;
pub mod digest_schedule;
pub(crate) mod lifecycle;
pub(crate) mod outcome;
pub(crate) mod queues;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::controller::Action;

use crate::aws::{AwsError, ControllerAws};
use crate::k8s::{ClusterApi, ClusterError, NamespacedResource, SecretLocation};

/// Finalizer every alertops resource carries while it owns something in AWS.
pub const FINALIZER: &str = "alertops.dev/cleanup";

/// Settings of the controller that every reconciler shares.
#[derive(Clone, Debug)]
pub struct OperatorSettings {
    /// Identifies this Kubernetes cluster in AWS names and ownership tags, so two clusters sharing
    /// an account never touch each other's resources. Lowercase letters, digits and dashes.
    pub cluster_id: String,
    /// How often a Ready resource is compared with AWS again, to repair drift.
    pub resync_interval: Duration,
    /// Container image of the workloads alertops runs for resources (consumers, digest jobs):
    /// the same `alertops` binary as the controller.
    pub workload_image: String,
    /// Annotations put on the service accounts of those workloads, e.g.
    /// `eks.amazonaws.com/role-arn` for IAM roles for service accounts.
    pub service_account_annotations: BTreeMap<String, String>,
    /// One ServiceAccount name shared by the workloads of every namespace (the Helm chart's
    /// `workloads.serviceAccount.name`, which its RoleBindings name). `None` gives each
    /// workload its own ServiceAccount, owned by its resource.
    pub workload_service_account: Option<String>,
    /// `imagePullPolicy` of the workloads' containers; Kubernetes' default when `None`.
    pub workload_image_pull_policy: Option<String>,
    /// Where the master key of Slack buttons is, as `NAMESPACE/NAME/KEY` of a Secret (the
    /// operator's own namespace). The controller derives each route's key from it and writes
    /// that into a Secret owned by the route, which the consumer reads; the master itself
    /// reaches only the controller and the interaction server.
    pub action_key_secret: Option<String>,
    /// Base URL of Slack's Web API (or a Slack-compatible endpoint) for consumers and digests;
    /// their own default (Slack) when `None`.
    pub slack_api_base: Option<String>,
    /// `AWS_ENDPOINT_URL` passed on to the workloads, so they reach the AWS endpoint the
    /// controller reaches (a test cluster's emulator).
    pub aws_endpoint_url: Option<String>,
    /// `AWS_ENDPOINT_URL_<SERVICE>` variables passed on to the workloads (those the controller
    /// was given), so they reach each service where the controller does.
    pub aws_service_endpoints: BTreeMap<String, String>,
    /// `ALERTOPS_AWS_RATE_LIMITS` passed on to the workloads (the controller's own
    /// `--aws-rate-limits`), so a raised quota applies to them too.
    pub aws_rate_limits: Option<String>,
    /// ARN patterns (`*` wildcards) of the SNS topics routes and digests may name as `topicArn`
    /// sources; `None` admits any (the local mode), an empty list none. AlarmPolicy sources of
    /// the resource's own namespace are always allowed.
    pub allowed_source_topics: Option<Vec<String>>,
    /// Namespaces where AlertRoutes and DigestSchedules may have workloads (the chart's
    /// `workloads.namespaces`): `None` allows every namespace (the local mode, tests); `Some`
    /// allows only those, and an empty set allows none. A resource elsewhere gets
    /// [`REASON_NAMESPACE_NOT_ALLOWED`] and nothing is created for it, neither in AWS nor in
    /// Kubernetes, because a workload there would run with the workload IAM role and keys.
    pub allowed_namespaces: Option<BTreeSet<String>>,
    /// How long the consumers hold alerts through a Slack outage (the chart's
    /// `consumer.slackOutageToleranceSeconds`), passed to each consumer; the route's queue keeps
    /// messages at least this long plus an hour, so none expires while it is held back.
    pub slack_outage_tolerance: Duration,
}

/// Ready reason of a route or digest in a namespace the operator does not serve.
pub const REASON_NAMESPACE_NOT_ALLOWED: &str = "NamespaceNotAllowed";

/// The image of the workloads when none is configured: this build's own release image.
pub fn default_workload_image() -> String {
    format!("ghcr.io/alertops/alertops:{}", env!("CARGO_PKG_VERSION"))
}

impl OperatorSettings {
    /// The parameters of the workloads these settings describe, in `aws_region`.
    pub fn workload_params(&self, aws_region: Option<String>) -> crate::workloads::WorkloadParams {
        crate::workloads::WorkloadParams {
            image: self.workload_image.clone(),
            service_account_annotations: self.service_account_annotations.clone(),
            aws_region,
            cluster_id: self.cluster_id.clone(),
            shared_service_account: self
                .workload_service_account
                .clone()
                .filter(|n| !n.is_empty()),
            image_pull_policy: self.workload_image_pull_policy.clone(),
            buttons_signed: self
                .action_key_secret
                .as_deref()
                .is_some_and(|l| !l.is_empty()),
            slack_api_base: self.slack_api_base.clone(),
            aws_endpoint_url: self.aws_endpoint_url.clone(),
            aws_service_endpoints: self.aws_service_endpoints.clone(),
            slack_outage_tolerance_seconds: self.slack_outage_tolerance.as_secs(),
            aws_rate_limits: self.aws_rate_limits.clone(),
        }
    }

    /// Settings with defaults: resync every 10 minutes, [`default_workload_image`], no
    /// service-account annotations.
    pub fn new(cluster_id: impl Into<String>) -> Self {
        OperatorSettings {
            cluster_id: cluster_id.into(),
            resync_interval: Duration::from_secs(600),
            workload_image: default_workload_image(),
            service_account_annotations: BTreeMap::new(),
            workload_service_account: None,
            workload_image_pull_policy: None,
            action_key_secret: None,
            slack_api_base: None,
            aws_endpoint_url: None,
            aws_service_endpoints: BTreeMap::new(),
            aws_rate_limits: None,
            allowed_source_topics: None,
            allowed_namespaces: None,
            slack_outage_tolerance: crate::consume::ConsumerOptions::default()
                .slack_outage_tolerance,
        }
    }

    /// Why workloads may not be created in `namespace`, or `None` when they may.
    pub fn namespace_refusal(&self, namespace: &str) -> Option<String> {
        let allowed = self.allowed_namespaces.as_ref()?;
        if allowed.contains(namespace) {
            return None;
        }
        Some(format!(
            "namespace {namespace:?} is not among the namespaces alertops serves ({}); add it to the chart value workloads.namespaces",
            if allowed.is_empty() {
                "none is allowed".to_string()
            } else {
                allowed.iter().cloned().collect::<Vec<_>>().join(", ")
            }
        ))
    }

    /// Checks the cluster id, which ends up in AWS names.
    pub fn validate(&self) -> Result<(), String> {
        let id = &self.cluster_id;
        let ok = !id.is_empty()
            && id.len() <= 32
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !id.starts_with('-');
        if !ok {
            return Err(format!(
                "cluster id {id:?} must be 1-32 lowercase letters, digits or dashes (it is part of AWS resource names)"
            ));
        }
        if let Some(location) = &self.action_key_secret {
            SecretLocation::parse(location)?;
        }
        if let Some(policy) = &self.workload_image_pull_policy
            && !["Always", "IfNotPresent", "Never"].contains(&policy.as_str())
        {
            return Err(format!(
                "image pull policy {policy:?} must be Always, IfNotPresent or Never"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    #[test]
    fn secret_locations_are_namespace_name_key() {
        let location = SecretLocation::parse("alertops-system/alertops-action-key/key").unwrap();
        assert_eq!(location.namespace, "alertops-system");
        assert_eq!(
            location.to_string(),
            "alertops-system/alertops-action-key/key"
        );
        for bad in ["", "a/b", "a/b/c/d", "a//c", "/b/c"] {
            assert!(
                SecretLocation::parse(bad).is_err(),
                "{bad:?} must be refused"
            );
        }
        let mut settings = OperatorSettings::new("prod");
        settings.action_key_secret = Some("nope".into());
        assert!(settings.validate().is_err());
        settings.action_key_secret = None;
        settings.workload_image_pull_policy = Some("Sometimes".into());
        assert!(settings.validate().is_err());
    }
}

/// What every reconcile gets: the cluster, AWS, settings, and per-object failure counts for backoff.
pub struct Context<C> {
    /// The narrow interface to Kubernetes.
    pub cluster: C,
    /// The AWS gateway: the SDK clients in a cluster, [`crate::aws::fake::FakeAws`] in unit tests.
    pub aws: Arc<dyn ControllerAws>,
    /// Controller settings.
    pub settings: OperatorSettings,
    /// Reconcile counters and durations.
    pub metrics: crate::telemetry::ReconcileMetrics,
    failures: Mutex<HashMap<String, u32>>,
}

impl<C> Context<C> {
    /// A context.
    pub fn new(cluster: C, aws: impl ControllerAws + 'static, settings: OperatorSettings) -> Self {
        Context {
            cluster,
            aws: Arc::new(aws),
            settings,
            metrics: crate::telemetry::ReconcileMetrics::default(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The same context, recording into the given metrics.
    pub fn with_metrics(mut self, metrics: crate::telemetry::ReconcileMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Forgets the failures of an object after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().expect("failure counts").remove(key);
    }

    /// Backoff after a failure: exponential from 5 s to 5 min, per object. Terminal errors wait
    /// the longest (the spec or IAM must change; a spec change triggers a reconcile anyway).
    pub fn failed(&self, key: &str, error: &ReconcileError) -> Action {
        if error.is_terminal() {
            return Action::requeue(Duration::from_secs(300));
        }
        self.backoff(key)
    }

    /// The same exponential backoff for a reconcile that succeeded but must look again soon,
    /// e.g. while a source it depends on is not ready yet.
    pub fn backoff(&self, key: &str) -> Action {
        let mut failures = self.failures.lock().expect("failure counts");
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        let secs = 5u64.saturating_mul(1 << (*n - 1).min(6)).min(300);
        Action::requeue(Duration::from_secs(secs))
    }
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// AWS failed or refused.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Cluster(#[from] ClusterError),
    /// An owned Kubernetes object could not be built.
    #[error(transparent)]
    Workload(#[from] crate::workloads::WorkloadError),
    /// The master button key cannot be read or used (the key itself is never in the message).
    #[error("button-signing master key {location}: {problem}")]
    ActionKey {
        /// `NAMESPACE/NAME/KEY` of the master key's Secret.
        location: String,
        /// What is wrong.
        problem: String,
    },
    /// The object has no namespace (all alertops resources are namespaced).
    #[error("{kind} {name} has no namespace")]
    MissingNamespace {
        /// Kind.
        kind: &'static str,
        /// Name.
        name: String,
    },
}

impl ReconcileError {
    /// Whether retrying soon cannot help.
    pub fn is_terminal(&self) -> bool {
        match self {
            ReconcileError::Aws(e) => e.is_terminal(),
            // The chart creates the Secret; it may simply not exist yet.
            ReconcileError::Cluster(_) | ReconcileError::ActionKey { .. } => false,
            ReconcileError::Workload(_) | ReconcileError::MissingNamespace { .. } => true,
        }
    }

    /// A short label for metrics and events.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileError::Aws(e) => e.kind().as_str(),
            ReconcileError::Cluster(e) => e.category(),
            ReconcileError::ActionKey { .. } => "action_key",
            ReconcileError::Workload(_) | ReconcileError::MissingNamespace { .. } => {
                "invalid_object"
            }
        }
    }
}

/// The Ready reason for an AWS error: what kind of trouble, for `kubectl get -o wide`.
pub(crate) fn aws_reason(error: &AwsError) -> &'static str {
    use crate::aws::AwsErrorKind::*;
    match error.kind() {
        Throttled => "AwsThrottled",
        NotFound | Service | Dispatch => "AwsUnavailable",
        AccessDenied => "AwsAccessDenied",
        InvalidRequest => "AwsRejected",
    }
}

/// Namespace and name of a resource (every alertops resource is namespaced).
pub(crate) fn namespaced_name<K: kube::Resource>(
    obj: &K,
    kind: &'static str,
) -> Result<(String, String), ReconcileError> {
    let name = obj.meta().name.clone().unwrap_or_default();
    match obj.meta().namespace.clone() {
        Some(namespace) => Ok((namespace, name)),
        None => Err(ReconcileError::MissingNamespace { kind, name }),
    }
}

/// Whether the object carries [`FINALIZER`].
pub(crate) fn has_finalizer<K: kube::Resource>(obj: &K) -> bool {
    obj.meta()
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)
}

/// The object with [`FINALIZER`], added before anything is made in AWS so that a deletion always
/// goes through the cleanup.
pub(crate) async fn with_finalizer<C: ClusterApi, K: NamespacedResource>(
    cluster: &C,
    obj: std::sync::Arc<K>,
) -> Result<std::sync::Arc<K>, ReconcileError> {
    if has_finalizer(&*obj) {
        Ok(obj)
    } else {
        Ok(std::sync::Arc::new(
            cluster.add_finalizer(&*obj, FINALIZER).await?,
        ))
    }
}

/// Writes `status` unless the object already has exactly that status (a resync writes nothing).
pub(crate) async fn write_status<C: ClusterApi, K: NamespacedResource, S>(
    cluster: &C,
    obj: &K,
    previous: Option<&S>,
    status: &S,
) -> Result<(), ReconcileError>
where
    S: serde::Serialize + PartialEq,
{
    if previous == Some(status) {
        return Ok(());
    }
    let value = serde_json::to_value(status).map_err(ClusterError::from)?;
    cluster.patch_status(obj, value).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_must_fit_aws_names() {
        let mut s = OperatorSettings::new("prod-eks-1");
        assert!(s.validate().is_ok());
        for bad in ["", "Prod", "a_b", "-x", &"a".repeat(33)] {
            s.cluster_id = bad.to_string();
            assert!(s.validate().is_err(), "{bad:?} accepted");
        }
    }
}
