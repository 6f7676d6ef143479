//! `ReportRunMetricsV1`'s messages, pure: each reported metric checked
//! as Kubeflow checks it ([`crate::model::pipeline_run::metrics`]), the
//! per-metric results of the 200 once the engine has kept the valid ones,
//! and a kept metric as the `Run` message shows it.

use drover_seed_api::kfp::report_run_metrics_response::report_run_metric_result::Status as ResultStatus;
use drover_seed_api::kfp::report_run_metrics_response::ReportRunMetricResult;
use drover_seed_api::kfp::{run_metric, RunMetric as MetricMessage};

use crate::model::pipeline_run::metrics::{invalid_reason, kept};
use crate::model::pipeline_run::RunMetric;

/// One reported metric: as kept if valid, else why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub name: String,
    pub node_id: String,
    pub metric: Result<RunMetric, String>,
}

/// The report's metrics, checked, in its order; `report` marks the valid
/// ones as this report's.
pub fn check_report(metrics: &[MetricMessage], report: &str) -> Vec<Checked> {
    metrics
        .iter()
        .map(|m| {
            let value = m.value.map(|run_metric::Value::NumberValue(v)| v);
            let metric = match invalid_reason(&m.name, &m.node_id, value) {
                Some(reason) => Err(reason),
                None => Ok(RunMetric {
                    node_id: m.node_id.clone(),
                    name: m.name.clone(),
                    number_value: value.unwrap_or_default(),
                    format: format_name(m.format).to_string(),
                    report: report.to_string(),
                }),
            };
            Checked {
                name: m.name.clone(),
                node_id: m.node_id.clone(),
                metric,
            }
        })
        .collect()
}

/// The valid metrics of a checked report, in its order.
pub fn valid_metrics(checked: &[Checked]) -> Vec<RunMetric> {
    checked
        .iter()
        .filter_map(|c| c.metric.as_ref().ok().cloned())
        .collect()
}

/// The per-metric results, given the run's metrics as stored after the
/// report (`Err`: the store failed, with its message).
pub fn results(
    checked: &[Checked],
    stored: Result<&[RunMetric], &str>,
) -> Vec<ReportRunMetricResult> {
    let mut earlier: Vec<RunMetric> = Vec::new();
    checked
        .iter()
        .map(|c| {
            let (status, message) = match (&c.metric, stored) {
                (Err(reason), _) => (ResultStatus::InvalidArgument, reason.clone()),
                (Ok(_), Err(failure)) => (
                    ResultStatus::InternalError,
                    format!("the metric was not stored: {failure}"),
                ),
                (Ok(metric), Ok(stored)) => {
                    let first = kept(stored, &earlier, metric);
                    earlier.push(metric.clone());
                    if first {
                        (ResultStatus::Ok, String::new())
                    } else {
                        (
                            ResultStatus::DuplicateReporting,
                            format!(
                                "metric {} of node {} was reported already; the first value is kept",
                                metric.name, metric.node_id
                            ),
                        )
                    }
                }
            };
            ReportRunMetricResult {
                metric_name: c.name.clone(),
                metric_node_id: c.node_id.clone(),
                status: status as i32,
                message,
            }
        })
        .collect()
}

/// A kept metric as `Run.metrics` shows it.
pub fn metric_message(metric: &RunMetric) -> MetricMessage {
    MetricMessage {
        name: metric.name.clone(),
        node_id: metric.node_id.clone(),
        value: Some(run_metric::Value::NumberValue(metric.number_value)),
        format: run_metric::Format::from_str_name(&metric.format)
            .unwrap_or(run_metric::Format::Unspecified) as i32,
    }
}

/// `RunMetric.Format`'s name (an unknown number: UNSPECIFIED).
fn format_name(format: i32) -> &'static str {
    run_metric::Format::try_from(format)
        .unwrap_or(run_metric::Format::Unspecified)
        .as_str_name()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::pipeline_run::metrics::add_first_reports;

    fn message(node: &str, name: &str, value: Option<f64>) -> MetricMessage {
        MetricMessage {
            name: name.into(),
            node_id: node.into(),
            value: value.map(run_metric::Value::NumberValue),
            format: run_metric::Format::Percentage as i32,
        }
    }

    fn statuses(results: &[ReportRunMetricResult]) -> Vec<ResultStatus> {
        results
            .iter()
            .map(|r| ResultStatus::try_from(r.status).unwrap())
            .collect()
    }

    #[test]
    fn each_metric_gets_its_own_result_and_a_repeat_keeps_the_first_value() {
        let mut stored = Vec::new();
        let first = check_report(&[message("n1", "accuracy", Some(0.9))], "r1");
        add_first_reports(&mut stored, valid_metrics(&first));
        let report = [
            message("n1", "accuracy", Some(0.1)),
            message("n1", "Bad_Name", Some(1.0)),
            message("", "loss", Some(1.0)),
            message("n1", "loss", None),
            message("n1", "recall", Some(0.5)),
            message("n1", "recall", Some(0.6)),
        ];
        let checked = check_report(&report, "r2");
        add_first_reports(&mut stored, valid_metrics(&checked));
        let results = results(&checked, Ok(&stored));
        assert_eq!(
            statuses(&results),
            [
                ResultStatus::DuplicateReporting,
                ResultStatus::InvalidArgument,
                ResultStatus::InvalidArgument,
                ResultStatus::InvalidArgument,
                ResultStatus::Ok,
                ResultStatus::DuplicateReporting,
            ]
        );
        assert_eq!(results[1].metric_name, "Bad_Name");
        assert!(results[1].message.contains("pattern"), "{results:?}");
        assert!(results[2].message.contains("node_id"), "{results:?}");
        let shown: Vec<MetricMessage> = stored.iter().map(metric_message).collect();
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[0], message("n1", "accuracy", Some(0.9)));
        assert_eq!(shown[1], message("n1", "recall", Some(0.5)));
    }

    #[test]
    fn a_store_failure_is_an_internal_error_for_the_valid_metrics_only() {
        let checked = check_report(
            &[message("n1", "a", Some(1.0)), message("n1", "A", Some(1.0))],
            "r",
        );
        let results = results(&checked, Err("disk full"));
        assert_eq!(
            statuses(&results),
            [ResultStatus::InternalError, ResultStatus::InvalidArgument]
        );
        assert!(results[0].message.contains("disk full"));
    }
}
