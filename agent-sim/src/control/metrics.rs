//! `/metrics`: the master's counters and gauges in Prometheus text format.

use drover_proto::TaskStateExt;
use std::fmt::Write;

use http::{header, Response, StatusCode};

use crate::master::driver::MasterHandle;
use crate::server::{text, ResponseBody};

pub async fn handle(master: &MasterHandle) -> Response<ResponseBody> {
    let body = master
        .with(|m, _| {
            let mut out = String::new();
            let c = m.counters();
            let _ = writeln!(out, "# TYPE drover_sim_calls_total counter");
            let mut calls: Vec<_> = c.calls.iter().collect();
            calls.sort();
            for (ty, n) in calls {
                let _ = writeln!(out, "drover_sim_calls_total{{type=\"{ty}\"}} {n}");
            }
            let counters = [
                ("drover_sim_offers_sent_total", c.offers_sent),
                ("drover_sim_status_updates_sent_total", c.updates_sent),
                ("drover_sim_events_sent_total", c.events_sent),
                ("drover_sim_tasks_launched_total", c.tasks_launched),
            ];
            for (name, v) in counters {
                let _ = writeln!(out, "# TYPE {name} counter\n{name} {v}");
            }
            let running = m.tasks().filter(|t| !t.state().is_terminal()).count();
            let gauges = [
                ("drover_sim_frameworks", m.frameworks().count()),
                (
                    "drover_sim_frameworks_connected",
                    m.frameworks().filter(|f| f.connection.is_some()).count(),
                ),
                ("drover_sim_agents", m.agents().len()),
                (
                    "drover_sim_agents_connected",
                    m.agents().iter().filter(|a| a.connected).count(),
                ),
                ("drover_sim_offers_outstanding", m.offers().count()),
                ("drover_sim_tasks_active", running),
            ];
            for (name, v) in gauges {
                let _ = writeln!(out, "# TYPE {name} gauge\n{name} {v}");
            }
            (out, Vec::new())
        })
        .await;
    match body {
        Ok(body) => {
            let mut resp = text(StatusCode::OK, &body);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        }
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
