//! Offline checks of manifests: the CRD schemas (structure and CEL rules, as the apiserver would
//! apply them), the alarm lint rules (mistakes only the meaning of a metric reveals), and
//! references between documents (sources, Secrets, duplicates).
//!
//! `alertops lint -f PATH` calls [`lint_path`], prints [`LintReport::render`] and exits 1 when
//! [`LintReport::has_errors`]. The controller reuses [`rules::lint_alarm_policy`] for status.

pub(crate) mod manifests;
pub mod rules;
pub(crate) mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::resources::alarm_policy::{LintFinding, LintLevel};
use crate::resources::{
    AlarmPolicySpec, AlertRouteSpec, DigestScheduleSpec, SecretKeyRef, SlackDestination, SourceRef,
};
use manifests::{AlertopsKind, Document, DocumentClass, LoadedManifests, Origin};
use schema::SchemaValidator;

/// Why linting could not run at all. Problems in the manifests are findings, not errors.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// A file or folder could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A generated CRD schema could not be compiled (a bug in alertops, not in the manifests).
    #[error("the generated schema of {kind} cannot be used: {message}")]
    Schema {
        /// The kind whose schema failed.
        kind: String,
        /// What went wrong.
        message: String,
    },
}

/// Ids used in [`Finding::rule`] for checks that are not alarm lint rules.
pub(crate) mod checks {
    /// A file or document that is not valid YAML or JSON.
    pub const PARSE: &str = "parse";
    /// An `alertops.dev` apiVersion with an unknown kind or version.
    pub const UNKNOWN_KIND: &str = "unknown-kind";
    /// A spec the schema accepts but the Rust types cannot decode (a bug in alertops).
    pub const DECODE: &str = "decode";
    /// Two documents declaring the same kind, namespace and name: the later one overwrites.
    pub const DUPLICATE_RESOURCE: &str = "duplicate-resource";
    /// A source AlarmPolicy that is not among the linted manifests.
    pub const UNKNOWN_SOURCE: &str = "unknown-source";
    /// A referenced Secret that is not among the linted manifests.
    pub const SECRET_NOT_FOUND: &str = "secret-not-found";
    /// A referenced Secret that is among the manifests but lacks the key.
    pub const SECRET_KEY_MISSING: &str = "secret-key-missing";
}

/// One problem found in one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// File and document index.
    pub origin: Origin,
    /// `Kind/name` of the document, when it has them.
    pub resource: Option<String>,
    /// `Error` fails the lint; `Warning` is advice.
    pub level: LintLevel,
    /// Lint rule id (see [`rules::RULES`]), schema check (`schema`, `cel`, `unknown-field`,
    /// `metadata`) or document check (see [`checks`]).
    pub rule: String,
    /// Field path such as `spec.alarms[0].period`, for schema findings.
    pub path: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Finding {
    /// The finding as one line: `file#doc Kind/name: level [rule] path: message`.
    pub fn render(&self) -> String {
        let level = match self.level {
            LintLevel::Error => "error",
            LintLevel::Warning => "warning",
        };
        let resource = self
            .resource
            .as_deref()
            .map(|r| format!(" {r}"))
            .unwrap_or_default();
        let path = self
            .path
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(|p| format!("{p}: "))
            .unwrap_or_default();
        format!(
            "{}{resource}: {level} [{}] {path}{}",
            self.origin, self.rule, self.message
        )
    }
}

/// The outcome of linting a set of manifests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LintReport {
    /// Files read.
    pub files: usize,
    /// alertops resources checked.
    pub resources: usize,
    /// Other documents (Secrets, ConfigMaps, non-manifests), read but not validated.
    pub skipped: usize,
    /// Findings, in file and document order.
    pub findings: Vec<Finding>,
}

impl LintReport {
    /// Whether any finding is an error (`alertops lint` then exits 1).
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.level == LintLevel::Error)
    }

    /// Number of findings of a level.
    pub fn count(&self, level: LintLevel) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }

    /// One line per finding, then a summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for finding in &self.findings {
            let _ = writeln!(out, "{}", finding.render());
        }
        let _ = writeln!(
            out,
            "{} resource(s) in {} file(s): {} error(s), {} warning(s)",
            self.resources,
            self.files,
            self.count(LintLevel::Error),
            self.count(LintLevel::Warning)
        );
        out
    }
}

/// Lints a manifest file, or every manifest under a folder.
pub fn lint_path(path: &Path) -> Result<LintReport, LintError> {
    let loaded = manifests::load_path(path)?;
    let validator = SchemaValidator::new()?;
    Ok(lint_manifests(&loaded, &validator))
}

/// Lints documents already loaded: schema, rules, then references between documents.
pub fn lint_manifests(loaded: &LoadedManifests, validator: &SchemaValidator) -> LintReport {
    let mut report = LintReport {
        files: loaded.files,
        ..LintReport::default()
    };
    let mut findings = Vec::new();
    for failure in &loaded.failures {
        findings.push(Finding {
            origin: failure.origin.clone(),
            resource: None,
            level: LintLevel::Error,
            rule: checks::PARSE.to_string(),
            path: None,
            message: failure.message.clone(),
        });
    }
    for document in &loaded.documents {
        match &document.class {
            DocumentClass::Alertops(kind) => {
                report.resources += 1;
                findings.extend(lint_resource(document, *kind, validator));
            }
            DocumentClass::UnknownAlertops { api_version, kind } => {
                findings.push(finding(
                    document,
                    LintLevel::Error,
                    checks::UNKNOWN_KIND,
                    None,
                    format!(
                        "{api_version} {kind} is not an alertops resource; alertops serves \
                         AlarmPolicy, AlertRoute and DigestSchedule in {}",
                        crate::resources::API_VERSION
                    ),
                ));
            }
            DocumentClass::Other { .. } | DocumentClass::NotAManifest => report.skipped += 1,
        }
    }
    findings.extend(check_references(&loaded.documents));
    // Reference checks run last but belong with their documents.
    findings.sort_by(|a, b| a.origin.cmp(&b.origin));
    report.findings = findings;
    report
}

fn resource_label(document: &Document) -> Option<String> {
    let kind = document.kind()?;
    Some(format!("{kind}/{}", document.name().unwrap_or("<unnamed>")))
}

fn finding(
    document: &Document,
    level: LintLevel,
    rule: &str,
    path: Option<String>,
    message: String,
) -> Finding {
    Finding {
        origin: document.origin.clone(),
        resource: resource_label(document),
        level,
        rule: rule.to_string(),
        path,
        message,
    }
}

fn from_lint(document: &Document, lint: LintFinding) -> Finding {
    finding(document, lint.level, &lint.rule, None, lint.message)
}

/// Decodes the spec into its Rust type; the error is serde's message.
fn decode<T: DeserializeOwned>(document: &Document) -> Result<T, serde_json::Error> {
    let spec = document.value.get("spec").cloned().unwrap_or(Value::Null);
    serde_json::from_value(spec)
}

fn lint_resource(
    document: &Document,
    kind: AlertopsKind,
    validator: &SchemaValidator,
) -> Vec<Finding> {
    let violations = validator.validate(kind, &document.value);
    let schema_errors = violations.iter().any(|v| v.level == LintLevel::Error);
    let mut findings: Vec<Finding> = violations
        .into_iter()
        .map(|v| {
            finding(
                document,
                v.level,
                v.source.as_str(),
                Some(v.path),
                v.message,
            )
        })
        .collect();
    let lint = match kind {
        AlertopsKind::AlarmPolicy => {
            decode::<AlarmPolicySpec>(document).map(|s| rules::lint_alarm_policy(&s))
        }
        AlertopsKind::AlertRoute => {
            decode::<AlertRouteSpec>(document).map(|s| rules::lint_alert_route(&s))
        }
        AlertopsKind::DigestSchedule => {
            decode::<DigestScheduleSpec>(document).map(|s| rules::lint_digest_schedule(&s))
        }
    };
    match lint {
        Ok(lint) => findings.extend(lint.into_iter().map(|l| from_lint(document, l))),
        // A spec the schema already rejected need not be reported twice.
        Err(_) if schema_errors => {}
        Err(e) => findings.push(finding(
            document,
            LintLevel::Error,
            checks::DECODE,
            Some("spec".to_string()),
            format!("cannot be decoded: {e}"),
        )),
    }
    findings
}

/// Namespace and name; documents without a namespace go to whatever namespace they are applied
/// in, which is taken to be the same for all of them.
type Key = (String, String);

fn key_of(document: &Document, name: &str) -> Key {
    (
        document.namespace().unwrap_or_default().to_string(),
        name.to_string(),
    )
}

/// Duplicates, and references from routes and schedules to policies and Secrets.
fn check_references(documents: &[Document]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut seen: BTreeMap<(String, Key), &Origin> = BTreeMap::new();
    let mut policies = BTreeSet::new();
    let mut secrets: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
    for document in documents {
        let (Some(kind), Some(name)) = (document.kind(), document.name()) else {
            continue;
        };
        if matches!(document.class, DocumentClass::NotAManifest) {
            continue;
        }
        let api_group = document
            .value
            .get("apiVersion")
            .and_then(Value::as_str)
            .and_then(|v| v.split_once('/').map(|(g, _)| g))
            .unwrap_or("");
        let key = key_of(document, name);
        let identity = (format!("{api_group}/{kind}"), key.clone());
        if let Some(first) = seen.get(&identity) {
            findings.push(finding(
                document,
                LintLevel::Error,
                checks::DUPLICATE_RESOURCE,
                None,
                format!(
                    "{kind} {name} is already declared at {first}; the later one would overwrite it"
                ),
            ));
        } else {
            seen.insert(identity, &document.origin);
        }
        match (&document.class, kind) {
            (DocumentClass::Alertops(AlertopsKind::AlarmPolicy), _) => {
                policies.insert(key);
            }
            (DocumentClass::Other { api_version, .. }, "Secret") if api_version == "v1" => {
                let keys = ["data", "stringData"]
                    .iter()
                    .filter_map(|field| document.value.get(*field).and_then(Value::as_object))
                    .flat_map(|map| map.keys().cloned())
                    .collect();
                secrets.insert(key, keys);
            }
            _ => {}
        }
    }

    for document in documents {
        let (sources, destinations): (Vec<SourceRef>, Vec<(&str, SlackDestination)>) =
            match document.class {
                DocumentClass::Alertops(AlertopsKind::AlertRoute) => {
                    match decode::<AlertRouteSpec>(document) {
                        Ok(spec) => (
                            spec.sources,
                            spec.slack.map(|s| ("spec.slack", s)).into_iter().collect(),
                        ),
                        Err(_) => continue,
                    }
                }
                DocumentClass::Alertops(AlertopsKind::DigestSchedule) => {
                    match decode::<DigestScheduleSpec>(document) {
                        Ok(spec) => (
                            spec.sources,
                            spec.slack.map(|s| ("spec.slack", s)).into_iter().collect(),
                        ),
                        Err(_) => continue,
                    }
                }
                _ => continue,
            };
        let namespace = document.namespace().unwrap_or_default();
        for (i, source) in sources.iter().enumerate() {
            if let Some(policy) = &source.alarm_policy
                && !policies.contains(&key_of(document, policy))
            {
                findings.push(finding(
                    document,
                    LintLevel::Warning,
                    checks::UNKNOWN_SOURCE,
                    Some(format!("spec.sources[{i}].alarmPolicy")),
                    format!(
                        "AlarmPolicy {policy} is not among the linted manifests{}; the route \
                         stays not Ready until it exists",
                        in_namespace(namespace)
                    ),
                ));
            }
        }
        for (path, slack) in destinations {
            let refs = [
                ("webhookSecretRef", &slack.webhook_secret_ref),
                ("botTokenSecretRef", &slack.bot_token_secret_ref),
            ];
            for (field, reference) in refs {
                if let Some(reference) = reference {
                    findings.extend(check_secret(
                        document,
                        &format!("{path}.{field}"),
                        reference,
                        &secrets,
                    ));
                }
            }
        }
    }
    findings
}

fn in_namespace(namespace: &str) -> String {
    if namespace.is_empty() {
        String::new()
    } else {
        format!(" in namespace {namespace}")
    }
}

fn check_secret(
    document: &Document,
    path: &str,
    reference: &SecretKeyRef,
    secrets: &BTreeMap<Key, BTreeSet<String>>,
) -> Option<Finding> {
    let namespace = document.namespace().unwrap_or_default();
    match secrets.get(&key_of(document, &reference.name)) {
        None => Some(finding(
            document,
            LintLevel::Warning,
            checks::SECRET_NOT_FOUND,
            Some(path.to_string()),
            format!(
                "Secret {} is not among the linted manifests{}; make sure it is created some \
                 other way (sealed or external secrets)",
                reference.name,
                in_namespace(namespace)
            ),
        )),
        Some(keys) if !keys.contains(&reference.key) => Some(finding(
            document,
            LintLevel::Error,
            checks::SECRET_KEY_MISSING,
            Some(format!("{path}.key")),
            format!(
                "Secret {} has no key {:?} (it has: {})",
                reference.name,
                reference.key,
                keys.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        )),
        Some(_) => None,
    }
}

/// `alertops lint`.
#[derive(clap::Args, Debug)]
pub struct LintArgs {
    /// A manifest file or a folder of manifests.
    #[arg(short = 'f', long = "filename")]
    pub path: std::path::PathBuf,
}

/// `alertops lint`: exit 0 when clean, 1 on findings of level error, 2 when the files cannot be read.
pub fn run_command(args: LintArgs) -> std::process::ExitCode {
    match lint_path(&args.path) {
        Ok(report) => {
            print!("{}", report.render());
            if report.has_errors() {
                std::process::ExitCode::from(1)
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("alertops lint: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use manifests::parse_documents;

    fn lint(text: &str) -> LintReport {
        let loaded = parse_documents(Path::new("m.yaml"), text, false);
        lint_manifests(&loaded, &SchemaValidator::new().unwrap())
    }

    const POLICY: &str = "apiVersion: alertops.dev/v1alpha1
kind: AlarmPolicy
metadata: {name: elb, namespace: alerting}
spec:
  alarms:
  - name: elb-backend-errors
    metric: {namespace: AWS/ELB, name: BackendConnectionErrors, statistic: Maximum}
    period: 60
    evaluationPeriods: 5
    threshold: 100
    comparison: GreaterThanThreshold
    treatMissingData: notBreaching
";

    #[test]
    fn a_rule_finding_renders_on_one_line_with_origin_resource_and_rule() {
        let report = lint(POLICY);
        assert!(report.has_errors());
        assert_eq!(report.resources, 1);
        assert_eq!(
            report.findings[0].render(),
            "m.yaml#0 AlarmPolicy/elb: error [count-metric-needs-sum] alarm elb-backend-errors: \
             Maximum of AWS/ELB BackendConnectionErrors is at most 1 per datapoint, so a \
             threshold of 100 can never be reached; use Sum"
        );
        assert!(
            report
                .render()
                .ends_with("1 resource(s) in 1 file(s): 1 error(s), 0 warning(s)\n")
        );
    }

    #[test]
    fn schema_findings_carry_the_field_path() {
        let report = lint(&POLICY.replace("period: 60", "period: 45"));
        let rendered: Vec<String> = report.findings.iter().map(Finding::render).collect();
        assert!(
            rendered.contains(
                &"m.yaml#0 AlarmPolicy/elb: error [cel] spec.alarms[0]: period must be 10, 20, \
                  30 or a multiple of 60 seconds"
                    .to_string()
            ),
            "{rendered:#?}"
        );
    }

    #[test]
    fn unknown_alertops_kinds_are_errors_and_other_kinds_are_skipped() {
        let report = lint(
            "apiVersion: alertops.dev/v1beta1\nkind: AlarmPolicy\nmetadata: {name: x}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
        );
        assert_eq!(report.skipped, 1);
        assert_eq!(report.findings.len(), 1);
        assert_eq!(report.findings[0].rule, checks::UNKNOWN_KIND);
        assert!(
            report.findings[0]
                .message
                .contains("alertops.dev/v1beta1 AlarmPolicy")
        );
    }

    #[test]
    fn duplicates_sources_and_secrets_are_cross_checked() {
        let route = "apiVersion: alertops.dev/v1alpha1
kind: AlertRoute
metadata: {name: team, namespace: alerting}
spec:
  sources: [{alarmPolicy: elb}, {alarmPolicy: missing}]
  slack:
    botTokenSecretRef: {name: slack-bot, key: token}
    channel: C0123456789
";
        let secret = "apiVersion: v1
kind: Secret
metadata: {name: slack-bot, namespace: alerting}
stringData: {bot-token: xoxb-not-a-real-token}
";
        let fixed = POLICY.replace("Maximum", "Sum");
        let report = lint(&format!("{fixed}---\n{route}---\n{secret}---\n{fixed}"));
        let found: Vec<(usize, &str, Option<&str>)> = report
            .findings
            .iter()
            .map(|f| (f.origin.index, f.rule.as_str(), f.path.as_deref()))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    1,
                    checks::UNKNOWN_SOURCE,
                    Some("spec.sources[1].alarmPolicy")
                ),
                (
                    1,
                    checks::SECRET_KEY_MISSING,
                    Some("spec.slack.botTokenSecretRef.key")
                ),
                (3, checks::DUPLICATE_RESOURCE, None),
            ]
        );
        let without_secret = lint(&format!("{fixed}---\n{route}"));
        assert!(
            without_secret
                .findings
                .iter()
                .any(|f| f.rule == checks::SECRET_NOT_FOUND && f.level == LintLevel::Warning)
        );
        assert!(!without_secret.has_errors());
    }

    #[test]
    fn parse_failures_are_findings_not_errors() {
        let report = lint("kind: [\n");
        assert!(report.has_errors());
        assert_eq!(report.findings[0].rule, checks::PARSE);
        assert!(
            report.findings[0]
                .render()
                .starts_with("m.yaml#0: error [parse] invalid YAML")
        );
    }

    #[test]
    fn odd_documents_give_findings_not_panics() {
        let report = lint(
            "just a string\n---\n[1, 2]\n---\n\
             apiVersion: alertops.dev/v1alpha1\nkind: AlarmPolicy\nmetadata: {name: a}\n---\n\
             apiVersion: alertops.dev/v1alpha1\nkind: AlertRoute\nmetadata: {name: b}\nspec: 5\n---\n\
             apiVersion: alertops.dev/v1alpha1\nkind: DigestSchedule\nmetadata: [x]\nspec: {}\n",
        );
        assert_eq!(report.skipped, 2);
        assert_eq!(report.resources, 3);
        let found: Vec<(usize, &str, Option<&str>)> = report
            .findings
            .iter()
            .map(|f| (f.origin.index, f.rule.as_str(), f.path.as_deref()))
            .collect();
        assert!(found.contains(&(2, "schema", Some("spec"))), "{found:?}");
        assert!(found.contains(&(3, "schema", Some("spec"))), "{found:?}");
        assert!(
            found.contains(&(4, "metadata", Some("metadata"))),
            "{found:?}"
        );
        assert!(
            found.contains(&(4, "schema", Some("spec.email"))),
            "{found:?}"
        );
        assert!(
            !found.iter().any(|(_, rule, _)| *rule == checks::DECODE),
            "{found:?}"
        );
    }
}
