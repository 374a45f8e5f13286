//! The current CloudWatch SDK (RPC-v2 CBOR) against the tests' CloudWatch: moto behind
//! `harness/cloudwatch_cbor.py`. Every operation alertops uses is sent and its answer parsed,
//! and what the tests rely on is pinned down: metric math and percentiles round-trip,
//! DescribeAlarms pages as CloudWatch does, errors keep CloudWatch's codes.

use alertops::aws::AwsResultExt;
use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, StateValue,
    Statistic, Tag,
};

use crate::harness::{aws_clients, unique};

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn query(id: &str, metric: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/ApplicationELB")
                        .metric_name(metric)
                        .dimensions(
                            Dimension::builder()
                                .name("LoadBalancer")
                                .value("app/web/1")
                                .build(),
                        )
                        .build(),
                )
                .period(60)
                .stat("Sum")
                .build(),
        )
        .return_data(false)
        .build()
}

#[tokio::test]
async fn every_alarm_shape_round_trips_with_tags_and_state() {
    let aws = aws_clients().await;
    let prefix = unique("cwshapes");
    let (single, percentile, math) = (
        format!("{prefix}-a-single"),
        format!("{prefix}-b-p99"),
        format!("{prefix}-c-math"),
    );
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(&single)
        .namespace("AWS/EC2")
        .metric_name("CPUUtilization")
        .statistic(Statistic::Average)
        .period(300)
        .evaluation_periods(3)
        .datapoints_to_alarm(2)
        .threshold(80.5)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .treat_missing_data("notBreaching")
        .tags(tag("Team", "platform"))
        .send()
        .await
        .aws("PutMetricAlarm")
        .expect("single-metric alarm");
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(&percentile)
        .namespace("AWS/ApplicationELB")
        .metric_name("TargetResponseTime")
        .extended_statistic("p99")
        .period(60)
        .evaluation_periods(1)
        .threshold(1.5)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .send()
        .await
        .aws("PutMetricAlarm")
        .expect("percentile alarm");
    aws.cloudwatch
        .put_metric_alarm()
        .alarm_name(&math)
        .evaluation_periods(1)
        .threshold(5.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .metrics(
            MetricDataQuery::builder()
                .id("rate")
                .expression("100 * errors / requests")
                .label("5xx %")
                .return_data(true)
                .build(),
        )
        .metrics(query("errors", "HTTPCode_Target_5XX_Count"))
        .metrics(query("requests", "RequestCount"))
        .send()
        .await
        .aws("PutMetricAlarm")
        .expect("metric-math alarm");

    let listed = aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(&prefix)
        .alarm_types(AlarmType::MetricAlarm)
        .send()
        .await
        .aws("DescribeAlarms")
        .expect("alarms listed");
    let names: Vec<&str> = listed
        .metric_alarms()
        .iter()
        .filter_map(|a| a.alarm_name())
        .collect();
    assert_eq!(names, [&single, &percentile, &math]);
    let [a, b, c] = listed.metric_alarms() else {
        unreachable!("three alarms, asserted above")
    };

    assert_eq!(a.statistic(), Some(&Statistic::Average));
    assert_eq!((a.period(), a.evaluation_periods()), (Some(300), Some(3)));
    assert_eq!(a.datapoints_to_alarm(), Some(2));
    assert_eq!(a.threshold(), Some(80.5));
    assert_eq!(a.treat_missing_data(), Some("notBreaching"));
    assert!(a.state_updated_timestamp().is_some(), "timestamps parse");

    // A percentile alarm has no Statistic (ministack reports `Average` here).
    assert_eq!(b.statistic(), None);
    assert_eq!(b.extended_statistic(), Some("p99"));

    // Metric math keeps its queries (ministack drops them).
    let ids: Vec<&str> = c.metrics().iter().filter_map(|q| q.id()).collect();
    assert_eq!(ids, ["rate", "errors", "requests"]);
    assert_eq!(c.metrics()[0].expression(), Some("100 * errors / requests"));
    assert_eq!(c.metrics()[0].return_data(), Some(true));
    let stat = c.metrics()[1].metric_stat().expect("a metric stat");
    assert_eq!((stat.stat(), stat.period()), (Some("Sum"), Some(60)));

    let arn = a.alarm_arn().expect("an ARN").to_string();
    let tags =
        |out: aws_sdk_cloudwatch::operation::list_tags_for_resource::ListTagsForResourceOutput| {
            let mut tags: Vec<(String, String)> = out
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            tags.sort();
            tags
        };
    let listed = aws
        .cloudwatch
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .aws("ListTagsForResource")
        .expect("tags listed");
    assert_eq!(tags(listed), [("Team".into(), "platform".into())]);
    aws.cloudwatch
        .tag_resource()
        .resource_arn(&arn)
        .tags(tag("Feature", "checkout"))
        .send()
        .await
        .aws("TagResource")
        .expect("tagged");
    aws.cloudwatch
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("Team")
        .send()
        .await
        .aws("UntagResource")
        .expect("untagged");
    let listed = aws
        .cloudwatch
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .aws("ListTagsForResource")
        .expect("tags listed");
    assert_eq!(tags(listed), [("Feature".into(), "checkout".into())]);

    aws.cloudwatch
        .set_alarm_state()
        .alarm_name(&single)
        .state_value(StateValue::Alarm)
        .state_reason("test")
        .send()
        .await
        .aws("SetAlarmState")
        .expect("state set");
    let alarm = aws
        .cloudwatch
        .describe_alarms()
        .alarm_names(&single)
        .send()
        .await
        .aws("DescribeAlarms")
        .expect("alarm listed");
    assert_eq!(
        alarm.metric_alarms()[0].state_value(),
        Some(&StateValue::Alarm)
    );

    aws.cloudwatch
        .delete_alarms()
        .alarm_names(&single)
        .alarm_names(&percentile)
        .alarm_names(&math)
        .send()
        .await
        .aws("DeleteAlarms")
        .expect("alarms deleted");
    let left = aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(&prefix)
        .send()
        .await
        .aws("DescribeAlarms")
        .expect("alarms listed");
    assert!(left.metric_alarms().is_empty(), "{left:?}");
}

#[tokio::test]
async fn describe_alarms_pages_by_max_records_in_name_order() {
    let aws = aws_clients().await;
    let prefix = unique("cwpages");
    // Created out of order: pages are in name order, as on CloudWatch.
    for i in [3, 0, 4, 1, 2] {
        aws.cloudwatch
            .put_metric_alarm()
            .alarm_name(format!("{prefix}-{i}"))
            .namespace("AWS/EC2")
            .metric_name("CPUUtilization")
            .statistic(Statistic::Maximum)
            .period(60)
            .evaluation_periods(1)
            .threshold(f64::from(i))
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .aws("PutMetricAlarm")
            .expect("alarm created");
    }
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let page = aws
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(&prefix)
            .max_records(2)
            .set_next_token(token)
            .send()
            .await
            .aws("DescribeAlarms")
            .expect("a page");
        pages.push(
            page.metric_alarms()
                .iter()
                .filter_map(|a| a.alarm_name())
                .map(|n| n.trim_start_matches(&format!("{prefix}-")).to_string())
                .collect::<Vec<_>>(),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
        assert!(pages.len() < 10, "paging does not end: {pages:?}");
    }
    assert_eq!(pages, [vec!["0", "1"], vec!["2", "3"], vec!["4"]]);
    assert_eq!(aws.call_log().count("DescribeAlarms"), 3);
}

#[tokio::test]
async fn errors_keep_cloudwatchs_codes() {
    let aws = aws_clients().await;
    let error = aws
        .cloudwatch
        .describe_alarms()
        .max_records(101)
        .send()
        .await
        .aws("DescribeAlarms")
        .expect_err("CloudWatch allows at most 100 records");
    assert_eq!(error.code(), Some("ValidationError"), "{error}");
    assert!(error.is_terminal(), "{error}");
}
