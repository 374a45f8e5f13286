//! EMR in our own terms: describe a cluster (with its tags), find the clusters of one name created
//! since a time, read every page of its instance fleets or groups, steps and bootstrap actions,
//! and submit a new cluster. The cluster shapes
//! stay the SDK's: the retry's rebuild is a pure translation from one to the other.

use aws_sdk_emr::operation::run_job_flow::RunJobFlowInput;
use aws_sdk_emr::types::{Cluster, Command, InstanceFleet, InstanceGroup, StepSummary};

use std::future::Future;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{AwsApi, AwsClients, AwsError};
use crate::resources::Tags;

/// DescribeCluster: the cluster, or `None` when EMR reports it not found. (EMR answers
/// `InvalidRequestException` for ids it never knew: that stays an error, for the caller to judge.)
pub async fn describe_cluster(
    aws: &AwsClients,
    cluster_id: &str,
) -> Result<Option<Cluster>, AwsError> {
    match aws
        .call(AwsApi::Emr, "DescribeCluster", || {
            aws.emr.describe_cluster().cluster_id(cluster_id).send()
        })
        .await
    {
        Ok(output) => Ok(output.cluster),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Most ListClusters pages [`clusters_named_since`] reads (50 clusters a page): the retry's
/// look-up stays bounded in an account that starts thousands of clusters a day.
pub const MAX_CLUSTER_LIST_PAGES: usize = 20;

/// The clusters named `name` that were created at or after `created_after`, each as
/// DescribeCluster reports it (with its tags and state), in any state; `None` when more than
/// `max_pages` pages of clusters were created since (the caller cannot see them all).
///
/// ListClusters filters by creation time on the server and returns summaries only (no tags), 50 a
/// page; the name is filtered here before any DescribeCluster, so the calls made are the pages of
/// clusters created since `created_after` plus one DescribeCluster per cluster of that name. A
/// cluster that disappears between the two calls is skipped.
pub async fn clusters_named_since(
    aws: &AwsClients,
    name: &str,
    created_after: aws_smithy_types::DateTime,
    max_pages: usize,
) -> Result<Option<Vec<Cluster>>, AwsError> {
    let Some(summaries) = every_page(aws, "ListClusters", Some(max_pages), |marker| async move {
        let page = aws
            .emr
            .list_clusters()
            .created_after(created_after)
            .set_marker(marker)
            .send()
            .await?;
        Ok((page.clusters.unwrap_or_default(), page.marker))
    })
    .await?
    else {
        return Ok(None);
    };
    let mut found = Vec::new();
    for id in summaries
        .iter()
        .filter(|c| c.name() == Some(name))
        .filter_map(|c| c.id())
    {
        if let Some(cluster) = describe_cluster(aws, id).await? {
            found.push(cluster);
        }
    }
    Ok(Some(found))
}

/// The tags of a described cluster.
pub fn cluster_tags(cluster: &Cluster) -> Tags {
    cluster
        .tags()
        .iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// Every item of an EMR listing, page after page by `Marker`, each page through
/// [`AwsClients::call`]; `None` when there are more than `max_pages` pages.
async fn every_page<T, F, Fut, E, R>(
    aws: &AwsClients,
    operation: &'static str,
    max_pages: Option<usize>,
    mut page: F,
) -> Result<Option<Vec<T>>, AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let mut found = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..max_pages.unwrap_or(usize::MAX) {
        let (items, next) = aws
            .call(AwsApi::Emr, operation, || page(marker.clone()))
            .await?;
        found.extend(items);
        marker = next;
        if marker.is_none() {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Every page of a listing of one cluster's parts (a cluster has few: no page cap).
async fn every_part<T, F, Fut, E, R>(
    aws: &AwsClients,
    operation: &'static str,
    page: F,
) -> Result<Vec<T>, AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<String>), SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    Ok(every_page(aws, operation, None, page)
        .await?
        .unwrap_or_default())
}

/// Every instance fleet of a cluster (all pages).
pub async fn instance_fleets(
    aws: &AwsClients,
    cluster_id: &str,
) -> Result<Vec<InstanceFleet>, AwsError> {
    every_part(aws, "ListInstanceFleets", |marker| async move {
        let page = aws
            .emr
            .list_instance_fleets()
            .cluster_id(cluster_id)
            .set_marker(marker)
            .send()
            .await?;
        Ok((page.instance_fleets.unwrap_or_default(), page.marker))
    })
    .await
}

/// Every instance group of a cluster (all pages).
pub async fn instance_groups(
    aws: &AwsClients,
    cluster_id: &str,
) -> Result<Vec<InstanceGroup>, AwsError> {
    every_part(aws, "ListInstanceGroups", |marker| async move {
        let page = aws
            .emr
            .list_instance_groups()
            .cluster_id(cluster_id)
            .set_marker(marker)
            .send()
            .await?;
        Ok((page.instance_groups.unwrap_or_default(), page.marker))
    })
    .await
}

/// Every step of a cluster (all pages).
pub async fn steps(aws: &AwsClients, cluster_id: &str) -> Result<Vec<StepSummary>, AwsError> {
    every_part(aws, "ListSteps", |marker| async move {
        let page = aws
            .emr
            .list_steps()
            .cluster_id(cluster_id)
            .set_marker(marker)
            .send()
            .await?;
        Ok((page.steps.unwrap_or_default(), page.marker))
    })
    .await
}

/// Every bootstrap action of a cluster (all pages).
pub async fn bootstrap_actions(
    aws: &AwsClients,
    cluster_id: &str,
) -> Result<Vec<Command>, AwsError> {
    every_part(aws, "ListBootstrapActions", |marker| async move {
        let page = aws
            .emr
            .list_bootstrap_actions()
            .cluster_id(cluster_id)
            .set_marker(marker)
            .send()
            .await?;
        Ok((page.bootstrap_actions.unwrap_or_default(), page.marker))
    })
    .await
}

/// RunJobFlow with every field of `input`; returns the new cluster's id.
pub async fn run_job_flow(aws: &AwsClients, input: RunJobFlowInput) -> Result<String, AwsError> {
    let RunJobFlowInput {
        name,
        log_uri,
        log_encryption_kms_key_id,
        additional_info,
        ami_version,
        release_label,
        instances,
        steps,
        bootstrap_actions,
        supported_products,
        new_supported_products,
        applications,
        configurations,
        visible_to_all_users,
        job_flow_role,
        service_role,
        tags,
        security_configuration,
        auto_scaling_role,
        scale_down_behavior,
        custom_ami_id,
        ebs_root_volume_size,
        repo_upgrade_on_boot,
        kerberos_attributes,
        step_concurrency_level,
        managed_scaling_policy,
        placement_group_configs,
        auto_termination_policy,
        os_release_label,
        ebs_root_volume_iops,
        ebs_root_volume_throughput,
        extended_support,
        monitoring_configuration,
        ..
    } = input;
    let request = aws
        .emr
        .run_job_flow()
        .set_name(name)
        .set_log_uri(log_uri)
        .set_log_encryption_kms_key_id(log_encryption_kms_key_id)
        .set_additional_info(additional_info)
        .set_ami_version(ami_version)
        .set_release_label(release_label)
        .set_instances(instances)
        .set_steps(steps)
        .set_bootstrap_actions(bootstrap_actions)
        .set_supported_products(supported_products)
        .set_new_supported_products(new_supported_products)
        .set_applications(applications)
        .set_configurations(configurations)
        .set_visible_to_all_users(visible_to_all_users)
        .set_job_flow_role(job_flow_role)
        .set_service_role(service_role)
        .set_tags(tags)
        .set_security_configuration(security_configuration)
        .set_auto_scaling_role(auto_scaling_role)
        .set_scale_down_behavior(scale_down_behavior)
        .set_custom_ami_id(custom_ami_id)
        .set_ebs_root_volume_size(ebs_root_volume_size)
        .set_repo_upgrade_on_boot(repo_upgrade_on_boot)
        .set_kerberos_attributes(kerberos_attributes)
        .set_step_concurrency_level(step_concurrency_level)
        .set_managed_scaling_policy(managed_scaling_policy)
        .set_placement_group_configs(placement_group_configs)
        .set_auto_termination_policy(auto_termination_policy)
        .set_os_release_label(os_release_label)
        .set_ebs_root_volume_iops(ebs_root_volume_iops)
        .set_ebs_root_volume_throughput(ebs_root_volume_throughput)
        .set_extended_support(extended_support)
        .set_monitoring_configuration(monitoring_configuration);
    // A throttled RunJobFlow was refused, not run: sending it again cannot start two clusters.
    let output = aws
        .call(AwsApi::Emr, "RunJobFlow", || request.clone().send())
        .await?;
    Ok(output.job_flow_id.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::aws::throttling_endpoint::{single_attempt_clients, throttling_endpoint};

    /// The retry Job's and the consumer's EMR calls, throttled past the SDK's retries, are made
    /// again by our limiter instead of failing the retry or the enrichment.
    #[tokio::test]
    async fn emr_calls_throttled_past_the_sdks_retries_are_made_again() {
        let (endpoint, served) = throttling_endpoint(1, "{}").await;
        let aws = single_attempt_clients(&endpoint).await;
        let described = describe_cluster(&aws, "j-1").await;
        assert!(described.expect("described after the throttle").is_none());
        assert_eq!(served.load(Ordering::SeqCst), 2);

        let (endpoint, served) = throttling_endpoint(1, "{}").await;
        let aws = single_attempt_clients(&endpoint).await;
        let steps = steps(&aws, "j-1").await;
        assert!(steps.expect("listed after the throttle").is_empty());
        assert_eq!(served.load(Ordering::SeqCst), 2);

        let (endpoint, served) = throttling_endpoint(1, r#"{"JobFlowId":"j-2"}"#).await;
        let aws = single_attempt_clients(&endpoint).await;
        let input = RunJobFlowInput::builder()
            .name("c")
            .build()
            .expect("an input");
        let submitted = run_job_flow(&aws, input).await;
        assert_eq!(submitted.expect("submitted after the throttle"), "j-2");
        assert_eq!(served.load(Ordering::SeqCst), 2);
    }

    /// The look-up of a cluster's retries reads at most `max_pages` ListClusters pages and says
    /// so, instead of paging an account's whole history.
    #[tokio::test]
    async fn the_cluster_look_up_stops_at_its_page_cap() {
        let endless = r#"{"Clusters":[{"Id":"j-other","Name":"other"}],"Marker":"more"}"#;
        let (endpoint, served) = throttling_endpoint(0, endless).await;
        let aws = single_attempt_clients(&endpoint).await;
        let since = aws_smithy_types::DateTime::from_secs(0);
        let found = clusters_named_since(&aws, "etl", since, 3).await;
        assert_eq!(found.expect("no AWS error"), None);
        assert_eq!(served.load(Ordering::SeqCst), 3);

        let last = r#"{"Clusters":[{"Id":"j-other","Name":"other"}]}"#;
        let (endpoint, served) = throttling_endpoint(0, last).await;
        let aws = single_attempt_clients(&endpoint).await;
        let found = clusters_named_since(&aws, "etl", since, 3).await;
        assert_eq!(found.expect("no AWS error"), Some(Vec::new()));
        assert_eq!(
            served.load(Ordering::SeqCst),
            1,
            "no DescribeCluster of another name"
        );
    }
}
