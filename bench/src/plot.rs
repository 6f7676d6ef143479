//! The throughput-versus-fleet-size figure as a hand-written SVG: tasks
//! per second (linear) over agents (log scale), one line per series.

use crate::scenarios::Point;
use std::fmt::Write as _;

const W: f64 = 640.0;
const H: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// The SVG for `points`, titled `title`.
pub fn svg(points: &[Point], title: &str) -> String {
    let series: Vec<(&str, &str)> = vec![
        ("drover", "#1f77b4"),
        ("limit", "#2ca02c"),
        ("pymesos", "#d62728"),
    ];
    let agents: Vec<f64> = points.iter().map(|p| p.agents.max(1) as f64).collect();
    let lo = agents
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(100.0)
        .log10()
        .floor();
    let hi = agents
        .iter()
        .copied()
        .fold(1.0, f64::max)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let ymax = nice_max(points.iter().map(|p| p.per_sec).fold(0.0, f64::max));
    let x = |a: f64| LEFT + (a.max(1.0).log10() - lo) / (hi - lo) * (W - LEFT - RIGHT);
    let y = |v: f64| H - BOTTOM - v / ymax * (H - TOP - BOTTOM);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    // Axes, grid and ticks.
    for i in 0..=4 {
        let v = ymax * f64::from(i) / 4.0;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0,
            v.round(),
            y = y(v)
        );
    }
    for e in lo as i32..=hi as i32 {
        let a = 10f64.powi(e);
        let _ = writeln!(
            out,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{TOP}" y2="{}" stroke="#ddd"/><text x="{xx:.1}" y="{}" text-anchor="middle">{}</text>"##,
            H - BOTTOM,
            H - BOTTOM + 18.0,
            a,
            xx = x(a)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">agents (log scale)</text><text transform="translate(18 {}) rotate(-90)" text-anchor="middle">tasks launched per second</text>"#,
        (W - RIGHT + LEFT) / 2.0,
        H - 10.0,
        (H - BOTTOM + TOP) / 2.0
    );
    for (k, (name, color)) in series.iter().enumerate() {
        let mut pts: Vec<&Point> = points.iter().filter(|p| p.series == *name).collect();
        pts.sort_by_key(|p| p.agents);
        let path: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.agents as f64), y(p.per_sec)))
            .collect();
        if path.len() > 1 {
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
        }
        for p in &pts {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"><title>{name}: {} tasks on {} agents, {:.0} tasks/s</title></circle>"#,
                x(p.agents as f64),
                y(p.per_sec),
                p.tasks,
                p.agents,
                p.per_sec
            );
        }
        let ly = TOP + 20.0 * k as f64 + 10.0;
        let _ = writeln!(
            out,
            r#"<rect x="{}" y="{}" width="14" height="4" fill="{color}"/><text x="{}" y="{}">{name}</text>"#,
            W - RIGHT + 15.0,
            ly - 4.0,
            W - RIGHT + 35.0,
            ly + 1.0
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A round upper bound for the y axis.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let step = 10f64.powf(v.log10().floor());
    (v / step).ceil() * step
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_marker_per_point_and_a_line_per_multi_point_series() {
        let p = |series, agents, per_sec| Point {
            series,
            agents,
            tasks: 10,
            per_sec,
        };
        let s = svg(
            &[
                p("drover", 1000, 5000.0),
                p("drover", 10000, 4000.0),
                p("pymesos", 1000, 300.0),
            ],
            "a & b",
        );
        assert_eq!(s.matches("<circle").count(), 3);
        assert_eq!(s.matches("<polyline").count(), 1);
        assert!(s.contains("a &amp; b"));
        assert_eq!(nice_max(4321.0), 5000.0);
    }
}
