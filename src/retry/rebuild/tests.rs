use super::*;
use aws_sdk_emr::types::{
    ActionOnFailure, CloudWatchAlarmDefinition, ComparisonOperator, Configuration,
    Ec2InstanceAttributes, HadoopStepConfig, InstanceFleetType, InstanceGroupType, MetricDimension,
    ScalingAction, ScalingConstraints, ScalingRule, ScalingTrigger,
    SimpleScalingPolicyConfiguration, StepStatus, StepTimeline, VolumeSpecification,
};
use aws_smithy_types::DateTime;

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn volume(size: i32) -> VolumeSpecification {
    VolumeSpecification::builder()
        .volume_type("gp3")
        .size_in_gb(size)
        .build()
}

fn device(size: i32, name: &str) -> EbsBlockDevice {
    EbsBlockDevice::builder()
        .volume_specification(volume(size))
        .device(name)
        .build()
}

fn listed_step(name: &str, created: i64) -> StepSummary {
    StepSummary::builder()
        .id(format!("s-{name}"))
        .name(name)
        .action_on_failure(ActionOnFailure::Continue)
        .config(
            HadoopStepConfig::builder()
                .jar("command-runner.jar")
                .args("spark-submit")
                .args(format!("s3://jobs/{name}.py"))
                .properties("b", "2")
                .properties("a", "1")
                .build(),
        )
        .status(
            StepStatus::builder()
                .timeline(
                    StepTimeline::builder()
                        .creation_date_time(DateTime::from_secs(created))
                        .build(),
                )
                .build(),
        )
        .build()
}

fn groups_cluster() -> ClusterDefinition {
    let cluster = Cluster::builder()
        .id("j-FAILED")
        .name("nightly-etl")
        .release_label("emr-7.1.0")
        .log_uri("s3://logs/emr/")
        .instance_collection_type(InstanceCollectionType::InstanceGroup)
        .auto_terminate(true)
        .visible_to_all_users(true)
        .service_role("EMR_DefaultRole")
        .auto_scaling_role("EMR_AutoScaling_DefaultRole")
        .security_configuration("sec-config")
        .applications(
            Application::builder()
                .name("Spark")
                .version("3.5.0")
                .build(),
        )
        .applications(Application::builder().name("Hive").version("3.1.3").build())
        .configurations(
            Configuration::builder()
                .classification("spark-defaults")
                .properties("spark.executor.memory", "4g")
                .build(),
        )
        .ec2_instance_attributes(
            Ec2InstanceAttributes::builder()
                .ec2_key_name("ops")
                .ec2_subnet_id("subnet-1")
                .ec2_availability_zone("us-east-1a")
                .iam_instance_profile("EMR_EC2_DefaultRole")
                .emr_managed_master_security_group("sg-master")
                .emr_managed_slave_security_group("sg-slave")
                .additional_master_security_groups("sg-extra")
                .build(),
        )
        .tags(tag("Team", "data"))
        .tags(tag("aws:elasticmapreduce:job-flow-id", "j-FAILED"))
        .tags(tag(RETRY_ATTEMPT_TAG, "1"))
        .tags(tag(ORIGINAL_CLUSTER_TAG, "j-FIRST"))
        .build();
    let master = InstanceGroup::builder()
        .id("ig-m")
        .name("Master")
        .instance_group_type(InstanceGroupType::Master)
        .market(MarketType::OnDemand)
        .instance_type("m5.xlarge")
        .requested_instance_count(1)
        .running_instance_count(0)
        .build();
    let core = InstanceGroup::builder()
        .id("ig-c")
        .name("Core")
        .instance_group_type(InstanceGroupType::Core)
        .market(MarketType::Spot)
        .bid_price("0.30")
        .instance_type("r5.2xlarge")
        .requested_instance_count(4)
        .ebs_block_devices(device(64, "/dev/sdb"))
        .ebs_block_devices(device(64, "/dev/sdc"))
        .ebs_block_devices(device(500, "/dev/sdd"))
        .ebs_optimized(true)
        .auto_scaling_policy(
            AutoScalingPolicyDescription::builder()
                .constraints(
                    ScalingConstraints::builder()
                        .min_capacity(2)
                        .max_capacity(8)
                        .build(),
                )
                .rules(
                    ScalingRule::builder()
                        .name("out")
                        .action(
                            ScalingAction::builder()
                                .simple_scaling_policy_configuration(
                                    SimpleScalingPolicyConfiguration::builder()
                                        .scaling_adjustment(1)
                                        .build(),
                                )
                                .build(),
                        )
                        .trigger(
                            ScalingTrigger::builder()
                                .cloud_watch_alarm_definition(
                                    CloudWatchAlarmDefinition::builder()
                                        .comparison_operator(ComparisonOperator::LessThan)
                                        .metric_name("YARNMemoryAvailablePercentage")
                                        .period(300)
                                        .threshold(15.0)
                                        .dimensions(
                                            MetricDimension::builder()
                                                .key("JobFlowId")
                                                .value("j-FAILED")
                                                .build(),
                                        )
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build();
    ClusterDefinition {
        cluster,
        instance_groups: vec![master, core],
        instance_fleets: vec![],
        // ListSteps lists the newest first.
        steps: vec![
            listed_step("load", 300),
            listed_step("transform", 200),
            listed_step("extract", 100),
        ],
        bootstrap_actions: vec![
            Command::builder()
                .name("install-deps")
                .script_path("s3://boot/install.sh")
                .args("--fast")
                .build(),
        ],
    }
}

#[test]
fn an_instance_group_cluster_is_rebuilt_whole() {
    let request = rebuild_run_job_flow(&groups_cluster(), "j-FIRST", 2).unwrap();
    assert_eq!(request.name(), Some("nightly-etl"));
    assert_eq!(request.release_label(), Some("emr-7.1.0"));
    assert_eq!(request.ami_version(), None);
    assert_eq!(request.log_uri(), Some("s3://logs/emr/"));
    assert_eq!(request.service_role(), Some("EMR_DefaultRole"));
    assert_eq!(request.job_flow_role(), Some("EMR_EC2_DefaultRole"));
    assert_eq!(
        request.auto_scaling_role(),
        Some("EMR_AutoScaling_DefaultRole")
    );
    assert_eq!(request.security_configuration(), Some("sec-config"));
    assert_eq!(request.visible_to_all_users(), Some(true));
    let apps: Vec<_> = request
        .applications()
        .iter()
        .map(|a| (a.name(), a.version()))
        .collect();
    assert_eq!(apps, [(Some("Spark"), None), (Some("Hive"), None)]);
    assert_eq!(
        request.configurations()[0].classification(),
        Some("spark-defaults")
    );

    let instances = request.instances().unwrap();
    assert_eq!(instances.ec2_key_name(), Some("ops"));
    assert_eq!(instances.ec2_subnet_id(), Some("subnet-1"));
    assert!(instances.placement().is_none(), "a subnet implies the zone");
    assert_eq!(instances.keep_job_flow_alive_when_no_steps(), Some(false));
    assert_eq!(
        instances.emr_managed_master_security_group(),
        Some("sg-master")
    );
    assert_eq!(instances.additional_master_security_groups(), ["sg-extra"]);
    let groups = instances.instance_groups();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].instance_role(), Some(&InstanceRoleType::Master));
    assert_eq!(
        groups[0].instance_count(),
        Some(1),
        "the requested count, not the running one"
    );
    assert_eq!(groups[0].bid_price(), None);
    assert_eq!(groups[1].instance_role(), Some(&InstanceRoleType::Core));
    assert_eq!(groups[1].market(), Some(&MarketType::Spot));
    assert_eq!(groups[1].bid_price(), Some("0.30"));
    assert_eq!(groups[1].instance_type(), Some("r5.2xlarge"));
    let ebs = groups[1].ebs_configuration().unwrap();
    assert_eq!(ebs.ebs_optimized(), Some(true));
    let volumes: Vec<_> = ebs
        .ebs_block_device_configs()
        .iter()
        .map(|c| {
            (
                c.volume_specification().unwrap().size_in_gb(),
                c.volumes_per_instance(),
            )
        })
        .collect();
    assert_eq!(volumes, [(Some(64), Some(2)), (Some(500), Some(1))]);
    let policy = groups[1].auto_scaling_policy().unwrap();
    let dimension = &policy.rules()[0]
        .trigger()
        .unwrap()
        .cloud_watch_alarm_definition()
        .unwrap()
        .dimensions()[0];
    assert_eq!(dimension.value(), Some("${emr.clusterId}"));

    let steps: Vec<_> = request.steps().iter().map(|s| s.name().unwrap()).collect();
    assert_eq!(
        steps,
        ["extract", "transform", "load"],
        "the order they ran in"
    );
    let first = request.steps()[0].hadoop_jar_step().unwrap();
    assert_eq!(first.jar(), Some("command-runner.jar"));
    assert_eq!(first.args(), ["spark-submit", "s3://jobs/extract.py"]);
    let properties: Vec<_> = first
        .properties()
        .iter()
        .map(|p| (p.key().unwrap(), p.value().unwrap()))
        .collect();
    assert_eq!(properties, [("a", "1"), ("b", "2")]);
    assert_eq!(
        request.steps()[0].action_on_failure(),
        Some(&ActionOnFailure::Continue)
    );

    let boot = &request.bootstrap_actions()[0];
    assert_eq!(boot.name(), Some("install-deps"));
    let script = boot.script_bootstrap_action().unwrap();
    assert_eq!(script.path(), Some("s3://boot/install.sh"));
    assert_eq!(script.args(), ["--fast"]);

    let tags: Vec<_> = request
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(
        tags,
        [
            ("Team", "data"),
            (ORIGINAL_CLUSTER_TAG, "j-FIRST"),
            (RETRY_ATTEMPT_TAG, "2")
        ],
        "AWS's own tags and the previous attempt's are replaced"
    );
}

#[test]
fn a_fleet_cluster_keeps_its_fleets_and_subnets() {
    let cluster = Cluster::builder()
        .id("j-F")
        .name("fleet")
        .release_label("emr-6.15.0")
        .instance_collection_type(InstanceCollectionType::InstanceFleet)
        .ec2_instance_attributes(
            Ec2InstanceAttributes::builder()
                .ec2_subnet_id("subnet-a")
                .requested_ec2_subnet_ids("subnet-a")
                .requested_ec2_subnet_ids("subnet-b")
                .build(),
        )
        .build();
    let fleet = InstanceFleet::builder()
        .name("core")
        .instance_fleet_type(InstanceFleetType::Core)
        .target_spot_capacity(8)
        .instance_type_specifications(
            InstanceTypeSpecification::builder()
                .instance_type("m5.2xlarge")
                .weighted_capacity(4)
                .bid_price_as_percentage_of_on_demand_price(60.0)
                .ebs_block_devices(device(128, "/dev/sdb"))
                .build(),
        )
        .build();
    let definition = ClusterDefinition {
        cluster,
        instance_fleets: vec![fleet],
        ..Default::default()
    };
    let request = rebuild_run_job_flow(&definition, "j-F", 1).unwrap();
    let instances = request.instances().unwrap();
    assert!(instances.instance_groups().is_empty());
    assert_eq!(instances.ec2_subnet_ids(), ["subnet-a", "subnet-b"]);
    assert_eq!(instances.ec2_subnet_id(), None);
    let fleet = &instances.instance_fleets()[0];
    assert_eq!(fleet.instance_fleet_type(), Some(&InstanceFleetType::Core));
    assert_eq!(fleet.target_spot_capacity(), Some(8));
    let spec = &fleet.instance_type_configs()[0];
    assert_eq!(spec.instance_type(), Some("m5.2xlarge"));
    assert_eq!(spec.weighted_capacity(), Some(4));
    assert_eq!(
        spec.bid_price_as_percentage_of_on_demand_price(),
        Some(60.0)
    );
    assert_eq!(
        spec.ebs_configuration().unwrap().ebs_block_device_configs()[0].volumes_per_instance(),
        Some(1)
    );
}

#[test]
fn old_clusters_use_their_ami_version_and_a_zone_without_subnet() {
    let mut definition = groups_cluster();
    definition.cluster = Cluster::builder()
        .id("j-OLD")
        .name("legacy")
        .requested_ami_version("3.11.0")
        .ec2_instance_attributes(
            Ec2InstanceAttributes::builder()
                .ec2_availability_zone("us-east-1c")
                .build(),
        )
        .build();
    let request = rebuild_run_job_flow(&definition, "j-OLD", 1).unwrap();
    assert_eq!(request.release_label(), None);
    assert_eq!(request.ami_version(), Some("3.11.0"));
    assert_eq!(
        request
            .instances()
            .unwrap()
            .placement()
            .unwrap()
            .availability_zone(),
        Some("us-east-1c")
    );
    assert_eq!(
        request.visible_to_all_users(),
        Some(true),
        "visible unless the original was not"
    );
}

#[test]
fn definitions_that_cannot_be_rebuilt_are_errors() {
    let mut nameless = groups_cluster();
    nameless.cluster = Cluster::builder().id("j-1").build();
    assert_eq!(
        rebuild_run_job_flow(&nameless, "j-1", 1).unwrap_err(),
        RebuildError::MissingName("j-1".into())
    );
    let mut empty = groups_cluster();
    empty.instance_groups.clear();
    assert_eq!(
        rebuild_run_job_flow(&empty, "j-1", 1).unwrap_err(),
        RebuildError::NoInstances("j-FAILED".into())
    );
    let mut odd = groups_cluster();
    odd.instance_groups[0] = InstanceGroup::builder()
        .id("ig-x")
        .instance_group_type(InstanceGroupType::from("GPU"))
        .build();
    assert!(matches!(
        rebuild_run_job_flow(&odd, "j-1", 1).unwrap_err(),
        RebuildError::UnknownGroupType { .. }
    ));
}
