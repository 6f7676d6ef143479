//! `/metrics`: the master's counters and gauges in the Prometheus text
//! format (0.0.4), through `prometheus-client`: every family has HELP and
//! TYPE, and names and escaping are the crate's.
//!
//! The values live in the master (read under its lock), so each scrape
//! builds a registry of constant values from one consistent read.

use drover_proto::TaskStateExt;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use http::{header, Response, StatusCode};

use crate::master::driver::MasterHandle;
use crate::master::machine::Master;
use crate::master::maintenance::Mode;
use crate::server::{text, ResponseBody};

pub async fn handle(master: &MasterHandle) -> Response<ResponseBody> {
    let body = master.with(|m, _| (render(m), Vec::new())).await;
    match body {
        Ok(Ok(body)) => {
            let mut resp = text(StatusCode::OK, &body);
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
            );
            resp
        }
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// The master's metrics as Prometheus text. Counters are registered
/// without `_total` (the encoder adds it), help without a final period
/// (the registry adds it).
pub fn render(m: &Master) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    let c = m.counters();
    let calls = Family::<[(&'static str, &'static str); 1], Counter>::default();
    for (ty, n) in &c.calls {
        calls.get_or_create(&[("type", *ty)]).inc_by(*n);
    }
    registry.register(
        "drover_sim_calls",
        "Scheduler calls received, by type",
        calls,
    );
    let operator_calls = Family::<[(&'static str, &'static str); 1], Counter>::default();
    for (ty, n) in &c.operator_calls {
        operator_calls.get_or_create(&[("type", *ty)]).inc_by(*n);
    }
    registry.register(
        "drover_sim_operator_calls",
        "Operator API calls received, by type",
        operator_calls,
    );
    let counters = [
        (
            "drover_sim_offers_sent",
            "Offers sent to frameworks",
            c.offers_sent,
        ),
        (
            "drover_sim_status_updates_sent",
            "Status updates sent to frameworks (redeliveries included)",
            c.updates_sent,
        ),
        (
            "drover_sim_events_sent",
            "Events sent on subscription streams",
            c.events_sent,
        ),
        (
            "drover_sim_tasks_launched",
            "Tasks launched on agents",
            c.tasks_launched,
        ),
        (
            "drover_sim_tasks_adopted",
            "Tasks another master ran, adopted at a takeover (--state-dir)",
            c.tasks_adopted,
        ),
    ];
    for (name, help, v) in counters {
        registry.register(name, help, ConstCounter::new(v));
    }
    let running = m.tasks().filter(|t| !t.state().is_terminal()).count();
    let gauges = [
        (
            "drover_sim_frameworks",
            "Frameworks registered",
            m.frameworks().count(),
        ),
        (
            "drover_sim_frameworks_connected",
            "Frameworks with a subscription stream open",
            m.frameworks().filter(|f| f.connection.is_some()).count(),
        ),
        ("drover_sim_agents", "Agents known", m.agents().len()),
        (
            "drover_sim_agents_connected",
            "Agents connected",
            m.agents().iter().filter(|a| a.connected).count(),
        ),
        (
            "drover_sim_offers_outstanding",
            "Offers sent and not yet answered or rescinded",
            m.offers().count(),
        ),
        (
            "drover_sim_tasks_active",
            "Tasks not in a terminal state",
            running,
        ),
        (
            "drover_sim_agents_deactivated",
            "Agents deactivated or draining (not offered)",
            m.agents()
                .iter()
                .filter(|a| a.deactivated && !a.removed)
                .count(),
        ),
        (
            "drover_sim_machines_draining",
            "Machines in a maintenance schedule, not yet down",
            m.maintenance()
                .machines()
                .filter(|r| r.mode == Mode::Draining)
                .count(),
        ),
        (
            "drover_sim_machines_down",
            "Machines down for maintenance",
            m.maintenance()
                .machines()
                .filter(|r| r.mode == Mode::Down)
                .count(),
        ),
        (
            "drover_sim_inverse_offers_outstanding",
            "Inverse offers sent and not yet answered or rescinded",
            m.maintenance().inverse_offers().count(),
        ),
    ];
    for (name, help, v) in gauges {
        registry.register(name, help, ConstGauge::new(v as i64));
    }
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}
