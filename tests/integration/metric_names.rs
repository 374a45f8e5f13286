//! Every metric name the chart's alerts, its Grafana dashboard and the README use is one the
//! binary exports, and the README documents every family it exports.
//!
//! The names come from the registries themselves: the controller's is built by the function
//! `alertops controller` serves (`controller::metrics_registry`); the consumer's and the
//! interaction server's are assembled from the same `register` calls their `run` functions
//! make, in a registry made by `telemetry::registry()` (the one that adds the prefix).
//! prometheus-client leaves families without samples out of the exposition, and the recording
//! methods are private to the crate, so the family names are read from the registry's `Debug`
//! form (which lists every registered descriptor); the test fails if that form changes so that
//! no names are found. Where a family has samples, its exposition gives the exact type.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use alertops::aws::AwsMetrics;
use alertops::consume::ConsumerMetrics;
use alertops::interact::InteractMetrics;
use alertops::telemetry::{self, OperatorMetrics, ReconcileMetrics};
use prometheus_client::registry::Registry;

/// Each workload's registry.
fn registries() -> Vec<(&'static str, Registry)> {
    let controller = alertops::controller::metrics_registry(
        &ReconcileMetrics::default(),
        &OperatorMetrics::new(),
        &AwsMetrics::default(),
    );
    let mut consumer = telemetry::registry();
    ConsumerMetrics::new().register(&mut consumer);
    AwsMetrics::default().register(&mut consumer);
    let mut interact = telemetry::registry();
    InteractMetrics::default().register(&mut interact);
    AwsMetrics::default().register(&mut interact);
    vec![
        ("controller", controller),
        ("consume", consumer),
        ("interact", interact),
    ]
}

/// Sample-name suffixes by OpenMetrics type.
fn suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total"],
        "histogram" => &["_bucket", "_sum", "_count"],
        "gauge" => &[""],
        other => panic!("unexpected metric type {other}"),
    }
}

/// Every family the workloads export (prefixed), with its type where an exposition shows it.
fn families() -> BTreeMap<String, Option<String>> {
    let mut families = BTreeMap::new();
    for (workload, registry) in registries() {
        let debug = format!("{registry:?}");
        let prefix = debug
            .split("Prefix(\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("{workload}: no prefix in {debug}"));
        let mut found = 0;
        for part in debug.split("Descriptor { name: \"").skip(1) {
            let name = part.split('"').next().expect("a quoted name");
            families.entry(format!("{prefix}_{name}")).or_insert(None);
            found += 1;
        }
        assert!(found >= 2, "{workload}: no descriptor found in {debug}");
        for line in telemetry::encode(&registry).lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                families.insert(name.to_string(), Some(kind.to_string()));
            }
        }
    }
    families
}

/// The sample names a query may use: exact for families whose type is known, any of the
/// types' suffixes otherwise.
fn samples() -> BTreeSet<String> {
    let mut samples = BTreeSet::new();
    for (family, kind) in families() {
        let kinds = match &kind {
            Some(kind) => vec![kind.as_str()],
            None => vec!["counter", "histogram", "gauge"],
        };
        for kind in kinds {
            for suffix in suffixes(kind) {
                samples.insert(format!("{family}{suffix}"));
            }
        }
    }
    samples
}

/// Every `alertops_...` identifier in `text`.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(found) = text[i..].find("alertops_") {
        let start = i + found;
        let preceded =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        // The bare prefix (prose about "alertops_" names) names no metric.
        if !preceded && end > start + "alertops_".len() {
            names.insert(text[start..end].to_string());
        }
        i = end;
    }
    names
}

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README's "Monitoring" section.
fn readme_monitoring() -> String {
    let readme = read("README.md");
    let start = readme
        .find("\n## Monitoring")
        .expect("README has a Monitoring section");
    let rest = &readme[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].to_string()
}

#[test]
fn no_exported_name_repeats_the_prefix() {
    let families = families();
    let doubled: Vec<_> = families
        .keys()
        .filter(|n| n.starts_with("alertops_alertops_"))
        .collect();
    assert!(doubled.is_empty(), "doubled prefix: {doubled:?}");
    let samples = samples();
    for expected in [
        "alertops_reconciles_total",
        "alertops_build_info",
        "alertops_is_leader",
        "alertops_resources",
        "alertops_consumer_dead_letter_risk_total",
        "alertops_interact_requests_total",
    ] {
        assert!(samples.contains(expected), "{expected} is not exported");
    }
    // Known types are exact: a gauge has no _total.
    assert!(!samples.contains("alertops_is_leader_total"));
}

#[test]
fn alerts_and_dashboard_query_only_exported_samples() {
    let samples = samples();
    for path in [
        "charts/alertops/templates/prometheusrule.yaml",
        "charts/alertops/files/dashboards/alertops.json",
    ] {
        let used = names_in(&read(path));
        assert!(
            used.len() >= 5,
            "{path} names only {used:?}: is the scan broken?"
        );
        let unknown: Vec<_> = used.difference(&samples).collect();
        assert!(
            unknown.is_empty(),
            "{path} uses metrics the binary does not export: {unknown:?}"
        );
    }
}

#[test]
fn readme_documents_exactly_the_exported_families() {
    let families = families();
    let samples = samples();
    let documented = names_in(&readme_monitoring());
    let unknown: Vec<_> = documented
        .iter()
        .filter(|n| !families.contains_key(*n) && !samples.contains(*n))
        .collect();
    assert!(
        unknown.is_empty(),
        "README names unexported metrics: {unknown:?}"
    );
    // A family counts as documented under its own name or one of its sample names.
    let undocumented: Vec<_> = families
        .keys()
        .filter(|family| {
            !documented.iter().any(|d| {
                d == *family
                    || ["_total", "_bucket", "_sum", "_count"]
                        .iter()
                        .any(|s| *d == format!("{family}{s}"))
            })
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "README's Monitoring section does not list: {undocumented:?}"
    );
}

#[test]
fn the_name_scan_finds_whole_identifiers() {
    let names = names_in(
        "rate(alertops_reconciles_total{kind=\"A\"}[5m]) / my_alertops_x + alertops_is_leader, alertops_",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["alertops_is_leader", "alertops_reconciles_total"]
    );
}
