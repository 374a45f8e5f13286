//! EMR in our own terms: describe a cluster (with its tags), find the clusters of one name created
//! since a time, read every page of its instance fleets or groups, steps and bootstrap actions,
//! and submit a new cluster. The cluster shapes
//! stay the SDK's: the retry's rebuild is a pure translation from one to the other.

use aws_sdk_emr::operation::run_job_flow::RunJobFlowInput;
use aws_sdk_emr::types::{Cluster, Command, InstanceFleet, InstanceGroup, StepSummary};

use super::{AwsApi, AwsClients, AwsError, AwsResultExt};
use crate::resources::Tags;

/// DescribeCluster: the cluster, or `None` when EMR reports it not found. (EMR answers
/// `InvalidRequestException` for ids it never knew: that stays an error, for the caller to judge.)
pub async fn describe_cluster(
    aws: &AwsClients,
    cluster_id: &str,
) -> Result<Option<Cluster>, AwsError> {
    aws.acquire(AwsApi::Emr).await;
    match aws
        .emr
        .describe_cluster()
        .cluster_id(cluster_id)
        .send()
        .await
    {
        Ok(output) => Ok(output.cluster),
        Err(e) => {
            let e = AwsError::from_sdk("DescribeCluster", e);
            if e.is_not_found() { Ok(None) } else { Err(e) }
        }
    }
}

/// The clusters named `name` that were created at or after `created_after`, each as
/// DescribeCluster reports it (with its tags and state), in any state.
///
/// ListClusters filters by creation time on the server and returns summaries only (no tags), 50 a
/// page; the name is filtered here before any DescribeCluster, so the calls made are the pages of
/// clusters created since `created_after` plus one DescribeCluster per cluster of that name. A
/// cluster that disappears between the two calls is skipped.
pub async fn clusters_named_since(
    aws: &AwsClients,
    name: &str,
    created_after: aws_smithy_types::DateTime,
) -> Result<Vec<Cluster>, AwsError> {
    let mut ids = Vec::new();
    let mut marker = None;
    loop {
        aws.acquire(AwsApi::Emr).await;
        let page = aws
            .emr
            .list_clusters()
            .created_after(created_after)
            .set_marker(marker)
            .send()
            .await
            .aws("ListClusters")?;
        ids.extend(
            page.clusters()
                .iter()
                .filter(|c| c.name() == Some(name))
                .filter_map(|c| c.id().map(str::to_string)),
        );
        marker = page.marker;
        if marker.is_none() {
            break;
        }
    }
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(cluster) = describe_cluster(aws, &id).await? {
            found.push(cluster);
        }
    }
    Ok(found)
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

/// Every item of an EMR listing, page after page by `Marker`; each page takes its rate permit.
async fn every_page<T, F, Fut>(aws: &AwsClients, mut page: F) -> Result<Vec<T>, AwsError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), AwsError>>,
{
    let mut found = Vec::new();
    let mut marker = None;
    loop {
        aws.acquire(AwsApi::Emr).await;
        let (items, next) = page(marker).await?;
        found.extend(items);
        marker = next;
        if marker.is_none() {
            return Ok(found);
        }
    }
}

/// Every instance fleet of a cluster (all pages).
pub async fn instance_fleets(
    aws: &AwsClients,
    cluster_id: &str,
) -> Result<Vec<InstanceFleet>, AwsError> {
    every_page(aws, |marker| async move {
        let page = aws
            .emr
            .list_instance_fleets()
            .cluster_id(cluster_id)
            .set_marker(marker)
            .send()
            .await
            .aws("ListInstanceFleets")?;
        Ok((page.instance_fleets.unwrap_or_default(), page.marker))
    })
    .await
}

/// Every instance group of a cluster (all pages).
pub async fn instance_groups(
    aws: &AwsClients,
    cluster_id: &str,
) -> Result<Vec<InstanceGroup>, AwsError> {
    every_page(aws, |marker| async move {
        let page = aws
            .emr
            .list_instance_groups()
            .cluster_id(cluster_id)
            .set_marker(marker)
            .send()
            .await
            .aws("ListInstanceGroups")?;
        Ok((page.instance_groups.unwrap_or_default(), page.marker))
    })
    .await
}

/// Every step of a cluster (all pages).
pub async fn steps(aws: &AwsClients, cluster_id: &str) -> Result<Vec<StepSummary>, AwsError> {
    every_page(aws, |marker| async move {
        let page = aws
            .emr
            .list_steps()
            .cluster_id(cluster_id)
            .set_marker(marker)
            .send()
            .await
            .aws("ListSteps")?;
        Ok((page.steps.unwrap_or_default(), page.marker))
    })
    .await
}

/// Every bootstrap action of a cluster (all pages).
pub async fn bootstrap_actions(
    aws: &AwsClients,
    cluster_id: &str,
) -> Result<Vec<Command>, AwsError> {
    every_page(aws, |marker| async move {
        let page = aws
            .emr
            .list_bootstrap_actions()
            .cluster_id(cluster_id)
            .set_marker(marker)
            .send()
            .await
            .aws("ListBootstrapActions")?;
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
    aws.acquire(AwsApi::Emr).await;
    let output = aws
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
        .set_monitoring_configuration(monitoring_configuration)
        .send()
        .await
        .aws("RunJobFlow")?;
    Ok(output.job_flow_id.unwrap_or_default())
}
