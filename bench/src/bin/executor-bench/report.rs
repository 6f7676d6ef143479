//! The benchmark's figures: percentiles of samples, the printed table and
//! `executor.json` (one object per figure: scenario, metric, value, unit,
//! and the baseline a ratio is taken against).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

/// One figure of the run.
#[derive(Debug, Clone)]
pub struct Figure {
    /// What was measured (`launch`, `memory`, `kill`).
    pub scenario: String,
    /// Which number (`p50`, `rss idle`, `p50 / plain fork+exec p50`, ...).
    pub metric: String,
    /// The number.
    pub value: f64,
    /// Its unit (`ms`, `MiB`, `x`).
    pub unit: &'static str,
    /// For ratios and differences: what they are taken against.
    pub baseline: Option<String>,
    /// The target for this figure, and whether it is met.
    pub target: Option<(String, bool)>,
}

impl Figure {
    /// A plain figure.
    pub fn new(scenario: &str, metric: &str, value: f64, unit: &'static str) -> Self {
        Self {
            scenario: scenario.into(),
            metric: metric.into(),
            value,
            unit,
            baseline: None,
            target: None,
        }
    }

    /// The same figure, relative to `baseline`.
    pub fn against(mut self, baseline: &str) -> Self {
        self.baseline = Some(baseline.into());
        self
    }

    /// The same figure, with a target and whether it is met.
    pub fn target(mut self, target: &str, met: bool) -> Self {
        self.target = Some((target.into(), met));
        self
    }
}

/// The `q`-quantile (0..=1) by nearest rank; zero for no samples.
pub fn percentile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints the figures as an aligned table.
pub fn print_table(figures: &[Figure]) {
    let rows: Vec<[String; 5]> = figures
        .iter()
        .map(|f| {
            let target = match &f.target {
                Some((t, met)) => format!("{t}: {}", if *met { "met" } else { "MISSED" }),
                None => String::new(),
            };
            [
                f.scenario.clone(),
                f.metric.clone(),
                format!("{:.3} {}", f.value, f.unit),
                f.baseline.clone().unwrap_or_default(),
                target,
            ]
        })
        .collect();
    let header = ["scenario", "metric", "value", "against", "target"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: [&str; 5]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", padded.join(" | "));
    };
    line(header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("|-{}-|", rule.join("-|-"));
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
}

/// Writes the figures as a JSON array to `path`, creating its directory.
pub fn write_json(figures: &[Figure], path: &Path) -> anyhow::Result<()> {
    let objects: Vec<serde_json::Value> = figures
        .iter()
        .map(|f| {
            let mut object = serde_json::json!({
                "scenario": f.scenario,
                "metric": f.metric,
                "value": f.value,
                "unit": f.unit,
            });
            if let Some(baseline) = &f.baseline {
                object["baseline"] = baseline.clone().into();
            }
            if let Some((target, met)) = &f.target {
                object["target"] = target.clone().into();
                object["target_met"] = (*met).into();
            }
            object
        })
        .collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&objects).context("encoding the figures")?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
