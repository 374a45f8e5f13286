//! Realistic AlarmPolicy specs for the memory and resync benchmarks: alarms of the kinds teams
//! write (load balancer errors and latency, metric math, CPU, storage, queue age, Lambda and
//! DynamoDB errors), with descriptions, runbooks and tags, and two in ten that lint flags.

use serde_json::{Value, json};

/// The `j`-th alarm of policy `policy`. Names are unique within a policy; dimensions and
/// thresholds vary between policies.
pub fn alarm(policy: usize, j: usize) -> Value {
    let service = format!("svc-{policy:04}");
    let threshold = 10.0 + (policy % 50) as f64 + j as f64;
    match j % 10 {
        0 => json!({
            "name": format!("elb-backend-errors-{j}"),
            "description": "The load balancer cannot reach its backends",
            "severity": "Critical",
            "runbookUrl": format!("https://runbooks.example.com/{service}/elb-backend"),
            "metric": {"namespace": "AWS/ELB", "name": "BackendConnectionErrors",
                       "dimensions": {"LoadBalancerName": service}, "statistic": "Sum"},
            "period": 60, "evaluationPeriods": 5, "datapointsToAlarm": 3,
            "threshold": threshold, "comparison": "GreaterThanThreshold",
            "treatMissingData": "notBreaching", "tags": {"Component": "edge"}
        }),
        // Lint: a count metric read with Maximum can never exceed 1.
        1 => json!({
            "name": format!("http-5xx-max-{j}"),
            "description": "5xx answers from the targets",
            "severity": "High",
            "runbookUrl": format!("https://runbooks.example.com/{service}/5xx"),
            "metric": {"namespace": "AWS/ApplicationELB", "name": "HTTPCode_Target_5XX_Count",
                       "dimensions": {"LoadBalancer": format!("app/{service}/0123456789abcdef")},
                       "statistic": "Maximum"},
            "period": 60, "evaluationPeriods": 3,
            "threshold": threshold, "comparison": "GreaterThanThreshold",
            "treatMissingData": "notBreaching"
        }),
        2 => json!({
            "name": format!("latency-p99-{j}"),
            "description": "Slow answers at the 99th percentile",
            "severity": "High",
            "runbookUrl": format!("https://runbooks.example.com/{service}/latency"),
            "metric": {"namespace": "AWS/ApplicationELB", "name": "TargetResponseTime",
                       "dimensions": {"LoadBalancer": format!("app/{service}/0123456789abcdef")},
                       "percentile": "p99"},
            "period": 300, "evaluationPeriods": 3, "threshold": 1.5,
            "comparison": "GreaterThanThreshold"
        }),
        3 => json!({
            "name": format!("error-rate-{j}"),
            "description": "Share of requests answered 5xx",
            "severity": "Critical",
            "runbookUrl": format!("https://runbooks.example.com/{service}/error-rate"),
            "metrics": [
                {"id": "errors", "metric": {"namespace": "AWS/ApplicationELB", "name": "HTTPCode_Target_5XX_Count",
                 "dimensions": {"LoadBalancer": format!("app/{service}/0123456789abcdef")}, "stat": "Sum"}},
                {"id": "requests", "metric": {"namespace": "AWS/ApplicationELB", "name": "RequestCount",
                 "dimensions": {"LoadBalancer": format!("app/{service}/0123456789abcdef")}, "stat": "Sum"}},
                {"id": "rate", "expression": "100 * errors / requests", "label": "5xx %", "returnData": true}
            ],
            "period": 60, "evaluationPeriods": 5, "threshold": 5,
            "comparison": "GreaterThanThreshold", "treatMissingData": "notBreaching"
        }),
        4 => json!({
            "name": format!("cpu-{j}"),
            "description": "Sustained CPU pressure",
            "severity": "Warning",
            "metric": {"namespace": "AWS/EC2", "name": "CPUUtilization",
                       "dimensions": {"AutoScalingGroupName": format!("{service}-asg")}, "statistic": "Average"},
            "period": 300, "evaluationPeriods": 3, "threshold": 80,
            "comparison": "GreaterThanThreshold"
        }),
        5 => json!({
            "name": format!("db-free-storage-{j}"),
            "description": "The database is running out of disk",
            "severity": "Critical",
            "runbookUrl": format!("https://runbooks.example.com/{service}/rds-storage"),
            "metric": {"namespace": "AWS/RDS", "name": "FreeStorageSpace",
                       "dimensions": {"DBInstanceIdentifier": format!("{service}-db")}, "statistic": "Minimum"},
            "period": 300, "evaluationPeriods": 2, "threshold": 10_737_418_240_u64,
            "comparison": "LessThanThreshold"
        }),
        6 => json!({
            "name": format!("queue-age-{j}"),
            "description": "Messages wait too long in the work queue",
            "severity": "High",
            "runbookUrl": format!("https://runbooks.example.com/{service}/queue-age"),
            "metric": {"namespace": "AWS/SQS", "name": "ApproximateAgeOfOldestMessage",
                       "dimensions": {"QueueName": format!("{service}-work")}, "statistic": "Maximum"},
            "period": 300, "evaluationPeriods": 2, "threshold": 900,
            "comparison": "GreaterThanThreshold"
        }),
        7 => json!({
            "name": format!("lambda-errors-{j}"),
            "description": "The handler throws",
            "severity": "High",
            "runbookUrl": format!("https://runbooks.example.com/{service}/lambda"),
            "metric": {"namespace": "AWS/Lambda", "name": "Errors",
                       "dimensions": {"FunctionName": format!("{service}-handler")}, "statistic": "Sum"},
            "period": 60, "evaluationPeriods": 5, "datapointsToAlarm": 2,
            "threshold": threshold, "comparison": "GreaterThanThreshold",
            "treatMissingData": "notBreaching"
        }),
        8 => json!({
            "name": format!("dynamodb-throttles-{j}"),
            "description": "Reads or writes are throttled",
            "severity": "Warning",
            "metric": {"namespace": "AWS/DynamoDB", "name": "ThrottledRequests",
                       "dimensions": {"TableName": format!("{service}-table"), "Operation": "PutItem"},
                       "statistic": "Sum"},
            "period": 60, "evaluationPeriods": 5, "threshold": threshold,
            "comparison": "GreaterThanThreshold", "treatMissingData": "notBreaching"
        }),
        // Lint: a High alarm without a runbook.
        _ => json!({
            "name": format!("ecs-memory-{j}"),
            "description": "Tasks are close to their memory limit",
            "severity": "High",
            "metric": {"namespace": "AWS/ECS", "name": "MemoryUtilization",
                       "dimensions": {"ClusterName": "prod", "ServiceName": service}, "statistic": "Average"},
            "period": 60, "evaluationPeriods": 5, "datapointsToAlarm": 3, "threshold": 90,
            "comparison": "GreaterThanThreshold"
        }),
    }
}

/// The spec of policy `policy` with `alarms` alarms.
pub fn spec(policy: usize, alarms: usize) -> Value {
    json!({
        "tags": {"Team": format!("team-{:02}", policy % 40), "Feature": format!("svc-{policy:04}")},
        "alarms": (0..alarms).map(|j| alarm(policy, j)).collect::<Vec<_>>(),
    })
}
