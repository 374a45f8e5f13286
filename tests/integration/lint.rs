//! `lint_path` over the checked-in examples and fixtures: the examples must stay clean, and the
//! fixtures must fail with the messages and field paths a person needs.

use std::path::{Path, PathBuf};

use alertops::lint::{LintReport, lint_path};
use alertops::resources::alarm_policy::LintLevel;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn lint(path: &str) -> LintReport {
    lint_path(&repo(path)).unwrap_or_else(|e| panic!("lint {path}: {e}"))
}

#[test]
fn every_example_passes_without_errors_or_warnings() {
    let report = lint("examples");
    assert!(!report.has_errors(), "{}", report.render());
    assert_eq!(report.count(LintLevel::Warning), 0, "{}", report.render());
    // 6 AlarmPolicies, 10 AlertRoutes, 2 DigestSchedules.
    assert_eq!(report.resources, 18, "{}", report.render());
    for scenario in [
        "emr-failures",
        "elb-backend-errors",
        "ecs-service-events",
        "per-environment-topics",
        "serverless-api",
    ] {
        let report = lint(&format!("examples/{scenario}"));
        assert!(report.resources > 0, "{scenario} has no resources");
        assert!(
            report.findings.is_empty(),
            "{scenario}:\n{}",
            report.render()
        );
    }
}

#[test]
fn maximum_of_backend_connection_errors_fails_with_the_reason() {
    let report = lint("tests/fixtures/lint/maximum-backend-connection-errors.yaml");
    assert!(report.has_errors());
    let lines: Vec<String> = report.findings.iter().map(|f| f.render()).collect();
    let file = repo("tests/fixtures/lint/maximum-backend-connection-errors.yaml");
    assert_eq!(
        lines,
        vec![format!(
            "{}#0 AlarmPolicy/elk-broker: error [count-metric-needs-sum] alarm elb-backend-errors: \
             Maximum of AWS/ELB BackendConnectionErrors is at most 1 per datapoint, so a \
             threshold of 100 can never be reached; use Sum",
            file.display()
        )]
    );
}

#[test]
fn schema_errors_fail_with_field_paths() {
    let report = lint("tests/fixtures/lint/schema-error.yaml");
    assert!(report.has_errors());
    let found: Vec<(&str, &str, &str)> = report
        .findings
        .iter()
        .map(|f| {
            (
                f.rule.as_str(),
                f.path.as_deref().unwrap_or(""),
                f.message.as_str(),
            )
        })
        .collect();
    assert!(
        found.contains(&(
            "unknown-field",
            "spec.alarms[0].treatMisingData",
            "unknown field `treatMisingData`: the apiserver would silently drop it; did you mean \
             `treatMissingData`?"
        )),
        "{}",
        report.render()
    );
    assert!(
        found.contains(&(
            "schema",
            "spec.alarms[0].comparison",
            "must be one of GreaterThanThreshold, GreaterThanOrEqualToThreshold, \
             LessThanThreshold, LessThanOrEqualToThreshold, \
             LessThanLowerOrGreaterThanUpperThreshold, GreaterThanUpperThreshold, \
             LessThanLowerThreshold; got \"GreaterThan\""
        )),
        "{}",
        report.render()
    );
    assert!(
        report
            .render()
            .contains("schema-error.yaml#0 AlarmPolicy/schema-error: error [schema] spec.alarms[0].comparison: must be one of"),
        "{}",
        report.render()
    );
}

#[test]
fn a_missing_path_is_an_error() {
    let err = lint_path(&repo("examples/does-not-exist")).unwrap_err();
    assert!(err.to_string().contains("does-not-exist"), "{err}");
}
