//! The AWS layer: SDK clients built from the standard AWS environment, a per-API client-side rate
//! limit, call accounting (for metrics and for tests that count writes), and error classification.

use aws_config::SdkConfig;

/// One client per AWS service alertops talks to, sharing configuration, rate limits and call log.
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// CloudWatch (alarms).
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// SNS (topics, subscriptions).
    pub sns: aws_sdk_sns::Client,
    /// SQS (route and digest queues).
    pub sqs: aws_sdk_sqs::Client,
    /// EventBridge (rules and targets).
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// EMR (enrichment and retries).
    pub emr: aws_sdk_emr::Client,
    /// SES v2 (email).
    pub ses: aws_sdk_sesv2::Client,
}

impl AwsClients {
    /// Clients for the given SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        AwsClients {
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            eventbridge: aws_sdk_eventbridge::Client::new(config),
            emr: aws_sdk_emr::Client::new(config),
            ses: aws_sdk_sesv2::Client::new(config),
        }
    }
}
