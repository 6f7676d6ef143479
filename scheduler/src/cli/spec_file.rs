//! Reading a job spec file (YAML, or JSON): parsed into the scheduler's own
//! [`JobSpec`] type and checked by the scheduler's own rules before it is
//! sent, so a mistake is reported with the file, line, column and field,
//! and the offending line quoted.
//!
//! Rule failures name a field path (`spec.default_spec.containers[0]...`);
//! [`locate`] finds that path's line by walking the YAML document with a
//! visitor that stops at the field, letting serde_yaml stamp the stop with
//! the position of the node it was reading.

use crate::model::spec::JobSpec;
use crate::model::validate::{validate_job, JobLimits};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A spec file that cannot be submitted: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct SpecFileError {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// The field at fault, as a path from the spec's top (`default_spec.containers[0]`).
    pub field: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// The offending line of the file.
    pub line_text: Option<String>,
}

impl SpecFileError {
    fn render(&self) -> String {
        let mut out = self.file.clone();
        if let Some((line, column)) = self.position {
            out.push_str(&format!(":{line}:{column}"));
        }
        out.push_str(": ");
        if let Some(field) = &self.field {
            out.push_str(&format!("field `{field}`: "));
        }
        out.push_str(&self.problem);
        if let (Some((line, column)), Some(text)) = (self.position, &self.line_text) {
            let gutter = line.to_string().len();
            out.push_str(&format!(
                "\n {line} | {text}\n {:gutter$} | {:>column$}",
                "", "^"
            ));
        }
        out
    }
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Splits `a.b[0].c` into steps.
fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Step::Key(key.to_owned()));
        }
        for index in rest.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

/// The marker error a locating walk stops with.
const FOUND: &str = "drover-locate-found";

/// Walks to the node at `path` and stops there with [`FOUND`].
struct Locate<'p>(&'p [Step]);

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("anything")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.0.is_empty() {
            return Err(serde::de::Error::custom(FOUND));
        }
        while let Some(key) = map.next_key::<serde_yaml::Value>()? {
            let name = match key {
                serde_yaml::Value::String(s) => s,
                serde_yaml::Value::Number(n) => n.to_string(),
                serde_yaml::Value::Bool(b) => b.to_string(),
                _ => String::new(),
            };
            if self.0.first() == Some(&Step::Key(name)) {
                return map.next_value_seed(Locate(&self.0[1..]));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.0.is_empty() {
            return Err(serde::de::Error::custom(FOUND));
        }
        let mut i = 0;
        loop {
            if self.0.first() == Some(&Step::Index(i)) {
                return seq.next_element_seed(Locate(&self.0[1..])).map(|_| ());
            }
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.leaf()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.leaf()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.leaf()
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.leaf()
    }
}

impl Locate<'_> {
    fn leaf<E: serde::de::Error>(&self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

/// The 1-based line and column of the field at `path` in `text`, or of its
/// nearest ancestor present in the text (a missing field is reported at
/// its parent).
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let all = steps(path);
    (0..=all.len()).rev().find_map(|n| {
        let err = Locate(&all[..n])
            .deserialize(serde_yaml::Deserializer::from_str(text))
            .err()?;
        // serde_yaml prefixes the message with the path: look inside.
        if !err.to_string().contains(FOUND) {
            return None;
        }
        err.location().map(|l| (l.line(), l.column()))
    })
}

/// The spec's field path from a request path: the API calls the spec
/// `spec`, the file is the spec itself.
fn file_field(api_path: &str) -> String {
    api_path
        .strip_prefix("spec.")
        .or_else(|| (api_path == "spec").then_some(""))
        .unwrap_or(api_path)
        .to_owned()
}

/// A [`SpecFileError`] at `field` (an API-style path) found in `text`.
pub fn error_at(file: &str, text: &str, api_field: &str, problem: &str) -> SpecFileError {
    let field = file_field(api_field);
    let position = locate(text, &field);
    SpecFileError {
        file: file.to_owned(),
        position,
        field: (!field.is_empty()).then_some(field),
        problem: problem.to_owned(),
        line_text: position.and_then(|(l, _)| line_of(text, l)),
    }
}

fn line_of(text: &str, line: usize) -> Option<String> {
    text.lines()
        .nth(line.checked_sub(1)?)
        .map(|l| l.trim_end().to_owned())
}

/// `spec` as a request body's `spec`: its JSON, with each secret's value
/// put back (base64), which a spec's JSON never shows
/// ([`crate::model::secret`]).
pub fn request_json(spec: &JobSpec) -> Result<serde_json::Value, serde_json::Error> {
    use base64::Engine as _;
    let mut json = serde_json::to_value(spec)?;
    for (i, secret) in spec.secrets.iter().enumerate() {
        if !secret.value.is_empty() {
            json["secrets"][i]["value"] = serde_json::Value::String(
                base64::engine::general_purpose::STANDARD.encode(secret.value.expose()),
            );
        }
    }
    Ok(json)
}

/// Parses `text` (YAML, of which JSON is a subset) as a [`JobSpec`] and
/// checks it with the scheduler's rules; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<JobSpec, SpecFileError> {
    let de = serde_yaml::Deserializer::from_str(text);
    let spec: JobSpec = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let position = inner.location().map(|l| (l.line(), l.column()));
        let problem = strip_path(&strip_position(&inner.to_string()));
        let field = field_of(&path, &problem);
        SpecFileError {
            file: file.to_owned(),
            position,
            field,
            problem,
            line_text: position.and_then(|(l, _)| line_of(text, l)),
        }
    })?;
    validate_job(&spec, &JobLimits::default(), "spec")
        .map_err(|e| error_at(file, text, &e.field, &e.problem))?;
    Ok(spec)
}

/// serde_yaml appends " at line L column C"; the position is shown apart.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// serde_yaml prefixes "path: "; the field is shown apart.
fn strip_path(message: &str) -> String {
    match message.split_once(": ") {
        Some((head, rest)) if !head.is_empty() && !head.contains(' ') => rest.to_owned(),
        _ => message.to_owned(),
    }
}

/// The field a decode error is about: its path, joined with the field a
/// "missing field" or "unknown field" message names.
fn field_of(path: &str, problem: &str) -> Option<String> {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| problem.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let parent = (path != "." && !path.is_empty()).then_some(path);
    match (parent, named) {
        (Some(p), Some(name)) if p.rsplit('.').next() != Some(name) => Some(format!("{p}.{name}")),
        (Some(p), _) => Some(p.to_owned()),
        (None, Some(name)) => Some(name.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = "\
type: BATCH
name: hello
instance_count: 2
default_spec:
  containers:
    - resource:
        cpu_limit: 0.1
        mem_limit_mb: 32
      command:
        value: echo hello
";

    #[test]
    fn a_good_spec_parses() {
        let spec = parse("good.yaml", GOOD).unwrap();
        assert_eq!(spec.name, "hello");
        assert_eq!(spec.instance_count, 2);
    }

    #[test]
    fn the_web_example_v2_changes_the_pods_command_alone() {
        let v1 = include_str!("../../../examples/service-web.yaml");
        let v2 = include_str!("../../../examples/service-web-v2.yaml");
        let (v1, v2) = (parse("v1", v1).unwrap(), parse("v2", v2).unwrap());
        let (a, b) = (
            &v1.default_spec.containers[0],
            &v2.default_spec.containers[0],
        );
        assert_ne!(a.command, b.command, "every pod is replaced");
        let mut same = v2.clone();
        same.default_spec.containers[0].command = a.command.clone();
        assert_eq!(same, v1, "and nothing else changes");
    }

    #[test]
    fn the_zone_examples_parse_with_their_soft_rules() {
        let soft = include_str!("../../../examples/constraints-zones-soft.yaml");
        let spec = parse("constraints-zones-soft.yaml", soft).unwrap();
        let pod = &spec.default_spec;
        assert!(pod.soft_constraint.is_some() && pod.constraint.is_none());
        let placement = pod.placement.unwrap();
        assert!(!placement.zone_balance && placement.prefer.unwrap().zone_balance);
        let hard = include_str!("../../../examples/constraints-zones.yaml");
        parse("constraints-zones.yaml", hard).unwrap();
        let typo = soft.replace("      zone_balance: true", "      zone_balanse: true");
        let e = parse("typo.yaml", &typo).unwrap_err();
        assert!(e.to_string().contains("zone_balanse"), "{e}");
    }

    #[test]
    fn json_specs_parse_too() {
        let json = r#"{"type": "SERVICE", "name": "web", "instance_count": 1,
  "default_spec": {"containers": [{"resource": {"cpu_limit": 0.5, "mem_limit_mb": 64},
  "command": {"value": "sleep 1000"}}]}}"#;
        assert_eq!(parse("web.json", json).unwrap().name, "web");
    }

    #[test]
    fn a_syntax_error_names_the_line() {
        let bad = GOOD.replace("name: hello", "name: [hello");
        let e = parse("bad.yaml", &bad).unwrap_err();
        assert!(e.position.is_some(), "{e}");
    }

    #[test]
    fn an_unknown_field_names_its_line_and_path() {
        let bad = GOOD.replace("mem_limit_mb: 32", "mem_limit_mb: 32\n        cpus: 3");
        let e = parse("bad.yaml", &bad).unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(9), "{e}");
        assert_eq!(
            e.field.as_deref(),
            Some("default_spec.containers[0].resource.cpus"),
            "{e}"
        );
        assert!(e.to_string().contains("bad.yaml:9:"), "{e}");
        assert!(e.problem.starts_with("unknown field `cpus`"), "{e}");
    }

    #[test]
    fn a_wrong_type_names_its_line() {
        let bad = GOOD.replace("instance_count: 2", "instance_count: many");
        let e = parse("bad.yaml", &bad).unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(3), "{e}");
        assert_eq!(e.field.as_deref(), Some("instance_count"));
    }

    #[test]
    fn a_rule_failure_is_located_by_its_field_path() {
        let bad = GOOD.replace("cpu_limit: 0.1", "cpu_limit: -1");
        let e = parse("bad.yaml", &bad).unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("default_spec.containers[0].resource.cpu_limit")
        );
        assert_eq!(e.position, Some((7, 20)), "{e}");
        assert_eq!(e.line_text.as_deref(), Some("        cpu_limit: -1"));
    }

    #[test]
    fn a_missing_field_is_reported_at_its_parent() {
        let bad = GOOD.replace("      command:\n        value: echo hello\n", "");
        let e = parse("bad.yaml", &bad).unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("default_spec.containers[0].command")
        );
        assert_eq!(e.position.map(|p| p.0), Some(6), "{e}");
    }

    #[test]
    fn paths_split_into_keys_and_indexes() {
        assert_eq!(
            steps("a.b[2].c"),
            vec![
                Step::Key("a".into()),
                Step::Key("b".into()),
                Step::Index(2),
                Step::Key("c".into())
            ]
        );
        assert_eq!(locate("a: {b: [1, 2]}\n", "a.b[1]"), Some((1, 12)));
    }

    #[test]
    fn a_spec_files_secret_values_reach_the_request() {
        let text = r#"{"type": "BATCH", "name": "s", "instance_count": 1,
            "secrets": [{"path": "a/b", "value": "aHVudGVyMg=="}],
            "default_spec": {"containers": [{"resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
                "command": {"value": "true"}}]}}"#;
        let spec = parse("spec.json", text).unwrap();
        let json = request_json(&spec).unwrap();
        assert_eq!(
            json["secrets"],
            serde_json::json!([{"id": "a/b", "path": "a/b", "value": "aHVudGVyMg=="}])
        );
    }
}
