//! Validation of alertops documents against the generated CRD schemas, offline.
//!
//! Three passes, each reporting the field path (`spec.alarms[0].period`) and a readable message:
//! 1. unknown fields, which the apiserver would silently prune (so a typo like `evaluationPeriod`
//!    would quietly fall back to a default);
//! 2. structural validation with `jsonschema` (types, enums, required fields, ranges, lengths,
//!    patterns, item counts), after translating the OpenAPI `nullable` and int-or-string markers
//!    into JSON Schema;
//! 3. the CRD's CEL rules (`x-kubernetes-validations`) with the kube-cel validator, run on the
//!    pruned object as the apiserver would, and only when the structure is sound (a rule such as
//!    `self.period * self.evaluationPeriods` says nothing useful about a string period).
//!
//! `metadata` is not part of a CRD schema; its name, namespace, labels and annotations are
//! checked here the way the apiserver checks them.

use std::collections::BTreeMap;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use kube::core::cel::{CompiledSchema, ErrorKind as CelErrorKind, Validator as CelValidator};
use serde_json::{Map, Value};

use super::LintError;
use super::manifests::AlertopsKind;
use crate::resources::alarm_policy::LintLevel;
use crate::resources::crd;

/// Which check found a violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationSource {
    /// A field the schema does not know.
    UnknownField,
    /// Types, enums, required fields, ranges, patterns, lengths.
    Structure,
    /// A CEL rule of the CRD.
    Cel,
    /// `metadata`: name, namespace, labels, annotations.
    Metadata,
}

impl ViolationSource {
    /// Short tag used in rendered reports, in place of a lint rule id.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationSource::UnknownField => "unknown-field",
            ViolationSource::Structure => "schema",
            ViolationSource::Cel => "cel",
            ViolationSource::Metadata => "metadata",
        }
    }
}

/// One problem of a document against its CRD schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaViolation {
    /// Dotted field path, for example `spec.alarms[0].period`; empty for the document itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// Which check found it.
    pub source: ViolationSource,
    /// `Error` unless the apiserver would accept the document anyway.
    pub level: LintLevel,
}

impl SchemaViolation {
    fn error(source: ViolationSource, path: impl Into<String>, message: impl Into<String>) -> Self {
        SchemaViolation {
            path: path.into(),
            message: message.into(),
            source,
            level: LintLevel::Error,
        }
    }
}

struct KindSchema {
    /// The `openAPIV3Schema` as generated, used for pruning and CEL.
    openapi: Value,
    structural: jsonschema::Validator,
    cel: CompiledSchema,
}

/// Validates documents of the three alertops kinds. Schemas and CEL rules are compiled once.
pub struct SchemaValidator {
    kinds: BTreeMap<AlertopsKind, KindSchema>,
    cel: CelValidator,
}

impl std::fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaValidator")
            .field("kinds", &self.kinds.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SchemaValidator {
    /// Compiles the schemas of [`crd::all`].
    pub fn new() -> Result<Self, LintError> {
        let mut kinds = BTreeMap::new();
        for definition in crd::all() {
            let kind_name = definition.spec.names.kind.clone();
            let kind = AlertopsKind::parse(&kind_name).ok_or_else(|| LintError::Schema {
                kind: kind_name.clone(),
                message: "not an alertops kind".to_string(),
            })?;
            let openapi = definition
                .spec
                .versions
                .first()
                .and_then(|v| v.schema.as_ref())
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .map(serde_json::to_value)
                .transpose()
                .map_err(|e| LintError::Schema {
                    kind: kind_name.clone(),
                    message: e.to_string(),
                })?
                .ok_or_else(|| LintError::Schema {
                    kind: kind_name.clone(),
                    message: "the CRD has no openAPIV3Schema".to_string(),
                })?;
            let json_schema = to_json_schema(&openapi);
            let structural =
                jsonschema::validator_for(&json_schema).map_err(|e| LintError::Schema {
                    kind: kind_name.clone(),
                    message: e.to_string(),
                })?;
            let cel = kube::core::cel::compile_schema(&openapi);
            kinds.insert(
                kind,
                KindSchema {
                    openapi,
                    structural,
                    cel,
                },
            );
        }
        Ok(SchemaValidator {
            kinds,
            cel: CelValidator::new(),
        })
    }

    /// Every violation of `document` (a whole manifest: apiVersion, kind, metadata, spec)
    /// against the schema of `kind`, in the order unknown fields, metadata, structure, CEL.
    pub fn validate(&self, kind: AlertopsKind, document: &Value) -> Vec<SchemaViolation> {
        let Some(schema) = self.kinds.get(&kind) else {
            return vec![SchemaViolation::error(
                ViolationSource::Structure,
                "",
                format!("no schema for kind {kind}"),
            )];
        };
        let mut violations = Vec::new();
        let mut object = document.clone();
        if let Some(map) = object.as_object_mut()
            && map.remove("status").is_some()
        {
            violations.push(SchemaViolation {
                path: "status".to_string(),
                message: "status is written by the controller; the apiserver ignores it in \
                          manifests, remove it"
                    .to_string(),
                source: ViolationSource::UnknownField,
                level: LintLevel::Warning,
            });
        }
        prune_unknown(&schema.openapi, &mut object, "", true, &mut violations);
        validate_metadata(document.get("metadata"), &mut violations);

        let structural_before = violations.len();
        for error in schema.structural.iter_errors(&object) {
            violations.push(structural_violation(&error, &object));
        }
        let structure_sound = violations[structural_before..].is_empty();

        if structure_sound
            && let Err(errors) = self.cel.validate_compiled(&schema.cel, &object, None)
        {
            for error in errors {
                let message = match error.kind {
                    CelErrorKind::ValidationFailure => error.message.clone(),
                    _ => format!(
                        "rule `{}` could not be evaluated: {}",
                        error.rule, error.message
                    ),
                };
                violations.push(SchemaViolation::error(
                    ViolationSource::Cel,
                    error.field_path.clone(),
                    message,
                ));
            }
        }
        violations
    }
}

/// Translates the OpenAPI v3 dialect of CRDs into JSON Schema: `nullable: true` becomes a `null`
/// type, and `x-kubernetes-int-or-string` an integer-or-string choice.
fn to_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out: Map<String, Value> = map
                .iter()
                .map(|(k, v)| {
                    // Property names and enum values are data, not schemas: leave them alone.
                    let v = match k.as_str() {
                        "properties" => Value::Object(
                            v.as_object()
                                .map(|props| {
                                    props
                                        .iter()
                                        .map(|(name, s)| (name.clone(), to_json_schema(s)))
                                        .collect()
                                })
                                .unwrap_or_default(),
                        ),
                        "enum" | "default" | "example" | "required" => v.clone(),
                        _ => to_json_schema(v),
                    };
                    (k.clone(), v)
                })
                .collect();
            if out.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(t)) = out.get("type").cloned() {
                    out.insert("type".into(), serde_json::json!([t, "null"]));
                }
                if let Some(Value::Array(values)) = out.get_mut("enum")
                    && !values.contains(&Value::Null)
                {
                    values.push(Value::Null);
                }
            }
            if out.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
                && !out.contains_key("type")
            {
                out.insert("type".into(), serde_json::json!(["integer", "string"]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

/// Top-level fields every Kubernetes object has, which CRD schemas leave out.
const OBJECT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Removes the fields `schema` does not know from `value`, reporting each, as the apiserver's
/// pruning would (without telling anyone).
fn prune_unknown(
    schema: &Value,
    value: &mut Value,
    path: &str,
    root: bool,
    violations: &mut Vec<SchemaViolation>,
) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if properties.is_none() && additional.is_none() {
                return;
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_path = join(path, &key);
                if let Some(child_schema) = properties.and_then(|p| p.get(&key)) {
                    if let Some(child) = map.get_mut(&key) {
                        prune_unknown(child_schema, child, &child_path, false, violations);
                    }
                } else if let Some(child_schema) = additional {
                    if let Some(child) = map.get_mut(&key) {
                        prune_unknown(child_schema, child, &child_path, false, violations);
                    }
                } else if root && OBJECT_FIELDS.contains(&key.as_str()) {
                    continue;
                } else {
                    map.remove(&key);
                    let known: Vec<&str> = properties
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    let hint = closest(&key, &known)
                        .map(|k| format!("; did you mean `{k}`?"))
                        .unwrap_or_default();
                    violations.push(SchemaViolation::error(
                        ViolationSource::UnknownField,
                        child_path,
                        format!(
                            "unknown field `{key}`: the apiserver would silently drop it{hint}"
                        ),
                    ));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_unknown(
                        item_schema,
                        item,
                        &format!("{path}[{i}]"),
                        false,
                        violations,
                    );
                }
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The known name closest to a misspelt one, if it is close enough to be a typo.
fn closest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 5))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Turns a JSON pointer (`/spec/alarms/0/period`) into a dotted path (`spec.alarms[0].period`),
/// using the document to tell array indices from object keys.
fn dotted_path(pointer: &str, document: &Value) -> String {
    let mut path = String::new();
    let mut current = Some(document);
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        match current {
            Some(Value::Array(items)) => {
                path.push_str(&format!("[{segment}]"));
                current = segment.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            other => {
                path = join(&path, &segment);
                current = other.and_then(|v| v.get(&segment));
            }
        }
    }
    path
}

fn describe_value(value: &Value) -> String {
    let text = value.to_string();
    let shown = if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    };
    let kind = match value {
        Value::Null => return "null".to_string(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => return "an object".to_string(),
    };
    format!("the {kind} {shown}")
}

fn number(limit: &Value) -> String {
    match limit.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        _ => limit.to_string(),
    }
}

fn structural_violation(
    error: &jsonschema::ValidationError<'_>,
    document: &Value,
) -> SchemaViolation {
    let path = dotted_path(error.instance_path().as_str(), document);
    let instance = error.instance();
    let count = |v: &Value| match v {
        Value::Array(a) => a.len(),
        Value::String(s) => s.chars().count(),
        _ => 0,
    };
    let (path, message) = match error.kind() {
        ValidationErrorKind::Required { property } => (
            join(&path, property.as_str().unwrap_or_default()),
            "is required".to_string(),
        ),
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .filter(|t| t != "null")
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            (
                path,
                format!(
                    "must be of type {expected}, not {}",
                    describe_value(instance)
                ),
            )
        }
        ValidationErrorKind::Enum { options } => {
            let allowed = options
                .as_array()
                .map(|o| {
                    o.iter()
                        .filter(|v| !v.is_null())
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            (path, format!("must be one of {allowed}; got {}", instance))
        }
        ValidationErrorKind::Minimum { limit } => (
            path,
            format!("must be at least {}, not {}", number(limit), instance),
        ),
        ValidationErrorKind::Maximum { limit } => (
            path,
            format!("must be at most {}, not {}", number(limit), instance),
        ),
        ValidationErrorKind::MinLength { limit } => (
            path,
            format!(
                "must be at least {limit} characters long (it has {})",
                count(instance)
            ),
        ),
        ValidationErrorKind::MaxLength { limit } => (
            path,
            format!(
                "must be at most {limit} characters long (it has {})",
                count(instance)
            ),
        ),
        ValidationErrorKind::MinItems { limit } => (
            path,
            format!(
                "must have at least {limit} items (it has {})",
                count(instance)
            ),
        ),
        ValidationErrorKind::MaxItems { limit } => (
            path,
            format!(
                "must have at most {limit} items (it has {})",
                count(instance)
            ),
        ),
        ValidationErrorKind::Pattern { pattern } => (
            path,
            format!("must match the pattern `{pattern}`; got {instance}"),
        ),
        _ => (path, error.to_string()),
    };
    SchemaViolation::error(ViolationSource::Structure, path, message)
}

/// Whether `name` is a DNS-1123 subdomain: what the apiserver requires of most object names.
pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether `name` is a DNS-1123 label: what the apiserver requires of namespace names.
pub fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && is_dns_subdomain(name)
}

fn validate_metadata(metadata: Option<&Value>, violations: &mut Vec<SchemaViolation>) {
    let push = |violations: &mut Vec<SchemaViolation>, path: &str, message: String| {
        violations.push(SchemaViolation::error(
            ViolationSource::Metadata,
            path,
            message,
        ));
    };
    let Some(metadata) = metadata else {
        push(violations, "metadata.name", "is required".to_string());
        return;
    };
    let Some(metadata) = metadata.as_object() else {
        push(
            violations,
            "metadata",
            format!("must be an object, not {}", describe_value(metadata)),
        );
        return;
    };
    match metadata.get("name") {
        None => push(
            violations,
            "metadata.name",
            "is required (generateName does not work with kubectl apply or GitOps)".to_string(),
        ),
        Some(Value::String(name)) if !is_dns_subdomain(name) => push(
            violations,
            "metadata.name",
            format!(
                "{name:?} is not a valid name: use at most 253 lowercase letters, digits, '-' \
                 and '.', starting and ending with a letter or digit"
            ),
        ),
        Some(Value::String(_)) => {}
        Some(other) => push(
            violations,
            "metadata.name",
            format!("must be a string, not {}", describe_value(other)),
        ),
    }
    match metadata.get("namespace") {
        Some(Value::String(ns)) if !is_dns_label(ns) => push(
            violations,
            "metadata.namespace",
            format!(
                "{ns:?} is not a valid namespace: use at most 63 lowercase letters, digits and \
                 '-', starting and ending with a letter or digit"
            ),
        ),
        None | Some(Value::String(_)) => {}
        Some(other) => push(
            violations,
            "metadata.namespace",
            format!("must be a string, not {}", describe_value(other)),
        ),
    }
    for field in ["labels", "annotations"] {
        match metadata.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Object(entries)) => {
                for (key, value) in entries {
                    if !value.is_string() {
                        push(
                            violations,
                            &format!("metadata.{field}.{key}"),
                            format!("must be a string (quote it), not {}", describe_value(value)),
                        );
                    }
                }
            }
            Some(other) => push(
                violations,
                &format!("metadata.{field}"),
                format!("must be a map of strings, not {}", describe_value(other)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(alarm: Value) -> Value {
        json!({
            "apiVersion": "alertops.dev/v1alpha1",
            "kind": "AlarmPolicy",
            "metadata": {"name": "elb", "namespace": "observability"},
            "spec": {"alarms": [alarm]}
        })
    }

    fn alarm() -> Value {
        json!({
            "name": "elb-backend-errors",
            "metric": {
                "namespace": "AWS/ELB",
                "name": "BackendConnectionErrors",
                "dimensions": {"LoadBalancerName": "broker"},
                "statistic": "Sum"
            },
            "period": 60,
            "evaluationPeriods": 5,
            "threshold": 100,
            "comparison": "GreaterThanThreshold",
            "treatMissingData": "notBreaching"
        })
    }

    fn with(mut base: Value, field: &str, value: Value) -> Value {
        base[field] = value;
        base
    }

    fn validate(document: &Value) -> Vec<SchemaViolation> {
        SchemaValidator::new()
            .unwrap()
            .validate(AlertopsKind::AlarmPolicy, document)
    }

    fn paths(violations: &[SchemaViolation]) -> Vec<(&str, ViolationSource)> {
        violations
            .iter()
            .map(|v| (v.path.as_str(), v.source))
            .collect()
    }

    #[test]
    fn a_valid_policy_has_no_violations() {
        assert_eq!(validate(&policy(alarm())), vec![]);
    }

    #[test]
    fn window_longer_than_a_day_is_rejected_by_cel() {
        let doc = policy(with(
            with(alarm(), "period", json!(3600)),
            "evaluationPeriods",
            json!(25),
        ));
        let v = validate(&doc);
        assert_eq!(paths(&v), vec![("spec.alarms[0]", ViolationSource::Cel)]);
        assert!(v[0].message.contains("86400"), "{}", v[0].message);
    }

    #[test]
    fn datapoints_to_alarm_above_evaluation_periods_is_rejected_by_cel() {
        let v = validate(&policy(with(alarm(), "datapointsToAlarm", json!(6))));
        assert_eq!(paths(&v), vec![("spec.alarms[0]", ViolationSource::Cel)]);
        assert_eq!(
            v[0].message,
            "datapointsToAlarm must not exceed evaluationPeriods"
        );
    }

    #[test]
    fn duplicate_alarm_names_are_rejected_by_cel() {
        let mut doc = policy(alarm());
        doc["spec"]["alarms"] = json!([alarm(), alarm()]);
        let v = validate(&doc);
        assert_eq!(paths(&v), vec![("spec", ViolationSource::Cel)]);
        assert_eq!(v[0].message, "alarm names must be unique within a policy");
    }

    #[test]
    fn five_additional_actions_are_rejected_by_cel() {
        let arns: Vec<String> = (0..5)
            .map(|i| format!("arn:aws:sns:eu-west-1:123456789012:extra-{i}"))
            .collect();
        let v = validate(&policy(with(alarm(), "additionalActions", json!(arns))));
        assert_eq!(paths(&v), vec![("spec.alarms[0]", ViolationSource::Cel)]);
        assert!(v[0].message.contains("at most 4 additionalActions"));
    }

    #[test]
    fn anomaly_detection_takes_the_place_of_the_threshold_and_its_comparisons_by_cel() {
        let mut band = alarm();
        band.as_object_mut().unwrap().remove("threshold");
        band["anomalyDetection"] = json!({"bandWidth": 2});
        band["comparison"] = json!("LessThanLowerThreshold");
        assert_eq!(validate(&policy(band.clone())), vec![]);

        let v = validate(&policy(with(band.clone(), "threshold", json!(1))));
        assert_eq!(paths(&v), vec![("spec.alarms[0]", ViolationSource::Cel)]);
        assert!(v[0].message.contains("exactly one of threshold"), "{v:?}");

        let v = validate(&policy(with(
            band,
            "comparison",
            json!("GreaterThanThreshold"),
        )));
        assert_eq!(paths(&v), vec![("spec.alarms[0]", ViolationSource::Cel)]);
        assert!(v[0].message.contains("compares with its band"), "{v:?}");

        let v = validate(&policy(with(
            alarm(),
            "comparison",
            json!("GreaterThanUpperThreshold"),
        )));
        assert_eq!(paths(&v), vec![("spec.alarms[0]", ViolationSource::Cel)]);
    }

    #[test]
    fn a_period_that_is_no_multiple_of_60_is_rejected_by_cel() {
        let v = validate(&policy(with(alarm(), "period", json!(90))));
        assert_eq!(paths(&v), vec![("spec.alarms[0]", ViolationSource::Cel)]);
    }

    #[test]
    fn a_wrong_enum_names_the_field_and_the_allowed_values() {
        let mut a = alarm();
        a["metric"]["statistic"] = json!("Max");
        let v = validate(&policy(a));
        assert_eq!(
            paths(&v),
            vec![(
                "spec.alarms[0].metric.statistic",
                ViolationSource::Structure
            )]
        );
        assert_eq!(
            v[0].message,
            r#"must be one of Sum, Average, Maximum, Minimum, SampleCount; got "Max""#
        );
    }

    #[test]
    fn an_unknown_field_is_reported_with_a_suggestion_and_does_not_hide_cel() {
        let mut a = with(alarm(), "evaluationPeriod", json!(3));
        a["datapointsToAlarm"] = json!(9);
        let v = validate(&policy(a));
        assert_eq!(
            paths(&v),
            vec![
                (
                    "spec.alarms[0].evaluationPeriod",
                    ViolationSource::UnknownField
                ),
                ("spec.alarms[0]", ViolationSource::Cel),
            ]
        );
        assert!(
            v[0].message.contains("did you mean `evaluationPeriods`?"),
            "{}",
            v[0].message
        );
    }

    #[test]
    fn types_ranges_patterns_required_and_max_items_have_field_paths() {
        let mut a = with(alarm(), "period", json!("60s"));
        a["evaluationPeriods"] = json!(0);
        a["runbookUrl"] = json!("wiki/elb");
        a.as_object_mut().unwrap().remove("comparison");
        let mut doc = policy(a);
        doc["spec"]["eventRules"] = json!(
            (0..101)
                .map(|i| json!({"name": format!("r{i}"), "preset": "EmrClusterFailed"}))
                .collect::<Vec<_>>()
        );
        let v = validate(&doc);
        let mut found: Vec<_> = v
            .iter()
            .map(|v| (v.path.as_str(), v.message.as_str()))
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                ("spec.alarms[0].comparison", "is required"),
                (
                    "spec.alarms[0].evaluationPeriods",
                    "must be at least 1, not 0"
                ),
                (
                    "spec.alarms[0].period",
                    r#"must be of type integer, not the string "60s""#
                ),
                (
                    "spec.alarms[0].runbookUrl",
                    r#"must match the pattern `^https?://`; got "wiki/elb""#
                ),
                (
                    "spec.eventRules",
                    "must have at most 100 items (it has 101)"
                ),
            ]
        );
        assert!(v.iter().all(|v| v.source != ViolationSource::Cel));
    }

    #[test]
    fn null_is_accepted_where_the_schema_is_nullable() {
        let v = validate(&policy(with(alarm(), "description", Value::Null)));
        assert_eq!(v, vec![]);
    }

    #[test]
    fn metadata_name_must_be_present_and_valid() {
        let mut doc = policy(alarm());
        doc["metadata"] = json!({"name": "ELB_Alarms", "labels": {"tier": 1}});
        let v = validate(&doc);
        assert_eq!(
            paths(&v),
            vec![
                ("metadata.name", ViolationSource::Metadata),
                ("metadata.labels.tier", ViolationSource::Metadata)
            ]
        );
        doc["metadata"] = json!({"namespace": "obs"});
        let v = validate(&doc);
        assert_eq!(
            paths(&v),
            vec![("metadata.name", ViolationSource::Metadata)]
        );
    }

    #[test]
    fn status_in_a_manifest_is_a_warning() {
        let mut doc = policy(alarm());
        doc["status"] = json!({"alarmCount": 1});
        let v = validate(&doc);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].level, LintLevel::Warning);
    }

    #[test]
    fn route_and_schedule_schemas_are_checked_too() {
        let validator = SchemaValidator::new().unwrap();
        let route = json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "AlertRoute",
            "metadata": {"name": "r"},
            "spec": {"sources": [{"alarmPolicy": "p", "topicArn": "arn:aws:sns:us-east-1:123456789012:t"}]}
        });
        let v = validator.validate(AlertopsKind::AlertRoute, &route);
        let messages: Vec<_> = v
            .iter()
            .map(|v| (v.path.as_str(), v.message.as_str()))
            .collect();
        assert!(
            messages.contains(&(
                "spec.sources[0]",
                "set exactly one of alarmPolicy or topicArn"
            )),
            "{messages:?}"
        );
        assert!(
            messages.contains(&(
                "spec",
                "a route needs at least one destination: slack or email"
            )),
            "{messages:?}"
        );
        let schedule = json!({
            "apiVersion": "alertops.dev/v1alpha1", "kind": "DigestSchedule",
            "metadata": {"name": "d"},
            "spec": {"schedule": "0 8,20 * * *", "sources": [{"alarmPolicy": "p"}]}
        });
        let v = validator.validate(AlertopsKind::DigestSchedule, &schedule);
        assert_eq!(paths(&v), vec![("spec.email", ViolationSource::Structure)]);
    }

    #[test]
    fn dotted_paths_tell_indices_from_keys() {
        let doc = json!({"spec": {"alarms": [{"tags": {"0": "x"}}]}});
        assert_eq!(
            dotted_path("/spec/alarms/0/tags/0", &doc),
            "spec.alarms[0].tags.0"
        );
        assert_eq!(dotted_path("", &doc), "");
    }

    #[test]
    fn dns_names() {
        assert!(is_dns_subdomain("elb-backend.errors"));
        assert!(!is_dns_subdomain("Elb"));
        assert!(!is_dns_subdomain("-elb"));
        assert!(!is_dns_label("a.b"));
    }
}
