//! The failed cluster's definition, rebuilt as a `RunJobFlow` request: a pure function of what
//! `DescribeCluster`, `ListInstanceGroups` or `ListInstanceFleets`, `ListSteps` and
//! `ListBootstrapActions` returned.
//!
//! What AWS does not return cannot be rebuilt: Kerberos passwords (so Kerberos clusters are not
//! reproduced), managed-scaling and auto-termination policies (separate APIs, not read here).

use aws_sdk_emr::operation::run_job_flow::RunJobFlowInput;
use aws_sdk_emr::types::{
    Application, AutoScalingPolicy, AutoScalingPolicyDescription, BootstrapActionConfig, Cluster,
    Command, EbsBlockDevice, EbsBlockDeviceConfig, EbsConfiguration, Ec2InstanceAttributes,
    HadoopJarStepConfig, InstanceCollectionType, InstanceFleet, InstanceFleetConfig, InstanceGroup,
    InstanceGroupConfig, InstanceRoleType, InstanceTypeConfig, InstanceTypeSpecification,
    JobFlowInstancesConfig, KeyValue, MarketType, PlacementType, ScriptBootstrapActionConfig,
    StepConfig, StepSummary, Tag,
};

use crate::alert::{ORIGINAL_CLUSTER_TAG, RETRY_ATTEMPT_TAG};

/// Placeholder EMR replaces with the cluster's id in auto-scaling alarm dimensions.
const CLUSTER_ID_PLACEHOLDER: &str = "${emr.clusterId}";
/// Tag keys with this prefix belong to AWS and are refused by `RunJobFlow`.
const AWS_TAG_PREFIX: &str = "aws:";

/// Everything read about the failed cluster.
#[derive(Clone, Debug)]
pub struct ClusterDefinition {
    /// `DescribeCluster`'s cluster.
    pub cluster: Cluster,
    /// `ListInstanceGroups`, for instance-group clusters.
    pub instance_groups: Vec<InstanceGroup>,
    /// `ListInstanceFleets`, for instance-fleet clusters.
    pub instance_fleets: Vec<InstanceFleet>,
    /// `ListSteps`, in the order AWS lists them (newest first).
    pub steps: Vec<StepSummary>,
    /// `ListBootstrapActions`.
    pub bootstrap_actions: Vec<Command>,
}

impl Default for ClusterDefinition {
    fn default() -> Self {
        ClusterDefinition {
            cluster: Cluster::builder().build(),
            instance_groups: Vec::new(),
            instance_fleets: Vec::new(),
            steps: Vec::new(),
            bootstrap_actions: Vec::new(),
        }
    }
}

/// Why a definition cannot be turned into a request.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum RebuildError {
    /// The cluster has no name (`RunJobFlow` requires one).
    #[error("cluster {0} has no name")]
    MissingName(String),
    /// Neither instance groups nor instance fleets were found.
    #[error("cluster {0} has neither instance groups nor instance fleets")]
    NoInstances(String),
    /// An instance group has a type `RunJobFlow` does not accept as a role.
    #[error("instance group {group} of cluster {cluster} has unknown type {kind:?}")]
    UnknownGroupType {
        /// The cluster.
        cluster: String,
        /// The group's id or name.
        group: String,
        /// Its type.
        kind: String,
    },
    /// The SDK refused to build the request.
    #[error("building the RunJobFlow request: {0}")]
    Build(String),
}

/// Whether a cluster uses instance fleets rather than instance groups.
pub fn uses_instance_fleets(cluster: &Cluster) -> bool {
    matches!(
        cluster.instance_collection_type(),
        Some(InstanceCollectionType::InstanceFleet)
    )
}

/// The `RunJobFlow` request that starts attempt `attempt` of the cluster chain that began with
/// `original_cluster_id`: the failed cluster's definition, tagged with both.
pub fn rebuild_run_job_flow(
    definition: &ClusterDefinition,
    original_cluster_id: &str,
    attempt: u32,
) -> Result<RunJobFlowInput, RebuildError> {
    let cluster = &definition.cluster;
    let cluster_id = cluster.id().unwrap_or("(unknown)").to_string();
    let name = cluster
        .name()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| RebuildError::MissingName(cluster_id.clone()))?;
    let instances = instances(definition, &cluster_id)?;
    let ec2 = cluster.ec2_instance_attributes();

    let mut request = RunJobFlowInput::builder()
        .name(name)
        .set_log_uri(cluster.log_uri().map(str::to_string))
        .set_log_encryption_kms_key_id(cluster.log_encryption_kms_key_id().map(str::to_string))
        .instances(instances)
        .set_steps(Some(steps(&definition.steps)))
        .set_bootstrap_actions(Some(
            definition
                .bootstrap_actions
                .iter()
                .map(bootstrap_action)
                .collect(),
        ))
        .set_applications(Some(
            cluster.applications().iter().map(application).collect(),
        ))
        .set_configurations(non_empty(cluster.configurations().to_vec()))
        .visible_to_all_users(cluster.visible_to_all_users().unwrap_or(true))
        .set_job_flow_role(
            ec2.and_then(|e| e.iam_instance_profile())
                .map(str::to_string),
        )
        .set_service_role(cluster.service_role().map(str::to_string))
        .set_auto_scaling_role(cluster.auto_scaling_role().map(str::to_string))
        .set_security_configuration(cluster.security_configuration().map(str::to_string))
        .set_scale_down_behavior(cluster.scale_down_behavior().cloned())
        .set_custom_ami_id(cluster.custom_ami_id().map(str::to_string))
        .set_ebs_root_volume_size(cluster.ebs_root_volume_size())
        .set_ebs_root_volume_iops(cluster.ebs_root_volume_iops())
        .set_ebs_root_volume_throughput(cluster.ebs_root_volume_throughput())
        .set_repo_upgrade_on_boot(cluster.repo_upgrade_on_boot().cloned())
        .set_step_concurrency_level(cluster.step_concurrency_level())
        .set_placement_group_configs(non_empty(cluster.placement_groups().to_vec()))
        .set_os_release_label(cluster.os_release_label().map(str::to_string))
        .set_monitoring_configuration(cluster.monitoring_configuration().cloned())
        .set_tags(Some(tags(cluster.tags(), original_cluster_id, attempt)));
    // A release label and an AMI version exclude each other; older clusters only have the latter.
    request = match cluster.release_label() {
        Some(label) => request.release_label(label),
        None => request.set_ami_version(cluster.requested_ami_version().map(str::to_string)),
    };
    request
        .build()
        .map_err(|e| RebuildError::Build(e.to_string()))
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn instances(
    definition: &ClusterDefinition,
    cluster_id: &str,
) -> Result<JobFlowInstancesConfig, RebuildError> {
    let cluster = &definition.cluster;
    let fleets = uses_instance_fleets(cluster)
        || (definition.instance_groups.is_empty() && !definition.instance_fleets.is_empty());
    let ec2 = cluster.ec2_instance_attributes();
    let mut config = JobFlowInstancesConfig::builder()
        .set_ec2_key_name(ec2.and_then(|e| e.ec2_key_name()).map(str::to_string))
        .set_keep_job_flow_alive_when_no_steps(cluster.auto_terminate().map(|a| !a))
        .set_termination_protected(cluster.termination_protected())
        .set_unhealthy_node_replacement(cluster.unhealthy_node_replacement());
    if let Some(ec2) = ec2 {
        config = security_groups(config, ec2);
    }
    if fleets {
        if definition.instance_fleets.is_empty() {
            return Err(RebuildError::NoInstances(cluster_id.to_string()));
        }
        let subnets = ec2.map(fleet_subnets).unwrap_or_default();
        if subnets.is_empty() {
            let zones = ec2
                .map(|e| e.requested_ec2_availability_zones().to_vec())
                .unwrap_or_default();
            if !zones.is_empty() {
                config = config.placement(
                    PlacementType::builder()
                        .set_availability_zones(Some(zones))
                        .build(),
                );
            }
        }
        config = config
            .set_ec2_subnet_ids(non_empty(subnets))
            .set_instance_fleets(Some(
                definition
                    .instance_fleets
                    .iter()
                    .map(|f| instance_fleet(f, cluster_id))
                    .collect(),
            ));
    } else {
        if definition.instance_groups.is_empty() {
            return Err(RebuildError::NoInstances(cluster_id.to_string()));
        }
        let subnet = ec2
            .and_then(|e| e.ec2_subnet_id())
            .filter(|s| !s.is_empty());
        if subnet.is_none()
            && let Some(zone) = ec2.and_then(|e| e.ec2_availability_zone())
        {
            config = config.placement(PlacementType::builder().availability_zone(zone).build());
        }
        let groups = definition
            .instance_groups
            .iter()
            .map(|g| instance_group(g, cluster_id))
            .collect::<Result<Vec<_>, _>>()?;
        config = config
            .set_ec2_subnet_id(subnet.map(str::to_string))
            .set_instance_groups(Some(groups));
    }
    Ok(config.build())
}

fn security_groups(
    config: aws_sdk_emr::types::builders::JobFlowInstancesConfigBuilder,
    ec2: &Ec2InstanceAttributes,
) -> aws_sdk_emr::types::builders::JobFlowInstancesConfigBuilder {
    config
        .set_emr_managed_master_security_group(
            ec2.emr_managed_master_security_group().map(str::to_string),
        )
        .set_emr_managed_slave_security_group(
            ec2.emr_managed_slave_security_group().map(str::to_string),
        )
        .set_service_access_security_group(ec2.service_access_security_group().map(str::to_string))
        .set_additional_master_security_groups(non_empty(
            ec2.additional_master_security_groups().to_vec(),
        ))
        .set_additional_slave_security_groups(non_empty(
            ec2.additional_slave_security_groups().to_vec(),
        ))
}

/// The subnets a fleet cluster may use: those requested, else the one it ran in.
fn fleet_subnets(ec2: &Ec2InstanceAttributes) -> Vec<String> {
    let requested = ec2.requested_ec2_subnet_ids().to_vec();
    if !requested.is_empty() {
        return requested;
    }
    ec2.ec2_subnet_id()
        .filter(|s| !s.is_empty())
        .map(|s| vec![s.to_string()])
        .unwrap_or_default()
}

fn instance_group(
    group: &InstanceGroup,
    cluster_id: &str,
) -> Result<InstanceGroupConfig, RebuildError> {
    let kind = group
        .instance_group_type()
        .map(|t| t.as_str())
        .unwrap_or("");
    // Group types and role types share their names (MASTER, CORE, TASK).
    if !InstanceRoleType::values().contains(&kind) {
        return Err(RebuildError::UnknownGroupType {
            cluster: cluster_id.to_string(),
            group: group.id().or(group.name()).unwrap_or("?").to_string(),
            kind: kind.to_string(),
        });
    }
    let role = InstanceRoleType::from(kind);
    let spot = matches!(group.market(), Some(MarketType::Spot));
    Ok(InstanceGroupConfig::builder()
        .set_name(group.name().map(str::to_string))
        .set_market(group.market().cloned())
        .instance_role(role)
        .set_bid_price(group.bid_price().filter(|_| spot).map(str::to_string))
        .set_instance_type(group.instance_type().map(str::to_string))
        .set_instance_count(group.requested_instance_count())
        .set_configurations(non_empty(group.configurations().to_vec()))
        .set_ebs_configuration(ebs_configuration(
            group.ebs_block_devices(),
            group.ebs_optimized(),
        ))
        .set_auto_scaling_policy(
            group
                .auto_scaling_policy()
                .map(|p| auto_scaling_policy(p, cluster_id)),
        )
        .set_custom_ami_id(group.custom_ami_id().map(str::to_string))
        .build())
}

/// EMR lists one device per attached volume; consecutive identical volumes are one configuration
/// with that many volumes per instance.
fn ebs_configuration(
    devices: &[EbsBlockDevice],
    optimized: Option<bool>,
) -> Option<EbsConfiguration> {
    let mut configs: Vec<(aws_sdk_emr::types::VolumeSpecification, i32)> = Vec::new();
    for spec in devices
        .iter()
        .filter_map(EbsBlockDevice::volume_specification)
    {
        match configs.last_mut() {
            Some((last, count)) if last == spec => *count += 1,
            _ => configs.push((spec.clone(), 1)),
        }
    }
    if configs.is_empty() && optimized.is_none() {
        return None;
    }
    let configs = configs
        .into_iter()
        .map(|(spec, count)| {
            EbsBlockDeviceConfig::builder()
                .volume_specification(spec)
                .volumes_per_instance(count)
                .build()
        })
        .collect();
    Some(
        EbsConfiguration::builder()
            .set_ebs_block_device_configs(non_empty(configs))
            .set_ebs_optimized(optimized)
            .build(),
    )
}

/// The policy as it was submitted: alarm dimensions naming the old cluster go back to the
/// placeholder, so the new cluster's alarms watch the new cluster.
fn auto_scaling_policy(
    description: &AutoScalingPolicyDescription,
    cluster_id: &str,
) -> AutoScalingPolicy {
    let mut rules = description.rules().to_vec();
    for rule in &mut rules {
        let dimensions = rule
            .trigger
            .as_mut()
            .and_then(|t| t.cloud_watch_alarm_definition.as_mut())
            .and_then(|d| d.dimensions.as_mut());
        for dimension in dimensions.into_iter().flatten() {
            if dimension.value.as_deref() == Some(cluster_id) {
                dimension.value = Some(CLUSTER_ID_PLACEHOLDER.to_string());
            }
        }
    }
    AutoScalingPolicy::builder()
        .set_constraints(description.constraints().cloned())
        .set_rules(Some(rules))
        .build()
}

fn instance_fleet(fleet: &InstanceFleet, _cluster_id: &str) -> InstanceFleetConfig {
    InstanceFleetConfig::builder()
        .set_name(fleet.name().map(str::to_string))
        .set_instance_fleet_type(fleet.instance_fleet_type().cloned())
        .set_target_on_demand_capacity(fleet.target_on_demand_capacity())
        .set_target_spot_capacity(fleet.target_spot_capacity())
        .set_instance_type_configs(Some(
            fleet
                .instance_type_specifications()
                .iter()
                .map(instance_type_config)
                .collect(),
        ))
        .set_launch_specifications(fleet.launch_specifications().cloned())
        .set_resize_specifications(fleet.resize_specifications().cloned())
        .set_context(fleet.context().map(str::to_string))
        .build()
}

fn instance_type_config(spec: &InstanceTypeSpecification) -> InstanceTypeConfig {
    InstanceTypeConfig::builder()
        .set_instance_type(spec.instance_type().map(str::to_string))
        .set_weighted_capacity(spec.weighted_capacity())
        .set_bid_price(spec.bid_price().map(str::to_string))
        .set_bid_price_as_percentage_of_on_demand_price(
            spec.bid_price_as_percentage_of_on_demand_price(),
        )
        .set_ebs_configuration(ebs_configuration(
            spec.ebs_block_devices(),
            spec.ebs_optimized(),
        ))
        .set_configurations(non_empty(spec.configurations().to_vec()))
        .set_custom_ami_id(spec.custom_ami_id().map(str::to_string))
        .set_priority(spec.priority())
        .build()
}

/// Steps in the order they were added: `ListSteps` lists the newest first, so the list is
/// reversed, then ordered by creation time where AWS gave one.
fn steps(listed: &[StepSummary]) -> Vec<StepConfig> {
    let mut ordered: Vec<&StepSummary> = listed.iter().rev().collect();
    ordered.sort_by_key(|s| {
        s.status()
            .and_then(|st| st.timeline())
            .and_then(|t| t.creation_date_time())
            .copied()
    });
    ordered.into_iter().map(step).collect()
}

fn step(summary: &StepSummary) -> StepConfig {
    let config = summary.config();
    let mut properties: Vec<(&String, &String)> = config
        .and_then(|c| c.properties())
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    // A HashMap has no order; sorted, the request is the same every time.
    properties.sort();
    let jar_step = HadoopJarStepConfig::builder()
        .set_jar(config.and_then(|c| c.jar()).map(str::to_string))
        .set_main_class(config.and_then(|c| c.main_class()).map(str::to_string))
        .set_args(non_empty(
            config.map(|c| c.args().to_vec()).unwrap_or_default(),
        ))
        .set_properties(non_empty(
            properties
                .into_iter()
                .map(|(k, v)| KeyValue::builder().key(k).value(v).build())
                .collect(),
        ))
        .build();
    StepConfig::builder()
        .set_name(summary.name().map(str::to_string))
        .set_action_on_failure(summary.action_on_failure().cloned())
        .hadoop_jar_step(jar_step)
        .build()
}

fn bootstrap_action(command: &Command) -> BootstrapActionConfig {
    BootstrapActionConfig::builder()
        .set_name(command.name().map(str::to_string))
        .script_bootstrap_action(
            ScriptBootstrapActionConfig::builder()
                .set_path(command.script_path().map(str::to_string))
                .set_args(non_empty(command.args().to_vec()))
                .build(),
        )
        .build()
}

/// Name and arguments: with a release label the version follows from it and may not be given.
fn application(app: &Application) -> Application {
    Application::builder()
        .set_name(app.name().map(str::to_string))
        .set_args(non_empty(app.args().to_vec()))
        .build()
}

/// The cluster's own tags (minus AWS's and a previous attempt's), plus this attempt's.
fn tags(original: &[Tag], original_cluster_id: &str, attempt: u32) -> Vec<Tag> {
    let mut tags: Vec<Tag> = original
        .iter()
        .filter(|t| {
            let key = t.key().unwrap_or_default();
            !key.is_empty()
                && !key.starts_with(AWS_TAG_PREFIX)
                && key != ORIGINAL_CLUSTER_TAG
                && key != RETRY_ATTEMPT_TAG
        })
        .cloned()
        .collect();
    tags.push(
        Tag::builder()
            .key(ORIGINAL_CLUSTER_TAG)
            .value(original_cluster_id)
            .build(),
    );
    tags.push(
        Tag::builder()
            .key(RETRY_ATTEMPT_TAG)
            .value(attempt.to_string())
            .build(),
    );
    tags
}

#[cfg(test)]
mod tests;
