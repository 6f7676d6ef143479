//! A task's `when`, parsed at create and evaluated per node once the
//! values it names are known. kfp 1.8's `dsl.Condition` writes one
//! comparison: `"{{a}}" == "b"` and `!=` with both sides quoted (compared
//! as strings), `{{a}} > 5` and `<`, `<=`, `>=` unquoted (compared as
//! numbers). Drover also reads comparisons joined by `&&` and `||` (`&&`
//! binding tighter), which Argo accepts; anything else (parentheses, `!`,
//! functions) is refused naming the field.
//!
//! Parsing before substitution fixes the expression's shape: a value
//! holding `==` or a quote cannot change what is compared, unlike Argo's
//! substitute-then-parse.

use super::error::{PipelineError, ResolveError};
use super::text::{NodeScope, Text};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    /// Operators by spelling, two-character ones first so `<=` is not
    /// read as `<`.
    const SPELLINGS: [(&'static str, Comparison); 6] = [
        ("==", Comparison::Equal),
        ("!=", Comparison::NotEqual),
        ("<=", Comparison::LessOrEqual),
        (">=", Comparison::GreaterOrEqual),
        ("<", Comparison::Less),
        (">", Comparison::Greater),
    ];
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `"..."`: a string.
    Quoted(Text),
    /// Unquoted: a number (or, compared with `==`/`!=`, a bare word).
    Bare(Text),
}

/// `left op right`.
#[derive(Debug, Clone, PartialEq)]
pub struct Compare {
    pub left: Operand,
    pub op: Comparison,
    pub right: Operand,
}

/// A `when`: any of the alternatives, each all of its comparisons.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// As written, for status and errors.
    pub source: String,
    pub any_of: Vec<Vec<Compare>>,
}

impl Condition {
    /// Parses the `when` at `path`.
    pub fn parse(source: &str, path: &str) -> Result<Condition, PipelineError> {
        let malformed = |reason: String| PipelineError::Malformed {
            path: path.to_string(),
            reason,
        };
        let mut any_of = Vec::new();
        for alternative in split_outside_quotes(source, "||") {
            let mut all_of = Vec::new();
            for part in split_outside_quotes(alternative, "&&") {
                all_of.push(parse_compare(part, path).map_err(|e| match e {
                    Some(err) => err,
                    None => malformed(format!(
                        "{part:?} is not a comparison Drover evaluates (a == b, a != b, a < b, a <= b, a > b, a >= b)"
                    )),
                })?);
            }
            any_of.push(all_of);
        }
        Ok(Condition {
            source: source.to_string(),
            any_of,
        })
    }

    /// Whether the node runs (true) or is `Skipped` (false).
    pub fn evaluate(&self, scope: &NodeScope<'_>) -> Result<bool, ResolveError> {
        for all_of in &self.any_of {
            let mut all = true;
            for compare in all_of {
                if !compare.evaluate(scope, &self.source)? {
                    all = false;
                    break;
                }
            }
            if all {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every text it names (for checking its variables at create).
    pub fn texts(&self) -> impl Iterator<Item = &Text> {
        self.any_of.iter().flatten().flat_map(|c| {
            [&c.left, &c.right].into_iter().map(|o| match o {
                Operand::Quoted(t) | Operand::Bare(t) => t,
            })
        })
    }
}

impl Compare {
    fn evaluate(&self, scope: &NodeScope<'_>, source: &str) -> Result<bool, ResolveError> {
        let (left, left_quoted) = render(&self.left, scope)?;
        let (right, right_quoted) = render(&self.right, scope)?;
        let number = |s: &str| s.trim().parse::<f64>().ok();
        let not_a_number = |value: &str| ResolveError::NotANumber {
            expression: source.to_string(),
            value: value.to_string(),
        };
        match self.op {
            Comparison::Equal | Comparison::NotEqual => {
                let equal = match (left_quoted || right_quoted, number(&left), number(&right)) {
                    (false, Some(a), Some(b)) => a == b,
                    _ => left == right,
                };
                Ok(equal == (self.op == Comparison::Equal))
            }
            op => {
                let a = number(&left).ok_or_else(|| not_a_number(&left))?;
                let b = number(&right).ok_or_else(|| not_a_number(&right))?;
                Ok(match op {
                    Comparison::Less => a < b,
                    Comparison::LessOrEqual => a <= b,
                    Comparison::Greater => a > b,
                    _ => a >= b,
                })
            }
        }
    }
}

fn render(operand: &Operand, scope: &NodeScope<'_>) -> Result<(String, bool), ResolveError> {
    match operand {
        Operand::Quoted(t) => Ok((t.render(scope)?, true)),
        Operand::Bare(t) => Ok((t.render(scope)?, false)),
    }
}

/// `Err(None)`: not a comparison; `Err(Some)`: a bad variable inside.
fn parse_compare(part: &str, path: &str) -> Result<Compare, Option<PipelineError>> {
    let (at, spelling, op) = find_operator(part).ok_or(None)?;
    let left = parse_operand(&part[..at], path)?;
    let right = parse_operand(&part[at + spelling.len()..], path)?;
    Ok(Compare { left, op, right })
}

fn parse_operand(raw: &str, path: &str) -> Result<Operand, Option<PipelineError>> {
    let raw = raw.trim();
    if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        let inner = &raw[1..raw.len() - 1];
        if inner.contains('"') {
            return Err(None);
        }
        return Ok(Operand::Quoted(Text::parse(inner, path).map_err(Some)?));
    }
    let outside_braces = strip_variables(raw);
    let bare_ok = !raw.is_empty()
        && !outside_braces.contains(|c: char| {
            c.is_whitespace() || matches!(c, '"' | '(' | ')' | '!' | '<' | '>' | '=' | '&' | '|')
        });
    if !bare_ok {
        return Err(None);
    }
    Ok(Operand::Bare(Text::parse(raw, path).map_err(Some)?))
}

/// The text with each `{{...}}` removed (what is left must be plain).
fn strip_variables(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        match rest[open..].find("}}") {
            Some(close) => rest = &rest[open + close + 2..],
            None => return s.to_string(),
        }
    }
    out.push_str(rest);
    out
}

/// The first comparison operator outside quotes and `{{...}}`. Works on
/// bytes (every delimiter is ASCII), so a multi-byte character never
/// splits.
fn find_operator(s: &str) -> Option<(usize, &'static str, Comparison)> {
    let bytes = s.as_bytes();
    let (mut quoted, mut braces) = (false, false);
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if braces {
            if rest.starts_with(b"}}") {
                braces = false;
                i += 2;
                continue;
            }
        } else if bytes[i] == b'"' {
            quoted = !quoted;
        } else if !quoted && rest.starts_with(b"{{") {
            braces = true;
            i += 2;
            continue;
        } else if !quoted {
            for (spelling, op) in Comparison::SPELLINGS {
                if rest.starts_with(spelling.as_bytes()) {
                    return Some((i, spelling, op));
                }
            }
        }
        i += 1;
    }
    None
}

/// `s` split on `sep` (ASCII) where it is outside quotes.
fn split_outside_quotes<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let bytes = s.as_bytes();
    let mut parts = Vec::new();
    let (mut quoted, mut start, mut i) = (false, 0, 0);
    while i < bytes.len() {
        if bytes[i] == b'"' {
            quoted = !quoted;
        } else if !quoted && bytes[i..].starts_with(sep.as_bytes()) {
            parts.push(&s[start..i]);
            i += sep.len();
            start = i;
            continue;
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}
