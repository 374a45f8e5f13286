//! The IAM policies in `deploy/iam/` (one per principal) grant exactly the AWS actions the code
//! calls, scoped by our naming and ownership tags.
//!
//! The scanner reads `src/**/*.rs` (comments, string literals and `#[cfg(test)]` items removed),
//! finds method calls on the SDK client fields of `AwsClients` (`cloudwatch`, `sns`, `sqs`,
//! `eventbridge`, `emr`, `ses`, `logs`), keeps those whose method is a real operation of that service's
//! SDK crate (read from the crate's `src/operation/` folder, located with `cargo metadata`), and
//! turns each into its IAM action. Calls through a client bound to another name
//! (`let c = aws.sqs.clone(); c.receive_message()`) are not seen: call through the field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The client fields of `AwsClients`, the SDK crate behind each, and the IAM service prefix.
const SERVICES: &[(&str, &str, &str)] = &[
    ("cloudwatch", "aws-sdk-cloudwatch", "cloudwatch"),
    ("sns", "aws-sdk-sns", "sns"),
    ("sqs", "aws-sdk-sqs", "sqs"),
    ("eventbridge", "aws-sdk-eventbridge", "events"),
    ("emr", "aws-sdk-emr", "elasticmapreduce"),
    ("ses", "aws-sdk-sesv2", "ses"),
    ("logs", "aws-sdk-cloudwatchlogs", "logs"),
];

/// Where an IAM action's name differs from the operation's: batch operations that IAM authorises
/// with the single-message action (SQS and SNS have no separate batch actions).
const ACTION_ALIASES: &[(&str, &str)] = &[
    ("sqs:DeleteMessageBatch", "sqs:DeleteMessage"),
    ("sqs:SendMessageBatch", "sqs:SendMessage"),
    (
        "sqs:ChangeMessageVisibilityBatch",
        "sqs:ChangeMessageVisibility",
    ),
    ("sns:PublishBatch", "sns:Publish"),
];

/// Actions that an operation needs beyond its own: RunJobFlow hands the cluster's service role
/// and instance profile role to EMR, which IAM checks as `iam:PassRole`.
/// Tagging on creation is authorised separately: CreateQueue with tags needs `sqs:TagQueue`, and
/// RunJobFlow with tags needs `elasticmapreduce:AddTags`.
const IMPLIED_ACTIONS: &[(&str, &str)] = &[
    ("elasticmapreduce:RunJobFlow", "iam:PassRole"),
    ("elasticmapreduce:RunJobFlow", "elasticmapreduce:AddTags"),
    ("sqs:CreateQueue", "sqs:TagQueue"),
];

/// One SDK call site: which client field, which method, where.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SdkCall {
    field: String,
    method: String,
}

/// Replaces comments and the contents of string and character literals with spaces, keeping
/// newlines, so that later scans see only code.
fn strip_comments_and_literals(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_is_ident = i > 0 && is_ident(chars[i - 1]);
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            continue;
        }
        // Raw strings: r"..", r#".."#, br#".."# (the `b` was already copied as an identifier char).
        let raw_start = if c == 'r' && (!prev_is_ident || (i > 0 && chars[i - 1] == 'b')) {
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            (chars.get(j) == Some(&'"')).then_some(j - i - 1)
        } else {
            None
        };
        if let Some(hashes) = raw_start {
            out.push('r');
            out.extend(std::iter::repeat_n('#', hashes));
            out.push('"');
            i += hashes + 2;
            while i < chars.len() {
                let closes =
                    chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#'));
                if closes {
                    out.push('"');
                    out.extend(std::iter::repeat_n('#', hashes));
                    i += hashes + 1;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
            continue;
        }
        if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    out.push(' ');
                    out.push(blank(chars[i + 1]));
                    i += 2;
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
            continue;
        }
        if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a): only the former closes.
            let end = if next == Some('\\') {
                (i + 2..chars.len()).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                out.push('\'');
                out.extend(std::iter::repeat_n(' ', end - i - 1));
                out.push('\'');
                i = end + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Blanks every item marked `#[cfg(test)]` in comment-free code, and returns the names of the
/// out-of-line test modules (`#[cfg(test)] mod tests;`), whose files must be skipped too.
fn strip_test_items(code: &str) -> (String, Vec<String>) {
    let mut bytes = code.as_bytes().to_vec();
    let mut skipped_modules = Vec::new();
    let mut search_from = 0;
    while let Some(start) = find_cfg_test(&bytes, search_from) {
        let mut i = start;
        // The attribute itself, then any further attributes on the same item.
        while i < bytes.len() && bytes[i] == b'#' {
            i = skip_balanced(&bytes, skip_ws(&bytes, i + 1));
            i = skip_ws(&bytes, i);
        }
        // The item runs to its `;` or to the end of its first top-level `{ .. }` block.
        let item_start = i;
        let mut depth = 0usize;
        let mut end = bytes.len();
        while i < bytes.len() {
            match bytes[i] {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth = depth.saturating_sub(1),
                b';' if depth == 0 => {
                    let item = String::from_utf8_lossy(&bytes[item_start..i]).to_string();
                    let words: Vec<&str> = item.split_whitespace().collect();
                    if let Some(pos) = words.iter().position(|w| *w == "mod")
                        && let Some(name) = words.get(pos + 1)
                    {
                        skipped_modules.push(name.to_string());
                    }
                    end = i + 1;
                    break;
                }
                b'{' if depth == 0 => {
                    end = skip_balanced(&bytes, i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        for b in &mut bytes[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        search_from = end;
    }
    // Only ASCII bytes were replaced by ASCII spaces, so the text is still UTF-8.
    (
        String::from_utf8(bytes).expect("blanking keeps UTF-8"),
        skipped_modules,
    )
}

/// Position of the next `#[cfg(test)]` attribute (whitespace allowed between tokens).
fn find_cfg_test(bytes: &[u8], from: usize) -> Option<usize> {
    let tokens: [&[u8]; 6] = [b"[", b"cfg", b"(", b"test", b")", b"]"];
    (from..bytes.len()).find(|&start| {
        if bytes[start] != b'#' {
            return false;
        }
        let mut i = start + 1;
        for token in tokens {
            i = skip_ws(bytes, i);
            if !bytes[i..].starts_with(token) {
                return false;
            }
            i += token.len();
        }
        true
    })
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// From an opening bracket at `open`, the position just after its matching close.
fn skip_balanced(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Every `<field>.<method>(` in comment-free code where `<field>` is one of the client
/// fields, however the chain is broken across lines; the receiver before the field may be
/// anything (`self.aws.sqs`, `ctx.aws.emr`, a local `sqs`).
fn candidate_calls(code: &str) -> BTreeSet<SdkCall> {
    let fields: BTreeSet<&str> = SERVICES.iter().map(|(field, _, _)| *field).collect();
    let tokens = tokenize(code);
    let mut calls = BTreeSet::new();
    for window in tokens.windows(4) {
        let [field, dot, method, paren] = window else {
            continue;
        };
        if fields.contains(field.as_str())
            && dot == "."
            && is_identifier(method)
            && (paren == "(" || paren == "::")
        {
            calls.insert(SdkCall {
                field: field.clone(),
                method: method.clone(),
            });
        }
    }
    calls
}

/// Identifiers, `::`, and single punctuation characters; whitespace dropped.
fn tokenize(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut ident = String::from(c);
            while let Some(&n) = chars.peek() {
                if n.is_alphanumeric() || n == '_' {
                    ident.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(ident);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            tokens.push("::".to_string());
        } else if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    tokens
}

fn is_identifier(token: &str) -> bool {
    token
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// `put_metric_alarm` → `PutMetricAlarm`.
fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

/// The IAM actions a call needs: its own (aliased where IAM names it differently) and any it
/// implies. `None` when the field is not a client field.
fn iam_actions(call: &SdkCall) -> Option<Vec<String>> {
    let (_, _, prefix) = SERVICES.iter().find(|(f, _, _)| *f == call.field)?;
    let own = format!("{prefix}:{}", pascal_case(&call.method));
    let own = ACTION_ALIASES
        .iter()
        .find(|(op, _)| *op == own)
        .map_or(own, |(_, action)| action.to_string());
    let mut actions = vec![own.clone()];
    actions.extend(
        IMPLIED_ACTIONS
            .iter()
            .filter(|(op, _)| *op == own)
            .map(|(_, implied)| implied.to_string()),
    );
    Some(actions)
}

/// The SDK calls in one source file's text (comments, literals and test items removed), and
/// the out-of-line test modules it declares.
fn calls_in_source(src: &str) -> (BTreeSet<SdkCall>, Vec<String>) {
    let code = strip_comments_and_literals(src);
    // A file that is test-only as a whole (`#![cfg(test)]`) calls nothing in production.
    let compact: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("#![cfg(test)]") {
        return (BTreeSet::new(), Vec::new());
    }
    let (code, test_modules) = strip_test_items(&code);
    (candidate_calls(&code), test_modules)
}

/// The operations of each service's SDK crate, by client field, from `src/operation/` of the
/// crate version this workspace resolves.
fn sdk_operations() -> BTreeMap<String, BTreeSet<String>> {
    // Only the host's dependencies are downloaded, so resolve for the host alone.
    let host = host_triple();
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata JSON");
    let resolved: BTreeSet<&str> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .filter_map(|n| n["id"].as_str())
        .collect();
    let mut operations = BTreeMap::new();
    for (field, krate, _) in SERVICES {
        let package = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .find(|p| {
                p["name"] == *krate && p["id"].as_str().is_some_and(|id| resolved.contains(id))
            })
            .unwrap_or_else(|| panic!("{krate} is not a resolved dependency"));
        let manifest = PathBuf::from(package["manifest_path"].as_str().expect("manifest_path"));
        let dir = manifest.parent().expect("crate dir").join("src/operation");
        let names: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .filter_map(Result::ok)
            .filter(|entry| entry.path().is_dir())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.is_empty(), "{} lists no operations", dir.display());
        operations.insert(field.to_string(), names);
    }
    operations
}

/// The host target triple, from the `rustc` of the toolchain running these tests.
fn host_triple() -> String {
    let cargo = Path::new(env!("CARGO"));
    let sibling = cargo.with_file_name("rustc");
    let rustc = if sibling.exists() {
        sibling
    } else {
        PathBuf::from("rustc")
    };
    let output = std::process::Command::new(&rustc)
        .arg("-vV")
        .output()
        .unwrap_or_else(|e| panic!("run {} -vV: {e}", rustc.display()));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_string)
        .expect("rustc -vV names the host")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The folder holding the child modules of the module in `file`.
fn child_module_dir(file: &Path) -> PathBuf {
    let parent = file.parent().expect("file has a folder");
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("mod" | "lib" | "main") => parent.to_path_buf(),
        Some(stem) => parent.join(stem),
        None => parent.to_path_buf(),
    }
}

/// Every SDK operation `src/` calls outside tests, with the files that call it.
fn operations_called() -> BTreeMap<SdkCall, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let operations = sdk_operations();
    let mut test_files = BTreeSet::new();
    let mut calls: BTreeMap<SdkCall, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let src = std::fs::read_to_string(file).expect("read source");
        let (found, test_modules) = calls_in_source(&src);
        for module in test_modules {
            let dir = child_module_dir(file);
            test_files.insert(dir.join(format!("{module}.rs")));
            test_files.insert(dir.join(&module).join("mod.rs"));
        }
        let relative = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        for call in found {
            if operations[&call.field].contains(&call.method) {
                calls.entry(call).or_default().insert(relative.clone());
            }
        }
    }
    // Out-of-line test modules are known only after their parents were read.
    for set in calls.values_mut() {
        set.retain(|f| !test_files.contains(&root.join(f)));
    }
    calls.retain(|_, set| !set.is_empty());
    calls
}

/// The principals, their policy files, and the actions each needs. The union must be exactly
/// what the scanner finds in `src/` (so a new SDK call fails here until a principal gets it);
/// each policy must grant exactly its row. Who calls what: the reconcilers (controller); the
/// consumers and digests, which read their queues, enrich (EMR cluster, alarm tags) and send
/// email; the retry Job, which rebuilds and runs the cluster; the interaction server, which
/// reads the failed cluster before it creates the Job; `alertops plan` in a CI job, which reads
/// what the controller reads and lists topics and queues.
const PRINCIPALS: &[(&str, &[&str])] = &[
    (
        "controller",
        &[
            "cloudwatch:DeleteAlarms",
            "cloudwatch:DescribeAlarms",
            "cloudwatch:ListTagsForResource",
            "cloudwatch:PutCompositeAlarm",
            "cloudwatch:PutMetricAlarm",
            "cloudwatch:TagResource",
            "cloudwatch:UntagResource",
            "events:DeleteRule",
            "events:ListRules",
            "events:ListTagsForResource",
            "events:ListTargetsByRule",
            "events:PutRule",
            "events:PutTargets",
            "events:RemoveTargets",
            "events:TagResource",
            "events:UntagResource",
            // Log alarms' metric filters, listed, written and deleted per log group.
            "logs:DeleteMetricFilter",
            "logs:DescribeMetricFilters",
            "logs:PutMetricFilter",
            "sns:CreateTopic",
            "sns:DeleteTopic",
            "sns:GetSubscriptionAttributes",
            "sns:GetTopicAttributes",
            "sns:ListSubscriptions",
            "sns:ListSubscriptionsByTopic",
            "sns:ListTagsForResource",
            "sns:ListTopics",
            "sns:SetSubscriptionAttributes",
            "sns:SetTopicAttributes",
            "sns:Subscribe",
            "sns:TagResource",
            "sns:UntagResource",
            "sns:Unsubscribe",
            "sqs:CreateQueue",
            "sqs:DeleteQueue",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ListQueueTags",
            "sqs:SetQueueAttributes",
            "sqs:TagQueue",
        ],
    ),
    (
        "workload",
        &[
            "cloudwatch:ListTagsForResource",
            "elasticmapreduce:DescribeCluster",
            // The log lines of a firing log alarm: its metric's filters, then their matches.
            "logs:DescribeMetricFilters",
            "logs:FilterLogEvents",
            "ses:SendEmail",
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
            // `alertops redrive`, run in a consumer's pod: dead-letter queue → route queue.
            "sqs:SendMessage",
        ],
    ),
    (
        "retry",
        &[
            "elasticmapreduce:AddTags",
            "elasticmapreduce:DescribeCluster",
            "elasticmapreduce:ListBootstrapActions",
            "elasticmapreduce:ListInstanceFleets",
            "elasticmapreduce:ListClusters",
            "elasticmapreduce:ListInstanceGroups",
            "elasticmapreduce:ListSteps",
            "elasticmapreduce:RunJobFlow",
            "iam:PassRole",
        ],
    ),
    ("interact", &["elasticmapreduce:DescribeCluster"]),
    (
        "plan",
        &[
            "cloudwatch:DescribeAlarms",
            "cloudwatch:ListTagsForResource",
            "events:ListRules",
            "events:ListTagsForResource",
            "events:ListTargetsByRule",
            "logs:DescribeMetricFilters",
            "sns:GetSubscriptionAttributes",
            "sns:GetTopicAttributes",
            "sns:ListSubscriptions",
            "sns:ListSubscriptionsByTopic",
            "sns:ListTagsForResource",
            "sns:ListTopics",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ListQueueTags",
            "sqs:ListQueues",
        ],
    ),
];

/// The ownership tag the controller's modify and delete statements are conditioned on
/// (`src/names.rs`).
const CLUSTER_TAG: &str = alertops::names::TAG_CLUSTER;

/// Actions, listed in statements of one policy.
fn statement_actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(list) => list
            .iter()
            .map(|a| a.as_str().expect("actions are strings").to_string())
            .collect(),
        other => panic!("Action must be a string or a list: {other}"),
    }
}

fn statement_resources(statement: &Value) -> Vec<String> {
    match &statement["Resource"] {
        Value::String(r) => vec![r.clone()],
        Value::Array(list) => list
            .iter()
            .map(|r| r.as_str().expect("resources are strings").to_string())
            .collect(),
        other => panic!("Resource must be a string or a list: {other}"),
    }
}

fn statements(policy: &Value) -> &Vec<Value> {
    policy["Statement"].as_array().expect("Statement is a list")
}

/// The actions of every Allow statement of the policy, checking the document's shape on the way.
fn policy_actions(policy: &Value) -> BTreeSet<String> {
    assert_eq!(
        policy["Version"], "2012-10-17",
        "IAM policy language version"
    );
    let mut actions = BTreeSet::new();
    for statement in statements(policy) {
        assert_eq!(
            statement["Effect"], "Allow",
            "only Allow statements: {statement}"
        );
        assert!(
            statement.get("Resource").is_some(),
            "no Resource: {statement}"
        );
        let listed = statement_actions(statement);
        let unique: BTreeSet<&String> = listed.iter().collect();
        assert_eq!(
            unique.len(),
            listed.len(),
            "an action listed twice in {statement}"
        );
        for action in listed {
            assert!(!action.contains('*'), "no wildcard actions: {action}");
            actions.insert(action);
        }
    }
    actions
}

fn deploy_file(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/iam")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every policy by principal.
fn policies() -> Vec<(&'static str, Value)> {
    PRINCIPALS
        .iter()
        .map(|(principal, _)| (*principal, deploy_file(&format!("{principal}.json"))))
        .collect()
}

/// Read-only by IAM's own naming: nothing that creates, changes, deletes, sends or runs.
fn is_read_only(action: &str) -> bool {
    let (_, name) = action.split_once(':').expect("service:Action");
    ["Describe", "Get", "List"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Whether an IAM resource pattern (`*` for any run of characters, `?` for one) matches.
fn arn_matches(pattern: &str, arn: &str) -> bool {
    fn go(p: &[u8], a: &[u8]) -> bool {
        match p.split_first() {
            None => a.is_empty(),
            Some((b'*', rest)) => (0..=a.len()).any(|i| go(rest, &a[i..])),
            Some((b'?', rest)) => !a.is_empty() && go(rest, &a[1..]),
            Some((c, rest)) => a.first() == Some(c) && go(rest, &a[1..]),
        }
    }
    go(pattern.as_bytes(), arn.as_bytes())
}

const ACCOUNT: &str = "123456789012";

/// The policy with its placeholders filled in for one cluster.
fn filled(policy: &Value, cluster_id: &str) -> Value {
    let text = policy
        .to_string()
        .replace("CLUSTER_ID", cluster_id)
        .replace("ACCOUNT_ID", ACCOUNT);
    serde_json::from_str(&text).expect("still JSON")
}

/// Whether some statement of `policy` allows `action` on `arn`, ignoring conditions.
fn allows(policy: &Value, action: &str, arn: &str) -> bool {
    statements(policy).iter().any(|s| {
        statement_actions(s).iter().any(|a| a == action)
            && statement_resources(s).iter().any(|r| arn_matches(r, arn))
    })
}

#[test]
fn iam_policies_grant_exactly_the_actions_the_code_calls() {
    let called = operations_called();
    assert!(
        !called.is_empty(),
        "the scanner found no SDK call at all in src/: it is broken"
    );
    let mut needed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (call, files) in &called {
        for action in iam_actions(call).expect("client field") {
            needed
                .entry(action)
                .or_default()
                .extend(files.iter().cloned());
        }
    }
    let assigned: BTreeSet<String> = PRINCIPALS
        .iter()
        .flat_map(|(_, actions)| actions.iter().map(|a| a.to_string()))
        .collect();
    let missing: Vec<String> = needed
        .iter()
        .filter(|(action, _)| !assigned.contains(*action))
        .map(|(action, files)| format!("{action} (called in {files:?})"))
        .collect();
    assert!(
        missing.is_empty(),
        "no principal's policy grants actions the code calls; add them to PRINCIPALS and to \
         the policy in deploy/iam/:\n  {}",
        missing.join("\n  ")
    );
    let unused: Vec<&String> = assigned
        .iter()
        .filter(|action| !needed.contains_key(*action))
        .collect();
    assert!(
        unused.is_empty(),
        "PRINCIPALS grants actions no code in src/ calls; remove them: {unused:?}"
    );
    for ((principal, expected), (_, policy)) in PRINCIPALS.iter().zip(policies()) {
        let expected: BTreeSet<String> = expected.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            policy_actions(&policy),
            expected,
            "deploy/iam/{principal}.json must grant exactly its PRINCIPALS row"
        );
    }
}

#[test]
fn every_mutating_action_on_any_resource_is_listed_with_a_reason() {
    let listed = deploy_file("unscoped-actions.json");
    let listed = listed["Actions"].as_object().expect("Actions is an object");
    for (action, reason) in listed {
        assert!(
            reason.as_str().is_some_and(|r| r.len() > 40),
            "{action} needs a reason"
        );
    }
    let mut used = BTreeSet::new();
    for (principal, policy) in policies() {
        for statement in statements(&policy) {
            if !statement_resources(statement).iter().any(|r| r == "*") {
                continue;
            }
            for action in statement_actions(statement) {
                if is_read_only(&action) {
                    continue;
                }
                assert!(
                    listed.contains_key(&action),
                    "deploy/iam/{principal}.json grants the mutating {action} on \"*\"; scope \
                     it, or list it with the reason in deploy/iam/unscoped-actions.json"
                );
                used.insert(action);
            }
        }
    }
    let stale: Vec<&String> = listed.keys().filter(|a| !used.contains(*a)).collect();
    assert!(stale.is_empty(), "listed but scoped (remove): {stale:?}");
}

#[test]
fn the_plan_principal_reads_what_the_controller_reads_and_writes_nothing() {
    let plan = policy_actions(&deploy_file("plan.json"));
    let writes: Vec<&String> = plan.iter().filter(|a| !is_read_only(a)).collect();
    assert!(writes.is_empty(), "plan.json grants writes: {writes:?}");
    let controller_reads: BTreeSet<String> = policy_actions(&deploy_file("controller.json"))
        .into_iter()
        .filter(|a| is_read_only(a))
        .collect();
    let missing: Vec<&String> = controller_reads.difference(&plan).collect();
    assert!(
        missing.is_empty(),
        "the plan observes as the controller does; plan.json lacks {missing:?}"
    );
    let filled = filled(&deploy_file("plan.json"), "prod-eu-1");
    let ours = alertops::names::OwnerIdentity::new("prod-eu-1", "AlertRoute", "team", "r");
    let theirs = alertops::names::OwnerIdentity::new("prod-eu-10", "AlertRoute", "team", "r");
    let queue = |id: &alertops::names::OwnerIdentity| {
        format!("arn:aws:sqs:eu-west-1:{ACCOUNT}:{}", id.queue_name(""))
    };
    assert!(allows(&filled, "sqs:GetQueueAttributes", &queue(&ours)));
    assert!(!allows(&filled, "sqs:GetQueueAttributes", &queue(&theirs)));
    // Referenced topics (existingArn) and topicArn sources are anyone's: read, never written.
    let shared = format!("arn:aws:sns:eu-west-1:{ACCOUNT}:prod-alarms");
    assert!(allows(&filled, "sns:ListSubscriptionsByTopic", &shared));
}

#[test]
fn the_controller_reads_the_topics_it_is_pointed_at_but_writes_only_its_own() {
    // `spec.topic.existingArn` and `topicArn` sources name topics of any owner: the controller
    // reads their attributes and subscriptions (and subscribes its own queues), nothing more.
    let filled = filled(&deploy_file("controller.json"), "prod-eu-1");
    let shared = format!("arn:aws:sns:eu-west-1:{ACCOUNT}:prod-alarms");
    assert!(allows(&filled, "sns:GetTopicAttributes", &shared));
    assert!(allows(&filled, "sns:ListSubscriptionsByTopic", &shared));
    for write in [
        "sns:SetTopicAttributes",
        "sns:DeleteTopic",
        "sns:TagResource",
    ] {
        assert!(
            !allows(&filled, write, &shared),
            "{write} on a shared topic"
        );
    }
}

#[test]
fn the_controller_modifies_only_what_carries_its_cluster_tag() {
    let policy = deploy_file("controller.json");
    for statement in statements(&policy) {
        let mutating = statement_actions(statement)
            .iter()
            .any(|a| !is_read_only(a));
        let scoped = !statement_resources(statement).iter().any(|r| r == "*");
        if !mutating || !scoped || statement["Sid"] == "SubscribeOurQueuesOnly" {
            continue;
        }
        // Metric filters carry no tags and IAM has no condition on a filter's name: the
        // statement is scoped to log groups, and only ever holds the metric-filter actions;
        // the code touches only filters under the policy's name prefix.
        if statement["Sid"] == "LogAlarmMetricFiltersPerLogGroup" {
            let mut actions = statement_actions(statement);
            actions.sort();
            assert_eq!(
                actions,
                [
                    "logs:DeleteMetricFilter",
                    "logs:DescribeMetricFilters",
                    "logs:PutMetricFilter"
                ]
            );
            continue;
        }
        let condition = statement["Condition"]["StringEquals"]
            .as_object()
            .unwrap_or_else(|| panic!("no StringEquals condition: {statement}"));
        let tag = [
            format!("aws:ResourceTag/{CLUSTER_TAG}"),
            format!("aws:RequestTag/{CLUSTER_TAG}"),
        ];
        assert!(
            tag.iter()
                .any(|key| condition.get(key) == Some(&Value::from("CLUSTER_ID"))),
            "a modify/delete statement without the cluster-tag condition: {statement}"
        );
    }
    // Subscribe is scoped by what it subscribes: our own queues, over SQS.
    let subscribe = statements(&policy)
        .iter()
        .find(|s| s["Sid"] == "SubscribeOurQueuesOnly")
        .expect("a Subscribe statement");
    assert_eq!(
        subscribe["Condition"]["StringEquals"]["sns:Protocol"],
        "sqs"
    );
    assert!(
        subscribe["Condition"]["ArnLike"]["sns:Endpoint"]
            .as_str()
            .is_some_and(|e| e.contains("alertops_CLUSTER_ID_"))
    );
}

#[test]
fn arn_patterns_match_our_names_and_not_another_clusters() {
    use alertops::names::OwnerIdentity;
    let ours = OwnerIdentity::new("prod-eu-1", "AlarmPolicy", "team-data", "emr-failures");
    let theirs = OwnerIdentity::new("prod-eu-10", "AlarmPolicy", "team-data", "emr-failures");
    let controller = filled(&deploy_file("controller.json"), "prod-eu-1");
    let workload = filled(&deploy_file("workload.json"), "prod-eu-1");
    let alarm = |id: &OwnerIdentity| {
        format!(
            "arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{}",
            id.alarm_name("failed")
        )
    };
    let topic = |id: &OwnerIdentity| format!("arn:aws:sns:eu-west-1:{ACCOUNT}:{}", id.topic_name());
    let queue = |id: &OwnerIdentity, suffix: &str| {
        format!("arn:aws:sqs:eu-west-1:{ACCOUNT}:{}", id.queue_name(suffix))
    };
    let rule = format!(
        "arn:aws:events:eu-west-1:{ACCOUNT}:rule/{}",
        ours.rule_name("emr")
    );
    assert!(allows(
        &controller,
        "cloudwatch:DeleteAlarms",
        &alarm(&ours)
    ));
    assert!(!allows(
        &controller,
        "cloudwatch:DeleteAlarms",
        &alarm(&theirs)
    ));
    assert!(allows(&controller, "sns:DeleteTopic", &topic(&ours)));
    assert!(!allows(&controller, "sns:DeleteTopic", &topic(&theirs)));
    for suffix in ["", "-dlq"] {
        assert!(allows(
            &controller,
            "sqs:DeleteQueue",
            &queue(&ours, suffix)
        ));
        assert!(!allows(
            &controller,
            "sqs:DeleteQueue",
            &queue(&theirs, suffix)
        ));
        assert!(allows(
            &workload,
            "sqs:DeleteMessage",
            &queue(&ours, suffix)
        ));
        assert!(!allows(
            &workload,
            "sqs:DeleteMessage",
            &queue(&theirs, suffix)
        ));
    }
    // Rule names carry a hash, not the cluster id: the tag condition tells clusters apart.
    assert!(allows(&controller, "events:DeleteRule", &rule));
    assert!(!allows(
        &controller,
        "events:DeleteRule",
        &format!("arn:aws:events:eu-west-1:{ACCOUNT}:rule/someone-elses")
    ));
    assert!(!allows(
        &controller,
        "cloudwatch:DeleteAlarms",
        &format!("arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:HandMade")
    ));
}

#[test]
fn pass_role_only_for_the_configured_emr_roles() {
    for (principal, policy) in policies() {
        for statement in statements(&policy) {
            if !statement_actions(statement)
                .iter()
                .any(|a| a == "iam:PassRole")
            {
                continue;
            }
            assert_eq!(principal, "retry", "only the retry Job passes roles");
            assert_eq!(
                statement["Action"],
                Value::String("iam:PassRole".to_string()),
                "iam:PassRole needs its own statement, so the condition covers nothing else"
            );
            let resources = statement_resources(statement);
            assert!(
                resources == ["EMR_SERVICE_ROLE_ARN"]
                    || resources == ["EMR_INSTANCE_PROFILE_ROLE_ARN"],
                "iam:PassRole on a configured role only: {statement}"
            );
            let service = &statement["Condition"]["StringEquals"]["iam:PassedToService"];
            let expected = if resources == ["EMR_SERVICE_ROLE_ARN"] {
                "elasticmapreduce.amazonaws.com"
            } else {
                "ec2.amazonaws.com"
            };
            assert_eq!(service, expected, "iam:PassedToService: {statement}");
        }
    }
}

#[test]
fn the_arn_matcher_is_a_glob() {
    assert!(arn_matches(
        "arn:aws:sqs:*:1:alertops_a_*",
        "arn:aws:sqs:eu:1:alertops_a_x"
    ));
    assert!(!arn_matches(
        "arn:aws:sqs:*:1:alertops_a_*",
        "arn:aws:sqs:eu:1:alertops_ab_x"
    ));
    assert!(arn_matches("a?c", "abc") && !arn_matches("a?c", "ac"));
}

mod scanner {
    use super::*;

    fn calls(src: &str) -> Vec<(String, String)> {
        calls_in_source(src)
            .0
            .into_iter()
            .map(|c| (c.field, c.method))
            .collect()
    }

    fn pair(field: &str, method: &str) -> (String, String) {
        (field.to_string(), method.to_string())
    }

    #[test]
    fn finds_calls_on_one_line_and_across_lines() {
        let src = r#"
            async fn f(&self) {
                self.aws.cloudwatch.put_metric_alarm().alarm_name("x").send().await?;
                let out = self
                    .aws
                    .sqs
                    .receive_message()
                    .queue_url(url)
                    .send()
                    .await?;
                ctx.aws.emr // the cluster
                    /* definition */ .describe_cluster().send().await?;
            }
        "#;
        assert_eq!(
            calls(src),
            vec![
                pair("cloudwatch", "put_metric_alarm"),
                pair("emr", "describe_cluster"),
                pair("sqs", "receive_message"),
            ]
        );
    }

    #[test]
    fn ignores_comments_strings_and_field_reads() {
        let src = r##"
            // self.aws.sns.create_topic()
            /// Calls `aws.ses.send_email()` eventually.
            /* self.aws.sqs.delete_queue() /* nested */ still comment */
            let s = "aws.sqs.purge_queue()";
            let r = r#"aws.sns.delete_topic() "quoted""#;
            let c = '"'; let l: &'static str = "x";
            let per_second = settings.emr.per_second.get();
            match api { AwsApi::Sqs => self.sqs, _ => self.sns }
        "##;
        assert_eq!(calls(src), Vec::<(String, String)>::new());
    }

    #[test]
    fn skips_test_modules_inline_and_out_of_line() {
        let src = r#"
            fn real(&self) { self.aws.sns.publish().send(); }
            #[cfg(test)]
            mod tests {
                fn setup() { clients.sqs.create_queue().send(); }
            }
            #[cfg(test)]
            #[path = "x.rs"]
            mod more_tests;
            #[cfg(test)]
            fn helper() { aws.emr.run_job_flow(); }
        "#;
        let (found, test_modules) = calls_in_source(src);
        let found: Vec<_> = found.into_iter().map(|c| (c.field, c.method)).collect();
        assert_eq!(found, vec![pair("sns", "publish")]);
        assert_eq!(test_modules, vec!["more_tests".to_string()]);
    }

    #[test]
    fn skips_files_that_are_test_only() {
        let src = "//! Fixtures.\n#![cfg(test)]\nfn f() { aws.sqs.create_queue(); }\n";
        assert_eq!(calls(src), Vec::<(String, String)>::new());
    }

    #[test]
    fn names_iam_actions_with_aliases_and_implied_actions() {
        let action = |field: &str, method: &str| {
            iam_actions(&SdkCall {
                field: field.to_string(),
                method: method.to_string(),
            })
        };
        assert_eq!(
            action("cloudwatch", "put_metric_alarm"),
            Some(vec!["cloudwatch:PutMetricAlarm".to_string()])
        );
        assert_eq!(
            action("eventbridge", "list_targets_by_rule"),
            Some(vec!["events:ListTargetsByRule".to_string()])
        );
        assert_eq!(
            action("sqs", "delete_message_batch"),
            Some(vec!["sqs:DeleteMessage".to_string()])
        );
        assert_eq!(
            action("emr", "run_job_flow"),
            Some(vec![
                "elasticmapreduce:RunJobFlow".to_string(),
                "iam:PassRole".to_string(),
                "elasticmapreduce:AddTags".to_string()
            ])
        );
        assert_eq!(
            action("ses", "send_email"),
            Some(vec!["ses:SendEmail".to_string()])
        );
        assert_eq!(action("s3", "get_object"), None);
    }

    #[test]
    fn the_sdk_operation_lists_filter_out_non_operations() {
        let operations = sdk_operations();
        assert!(operations["sqs"].contains("receive_message"));
        assert!(operations["ses"].contains("send_email"));
        assert!(!operations["emr"].contains("as_ref"));
        assert!(!operations["sqs"].contains("clone"));
    }
}
