//! The CloudWatch Logs filter pattern of a log alarm (`spec.logAlarms[].logs.filterPattern`),
//! parsed so that a pattern CloudWatch would refuse is reported before it reaches AWS, with the
//! column where it goes wrong (lint and validation both use it; the controller never sends an
//! unparsable pattern).
//!
//! The grammar is CloudWatch Logs' own, in its three shapes:
//!
//! - **Terms**: words or `"quoted phrases"` separated by spaces, all of which must occur;
//!   `?term` makes terms alternatives, `-term` excludes, `%regex%` is a regular expression.
//!   The empty pattern matches every line.
//! - **JSON**: `{ SELECTOR OP VALUE }` where SELECTOR is `$.field.sub[0]`, OP one of
//!   `= != < > <= >=`, VALUE a number, a `"string"`, a bare word (`*` wildcards) or `%regex%`;
//!   also `SELECTOR IS TRUE|FALSE|NULL`, `SELECTOR NOT EXISTS`, `SELECTOR EXISTS`. Comparisons
//!   combine with `&&`, `||` and parentheses.
//! - **Space-delimited**: `[name, name OP VALUE, ..., name OP VALUE && name OP VALUE]`, one entry
//!   per space-separated field of the line, `...` for any number of fields.

use std::fmt;

use super::alarm_policy::LogAlarmSpec;

/// Which of the three shapes a pattern has; dimensions and `$` values depend on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternShape {
    /// Plain, quoted, `?` or `-` terms (or the empty pattern): no fields to extract.
    Terms,
    /// A JSON selector pattern: metric values and dimensions may name `$.field`s of the event.
    Json,
    /// A space-delimited pattern with these named fields (`$name` may be extracted).
    SpaceDelimited(Vec<String>),
}

/// Why a pattern does not parse: the 1-based column (in characters) and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct PatternError {
    /// Column of the offending character, from 1 (the end of the pattern for a missing part).
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Parses a filter pattern and returns its shape.
pub fn parse(pattern: &str) -> Result<PatternShape, PatternError> {
    let chars: Vec<char> = pattern.chars().collect();
    let first = chars.iter().position(|c| !c.is_whitespace());
    match first.map(|i| chars[i]) {
        None => Ok(PatternShape::Terms),
        Some('{') => {
            let mut p = Parser::new(&chars, first.unwrap_or(0) + 1);
            p.json_expression()?;
            p.skip_space();
            p.expect('}', "`}` closing the JSON pattern")?;
            p.end()?;
            Ok(PatternShape::Json)
        }
        Some('[') => {
            let mut p = Parser::new(&chars, first.unwrap_or(0) + 1);
            let fields = p.space_delimited()?;
            p.end()?;
            Ok(PatternShape::SpaceDelimited(fields))
        }
        Some(_) => {
            terms(&chars)?;
            Ok(PatternShape::Terms)
        }
    }
}

fn error(column: usize, message: impl Into<String>) -> PatternError {
    PatternError {
        column,
        message: message.into(),
    }
}

/// Terms: words, quoted phrases and `%regex%`, each optionally prefixed by `?` or `-`.
fn terms(chars: &[char]) -> Result<(), PatternError> {
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c == '?' || c == '-' {
            i += 1;
            if i >= chars.len() || chars[i].is_whitespace() {
                return Err(error(
                    start + 1,
                    format!("`{c}` must be followed by a term (no space between)"),
                ));
            }
        }
        match chars[i] {
            '"' => i = closing(chars, i, '"', "a quoted term")? + 1,
            '%' => i = closing(chars, i, '%', "a %regex% term")? + 1,
            _ => {
                while i < chars.len() && !chars[i].is_whitespace() {
                    match chars[i] {
                        '{' | '}' | '[' | ']' => {
                            return Err(error(
                                i + 1,
                                format!(
                                    "`{}` inside a term: JSON patterns start with `{{` and \
                                     space-delimited ones with `[`, as the whole pattern; quote \
                                     the term to match the character itself",
                                    chars[i]
                                ),
                            ));
                        }
                        '"' => {
                            return Err(error(
                                i + 1,
                                "a quote inside a term: quote the whole term (`\"...\"`)",
                            ));
                        }
                        _ => i += 1,
                    }
                }
            }
        }
        if i < chars.len() && !chars[i].is_whitespace() {
            return Err(error(i + 1, "terms are separated by spaces"));
        }
    }
    Ok(())
}

/// Index of the character closing the one at `open` (a backslash escapes).
fn closing(chars: &[char], open: usize, close: char, what: &str) -> Result<usize, PatternError> {
    let mut i = open + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            c if c == close => return Ok(i),
            _ => i += 1,
        }
    }
    Err(error(
        open + 1,
        format!("{what} opened here is not closed (missing `{close}`)"),
    ))
}

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
}

const OPERATORS: [&str; 6] = ["!=", "<=", ">=", "=", "<", ">"];

impl<'a> Parser<'a> {
    fn new(chars: &'a [char], at: usize) -> Self {
        Parser { chars, at }
    }

    fn column(&self) -> usize {
        self.at + 1
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn rest_starts_with(&self, text: &str) -> bool {
        (self.at..)
            .zip(text.chars())
            .all(|(i, c)| self.chars.get(i) == Some(&c))
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), PatternError> {
        match self.peek() {
            Some(found) if found == c => {
                self.at += 1;
                Ok(())
            }
            Some(found) => Err(error(
                self.column(),
                format!("expected {what}, found `{found}`"),
            )),
            None => Err(error(
                self.column(),
                format!("expected {what} at the end of the pattern"),
            )),
        }
    }

    fn end(&mut self) -> Result<(), PatternError> {
        self.skip_space();
        match self.peek() {
            None => Ok(()),
            Some(c) => Err(error(
                self.column(),
                format!("unexpected `{c}` after the end of the pattern"),
            )),
        }
    }

    /// `&&` or `||` at the cursor (after spaces), rejecting the single `&` and `|`.
    fn connective(&mut self) -> Result<Option<&'static str>, PatternError> {
        self.skip_space();
        for op in ["&&", "||"] {
            if self.rest_starts_with(op) {
                self.at += 2;
                return Ok(Some(op));
            }
        }
        match self.peek() {
            Some(c @ ('&' | '|')) => Err(error(
                self.column(),
                format!("`{c}` alone is not an operator: use `{c}{c}`"),
            )),
            _ => Ok(None),
        }
    }

    fn json_expression(&mut self) -> Result<(), PatternError> {
        loop {
            self.skip_space();
            match self.peek() {
                Some('(') => {
                    self.at += 1;
                    self.json_expression()?;
                    self.skip_space();
                    self.expect(')', "`)` closing the parenthesis")?;
                }
                Some('$') => self.json_comparison()?,
                Some(c @ ('&' | '|')) => {
                    return Err(error(
                        self.column(),
                        format!("`{c}{c}` needs a comparison on its left"),
                    ));
                }
                Some('}') | None => {
                    return Err(error(
                        self.column(),
                        "expected a comparison such as `$.level = \"ERROR\"`",
                    ));
                }
                Some(c) => {
                    return Err(error(
                        self.column(),
                        format!("expected a selector starting with `$.`, found `{c}`"),
                    ));
                }
            }
            if self.connective()?.is_none() {
                return Ok(());
            }
            self.skip_space();
            if matches!(self.peek(), Some('}' | ')') | None) {
                return Err(error(
                    self.column(),
                    "`&&`/`||` needs a comparison on its right",
                ));
            }
        }
    }

    fn json_comparison(&mut self) -> Result<(), PatternError> {
        let start = self.column();
        self.at += 1; // `$`
        let mut selector = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_alphanumeric() || "._-[]*@".contains(*c))
        {
            selector.push(c);
            self.at += 1;
        }
        if !(selector.starts_with('.') || selector.starts_with('[')) || selector.len() < 2 {
            return Err(error(
                start,
                "a selector is `$.` followed by a field path, e.g. `$.level` or `$.items[0].id`",
            ));
        }
        if selector.matches('[').count() != selector.matches(']').count() {
            return Err(error(
                start,
                "unbalanced `[`/`]` in the selector's array index",
            ));
        }
        self.skip_space();
        for keyword in ["IS TRUE", "IS FALSE", "IS NULL", "NOT EXISTS", "EXISTS"] {
            if self.rest_starts_with(keyword) {
                self.at += keyword.len();
                return Ok(());
            }
        }
        if self.rest_starts_with("==") {
            return Err(error(self.column(), "`==` is not an operator: use `=`"));
        }
        let Some(op) = OPERATORS.iter().find(|op| self.rest_starts_with(op)) else {
            return Err(match self.peek() {
                Some(c) => error(
                    self.column(),
                    format!(
                        "expected an operator (=, !=, <, >, <=, >=, IS, NOT EXISTS) after the \
                         selector, found `{c}`"
                    ),
                ),
                None => error(self.column(), "expected an operator after the selector"),
            });
        };
        self.at += op.len();
        self.value()
    }

    /// A value: `"string"`, `%regex%`, a number or a bare word (with `*` wildcards).
    fn value(&mut self) -> Result<(), PatternError> {
        self.skip_space();
        match self.peek() {
            Some('"') => self.at = closing(self.chars, self.at, '"', "a quoted value")? + 1,
            Some('%') => self.at = closing(self.chars, self.at, '%', "a %regex% value")? + 1,
            Some(c) if is_bare(c) => {
                while self.peek().is_some_and(is_bare) {
                    self.at += 1;
                }
            }
            Some(c) => {
                return Err(error(
                    self.column(),
                    format!("expected a value after the operator, found `{c}`"),
                ));
            }
            None => {
                return Err(error(self.column(), "expected a value after the operator"));
            }
        }
        Ok(())
    }

    /// `[field, field OP value, ..., field OP value && field OP value]` → the field names.
    fn space_delimited(&mut self) -> Result<Vec<String>, PatternError> {
        let mut fields = Vec::new();
        loop {
            self.skip_space();
            if self.rest_starts_with("...") {
                self.at += 3;
            } else {
                let name = self.field_name()?;
                self.skip_space();
                if OPERATORS.iter().any(|op| self.rest_starts_with(op)) {
                    self.field_condition(&name)?;
                    while self.connective()?.is_some() {
                        self.skip_space();
                        let other = self.field_name()?;
                        self.skip_space();
                        self.field_condition(&other)?;
                    }
                }
                fields.push(name);
            }
            self.skip_space();
            match self.peek() {
                Some(',') => self.at += 1,
                Some(']') => {
                    self.at += 1;
                    return Ok(fields);
                }
                Some(c) => {
                    return Err(error(
                        self.column(),
                        format!("expected `,` or `]` between fields, found `{c}`"),
                    ));
                }
                None => {
                    return Err(error(
                        self.column(),
                        "expected `]` closing the space-delimited pattern",
                    ));
                }
            }
        }
    }

    fn field_name(&mut self) -> Result<String, PatternError> {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.at += 1;
        }
        if name.is_empty() {
            return Err(match self.peek() {
                Some(c) => error(
                    self.column(),
                    format!("expected a field name or `...`, found `{c}`"),
                ),
                None => error(self.column(), "expected a field name or `...`"),
            });
        }
        Ok(name)
    }

    fn field_condition(&mut self, _name: &str) -> Result<(), PatternError> {
        if self.rest_starts_with("==") {
            return Err(error(self.column(), "`==` is not an operator: use `=`"));
        }
        let Some(op) = OPERATORS.iter().find(|op| self.rest_starts_with(op)) else {
            return Err(error(
                self.column(),
                "expected an operator (=, !=, <, >, <=, >=)",
            ));
        };
        self.at += op.len();
        self.value()
    }
}

/// Characters of a bare value (a word, a number, a wildcard): anything but spaces and the
/// pattern's own punctuation.
fn is_bare(c: char) -> bool {
    !c.is_whitespace() && !"{}[]()&|,\"%=!<>".contains(c)
}

/// One reason a log alarm cannot work as written: the field (relative to the log alarm) and
/// what is wrong. Shared by the controller's validation (which refuses the spec) and by
/// `alertops lint` (an error finding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogAlarmProblem {
    /// The field, e.g. `logs.filterPattern`.
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// What CloudWatch Logs would refuse, or what would make the alarm watch a series the filter
/// never publishes: a pattern that does not parse, `$` fields a terms pattern cannot extract,
/// space-delimited fields the pattern does not name, more than 3 dimensions, a default value
/// with dimensions, and alarm dimensions that are not the filter's.
pub fn log_alarm_problems(log_alarm: &LogAlarmSpec) -> Vec<LogAlarmProblem> {
    let mut out = Vec::new();
    let mut problem =
        |field: &'static str, message: String| out.push(LogAlarmProblem { field, message });
    let metric = &log_alarm.logs.metric;
    let shape = match parse(&log_alarm.logs.filter_pattern) {
        Ok(shape) => Some(shape),
        Err(e) => {
            problem(
                "logs.filterPattern",
                format!("the filter pattern does not parse: {e}"),
            );
            None
        }
    };
    let extracted = std::iter::once(("logs.metric.value", metric.value.as_str())).chain(
        metric
            .dimensions
            .values()
            .map(|v| ("logs.metric.dimensions", v.as_str())),
    );
    for (field, value) in extracted {
        let is_field = value.starts_with('$');
        if !is_field && field == "logs.metric.value" {
            if value.parse::<f64>().is_err() {
                problem(
                    field,
                    format!("{value:?} is neither a number (such as 1) nor a `$` field"),
                );
            }
            continue;
        }
        if !is_field {
            problem(
                field,
                format!("{value:?}: a dimension's value is a `$` field of the log event"),
            );
            continue;
        }
        match &shape {
            Some(PatternShape::Terms) => problem(
                field,
                format!(
                    "{value:?} extracts a field, which a terms pattern has not: use a JSON                      (`{{ $.field = ... }}`) or space-delimited (`[a, b, ...]`) pattern"
                ),
            ),
            Some(PatternShape::Json) if !value.starts_with("$.") => problem(
                field,
                format!("{value:?}: a JSON pattern's fields are written `$.field`"),
            ),
            Some(PatternShape::SpaceDelimited(names))
                if !names
                    .iter()
                    .any(|n| value.strip_prefix('$') == Some(n.as_str())) =>
            {
                problem(
                    field,
                    format!(
                        "{value:?} is not a field of the space-delimited pattern (its fields:                          {})",
                        names.join(", ")
                    ),
                )
            }
            _ => {}
        }
    }
    if metric.dimensions.len() > 3 {
        problem(
            "logs.metric.dimensions",
            "CloudWatch Logs allows at most 3 dimensions per metric filter".into(),
        );
    }
    if !metric.dimensions.is_empty() && metric.default_value.is_some() {
        problem(
            "logs.metric.defaultValue",
            "CloudWatch Logs allows no defaultValue on a metric with dimensions".into(),
        );
    }
    let filter_keys: Vec<&String> = metric.dimensions.keys().collect();
    let alarm_keys: Vec<&String> = log_alarm.dimensions.keys().collect();
    if filter_keys != alarm_keys {
        problem(
            "dimensions",
            format!(
                "the alarm must name a value for each dimension of logs.metric.dimensions, and                  only those ([{}]): the filter publishes only per-value series, so an alarm on                  other dimensions never gets a datapoint",
                filter_keys
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    out
}

impl fmt::Display for PatternShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatternShape::Terms => "a terms pattern",
            PatternShape::Json => "a JSON pattern",
            PatternShape::SpaceDelimited(_) => "a space-delimited pattern",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column_of(pattern: &str) -> usize {
        parse(pattern).expect_err(pattern).column
    }

    #[test]
    fn accepts_the_documented_shapes() {
        for pattern in [
            "",
            "ERROR",
            "ERROR Exception",
            "\"Connection refused\" -healthcheck",
            "?ERROR ?WARN",
            "%ERROR [0-9]+%",
            r#"{ $.level = "ERROR" && $.service = "checkout" }"#,
            r#"{ ($.status >= 500) || ($.latency > 2000 && $.path != "/health") }"#,
            "{ $.user.id = * }",
            "{ $.items[0].sku = \"A*\" }",
            "{ $.retry IS TRUE }",
            "{ $.error NOT EXISTS }",
            "{ $.message = %time(d|out)% }",
            "[ip, user, username, timestamp, request, status_code = 5*, bytes]",
            "[..., status_code != 200 && status_code != 404, size]",
            "[w1=ERROR, ...]",
        ] {
            assert!(parse(pattern).is_ok(), "{pattern}: {:?}", parse(pattern));
        }
    }

    #[test]
    fn shapes_tell_what_can_be_extracted() {
        assert_eq!(parse("ERROR").unwrap(), PatternShape::Terms);
        assert_eq!(parse("{ $.a = 1 }").unwrap(), PatternShape::Json);
        assert_eq!(
            parse("[ip, ..., status = 5*, bytes]").unwrap(),
            PatternShape::SpaceDelimited(vec!["ip".into(), "status".into(), "bytes".into()])
        );
    }

    #[test]
    fn unbalanced_braces_brackets_and_quotes_name_their_column() {
        assert_eq!(column_of(r#"{ $.level = "ERROR""#), 20, "one past the end");
        assert_eq!(column_of("{ ($.a = 1 }"), 12);
        assert_eq!(column_of("[ip, user"), 10);
        assert_eq!(column_of(r#"ERROR "connection refused"#), 7);
        assert_eq!(
            column_of(r#"{ $.level = "ERROR }"#),
            13,
            "the unclosed quote"
        );
        assert_eq!(column_of("ERROR }"), 7);
        assert_eq!(column_of("{ $.a = 1 } }"), 13);
    }

    #[test]
    fn bad_json_operators_are_named() {
        let e = parse(r#"{ $.level == "ERROR" }"#).unwrap_err();
        assert_eq!(e.column, 11);
        assert!(e.message.contains("use `=`"), "{e}");
        let e = parse(r#"{ $.level ~ "ERROR" }"#).unwrap_err();
        assert_eq!(e.column, 11);
        assert!(e.message.contains("expected an operator"), "{e}");
        assert!(parse("{ level = 1 }").unwrap_err().message.contains("`$.`"));
    }

    #[test]
    fn misused_connectives_are_named() {
        let e = parse(r#"{ $.a = 1 & $.b = 2 }"#).unwrap_err();
        assert_eq!((e.column, e.message.contains("`&&`")), (11, true));
        let e = parse(r#"{ $.a = 1 | $.b = 2 }"#).unwrap_err();
        assert_eq!((e.column, e.message.contains("`||`")), (11, true));
        assert_eq!(column_of("{ $.a = 1 && }"), 14);
        assert_eq!(column_of("{ && $.a = 1 }"), 3);
        assert_eq!(column_of("{ $.a = 1 $.b = 2 }"), 11);
    }

    fn log_alarm(logs: serde_json::Value, dimensions: serde_json::Value) -> LogAlarmSpec {
        serde_json::from_value(serde_json::json!({
            "name": "checkout-errors", "logs": logs, "dimensions": dimensions,
            "period": 60, "evaluationPeriods": 1, "threshold": 5,
            "comparison": "GreaterThanThreshold"
        }))
        .unwrap()
    }

    #[test]
    fn a_json_log_alarm_with_matching_dimensions_has_no_problems() {
        let spec = log_alarm(
            serde_json::json!({"logGroup": "/aws/lambda/checkout",
                "filterPattern": "{ $.level = \"ERROR\" }",
                "metric": {"namespace": "App", "name": "Errors",
                           "dimensions": {"Service": "$.service"}}}),
            serde_json::json!({"Service": "checkout"}),
        );
        assert_eq!(log_alarm_problems(&spec), Vec::new());
        assert_eq!(spec.logs.metric.value, "1", "counts lines by default");
    }

    #[test]
    fn log_alarm_problems_name_their_field() {
        let fields = |logs, dims| -> Vec<&'static str> {
            log_alarm_problems(&log_alarm(logs, dims))
                .into_iter()
                .map(|p| p.field)
                .collect()
        };
        assert_eq!(
            fields(
                serde_json::json!({"logGroup": "g", "filterPattern": "{ $.a = 1",
                    "metric": {"namespace": "A", "name": "B"}}),
                serde_json::json!({})
            ),
            vec!["logs.filterPattern"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"logGroup": "g", "filterPattern": "ERROR",
                    "metric": {"namespace": "A", "name": "B", "value": "$.latency"}}),
                serde_json::json!({})
            ),
            vec!["logs.metric.value"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"logGroup": "g", "filterPattern": "[ip, status, bytes]",
                    "metric": {"namespace": "A", "name": "B", "value": "$size"}}),
                serde_json::json!({})
            ),
            vec!["logs.metric.value"]
        );
        assert_eq!(
            fields(
                serde_json::json!({"logGroup": "g", "filterPattern": "{ $.a = 1 }",
                    "metric": {"namespace": "A", "name": "B", "defaultValue": 0,
                               "dimensions": {"S": "$.s"}}}),
                serde_json::json!({})
            ),
            vec!["logs.metric.defaultValue", "dimensions"]
        );
    }

    #[test]
    fn term_prefixes_need_a_term() {
        assert_eq!(column_of("ERROR ? WARN"), 7);
        assert_eq!(column_of("ERROR -"), 7);
    }
}
