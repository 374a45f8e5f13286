//! The `alertops` binary's offline subcommands.

use std::path::Path;
use std::process::Command;

fn alertops(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_alertops"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("alertops runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn lint_passes_on_the_examples() {
    let (code, out) = alertops(&["lint", "-f", "examples/"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn lint_names_the_metric_and_says_sum_for_maximum_of_backend_connection_errors() {
    let (code, out) = alertops(&[
        "lint",
        "-f",
        "tests/fixtures/lint/maximum-backend-connection-errors.yaml",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BackendConnectionErrors"), "{out}");
    assert!(out.contains("Sum"), "{out}");
}

#[test]
fn lint_reports_schema_errors_with_the_field_path() {
    let (code, out) = alertops(&["lint", "-f", "tests/fixtures/lint/schema-error.yaml"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("spec."), "a field path is named: {out}");
}

#[test]
fn crds_subcommand_prints_all_three() {
    let (code, out) = alertops(&["crds"]);
    assert_eq!(code, 0);
    for name in [
        "alarmpolicies.alertops.dev",
        "alertroutes.alertops.dev",
        "digestschedules.alertops.dev",
    ] {
        assert!(out.contains(name), "{name} missing");
    }
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("crds").is_dir());
}
