//! `GET /api/v1/openapi.json`: the OpenAPI document of the JSON API, made
//! by utoipa from the handlers' `#[utoipa::path]` attributes and the
//! schemas derived from the types requests are read into and answers are
//! built as (the agents' list, which passes the master's JSON on, has a
//! schema written beside its builder). Every operation also answers the error shape
//! (`{code, message}`) on any other status, and the document declares the
//! credentials the API takes (bearer tokens and HTTP basic).
//!
//! The UI's assets (`/`, `/ui/...`) and the gRPC services (and their JSON
//! face) are not in it: they are described by the UI and the seed protos.

use super::{
    agents, authn, error, health, hosts, jobs, logs, pod_ops, pods, pools, query, store, updates,
    watch,
};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Response};
use utoipa::OpenApi;

/// The document's definition: every documented handler, by route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Drover scheduler JSON API",
        description = "Jobs, pods, updates and the cluster, in Peloton's JSON shapes \
                       (snake_case; ids and versions as {\"value\": ...}). Every error \
                       is {\"code\", \"message\"} with a gRPC-style code."
    ),
    paths(
        jobs::create,
        jobs::list,
        jobs::get,
        jobs::delete,
        jobs::pods,
        jobs::stop,
        jobs::start,
        query::query_jobs,
        query::query_pods,
        pod_ops::restart_job,
        updates::replace,
        updates::diff,
        updates::patch,
        updates::rollback,
        updates::scale,
        updates::list,
        updates::pause,
        updates::resume,
        updates::abort,
        updates::events,
        pods::get,
        pods::events,
        pod_ops::stop,
        pod_ops::start,
        pod_ops::restart,
        logs::read,
        agents::list,
        pools::list,
        pools::create,
        pools::get,
        pools::update,
        pools::delete,
        pools::lookup,
        hosts::list,
        hosts::drain,
        hosts::complete,
        store::get,
        crate::ha::follower::leader,
        authn::login,
        authn::logout,
        authn::whoami,
        watch::sse::watch,
        serve,
        health::metrics,
        health::health,
        health::live,
        health::ready,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&Conventions),
    tags(
        (name = "jobs", description = "Create, read, list, query, stop, start, delete jobs"),
        (name = "updates", description = "Change a running job: update, patch, scale, roll back"),
        (name = "pods", description = "A pod's runs, events, logs; stop, start, restart it"),
        (name = "cluster", description = "The agents, the store and the leading replica"),
        (name = "pools", description = "Resource pools: create, read, update, delete, look up"),
        (name = "watch", description = "Every change, as server-sent events"),
        (name = "health", description = "Metrics and probes"),
        (name = "auth", description = "Log in and out (the web UI's session), and who you are"),
    )
)]
pub struct ApiDoc;

/// What holds for every operation, added once rather than on each: the
/// error answer and the credentials.
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        openapi.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("basic", Vec::<String>::new()),
        ]);
        let error: RefOr<Response> = utoipa::openapi::ResponseBuilder::new()
            .description(
                "An error, any status: 400 INVALID_ARGUMENT or OUT_OF_RANGE, 401 \
                 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 405 \
                 UNIMPLEMENTED, 408 DEADLINE_EXCEEDED, 409 ALREADY_EXISTS or ABORTED, \
                 412 FAILED_PRECONDITION, 413/414 RESOURCE_EXHAUSTED, 500 INTERNAL, \
                 503 UNAVAILABLE (with Retry-After)",
            )
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
            .into();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else {
                    continue;
                };
                // utoipa names an operation by its handler, and several
                // modules have a `list` or a `get`: the method and the path
                // are unique.
                operation.operation_id = Some(operation_id(method, path));
                operation
                    .responses
                    .responses
                    .entry("default".to_owned())
                    .or_insert_with(|| error.clone());
            }
        }
    }
}

/// `get_api_v1_jobs_id_pods` for `GET /api/v1/jobs/{id}/pods`.
fn operation_id(method: &str, path: &str) -> String {
    let words = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty());
    std::iter::once(method)
        .chain(words)
        .collect::<Vec<_>>()
        .join("_")
}

/// The document, made once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"the document does not serialize: {e}\"}}"))
    })
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "cluster",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object))
)]
pub async fn serve() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], document())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Each `.route("/api/v1/...", method(...)...)` of `router`, read from
    /// its source: the router is the source of truth, and axum does not
    /// list a router's routes. Methods are the calls at the top level of
    /// the route's method router (`post(h).get(h2)`), not those inside
    /// handlers' closures.
    fn routes_of_router() -> Vec<(String, Vec<String>)> {
        let source = include_str!("mod.rs");
        let start = source.find("pub fn router(").expect("router in mod.rs");
        let body = &source[start..];
        let end = body.find("\n}\n").expect("router's end");
        let body = &body[..end];
        let mut routes = Vec::new();
        let mut rest = body;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let rest_trimmed = rest.trim_start();
            let Some(quoted) = rest_trimmed.strip_prefix('"') else {
                continue;
            };
            let close = quoted.find('"').expect("closing quote");
            let path = quoted[..close].to_owned();
            // The method router, up to the `)` closing `.route(`: a method
            // is a call at its top level right after the path's `,` or a `.`.
            let chars: Vec<char> = quoted[close + 1..].chars().collect();
            let (mut i, mut depth, mut previous) = (0, 0, ',');
            let mut methods = Vec::new();
            while i < chars.len() {
                let c = chars[i];
                if c.is_alphanumeric() || c == '_' {
                    let word_start = i;
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    let word: String = chars[word_start..i].iter().collect();
                    let next = chars[i..].iter().find(|c| !c.is_whitespace());
                    if depth == 0
                        && matches!(previous, ',' | '.')
                        && next == Some(&'(')
                        && ["get", "post", "put", "delete", "patch"].contains(&word.as_str())
                    {
                        methods.push(word.to_uppercase());
                    }
                    previous = 'w';
                    continue;
                }
                match c {
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' if depth == 0 => break,
                    ')' | ']' | '}' => depth -= 1,
                    _ => {}
                }
                if !c.is_whitespace() {
                    previous = c;
                }
                i += 1;
            }
            routes.push((path, methods));
        }
        routes
    }

    /// Whether the document path (with `{param}` segments) matches a
    /// route path (literal segments, or the same `{param}`).
    fn matches(documented: &str, route: &str) -> bool {
        let d: Vec<&str> = documented.split('/').collect();
        let r: Vec<&str> = route.split('/').collect();
        d.len() == r.len()
            && d.iter()
                .zip(&r)
                .all(|(d, r)| d == r || (d.starts_with('{') && !r.starts_with('{')))
    }

    #[test]
    fn the_router_is_read_whole() {
        let routes = routes_of_router();
        let query = routes
            .iter()
            .find(|(p, _)| p == "/api/v1/jobs/query")
            .expect("the query route");
        assert_eq!(query.1, ["POST", "GET", "DELETE"]);
        let jobs = routes.iter().find(|(p, _)| p == "/api/v1/jobs").unwrap();
        assert_eq!(jobs.1, ["POST", "GET"]);
        assert!(routes.len() >= 30, "{routes:?}");
        assert!(routes.iter().all(|(_, m)| !m.is_empty()), "{routes:?}");
    }

    #[test]
    fn every_api_route_of_the_router_is_documented() {
        let document: Value = serde_json::from_str(document()).unwrap();
        let paths = document["paths"].as_object().unwrap();
        let mut missing = Vec::new();
        for (route, methods) in routes_of_router() {
            let documented = route.starts_with("/api/v1/")
                || route.starts_with("/health")
                || route == "/metrics";
            if !documented {
                continue;
            }
            for method in methods {
                let found = paths.iter().any(|(path, item)| {
                    matches(path, &route) && item.get(method.to_lowercase()).is_some()
                });
                if !found {
                    missing.push(format!("{method} {route}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "routes not in the document: {missing:?}"
        );
    }

    #[test]
    fn every_operation_answers_the_error_shape_and_takes_credentials() {
        let document: Value = serde_json::from_str(document()).unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        let schemes = &document["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["basic"]["scheme"], "basic");
        let error = &document["components"]["schemas"]["ErrorBody"];
        assert_eq!(error["required"], serde_json::json!(["code", "message"]));
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let default = &operation["responses"]["default"];
                assert_eq!(
                    default["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path}"
                );
            }
        }
    }

    #[test]
    fn the_job_spec_is_described_from_its_type() {
        let document: Value = serde_json::from_str(document()).unwrap();
        let spec = &document["components"]["schemas"]["JobSpec"];
        let required: Vec<&str> = spec["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for field in ["type", "name", "instance_count", "default_spec"] {
            assert!(required.contains(&field), "{field} in {required:?}");
        }
        assert_eq!(spec["additionalProperties"], false);
    }
}
