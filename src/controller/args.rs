//! The flags of `alertops controller`, and the operator settings they make.

use std::time::Duration;

use clap::Args;

use crate::reconcile::OperatorSettings;

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
    /// The Secret key holding the master key of Slack buttons, as `NAMESPACE/NAME/KEY`: the
    /// controller derives each route's key from it into a Secret of the route's namespace (the
    /// interaction server gets the master from the same Secret as environment).
    #[arg(long, env = "ALERTOPS_ACTION_KEY_SECRET")]
    pub action_key_secret: Option<String>,
    /// Base URL of Slack's Web API (or a Slack-compatible endpoint) for consumers and digests.
    #[arg(long, env = "ALERTOPS_SLACK_API_BASE")]
    pub slack_api_base: Option<String>,
    /// AWS endpoint of this process's SDK, passed on to the workloads (a test cluster's AWS
    /// emulator); unset uses AWS itself.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// Comma-separated ARN patterns (`*` wildcards) of the SNS topics that routes and digests
    /// may name as `topicArn` sources (the chart's `sources.allowedTopicArns`); an empty value
    /// allows none. Unset allows any.
    #[arg(long, env = "ALERTOPS_ALLOWED_SOURCE_TOPICS")]
    pub allowed_source_topics: Option<String>,
    /// Comma-separated namespaces where routes and digests may get workloads (the chart's
    /// `workloads.namespaces`); an empty value allows none, and unset allows every namespace.
    #[arg(long, env = "ALERTOPS_ALLOWED_NAMESPACES", value_name = "NS,NS")]
    pub allowed_namespaces: Option<String>,
    /// Seconds the consumers hold alerts through a Slack outage before handing them back to
    /// the queue's dead-letter path (at most 11 hours: SQS keeps a received message invisible
    /// for at most 12); the routes' queues keep messages at least this long plus an hour.
    #[arg(
        long,
        env = crate::consume::OUTAGE_TOLERANCE_ENV,
        default_value_t = 7200,
        value_parser = clap::value_parser!(u64).range(0..=crate::consume::MAX_OUTAGE_TOLERANCE.as_secs())
    )]
    pub slack_outage_tolerance_seconds: u64,
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
        settings.aws_service_endpoints = crate::workloads::aws_service_endpoints(std::env::vars());
        settings.allowed_source_topics = self.allowed_source_topics.as_ref().map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        });
        // Unset allows every namespace; set but empty allows none (fail closed).
        settings.allowed_namespaces = self.allowed_namespaces.as_deref().map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        });
        settings.slack_outage_tolerance = Duration::from_secs(self.slack_outage_tolerance_seconds);
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
    /// AWS rate limits.
    #[command(flatten)]
    pub aws: crate::aws::AwsArgs,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        operator: OperatorArgs,
    }

    fn settings(extra: &[&str]) -> OperatorSettings {
        let mut argv = vec!["alertops", "--cluster-id", "prod"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv)
            .unwrap()
            .operator
            .settings()
            .unwrap()
    }

    #[test]
    fn allowed_namespaces_are_comma_separated_and_empty_allows_none() {
        assert_eq!(
            settings(&[]).allowed_namespaces,
            None,
            "unset: every namespace"
        );
        assert_eq!(
            settings(&["--allowed-namespaces", " team-a, team-b ,"]).allowed_namespaces,
            Some(["team-a".to_string(), "team-b".to_string()].into())
        );
        assert_eq!(
            settings(&["--allowed-namespaces", ""]).allowed_namespaces,
            Some(Default::default()),
            "an empty value allows none"
        );
    }
}
