//! The rule language of `CompositeAlarmSpec`: a composite alarm's rule, written over the policy's own alarm names and rewritten into
//! CloudWatch's `AlarmRule` over their derived AWS names.
//!
//! The syntax is CloudWatch's: `ALARM(name)`, `OK(name)`, `INSUFFICIENT_DATA(name)`, `TRUE`,
//! `FALSE`, combined with `AND`, `OR`, `NOT` and parentheses; a name may be quoted. A name must be
//! one of the policy's metric alarms (`spec.alarms`), so a composite never depends on an alarm
//! another policy (or nobody) owns, and composites never form cycles. The rewritten rule is
//! canonical (single spaces, quoted names), so it compares equal to what CloudWatch stores.

use std::fmt;

/// What is wrong with a rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// Not CloudWatch's rule syntax.
    #[error("{0}")]
    Syntax(String),
    /// A name that is not one of the policy's alarms.
    #[error(
        "{0:?} is not an alarm of this policy (spec.alarms); a composite combines only its own policy's alarms"
    )]
    UnknownAlarm(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
}

fn tokens(rule: &str) -> Result<Vec<Token>, RuleError> {
    let mut out = Vec::new();
    let mut chars = rule.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => text.push(c),
                        None => {
                            return Err(RuleError::Syntax("a quoted name is not closed".into()));
                        }
                    }
                }
                out.push(Token::Quoted(text));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '"') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

/// A parsed rule.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expr {
    State(&'static str, String),
    Constant(bool),
    Not(Box<Expr>),
    Binary(Box<Expr>, &'static str, Box<Expr>),
    Group(Box<Expr>),
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expression(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.term()?;
        while let Some(Token::Word(word)) = self.peek() {
            let op = match word.as_str() {
                "AND" => "AND",
                "OR" => "OR",
                other => {
                    return Err(RuleError::Syntax(format!(
                        "expected AND, OR or the end of the rule, found {other:?}"
                    )));
                }
            };
            self.next();
            let right = self.term()?;
            left = Expr::Binary(Box::new(left), op, Box::new(right));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, RuleError> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.expression()?;
                match self.next() {
                    Some(Token::Close) => Ok(Expr::Group(Box::new(inner))),
                    _ => Err(RuleError::Syntax("a parenthesis is not closed".into())),
                }
            }
            Some(Token::Word(word)) => match word.as_str() {
                "NOT" => Ok(Expr::Not(Box::new(self.term()?))),
                "TRUE" => Ok(Expr::Constant(true)),
                "FALSE" => Ok(Expr::Constant(false)),
                "ALARM" | "OK" | "INSUFFICIENT_DATA" => {
                    let state = match word.as_str() {
                        "ALARM" => "ALARM",
                        "OK" => "OK",
                        _ => "INSUFFICIENT_DATA",
                    };
                    let name = match (self.next(), self.next(), self.next()) {
                        (
                            Some(Token::Open),
                            Some(Token::Word(name) | Token::Quoted(name)),
                            Some(Token::Close),
                        ) => name,
                        _ => {
                            return Err(RuleError::Syntax(format!(
                                "{state} takes one alarm name in parentheses, as in {state}(errors)"
                            )));
                        }
                    };
                    Ok(Expr::State(state, name))
                }
                other => Err(RuleError::Syntax(format!(
                    "expected ALARM(name), OK(name), INSUFFICIENT_DATA(name), TRUE, FALSE, NOT or \
                     a parenthesis, found {other:?}"
                ))),
            },
            Some(Token::Quoted(name)) => Err(RuleError::Syntax(format!(
                "{name:?} needs a state function, as in ALARM(\"{name}\")"
            ))),
            Some(Token::Close) => Err(RuleError::Syntax("unexpected closing parenthesis".into())),
            None => Err(RuleError::Syntax("the rule ends too early".into())),
        }
    }
}

fn parse(rule: &str) -> Result<Expr, RuleError> {
    let mut parser = Parser {
        tokens: tokens(rule)?,
        at: 0,
    };
    let expr = parser.expression()?;
    match parser.peek() {
        None => Ok(expr),
        Some(token) => Err(RuleError::Syntax(format!(
            "unexpected {token:?} after a complete rule"
        ))),
    }
}

struct Rendered<'a, F>(&'a Expr, &'a F);

impl<F: Fn(&str) -> String> fmt::Display for Rendered<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Rendered(expr, name) = self;
        match expr {
            Expr::State(state, alarm) => write!(f, "{state}(\"{}\")", name(alarm)),
            Expr::Constant(true) => write!(f, "TRUE"),
            Expr::Constant(false) => write!(f, "FALSE"),
            Expr::Not(inner) => write!(f, "NOT {}", Rendered(inner, *name)),
            Expr::Binary(left, op, right) => write!(
                f,
                "{} {op} {}",
                Rendered(left, *name),
                Rendered(right, *name)
            ),
            Expr::Group(inner) => write!(f, "({})", Rendered(inner, *name)),
        }
    }
}

fn names(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::State(_, name) => out.push(name.clone()),
        Expr::Constant(_) => {}
        Expr::Not(inner) | Expr::Group(inner) => names(inner, out),
        Expr::Binary(left, _, right) => {
            names(left, out);
            names(right, out);
        }
    }
}

/// The alarm names a rule refers to, checked against the policy's alarms (`known`).
pub fn referenced_alarms(rule: &str, known: &[&str]) -> Result<Vec<String>, RuleError> {
    let mut referenced = Vec::new();
    names(&parse(rule)?, &mut referenced);
    if let Some(unknown) = referenced.iter().find(|n| !known.contains(&n.as_str())) {
        return Err(RuleError::UnknownAlarm(unknown.clone()));
    }
    Ok(referenced)
}

/// CloudWatch's `AlarmRule`: the rule with each name replaced by `aws_name(name)`, canonical.
pub fn aws_rule(rule: &str, aws_name: impl Fn(&str) -> String) -> Result<String, RuleError> {
    Ok(Rendered(&parse(rule)?, &aws_name).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(name: &str) -> String {
        format!("alertops/c/ns/p/{name}")
    }

    #[test]
    fn names_become_aws_names_and_the_text_canonical() {
        assert_eq!(
            aws_rule(
                "ALARM(errors)  AND\n(ALARM(\"latency-p99\") OR NOT OK(saturation))",
                aws
            )
            .unwrap(),
            r#"ALARM("alertops/c/ns/p/errors") AND (ALARM("alertops/c/ns/p/latency-p99") OR NOT OK("alertops/c/ns/p/saturation"))"#
        );
        assert_eq!(
            aws_rule("INSUFFICIENT_DATA(a) OR TRUE AND FALSE", aws).unwrap(),
            r#"INSUFFICIENT_DATA("alertops/c/ns/p/a") OR TRUE AND FALSE"#
        );
    }

    #[test]
    fn only_the_policys_own_alarms_may_be_named() {
        let known = ["errors", "latency"];
        assert_eq!(
            referenced_alarms("ALARM(errors) AND ALARM(latency)", &known).unwrap(),
            vec!["errors", "latency"]
        );
        assert_eq!(
            referenced_alarms(
                "ALARM(errors) AND ALARM(\"arn:aws:cloudwatch:us-east-1:1:alarm:x\")",
                &known
            ),
            Err(RuleError::UnknownAlarm(
                "arn:aws:cloudwatch:us-east-1:1:alarm:x".into()
            ))
        );
    }

    #[test]
    fn malformed_rules_say_what_is_wrong() {
        for (rule, expected) in [
            ("ALARM(errors) AND", "ends too early"),
            ("ALARM(errors", "one alarm name in parentheses"),
            ("(ALARM(errors)", "parenthesis is not closed"),
            ("ALARM(errors) XOR ALARM(latency)", "expected AND, OR"),
            ("errors", "expected ALARM(name)"),
            ("ALARM(\"errors)", "not closed"),
            ("ALARM(errors))", "after a complete rule"),
            ("", "ends too early"),
        ] {
            let error = referenced_alarms(rule, &["errors", "latency"]).unwrap_err();
            assert!(error.to_string().contains(expected), "{rule:?}: {error}");
        }
    }
}
