//! Agent attributes in Mesos attribute syntax (`rack:r1;weight:3;zone:a`):
//! a number becomes a SCALAR attribute, `[a-b]` RANGES, `{x,y}` a SET and
//! anything else TEXT, as `mesos-agent --attributes` reads them.

use drover_proto::v1::{self, value};

/// Why an attribute string cannot be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid attribute '{0}': expected name:value")]
pub struct AttributeError(pub String);

/// Parses `name:value;...` into attribute protos.
pub fn parse_attributes(text: &str) -> Result<Vec<v1::Attribute>, AttributeError> {
    let mut out = Vec::new();
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, val) = item
            .split_once(':')
            .ok_or_else(|| AttributeError(item.to_owned()))?;
        if name.trim().is_empty() {
            return Err(AttributeError(item.to_owned()));
        }
        out.push(attribute(name.trim(), val.trim()));
    }
    Ok(out)
}

/// One attribute from its name and textual value.
pub fn attribute(name: &str, val: &str) -> v1::Attribute {
    let mut attr = v1::Attribute {
        name: name.to_owned(),
        ..Default::default()
    };
    if let Ok(n) = val.parse::<f64>() {
        attr.r#type = value::Type::Scalar as i32;
        attr.scalar = Some(value::Scalar { value: n });
    } else if let Some(ranges) = parse_ranges(val) {
        attr.r#type = value::Type::Ranges as i32;
        attr.ranges = Some(value::Ranges { range: ranges });
    } else if let Some(inner) = val.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
        attr.r#type = value::Type::Set as i32;
        attr.set = Some(value::Set {
            item: inner.split(',').map(|s| s.trim().to_owned()).collect(),
        });
    } else {
        attr.r#type = value::Type::Text as i32;
        attr.text = Some(value::Text {
            value: val.to_owned(),
        });
    }
    attr
}

fn parse_ranges(val: &str) -> Option<Vec<value::Range>> {
    let inner = val.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .split(',')
        .map(|r| {
            let (a, b) = r.trim().split_once('-')?;
            Some(value::Range {
                begin: a.trim().parse().ok()?,
                end: b.trim().parse().ok()?,
            })
        })
        .collect()
}

/// An attribute's value as `/state` prints it (text as a string, scalar as a number).
pub fn attribute_json(attr: &v1::Attribute) -> serde_json::Value {
    if let Some(t) = &attr.text {
        serde_json::json!(t.value)
    } else if let Some(s) = &attr.scalar {
        serde_json::json!(s.value)
    } else if let Some(r) = &attr.ranges {
        let text: Vec<String> = r
            .range
            .iter()
            .map(|x| format!("{}-{}", x.begin, x.end))
            .collect();
        serde_json::json!(format!("[{}]", text.join(", ")))
    } else if let Some(s) = &attr.set {
        serde_json::json!(format!("{{{}}}", s.item.join(", ")))
    } else {
        serde_json::Value::Null
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_get_the_type_mesos_infers() {
        let attrs = parse_attributes("rack:r1;weight:3;span:[1-5];tags:{a,b}").unwrap();
        let types: Vec<i32> = attrs.iter().map(|a| a.r#type).collect();
        assert_eq!(
            types,
            [
                value::Type::Text,
                value::Type::Scalar,
                value::Type::Ranges,
                value::Type::Set
            ]
            .map(|t| t as i32)
        );
        assert!(parse_attributes("norack").is_err());
    }
}
