//! The run's figures: collected as scenarios finish, printed as a table,
//! written as `summary.json`, and checked against the targets.

use serde_json::{json, Value};
use std::fmt::Write as _;

/// One measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Which scenario.
    pub scenario: String,
    /// What was measured.
    pub metric: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// For a ratio, what it divides by (`scenario/metric`).
    pub baseline: Option<String>,
}

/// A target of the issue and whether the run met it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The target as the issue states it.
    pub goal: String,
    /// The figure it was checked against, if the run produced it.
    pub actual: Option<f64>,
    /// Whether it was met.
    pub met: bool,
}

/// Everything a run measured, plus notes and failures.
#[derive(Debug, Default)]
pub struct Report {
    /// Figures in the order measured.
    pub figures: Vec<Figure>,
    /// Scenarios that failed or were cut short, with why.
    pub problems: Vec<String>,
}

impl Report {
    /// Adds a figure.
    pub fn add(&mut self, scenario: &str, metric: &str, value: f64, unit: &str) {
        self.figures.push(Figure {
            scenario: scenario.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            baseline: None,
        });
    }

    /// Adds `value / baseline` if both figures exist.
    pub fn ratio(&mut self, scenario: &str, metric: &str, of: (&str, &str), to: (&str, &str)) {
        let (Some(a), Some(b)) = (self.get(of.0, of.1), self.get(to.0, to.1)) else {
            return;
        };
        if b > 0.0 {
            self.figures.push(Figure {
                scenario: scenario.into(),
                metric: metric.into(),
                value: a / b,
                unit: "ratio".into(),
                baseline: Some(format!("{}/{}", to.0, to.1)),
            });
        }
    }

    /// A figure's value.
    pub fn get(&self, scenario: &str, metric: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.scenario == scenario && f.metric == metric)
            .map(|f| f.value)
    }

    /// Checks a target: `at_least` says which side of `bound` passes.
    pub fn target(&self, goal: &str, figure: (&str, &str), bound: f64, at_least: bool) -> Target {
        let actual = self.get(figure.0, figure.1);
        let met = actual.is_some_and(|v| if at_least { v >= bound } else { v <= bound });
        Target {
            goal: goal.into(),
            actual,
            met,
        }
    }

    /// `summary.json`: an array of the figures.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.figures
                .iter()
                .map(|f| {
                    let mut v = json!({"scenario": f.scenario, "metric": f.metric,
                                       "value": f.value, "unit": f.unit});
                    if let Some(b) = &f.baseline {
                        v["baseline"] = json!(b);
                    }
                    v
                })
                .collect(),
        )
    }

    /// The table of figures, then the targets.
    pub fn table(&self, targets: &[Target]) -> String {
        let mut out = String::new();
        let w0 = self
            .figures
            .iter()
            .map(|f| f.scenario.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let w1 = self
            .figures
            .iter()
            .map(|f| f.metric.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = writeln!(
            out,
            "{:w0$}  {:w1$}  {:>14}  {:10}  baseline",
            "scenario", "metric", "value", "unit"
        );
        let _ = writeln!(out, "{}", "-".repeat(w0 + w1 + 40));
        for f in &self.figures {
            let _ = writeln!(
                out,
                "{:w0$}  {:w1$}  {:>14}  {:10}  {}",
                f.scenario,
                f.metric,
                format_value(f.value),
                f.unit,
                f.baseline.as_deref().unwrap_or("")
            );
        }
        let _ = writeln!(out, "\ntargets:");
        for t in targets {
            let actual = t.actual.map_or("not measured".to_owned(), format_value);
            // A scenario left out of this run (--only) neither meets nor
            // misses its target.
            let verdict = match (t.actual, t.met) {
                (None, _) => "NOT RUN",
                (Some(_), true) => "MET",
                (Some(_), false) => "MISSED",
            };
            let _ = writeln!(out, "  [{verdict:7}] {:53} actual {actual}", t.goal);
        }
        for p in &self.problems {
            let _ = writeln!(out, "  problem: {p}");
        }
        out
    }
}

/// Three significant digits, without exponent for ordinary sizes.
pub fn format_value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_name_their_baseline_and_targets_check_the_bound() {
        let mut r = Report::default();
        r.add("launch", "tasks/s", 6000.0, "tasks/s");
        r.add("limit", "tasks/s", 8000.0, "tasks/s");
        r.ratio(
            "launch",
            "fraction of limit",
            ("launch", "tasks/s"),
            ("limit", "tasks/s"),
        );
        r.ratio(
            "launch",
            "x peer",
            ("launch", "tasks/s"),
            ("peer", "tasks/s"),
        );
        assert_eq!(r.get("launch", "fraction of limit"), Some(0.75));
        assert_eq!(r.get("launch", "x peer"), None);
        let json = r.to_json();
        assert_eq!(json[2]["baseline"], "limit/tasks/s");
        assert!(json[0].get("baseline").is_none());
        assert!(r.target("t", ("launch", "tasks/s"), 5000.0, true).met);
        assert!(!r.target("t", ("launch", "tasks/s"), 5000.0, false).met);
        assert!(!r.target("t", ("peer", "tasks/s"), 1.0, true).met);
        let table = r.table(&[
            r.target("t", ("peer", "tasks/s"), 1.0, true),
            r.target("u", ("launch", "tasks/s"), 1e9, true),
        ]);
        assert!(
            table.contains("[NOT RUN] t"),
            "a figure the run lacks: {table}"
        );
        assert!(table.contains("[MISSED ] u"), "{table}");
    }

    #[test]
    fn values_print_with_three_significant_digits() {
        assert_eq!(format_value(1234.4), "1234");
        assert_eq!(format_value(0.01234), "0.0123");
        assert_eq!(format_value(5.0), "5.00");
    }
}
