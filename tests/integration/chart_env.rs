//! The Helm chart passes the binary only what it reads: every `ALERTOPS_*` environment variable
//! and every flag the chart's Deployments set is declared by the subcommand they run, so that a
//! setting is never silently ignored (as `ALERTOPS_WORKLOAD_SERVICE_ACCOUNT_ANNOTATIONS` once
//! was).

use std::collections::BTreeSet;
use std::path::Path;

use alertops::cli::Cli;
use clap::CommandFactory;

fn template(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/alertops/templates")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of `{{- define "NAME" -}} ... {{- end }}` in `_helpers.tpl`.
fn helper(name: &str) -> String {
    let helpers = template("_helpers.tpl");
    let start = helpers
        .find(&format!("define \"{name}\""))
        .unwrap_or_else(|| panic!("no helper {name}"));
    let rest = &helpers[start..];
    let end = rest.find("{{- end }}\n\n").unwrap_or(rest.len());
    rest[..end].to_string()
}

/// `ALERTOPS_*` names set with `- name: ...` in a template.
fn env_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("- name: "))
        .map(|name| name.trim().trim_matches('"').to_string())
        .filter(|name| name.starts_with("ALERTOPS_"))
        .collect()
}

/// Flags (`- --flag`) in a template's `args`.
fn flags(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("- --"))
        .map(|flag| {
            flag.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The environment variables and long flags a subcommand declares (global ones included).
fn declared(subcommand: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let cli = Cli::command();
    let sub = cli
        .find_subcommand(subcommand)
        .unwrap_or_else(|| panic!("no subcommand {subcommand}"));
    let args = cli.get_arguments().chain(sub.get_arguments());
    let mut envs = BTreeSet::new();
    let mut longs = BTreeSet::new();
    for arg in args {
        if let Some(env) = arg.get_env() {
            envs.insert(env.to_string_lossy().into_owned());
        }
        if let Some(long) = arg.get_long() {
            longs.insert(long.to_string());
        }
    }
    (envs, longs)
}

fn check(template_name: &str, subcommand: &str) {
    let text = format!(
        "{}\n{}",
        template(template_name),
        helper("alertops.commonEnv")
    );
    let names = env_names(&text);
    assert!(
        names.len() >= 4,
        "{template_name}: found too few variables to trust the scan: {names:?}"
    );
    let (envs, longs) = declared(subcommand);
    let undeclared: Vec<&String> = names.difference(&envs).collect();
    assert!(
        undeclared.is_empty(),
        "{template_name} sets {undeclared:?}, which `alertops {subcommand}` does not read"
    );
    let unknown: Vec<String> = flags(&text)
        .into_iter()
        .filter(|f| !longs.contains(f))
        .collect();
    assert!(
        unknown.is_empty(),
        "{template_name} passes flags {unknown:?} that `alertops {subcommand}` does not have"
    );
}

#[test]
fn the_controller_reads_every_variable_and_flag_the_chart_sets() {
    check("controller-deployment.yaml", "controller");
    let names = env_names(&template("controller-deployment.yaml"));
    for expected in [
        "ALERTOPS_WORKLOAD_SERVICE_ACCOUNT_ANNOTATIONS",
        "ALERTOPS_ACTION_KEY_SECRET",
        "ALERTOPS_CLUSTER_ID",
    ] {
        assert!(
            names.contains(expected),
            "the chart no longer sets {expected}"
        );
    }
}

#[test]
fn the_interaction_server_reads_every_variable_and_flag_the_chart_sets() {
    check("interact-deployment.yaml", "interact");
    let names = env_names(&template("interact-deployment.yaml"));
    assert!(names.contains("ALERTOPS_ACTION_TOKEN_KEY"));
    assert!(names.contains("ALERTOPS_SLACK_SIGNING_SECRET"));
}

#[test]
fn the_scan_catches_an_undeclared_variable() {
    let (envs, _) = declared("interact");
    let names = env_names("        - name: ALERTOPS_NOT_A_SETTING\n          value: x\n");
    assert_eq!(
        names.difference(&envs).cloned().collect::<Vec<_>>(),
        ["ALERTOPS_NOT_A_SETTING"]
    );
}
