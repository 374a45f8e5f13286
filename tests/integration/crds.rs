//! `crds/` is generated from the Rust types; this fails when the two drift apart.

use std::path::Path;

use alertops::resources::crd;

#[test]
fn crds_folder_matches_the_rust_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut stale = Vec::new();
    for c in crd::all() {
        let path = dir.join(crd::file_name(&c));
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != crd::to_yaml(&c) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {stale:?}; run `make crds` and commit the result"
    );
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        files,
        crd::all().len(),
        "crds/ holds a file that no type generates"
    );
}

#[test]
fn crds_carry_status_printer_columns_and_validation() {
    for c in crd::all() {
        let version = &c.spec.versions[0];
        let kind = &c.spec.names.kind;
        assert_eq!(c.spec.group, "alertops.dev");
        assert_eq!(version.name, "v1alpha1");
        assert_eq!(c.spec.scope, "Namespaced");
        assert!(
            c.spec
                .names
                .categories
                .as_ref()
                .unwrap()
                .contains(&"alertops".to_string()),
            "{kind}"
        );
        assert!(
            c.spec
                .names
                .short_names
                .as_ref()
                .is_some_and(|s| !s.is_empty()),
            "{kind}"
        );
        assert!(
            version.subresources.as_ref().unwrap().status.is_some(),
            "{kind} has a status subresource"
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            columns.contains(&"Ready") && columns.contains(&"Age"),
            "{kind}: {columns:?}"
        );
        let schema = serde_json::to_value(
            version
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        let conditions = &schema["properties"]["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{kind}");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"]),
            "{kind}"
        );
        assert_undocumented_fields_absent(&schema, kind);
    }
}

/// Every property has a description, so `kubectl explain` is useful.
fn assert_undocumented_fields_absent(schema: &serde_json::Value, path: &str) {
    if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            let standard = matches!(
                name.as_str(),
                "apiVersion" | "kind" | "metadata" | "spec" | "status"
            );
            // Kubernetes' own types (Condition, ResourceRequirements) are documented upstream.
            assert!(
                standard || prop.get("description").is_some(),
                "{here} has no description"
            );
            assert_undocumented_fields_absent(prop, &here);
        }
    }
    if let Some(items) = schema.get("items") {
        assert_undocumented_fields_absent(items, path);
    }
}

#[test]
fn cel_rules_reject_what_the_issue_lists() {
    use alertops::resources::AlarmPolicy;
    use kube::CustomResourceExt;
    let crd = AlarmPolicy::crd();
    let schema = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    let validator = kube::core::cel::Validator::new();
    let policy = |alarm: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlarmPolicy",
            "metadata": {"name": "p", "namespace": "n"},
            "spec": {"alarms": [alarm]}
        })
    };
    let good = serde_json::json!({
        "name": "a", "period": 60, "evaluationPeriods": 5, "threshold": 1,
        "comparison": "GreaterThanThreshold",
        "metric": {"namespace": "AWS/ELB", "name": "BackendConnectionErrors", "statistic": "Sum"}
    });
    assert!(
        validator
            .validate(&schema, &policy(good.clone()), None)
            .is_ok()
    );
    let cases = [
        (
            "period",
            serde_json::json!({"period": 3600, "evaluationPeriods": 25}),
            "86400",
        ),
        (
            "datapoints",
            serde_json::json!({"datapointsToAlarm": 6}),
            "datapointsToAlarm",
        ),
        (
            "actions",
            serde_json::json!({"additionalActions": ["a", "b", "c", "d", "e"]}),
            "at most 5",
        ),
    ];
    for (label, patch, expected) in cases {
        let mut alarm = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            alarm[k] = v.clone();
        }
        let err = validator
            .validate(&schema, &policy(alarm), None)
            .expect_err(label);
        assert!(err.to_string().contains(expected), "{label}: {err}");
    }
    let mut dup = policy(good.clone());
    dup["spec"]["alarms"] = serde_json::json!([good.clone(), good]);
    let err = validator
        .validate(&schema, &dup, None)
        .expect_err("duplicate names");
    assert!(err.to_string().contains("unique"), "{err}");
}

#[test]
fn the_crd_reference_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/crd-reference.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == crd::reference_markdown(),
        "docs/crd-reference.md is out of date; run `make crds` and commit the result"
    );
    for field in [
        "spec.alarms[].evaluationPeriods",
        "spec.actions.retry.maxAttempts",
        "spec.timeZone",
        "status.conditions",
    ] {
        assert!(on_disk.contains(field), "{field} is documented");
    }
}

/// Reminders and snooze notes are thread replies: an AlertRoute asking for them without a bot
/// token is refused at admission.
#[test]
fn reminders_and_snoozes_need_a_bot_token() {
    use alertops::resources::AlertRoute;
    use kube::CustomResourceExt;
    let crd = AlertRoute::crd();
    let schema = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    let validator = kube::core::cel::Validator::new();
    let route = |slack: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": "r", "namespace": "n"},
            "spec": {
                "sources": [{"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}],
                "slack": slack,
                "grouping": {"repeatIntervalMinutes": 240},
            }
        })
    };
    let bot = serde_json::json!({"botTokenSecretRef": {"name": "s", "key": "t"}, "channel": "C1"});
    assert!(validator.validate(&schema, &route(bot), None).is_ok());
    let webhook_only = || serde_json::json!({"webhookSecretRef": {"name": "s", "key": "w"}});
    let err = validator
        .validate(&schema, &route(webhook_only()), None)
        .expect_err("a webhook cannot reply in a thread");
    assert!(
        err.to_string()
            .contains("repeatIntervalMinutes needs slack.botTokenSecretRef"),
        "{err}"
    );
    let mut snooze_by_webhook = route(webhook_only());
    snooze_by_webhook["spec"]["grouping"] = serde_json::json!({});
    snooze_by_webhook["spec"]["actions"] =
        serde_json::json!({"snooze": {"timeZone": "Europe/Paris"}});
    let err = validator
        .validate(&schema, &snooze_by_webhook, None)
        .expect_err("snooze notes are thread replies");
    assert!(
        err.to_string()
            .contains("actions.snooze needs slack.botTokenSecretRef"),
        "{err}"
    );
    snooze_by_webhook["spec"]["actions"]["snooze"]["enabled"] = serde_json::json!(false);
    assert!(
        validator
            .validate(&schema, &snooze_by_webhook, None)
            .is_ok(),
        "disabled is fine"
    );
}

/// Grouping attributes are SNS message attribute names, each named once.
#[test]
fn grouping_by_attributes_takes_attribute_names_once() {
    use alertops::resources::AlertRoute;
    use kube::CustomResourceExt;
    let crd = AlertRoute::crd();
    let schema = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    let validator = kube::core::cel::Validator::new();
    let route = |names: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": "r", "namespace": "n"},
            "spec": {
                "sources": [{"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}],
                "slack": {"webhookSecretRef": {"name": "s", "key": "w"}},
                "grouping": {"byAttributes": names},
            }
        })
    };
    let ok = serde_json::json!(["correlation_id", "request.id"]);
    assert!(validator.validate(&schema, &route(ok), None).is_ok());
    let err = validator
        .validate(&schema, &route(serde_json::json!(["a", "b", "a"])), None)
        .expect_err("a name twice");
    assert!(
        err.to_string()
            .contains("grouping.byAttributes names each attribute once"),
        "{err}"
    );
    // The CEL validator checks rules, not OpenAPI patterns: the API server checks these.
    let items = &schema["properties"]["spec"]["properties"]["grouping"]["properties"]["byAttributes"]
        ["items"];
    assert_eq!(
        items["pattern"], r"^[A-Za-z0-9_-]([A-Za-z0-9_.-]*[A-Za-z0-9_-])?$",
        "SNS attribute names"
    );
    assert_eq!(items["maxLength"], 256);
}
