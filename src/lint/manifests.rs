//! Loading manifests from a file or a folder into documents that remember where they came from.
//!
//! This is the only part of `lint` that touches the file system. Documents are kept as JSON values
//! (not typed resources) so that schema validation sees exactly what was written, including
//! unknown fields and wrong types that deserialising into the Rust types would hide or reject.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::LintError;
use crate::resources::{GROUP, VERSION};

/// Where a document was read from: the file and the position of the document in it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    /// The file, as reached from the path given to the loader.
    pub file: PathBuf,
    /// Index of the YAML document in the file, from 0 (items of a `List` are counted as documents).
    pub index: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.file.display(), self.index)
    }
}

/// The alertops kinds of version `v1alpha1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertopsKind {
    /// `AlarmPolicy`
    AlarmPolicy,
    /// `AlertRoute`
    AlertRoute,
    /// `DigestSchedule`
    DigestSchedule,
}

impl AlertopsKind {
    /// Every kind, in the order of [`crate::resources::crd::all`].
    pub const ALL: [AlertopsKind; 3] = [
        AlertopsKind::AlarmPolicy,
        AlertopsKind::AlertRoute,
        AlertopsKind::DigestSchedule,
    ];

    /// The `kind` as written in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertopsKind::AlarmPolicy => "AlarmPolicy",
            AlertopsKind::AlertRoute => "AlertRoute",
            AlertopsKind::DigestSchedule => "DigestSchedule",
        }
    }

    /// Parses a manifest `kind`, exactly (Kubernetes kinds are case-sensitive).
    pub fn parse(kind: &str) -> Option<Self> {
        AlertopsKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl fmt::Display for AlertopsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a document is, judged from its `apiVersion` and `kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocumentClass {
    /// An alertops resource of a kind and version this build knows.
    Alertops(AlertopsKind),
    /// An `alertops.dev` document whose kind or version this build does not know: an error,
    /// because the apiserver would reject it.
    UnknownAlertops {
        /// The document's `apiVersion`.
        api_version: String,
        /// The document's `kind`.
        kind: String,
    },
    /// Any other Kubernetes object (Secret, ConfigMap, ...): not validated, but remembered so
    /// that references to Secrets can be checked.
    Other {
        /// The document's `apiVersion`.
        api_version: String,
        /// The document's `kind`.
        kind: String,
    },
    /// Not a Kubernetes object (no `apiVersion` or `kind`), for example a Helm values file.
    NotAManifest,
}

/// One document of a manifest file.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Where it was read from.
    pub origin: Origin,
    /// The document as written.
    pub value: Value,
    /// What it is.
    pub class: DocumentClass,
}

impl Document {
    /// `metadata.name`, when it is a string.
    pub fn name(&self) -> Option<&str> {
        self.value.pointer("/metadata/name").and_then(Value::as_str)
    }

    /// `metadata.namespace`, when it is a string.
    pub fn namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }

    /// `kind`, when it is a string.
    pub fn kind(&self) -> Option<&str> {
        self.value.get("kind").and_then(Value::as_str)
    }
}

/// A file that could not be parsed. Reported as a finding rather than an error so that one broken
/// file does not hide the findings of all the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseFailure {
    /// Where the failure is: the file, and the document that failed to parse.
    pub origin: Origin,
    /// What the parser said.
    pub message: String,
}

/// Everything read from a path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadedManifests {
    /// The documents, in file order and document order (files sorted by path).
    pub documents: Vec<Document>,
    /// Files or documents that could not be parsed.
    pub failures: Vec<ParseFailure>,
    /// Number of files read.
    pub files: usize,
}

/// Whether a file name looks like a manifest.
fn is_manifest_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Loads a manifest file, or every `.yaml`, `.yml` and `.json` file under a folder (recursively,
/// sorted by path, skipping hidden entries such as `.git` and not following symlinked folders).
pub fn load_path(path: &Path) -> Result<LoadedManifests, LintError> {
    let meta = std::fs::metadata(path).map_err(|source| LintError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    if meta.is_dir() {
        collect_files(path, &mut files)?;
    } else {
        files.push(path.to_path_buf());
    }
    let mut loaded = LoadedManifests::default();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| LintError::Read {
            path: file.clone(),
            source,
        })?;
        let is_json = file.extension().and_then(|e| e.to_str()) == Some("json");
        let parsed = parse_documents(&file, &text, is_json);
        loaded.documents.extend(parsed.documents);
        loaded.failures.extend(parsed.failures);
        loaded.files += 1;
    }
    Ok(loaded)
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), LintError> {
    let read_error = |source| LintError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(read_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type().map_err(|source| LintError::Read {
            path: path.clone(),
            source,
        })?;
        if file_type.is_dir() {
            collect_files(&path, files)?;
        } else if is_manifest_file(&path) && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    Ok(())
}

/// Parses the text of one file: a multi-document YAML stream, or one JSON value. Items of a
/// `kind: List` document are taken as documents of their own, as `kubectl` does.
pub fn parse_documents(file: &Path, text: &str, is_json: bool) -> LoadedManifests {
    let mut loaded = LoadedManifests {
        files: 1,
        ..LoadedManifests::default()
    };
    let mut values = Vec::new();
    if is_json {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => values.push(value),
            Err(e) => loaded.failures.push(ParseFailure {
                origin: Origin {
                    file: file.to_path_buf(),
                    index: 0,
                },
                message: format!("invalid JSON: {e}"),
            }),
        }
    } else {
        for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            match Value::deserialize(document) {
                Ok(value) => values.push(value),
                Err(e) => {
                    // The YAML stream cannot be resynchronised after a syntax error.
                    loaded.failures.push(ParseFailure {
                        origin: Origin {
                            file: file.to_path_buf(),
                            index,
                        },
                        message: format!("invalid YAML: {e}"),
                    });
                    break;
                }
            }
        }
    }
    let mut index = 0;
    for value in values {
        let expanded = match value {
            // An empty document (`---` at the end of a file, a comment-only file) is no object.
            Value::Null => continue,
            Value::Object(ref map)
                if map.get("kind").and_then(Value::as_str) == Some("List")
                    && map.get("items").is_some_and(Value::is_array) =>
            {
                map["items"].as_array().cloned().unwrap_or_default()
            }
            other => vec![other],
        };
        for value in expanded {
            let class = classify(&value);
            loaded.documents.push(Document {
                origin: Origin {
                    file: file.to_path_buf(),
                    index,
                },
                value,
                class,
            });
            index += 1;
        }
    }
    loaded
}

/// Tells alertops resources from other objects by `apiVersion` and `kind`.
pub fn classify(value: &Value) -> DocumentClass {
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    let kind = value.get("kind").and_then(Value::as_str);
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return DocumentClass::NotAManifest;
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    if group != GROUP {
        return DocumentClass::Other {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        };
    }
    match AlertopsKind::parse(kind) {
        Some(known) if version == VERSION => DocumentClass::Alertops(known),
        _ => DocumentClass::UnknownAlertops {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> LoadedManifests {
        parse_documents(Path::new("m.yaml"), text, false)
    }

    #[test]
    fn multi_document_yaml_keeps_document_indices_and_skips_empty_documents() {
        let loaded = parse(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\n---\n\
             apiVersion: alertops.dev/v1alpha1\nkind: AlarmPolicy\nmetadata: {name: p}\n",
        );
        assert!(loaded.failures.is_empty());
        assert_eq!(loaded.documents.len(), 2);
        assert_eq!(loaded.documents[0].origin.index, 0);
        assert_eq!(loaded.documents[1].origin.index, 1);
        assert_eq!(loaded.documents[1].origin.to_string(), "m.yaml#1");
        assert_eq!(
            loaded.documents[1].class,
            DocumentClass::Alertops(AlertopsKind::AlarmPolicy)
        );
        assert_eq!(loaded.documents[1].name(), Some("p"));
        assert!(matches!(
            loaded.documents[0].class,
            DocumentClass::Other { ref kind, .. } if kind == "Secret"
        ));
    }

    #[test]
    fn unknown_alertops_kind_or_version_is_recognised() {
        let kind = parse("apiVersion: alertops.dev/v1alpha1\nkind: AlarmPolcy\n");
        assert!(matches!(
            kind.documents[0].class,
            DocumentClass::UnknownAlertops { ref kind, .. } if kind == "AlarmPolcy"
        ));
        let version = parse("apiVersion: alertops.dev/v1\nkind: AlarmPolicy\n");
        assert!(matches!(
            version.documents[0].class,
            DocumentClass::UnknownAlertops { ref api_version, .. } if api_version == "alertops.dev/v1"
        ));
    }

    #[test]
    fn documents_without_api_version_are_not_manifests() {
        let loaded = parse("replicas: 3\nimage: foo\n");
        assert_eq!(loaded.documents[0].class, DocumentClass::NotAManifest);
    }

    #[test]
    fn list_items_become_documents() {
        let loaded = parse_documents(
            Path::new("l.json"),
            r#"{"apiVersion":"v1","kind":"List","items":[
                {"apiVersion":"alertops.dev/v1alpha1","kind":"AlertRoute","metadata":{"name":"a"}},
                {"apiVersion":"v1","kind":"Secret","metadata":{"name":"b"}}]}"#,
            true,
        );
        assert_eq!(loaded.documents.len(), 2);
        assert_eq!(
            loaded.documents[0].class,
            DocumentClass::Alertops(AlertopsKind::AlertRoute)
        );
        assert_eq!(loaded.documents[1].origin.index, 1);
    }

    #[test]
    fn syntax_errors_are_reported_with_the_document_index() {
        let loaded = parse("apiVersion: v1\nkind: Secret\n---\nkind: [unclosed\n");
        assert_eq!(loaded.documents.len(), 1);
        assert_eq!(loaded.failures.len(), 1);
        assert_eq!(loaded.failures[0].origin.index, 1);
        assert!(loaded.failures[0].message.starts_with("invalid YAML"));
    }

    #[test]
    fn folders_are_read_recursively_in_path_order_and_hidden_entries_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n";
        std::fs::write(dir.path().join("b/c/z.yml"), doc).unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"apiVersion":"v1","kind":"ConfigMap"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
        std::fs::write(dir.path().join(".git/config.yaml"), "kind: [").unwrap();
        let loaded = load_path(dir.path()).unwrap();
        assert_eq!(loaded.files, 2);
        assert!(loaded.failures.is_empty());
        let files: Vec<_> = loaded
            .documents
            .iter()
            .map(|d| {
                d.origin
                    .file
                    .strip_prefix(dir.path())
                    .unwrap()
                    .to_path_buf()
            })
            .collect();
        assert_eq!(
            files,
            vec![PathBuf::from("a.json"), PathBuf::from("b/c/z.yml")]
        );
    }

    #[test]
    fn a_missing_path_is_an_error_naming_it() {
        let err = load_path(Path::new("/nonexistent/alertops")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/alertops"), "{err}");
    }
}
