//! Peloton v1alpha `PodService`, and the pod reads of `JobService`
//! (`ListPods`, `QueryPods`), translated onto Drover's pods.

use super::status;
use crate::api::AppState;
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::{
    ListPodsRequest, ListPodsResponse, QueryPodsRequest, QueryPodsResponse,
};

const JOB_SERVICE: &str = "peloton.api.v1alpha.job.stateless.svc.JobService";

/// `JobService.ListPods`: the messages of its server stream, in order.
pub async fn list_pods(
    _state: &AppState,
    _request: ListPodsRequest,
) -> Result<Vec<ListPodsResponse>, tonic::Status> {
    Err(status::waiting(JOB_SERVICE, "ListPods"))
}

/// `JobService.QueryPods`.
pub async fn query_pods(
    _state: &AppState,
    _request: QueryPodsRequest,
) -> Result<QueryPodsResponse, tonic::Status> {
    Err(status::waiting(JOB_SERVICE, "QueryPods"))
}
