//! Peloton v1alpha `HostService`: `QueryHosts`, `StartMaintenance` and
//! `CompleteMaintenance` over Drover's host maintenance (the JSON face's
//! [`hosts`] does the same at `/api/v1/hosts`). Both `hostnames` and the
//! older single `hostname` are read. Host pools are Peloton's placement
//! partitions, which Drover does not have: their methods answer
//! UNIMPLEMENTED saying so.

use crate::api::authn::Caller;
use crate::api::hosts::{self, HostView};
use crate::api::AppState;
use crate::engine::ApiRequest;
use crate::model::host::HostState;
use drover_seed_api::peloton::api::v1alpha::host::svc::host_service_server;
use drover_seed_api::peloton::api::v1alpha::host::svc::*;
use drover_seed_api::peloton::api::v1alpha::host::{self as phost, HostInfo};
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The service, over the same state as the JSON API.
#[derive(Clone)]
pub struct PelotonHosts {
    /// The API's state.
    pub state: AppState,
}

/// Peloton's enum value of a state.
fn proto_state(state: HostState) -> phost::HostState {
    match state {
        HostState::Up => phost::HostState::Up,
        HostState::Draining => phost::HostState::Draining,
        HostState::Drained => phost::HostState::Drained,
        HostState::Down => phost::HostState::Down,
    }
}

/// Drover's state of a Peloton enum value (INVALID, UNKNOWN: none).
fn model_state(value: i32) -> Option<HostState> {
    match phost::HostState::try_from(value).ok()? {
        phost::HostState::Up => Some(HostState::Up),
        phost::HostState::Draining => Some(HostState::Draining),
        phost::HostState::Drained => Some(HostState::Drained),
        phost::HostState::Down => Some(HostState::Down),
        phost::HostState::Invalid | phost::HostState::Unknown => None,
    }
}

fn host_info(view: &HostView) -> HostInfo {
    let state = |name: &str| {
        HostState::from_name(name).map_or(phost::HostState::Unknown, proto_state) as i32
    };
    HostInfo {
        hostname: view.hostname.clone(),
        ip: String::new(),
        state: state(&view.state),
        goal_state: state(&view.goal_state),
        labels: Vec::new(),
    }
}

/// The hosts a request names: `hostnames` and the single `hostname`.
fn named(hostnames: &[String], hostname: &str) -> Vec<String> {
    let mut all = hostnames.to_vec();
    if !hostname.is_empty() {
        all.push(hostname.to_owned());
    }
    all
}

fn no_host_pools() -> Status {
    Status::unimplemented(
        "host pools are Peloton's placement partitions, which Drover does not have: \
         every host serves every job (constraints choose hosts)",
    )
}

#[tonic::async_trait]
impl host_service_server::HostService for PelotonHosts {
    async fn query_hosts(
        &self,
        request: Request<QueryHostsRequest>,
    ) -> Result<Response<QueryHostsResponse>, Status> {
        let mut states = Vec::new();
        for value in &request.get_ref().host_states {
            let state = model_state(*value).ok_or_else(|| {
                Status::invalid_argument(format!("host_states: {value} is not a host state"))
            })?;
            states.push(state);
        }
        let host_infos = hosts::query(&self.state, &states)
            .await?
            .iter()
            .map(host_info)
            .collect();
        Ok(Response::new(QueryHostsResponse { host_infos }))
    }

    async fn start_maintenance(
        &self,
        request: Request<StartMaintenanceRequest>,
    ) -> Result<Response<StartMaintenanceResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.get_ref();
        let hostnames = named(&r.hostnames, &r.hostname);
        let done = hosts::ask_hosts(
            &self.state,
            &caller,
            ApiRequest::StartMaintenance {
                hostnames,
                batch_grace: Duration::ZERO,
            },
        )
        .await?;
        Ok(Response::new(StartMaintenanceResponse {
            hostname: first(done),
        }))
    }

    async fn complete_maintenance(
        &self,
        request: Request<CompleteMaintenanceRequest>,
    ) -> Result<Response<CompleteMaintenanceResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.get_ref();
        let hostnames = named(&r.hostnames, &r.hostname);
        let done = hosts::ask_hosts(
            &self.state,
            &caller,
            ApiRequest::CompleteMaintenance { hostnames },
        )
        .await?;
        Ok(Response::new(CompleteMaintenanceResponse {
            hostname: first(done),
        }))
    }

    async fn list_host_pools(
        &self,
        _request: Request<ListHostPoolsRequest>,
    ) -> Result<Response<ListHostPoolsResponse>, Status> {
        Err(no_host_pools())
    }

    async fn create_host_pool(
        &self,
        _request: Request<CreateHostPoolRequest>,
    ) -> Result<Response<CreateHostPoolResponse>, Status> {
        Err(no_host_pools())
    }

    async fn delete_host_pool(
        &self,
        _request: Request<DeleteHostPoolRequest>,
    ) -> Result<Response<DeleteHostPoolResponse>, Status> {
        Err(no_host_pools())
    }

    async fn change_host_pool(
        &self,
        _request: Request<ChangeHostPoolRequest>,
    ) -> Result<Response<ChangeHostPoolResponse>, Status> {
        Err(no_host_pools())
    }
}

/// The response's single `hostname`: the first host named (Peloton's
/// response has room for one).
fn first(hosts: Vec<(String, HostState)>) -> String {
    hosts.into_iter().next().map(|(h, _)| h).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map_both_ways_and_unknown_ones_are_refused() {
        for s in [
            HostState::Up,
            HostState::Draining,
            HostState::Drained,
            HostState::Down,
        ] {
            assert_eq!(model_state(proto_state(s) as i32), Some(s));
        }
        assert_eq!(model_state(phost::HostState::Invalid as i32), None);
        assert_eq!(model_state(99), None);
        assert_eq!(
            named(&["a".into()], "b"),
            vec!["a".to_owned(), "b".to_owned()]
        );
    }
}
