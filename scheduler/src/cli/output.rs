//! How answers are shown: aligned tables and key/value blocks for people,
//! or the API's JSON for scripts (`--output json`). Pure: renders strings.

use clap::ValueEnum;
use serde_json::Value;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables for people.
    Table,
    /// The API's JSON, pretty-printed, for scripts.
    Json,
}

/// A table with a header row, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count() + 2;
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// `key: value` lines, keys aligned; rows whose value is empty are left out.
pub fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    rows.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{:width$} {v}\n", format!("{k}:")))
        .collect()
}

/// The JSON answer as printed for `--output json`.
pub fn json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// A string field, or "".
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Object(map) if map.contains_key("value") => text(&map["value"]),
        other => other.to_string(),
    }
}

/// A state name without its `POD_STATE_` / `JOB_STATE_` / `HEALTH_STATE_`
/// prefix: what people read in a table.
pub fn short_state(state: &str) -> &str {
    [
        "POD_STATE_",
        "JOB_STATE_",
        "HEALTH_STATE_",
        "WORKFLOW_STATE_",
    ]
    .iter()
    .find_map(|p| state.strip_prefix(p))
    .unwrap_or(state)
}

/// `{"POD_STATE_RUNNING": 2, ...}` as `RUNNING=2 PENDING=1`.
pub fn pod_stats(stats: &Value) -> String {
    stats
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{}={}", short_state(k), v))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_pad_columns() {
        let t = table(
            &["ID", "STATE"],
            &[
                vec!["a".into(), "RUNNING".into()],
                vec!["long-id".into(), "X".into()],
            ],
        );
        assert_eq!(t, "ID       STATE\na        RUNNING\nlong-id  X\n");
    }

    #[test]
    fn states_and_stats_are_shortened() {
        assert_eq!(short_state("POD_STATE_RUNNING"), "RUNNING");
        assert_eq!(
            pod_stats(&json!({"POD_STATE_RUNNING": 2, "POD_STATE_PENDING": 1})),
            "PENDING=1 RUNNING=2"
        );
        assert_eq!(text(&json!({"value": "x"})), "x");
    }
}
