//! Reading the manifest as a tree of fields that know their own path, so
//! every refusal names the field as Argo writes it
//! (`spec.templates[2].container.volumeMounts`). An object is read
//! against the list of keys its reader knows: a key Drover refuses is
//! [`PipelineError::Unsupported`], a key nobody listed is
//! [`PipelineError::UnknownField`]; nothing passes unread.

use serde_json::{Map, Value};

use super::error::PipelineError;

/// Decodes the manifest text: JSON first (what the API usually carries),
/// then YAML (what `kfp.compiler` writes to `.yaml` files).
pub(crate) fn decode(text: &str) -> Result<Value, PipelineError> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Ok(value),
        Err(json_error) => {
            let looks_like_json = text.trim_start().starts_with('{');
            serde_yaml::from_str::<Value>(text).map_err(|yaml_error| PipelineError::Syntax {
                message: if looks_like_json {
                    json_error.to_string()
                } else {
                    yaml_error.to_string()
                },
            })
        }
    }
}

/// One value of the manifest and where it sits.
#[derive(Clone, Copy)]
pub(crate) struct Field<'a> {
    pub(crate) value: &'a Value,
    path: &'a str,
}

/// An owned path, so children can borrow it.
pub(crate) struct Located<'a> {
    pub(crate) value: &'a Value,
    pub(crate) path: String,
}

impl<'a> Located<'a> {
    pub(crate) fn new(value: &'a Value, path: impl Into<String>) -> Self {
        Located {
            value,
            path: path.into(),
        }
    }

    pub(crate) fn field(&self) -> Field<'_> {
        Field {
            value: self.value,
            path: &self.path,
        }
    }
}

/// A key of an object and what its reader does with it.
#[derive(Clone, Copy)]
pub(crate) enum Key {
    /// Read by the reader.
    Read(&'static str),
    /// Known and deliberately without effect on Drover; the reason is
    /// said where the list is written.
    Accepted(&'static str),
    /// Known, and refused when present and not empty.
    Refused(&'static str, &'static str),
}

impl<'a> Field<'a> {
    pub(crate) fn malformed(&self, reason: impl Into<String>) -> PipelineError {
        PipelineError::Malformed {
            path: self.path.to_string(),
            reason: reason.into(),
        }
    }

    /// The object, its keys checked against `keys`.
    pub(crate) fn object(&self, keys: &[Key]) -> Result<&'a Map<String, Value>, PipelineError> {
        let Some(map) = self.value.as_object() else {
            return Err(self.malformed("must be an object"));
        };
        for (name, value) in map {
            let known = keys.iter().find(|key| match key {
                Key::Read(k) | Key::Accepted(k) | Key::Refused(k, _) => k == name,
            });
            match known {
                Some(Key::Read(_)) | Some(Key::Accepted(_)) => {}
                Some(Key::Refused(_, why)) => {
                    if !is_empty(value) {
                        return Err(PipelineError::Unsupported {
                            path: child_path(self.path, name),
                            why,
                        });
                    }
                }
                None => {
                    return Err(PipelineError::UnknownField {
                        path: child_path(self.path, name),
                    })
                }
            }
        }
        Ok(map)
    }

    pub(crate) fn as_str(&self) -> Result<&'a str, PipelineError> {
        self.value
            .as_str()
            .ok_or_else(|| self.malformed("must be a string"))
    }

    /// A string, or a number or bool written as its text (Argo's
    /// `AnyString` / `IntOrString` fields take both).
    pub(crate) fn as_text(&self) -> Result<String, PipelineError> {
        match self.value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(self.malformed("must be a string")),
        }
    }

    /// A non-negative integer, also written as a string (`"2"`).
    pub(crate) fn as_u64(&self) -> Result<u64, PipelineError> {
        match self.value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| self.malformed("must be a non-negative integer"))
    }

    pub(crate) fn as_array(&self) -> Result<&'a [Value], PipelineError> {
        self.value
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.malformed("must be a list"))
    }

    /// A list of strings.
    pub(crate) fn as_strings(&self) -> Result<Vec<String>, PipelineError> {
        self.as_array()?
            .iter()
            .enumerate()
            .map(|(i, v)| Located::new(v, index_path(self.path, i)).field().as_text())
            .collect()
    }

    /// A map of string to string (labels, annotations).
    pub(crate) fn as_string_map(
        &self,
    ) -> Result<std::collections::BTreeMap<String, String>, PipelineError> {
        let Some(map) = self.value.as_object() else {
            return Err(self.malformed("must be an object"));
        };
        map.iter()
            .map(|(k, v)| {
                Located::new(v, child_path(self.path, k))
                    .field()
                    .as_text()
                    .map(|text| (k.clone(), text))
            })
            .collect()
    }
}

/// `map[key]` with its path, when present and not null.
pub(crate) fn get<'a>(map: &'a Map<String, Value>, parent: &str, key: &str) -> Option<Located<'a>> {
    match map.get(key) {
        None | Some(Value::Null) => None,
        Some(value) => Some(Located::new(value, child_path(parent, key))),
    }
}

/// `map[key]`, refused as missing when absent, null or empty.
pub(crate) fn require<'a>(
    map: &'a Map<String, Value>,
    parent: &str,
    key: &str,
) -> Result<Located<'a>, PipelineError> {
    match get(map, parent, key) {
        Some(found) if !is_empty(found.value) => Ok(found),
        _ => Err(PipelineError::Missing {
            path: child_path(parent, key),
        }),
    }
}

/// The items of the list at `map[key]` (none when absent), each with its
/// path.
pub(crate) fn items<'a>(
    map: &'a Map<String, Value>,
    parent: &str,
    key: &str,
) -> Result<Vec<Located<'a>>, PipelineError> {
    let Some(list) = get(map, parent, key) else {
        return Ok(Vec::new());
    };
    let Some(values) = list.value.as_array() else {
        return Err(list.field().malformed("must be a list"));
    };
    Ok(values
        .iter()
        .enumerate()
        .map(|(i, v)| Located::new(v, index_path(&list.path, i)))
        .collect())
}

pub(crate) fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

pub(crate) fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Null, `false`, `[]`, `{}` and `""` ask for nothing (Kubernetes reads
/// each as the field's default).
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}
