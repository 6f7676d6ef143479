//! Run metrics (Kubeflow's `ReportRunMetricsV1`): what a metric must be
//! to be kept, and the rule that the first report of a `(node_id, name)`
//! is the one kept. Pure; the run keeps its metrics in its stored record.
//!
//! Kubeflow's API server checks each metric apart and answers a result
//! per metric inside a 200: a name that does not match
//! `[a-z]([-a-z0-9]*[a-z0-9])?` (1 to 63 characters), an empty or over
//! 128-character node id, or no `number_value` is INVALID_ARGUMENT; a
//! `(node_id, name)` already reported is DUPLICATE_REPORTING and the
//! first value stays.

use serde::{Deserialize, Serialize};

/// The longest metric name Kubeflow takes.
pub const MAX_NAME_CHARS: usize = 63;
/// The longest node id Kubeflow takes.
pub const MAX_NODE_ID_CHARS: usize = 128;

/// A metric kept with a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMetric {
    pub node_id: String,
    pub name: String,
    pub number_value: f64,
    /// `RAW`, `PERCENTAGE` or `UNSPECIFIED` (RunMetric.Format's names).
    pub format: String,
    /// The report that stored it: lets that report's reply tell which of
    /// its metrics were the first of their `(node_id, name)`.
    pub report: String,
}

impl RunMetric {
    /// Whether `other` names the same metric (`node_id` and `name`).
    pub fn same_key(&self, other: &RunMetric) -> bool {
        self.node_id == other.node_id && self.name == other.name
    }
}

/// Why a reported metric is not valid, as Kubeflow words it.
pub fn invalid_reason(name: &str, node_id: &str, value: Option<f64>) -> Option<String> {
    if !valid_name(name) {
        return Some(format!(
            "metric.name '{name}' doesn't match with the pattern '[a-z]([-a-z0-9]*[a-z0-9])?' \
             (1 to {MAX_NAME_CHARS} characters)"
        ));
    }
    if node_id.is_empty() {
        return Some("metric.node_id must not be empty".to_string());
    }
    if node_id.chars().count() > MAX_NODE_ID_CHARS {
        return Some(format!(
            "metric.node_id '{node_id}' cannot be longer than {MAX_NODE_ID_CHARS} characters"
        ));
    }
    match value {
        Some(v) if v.is_finite() => None,
        Some(v) => Some(format!("metric.number_value {v} is not a finite number")),
        None => Some("metric.number_value is required".to_string()),
    }
}

/// Kubeflow's metric name rule: `^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`.
fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() <= MAX_NAME_CHARS
        && first.is_ascii_lowercase()
        && (last.is_ascii_lowercase() || last.is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Adds the metrics of one report to `stored`: each whose
/// `(node_id, name)` is not there yet (the first of a report's repeats
/// included). Returns how many were added.
pub fn add_first_reports(stored: &mut Vec<RunMetric>, reported: Vec<RunMetric>) -> usize {
    let mut added = 0;
    for metric in reported {
        if !stored.iter().any(|m| m.same_key(&metric)) {
            stored.push(metric);
            added += 1;
        }
    }
    added
}

/// Whether `metric` (of report `report`) is the one `stored` kept: the
/// first report of its `(node_id, name)`, by this report, and not an
/// earlier repeat in the same report (`earlier`).
pub fn kept(stored: &[RunMetric], earlier: &[RunMetric], metric: &RunMetric) -> bool {
    !earlier.iter().any(|m| m.same_key(metric))
        && stored
            .iter()
            .any(|m| m.same_key(metric) && m.report == metric.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(node: &str, name: &str, value: f64, report: &str) -> RunMetric {
        RunMetric {
            node_id: node.into(),
            name: name.into(),
            number_value: value,
            format: "RAW".into(),
            report: report.into(),
        }
    }

    #[test]
    fn names_follow_kubeflows_pattern() {
        for good in ["a", "accuracy", "f1-score", "a1", &"a".repeat(63)] {
            assert!(invalid_reason(good, "n", Some(1.0)).is_none(), "{good}");
        }
        for bad in ["", "Accuracy", "1a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            let reason = invalid_reason(bad, "n", Some(1.0)).unwrap_or_default();
            assert!(reason.starts_with("metric.name"), "{bad}: {reason}");
        }
    }

    #[test]
    fn a_node_id_and_a_finite_value_are_required() {
        assert_eq!(
            invalid_reason("a", "", Some(1.0)).as_deref(),
            Some("metric.node_id must not be empty")
        );
        assert!(invalid_reason("a", &"n".repeat(129), Some(1.0)).is_some());
        assert!(invalid_reason("a", "n", None)
            .unwrap_or_default()
            .contains("number_value is required"));
        assert!(invalid_reason("a", "n", Some(f64::NAN)).is_some());
    }

    #[test]
    fn the_first_report_of_a_node_and_name_is_kept() {
        let mut stored = vec![metric("n1", "acc", 0.5, "r1")];
        let report = vec![
            metric("n1", "acc", 0.9, "r2"),
            metric("n1", "loss", 0.1, "r2"),
            metric("n2", "acc", 0.7, "r2"),
            metric("n1", "loss", 0.2, "r2"),
        ];
        assert_eq!(add_first_reports(&mut stored, report.clone()), 2);
        assert_eq!(stored.len(), 3);
        assert_eq!(stored[0].number_value, 0.5, "the first value stays");
        let kept: Vec<bool> = report
            .iter()
            .enumerate()
            .map(|(i, m)| kept(&stored, &report[..i], m))
            .collect();
        assert_eq!(kept, [false, true, true, false]);
    }
}
