//! Peloton v1alpha `ResourcePoolService` on Drover's resource pools: a
//! thin async layer over the JSON face's calls ([`crate::api::pools`])
//! and the pure translation of [`peloton_pool_view`]. Errors are the
//! JSON face's, so both faces refuse alike: ALREADY_EXISTS for a taken id
//! or sibling name, NOT_FOUND for an unknown pool or path,
//! FAILED_PRECONDITION for a non-leaf or busy pool deleted,
//! INVALID_ARGUMENT naming the field for an invalid config, and
//! PERMISSION_DENIED for a write by someone not an operator.
//!
//! `UpdateResourcePool`'s `Force` (store the config even if invalid) is
//! refused with INVALID_ARGUMENT naming it ([`refuse_force`]); without it
//! every update is checked against the tree as it is. A spec without a
//! parent keeps the pool's (a pool never moves).

use super::peloton_pool_view as view;
use crate::api::authn::Caller;
use crate::api::error::ApiError;
use crate::api::jobs::ask;
use crate::api::pools::{read_pools, refuse_force, write_pool};
use crate::api::AppState;
use crate::engine::ApiRequest;
use crate::model::pool::PoolId;
use crate::model::pool_validate::PoolError;
use drover_seed_api::peloton::api::v1alpha::peloton;
use drover_seed_api::peloton::api::v1alpha::respool::resource_pool_service_server::ResourcePoolService;
use drover_seed_api::peloton::api::v1alpha::respool::*;
use tonic::{Request, Response, Status};

/// The service, over the API's shared state.
#[derive(Clone)]
pub struct PelotonPools {
    /// What every handler can reach.
    pub state: AppState,
}

#[tonic::async_trait]
impl ResourcePoolService for PelotonPools {
    async fn create_resource_pool(
        &self,
        request: Request<CreateResourcePoolRequest>,
    ) -> Result<Response<CreateResourcePoolResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let pool_id = match request.respool_id.as_ref().filter(|i| !i.value.is_empty()) {
            Some(id) => view::pool_id(Some(id), "respool_id")?,
            None => PoolId(uuid::Uuid::new_v4().to_string()),
        };
        let spec = view::spec(request.spec.as_ref())?;
        let pool = write_pool(
            &self.state,
            &caller,
            ApiRequest::CreatePool {
                pool_id,
                spec: Box::new(spec),
            },
        )
        .await?;
        Ok(Response::new(CreateResourcePoolResponse {
            respool_id: Some(peloton::ResourcePoolId {
                value: pool.id.to_string(),
            }),
        }))
    }

    async fn get_resource_pool(
        &self,
        request: Request<GetResourcePoolRequest>,
    ) -> Result<Response<GetResourcePoolResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        // Peloton answers the root for a request that names no pool.
        let id = match request.respool_id.as_ref().filter(|i| !i.value.is_empty()) {
            Some(id) => PoolId(id.value.clone()),
            None => PoolId::root(),
        };
        let pools = read_pools(&self.state, &caller).await?;
        let pool = pools
            .tree
            .get(&id)
            .ok_or_else(|| ApiError::from(PoolError::NotFound(id)))?;
        let child_respools = if request.include_child_pools {
            pools
                .tree
                .children(&pool.id)
                .map(|c| view::pool_info(&pools, c))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Response::new(GetResourcePoolResponse {
            respool: Some(view::pool_info(&pools, pool)),
            child_respools,
        }))
    }

    async fn delete_resource_pool(
        &self,
        request: Request<DeleteResourcePoolRequest>,
    ) -> Result<Response<DeleteResourcePoolResponse>, Status> {
        let caller = Caller::of(&request)?;
        let pool_id = view::pool_id(request.get_ref().respool_id.as_ref(), "respool_id")?;
        ask(&self.state, &caller, ApiRequest::DeletePool { pool_id }).await?;
        Ok(Response::new(DeleteResourcePoolResponse {}))
    }

    async fn update_resource_pool(
        &self,
        request: Request<UpdateResourcePoolRequest>,
    ) -> Result<Response<UpdateResourcePoolResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        refuse_force(request.force)?;
        let pool_id = view::pool_id(request.respool_id.as_ref(), "respool_id")?;
        let mut spec = view::spec(request.spec.as_ref())?;
        let parent_given = request
            .spec
            .as_ref()
            .and_then(|s| s.parent.as_ref())
            .is_some_and(|p| !p.value.is_empty());
        if !parent_given {
            // A spec without a parent keeps the pool's.
            let pools = read_pools(&self.state, &caller).await?;
            if let Some(current) = pools.tree.get(&pool_id) {
                spec.parent = current.spec.parent.clone();
            }
        }
        write_pool(
            &self.state,
            &caller,
            ApiRequest::UpdatePool {
                pool_id,
                spec: Box::new(spec),
            },
        )
        .await?;
        Ok(Response::new(UpdateResourcePoolResponse {}))
    }

    async fn lookup_resource_pool_id(
        &self,
        request: Request<LookupResourcePoolIdRequest>,
    ) -> Result<Response<LookupResourcePoolIdResponse>, Status> {
        let caller = Caller::of(&request)?;
        let path = request
            .get_ref()
            .path
            .as_ref()
            .map(|p| p.value.clone())
            .unwrap_or_default();
        if !path.starts_with('/') {
            return Err(ApiError::invalid(
                "path.value",
                format!("'{path}' is not a pool path: it starts with '/'"),
            )
            .into());
        }
        let pools = read_pools(&self.state, &caller).await?;
        let pool = pools
            .tree
            .lookup(&path)
            .ok_or_else(|| ApiError::from(PoolError::PathNotFound(path.clone())))?;
        Ok(Response::new(LookupResourcePoolIdResponse {
            respool_id: Some(peloton::ResourcePoolId {
                value: pool.id.to_string(),
            }),
        }))
    }

    async fn query_resource_pools(
        &self,
        request: Request<QueryResourcePoolsRequest>,
    ) -> Result<Response<QueryResourcePoolsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let pools = read_pools(&self.state, &caller).await?;
        let mut respools: Vec<ResourcePoolInfo> = pools
            .tree
            .iter()
            .map(|p| view::pool_info(&pools, p))
            .collect();
        respools.sort_by(|a, b| {
            let path = |i: &ResourcePoolInfo| i.path.as_ref().map(|p| p.value.clone());
            path(a).cmp(&path(b))
        });
        Ok(Response::new(QueryResourcePoolsResponse { respools }))
    }
}
