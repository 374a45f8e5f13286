//! The `--aws-rate-limits` flag every subcommand that calls AWS takes (the chart's
//! `aws.rateLimits`), for accounts whose quotas AWS raised.

use clap::Args;

use super::{AwsSettings, RateSpecError};

/// AWS settings from the command line.
#[derive(Args, Debug, Clone, Default)]
pub struct AwsArgs {
    /// Client-side rate limits that differ from AWS's default quotas, comma-separated
    /// `API=RATE` or `API=RATE/BURST` per second, e.g. `cloudwatch:PutMetricAlarm=10,ses=14`.
    /// APIs: cloudwatch:DescribeAlarms (9), cloudwatch:PutMetricAlarm (3),
    /// cloudwatch:DeleteAlarms (3), cloudwatch:ListTagsForResource (10), cloudwatch:TagResource
    /// (20, Untag too), sns (20), sns:TagResource (10), sqs (50), events (20), emr (5), ses (1).
    #[arg(
        long = "aws-rate-limits",
        env = "ALERTOPS_AWS_RATE_LIMITS",
        value_name = "API=RATE,...",
        value_parser = parse_rate_limits
    )]
    pub rate_limits: Option<AwsSettings>,
}

impl AwsArgs {
    /// The AWS settings: the defaults with the flag's rates.
    pub fn settings(&self) -> AwsSettings {
        self.rate_limits.clone().unwrap_or_default()
    }
}

fn parse_rate_limits(spec: &str) -> Result<AwsSettings, RateSpecError> {
    AwsSettings::default().with_rate_spec(spec)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::aws::{ApiRate, AwsApi};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        aws: AwsArgs,
    }

    #[test]
    fn the_flag_sets_rates_and_refuses_unknown_apis() {
        let cli = Cli::try_parse_from(["x", "--aws-rate-limits", "cloudwatch:PutMetricAlarm=10"])
            .unwrap();
        assert_eq!(
            cli.aws.settings().rate(AwsApi::PutMetricAlarm),
            ApiRate::per_second(10)
        );
        assert_eq!(
            Cli::try_parse_from(["x"]).unwrap().aws.settings(),
            AwsSettings::default()
        );
        assert!(Cli::try_parse_from(["x", "--aws-rate-limits", "s3=1"]).is_err());
    }
}
