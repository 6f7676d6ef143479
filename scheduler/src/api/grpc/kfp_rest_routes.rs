//! The REST paths of the Kubeflow Pipelines v1beta1 seed services, as their
//! `google.api.http` options map them (the seed's build drops the options,
//! so the table is written here from the reference list of the services,
//! `kfp-v1beta1-services.tsv`), and how a REST request becomes the
//! method's request message, as grpc-gateway v1 (the kfp API server's)
//! builds it: the body (`body=run`: the `run` field; `body=*`: the whole
//! message), then the path's variables, then the query parameters (dotted
//! keys reach into nested messages, `resource_reference_key.type=EXPERIMENT`;
//! a repeated field takes every occurrence; enums by name or number).
//! Pure: no I/O.

use super::seed_pool;
use crate::api::error::{ApiError, Code};
use axum::http::Method;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ReflectMessage, Value,
};

/// Where a method's request body goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRule {
    /// No body (GET, DELETE, and POSTs whose fields are all in the path).
    None,
    /// The body is this field of the request (`body: "run"`).
    Field(&'static str),
    /// The body is the whole request (`body: "*"`).
    Whole,
}

/// One `google.api.http` option: verb, path template, the gRPC method.
#[derive(Debug, Clone, Copy)]
pub struct RestRoute {
    /// The HTTP verb.
    pub verb: &'static str,
    /// The path template: `{field}` segments, and a last segment's `:verb`.
    pub template: &'static str,
    /// The service's full name.
    pub service: &'static str,
    /// The method's name.
    pub method: &'static str,
    /// Where the body goes.
    pub body: BodyRule,
}

const RUNS: &str = "api.RunService";
const REPORTS: &str = "api.ReportService";

/// Every REST path of the seed's v1beta1 services (the `http` column of
/// `kfp-v1beta1-services.tsv`).
pub const ROUTES: &[RestRoute] = &[
    route(
        "POST",
        "/apis/v1beta1/runs",
        RUNS,
        "CreateRunV1",
        BodyRule::Field("run"),
    ),
    route(
        "GET",
        "/apis/v1beta1/runs/{run_id}",
        RUNS,
        "GetRunV1",
        BodyRule::None,
    ),
    route(
        "GET",
        "/apis/v1beta1/runs",
        RUNS,
        "ListRunsV1",
        BodyRule::None,
    ),
    route(
        "POST",
        "/apis/v1beta1/runs/{id}:archive",
        RUNS,
        "ArchiveRunV1",
        BodyRule::None,
    ),
    route(
        "POST",
        "/apis/v1beta1/runs/{id}:unarchive",
        RUNS,
        "UnarchiveRunV1",
        BodyRule::None,
    ),
    route(
        "DELETE",
        "/apis/v1beta1/runs/{id}",
        RUNS,
        "DeleteRunV1",
        BodyRule::None,
    ),
    route(
        "POST",
        "/apis/v1beta1/runs/{run_id}:reportMetrics",
        RUNS,
        "ReportRunMetricsV1",
        BodyRule::Whole,
    ),
    route(
        "GET",
        "/apis/v1beta1/runs/{run_id}/nodes/{node_id}/artifacts/{artifact_name}:read",
        RUNS,
        "ReadArtifactV1",
        BodyRule::None,
    ),
    route(
        "POST",
        "/apis/v1beta1/runs/{run_id}/terminate",
        RUNS,
        "TerminateRunV1",
        BodyRule::None,
    ),
    route(
        "POST",
        "/apis/v1beta1/runs/{run_id}/retry",
        RUNS,
        "RetryRunV1",
        BodyRule::None,
    ),
    route(
        "POST",
        "/apis/v1beta1/workflows",
        REPORTS,
        "ReportWorkflowV1",
        BodyRule::Field("workflow"),
    ),
    route(
        "POST",
        "/apis/v1beta1/scheduledworkflows",
        REPORTS,
        "ReportScheduledWorkflowV1",
        BodyRule::Field("scheduled_workflow"),
    ),
];

const fn route(
    verb: &'static str,
    template: &'static str,
    service: &'static str,
    method: &'static str,
    body: BodyRule,
) -> RestRoute {
    RestRoute {
        verb,
        template,
        service,
        method,
        body,
    }
}

impl RestRoute {
    /// The seed method the route calls.
    pub fn descriptor(&self) -> Option<MethodDescriptor> {
        seed_pool()
            .get_service_by_name(self.service)?
            .methods()
            .find(|m| m.name() == self.method)
    }

    /// The path's variables if `path` matches the template (percent-decoded).
    fn matches(&self, path: &str) -> Option<Vec<(&'static str, String)>> {
        let (template, verb) = split_verb(self.template);
        let path = match verb {
            Some(verb) => path.strip_suffix(verb)?.strip_suffix(':')?,
            None => path,
        };
        let wanted: Vec<&'static str> = template.split('/').collect();
        let given: Vec<&str> = path.split('/').collect();
        if wanted.len() != given.len() {
            return None;
        }
        let mut variables = Vec::new();
        for (want, got) in wanted.into_iter().zip(given) {
            match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(field) => {
                    if got.is_empty() {
                        return None;
                    }
                    let decoded = percent_decode(got)?;
                    variables.push((field, decoded));
                }
                None if want == got => {}
                None => return None,
            }
        }
        Some(variables)
    }
}

/// A template's path and its last segment's custom verb (`:archive`).
fn split_verb(template: &'static str) -> (&'static str, Option<&'static str>) {
    let last = template.rsplit('/').next().unwrap_or(template);
    match last.rfind(':') {
        Some(at) => {
            let cut = template.len() - last.len() + at;
            (&template[..cut], Some(&template[cut + 1..]))
        }
        None => (template, None),
    }
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes: Vec<u8> =
        form_urlencoded::parse(format!("v={}", segment.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned().into_bytes())?;
    String::from_utf8(bytes).ok()
}

/// The route a request takes, and its path's variables. `None` is no
/// v1beta1 REST method (another route may serve it).
pub fn route_of(
    verb: &Method,
    path: &str,
) -> Option<(&'static RestRoute, Vec<(&'static str, String)>)> {
    ROUTES
        .iter()
        .filter(|r| r.verb == verb.as_str())
        .find_map(|r| r.matches(path).map(|vars| (r, vars)))
}

/// The request message of `route`'s method from the REST request's parts.
pub fn request_message(
    route: &RestRoute,
    input: &MessageDescriptor,
    variables: &[(&'static str, String)],
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, ApiError> {
    let mut message = match route.body {
        BodyRule::None => DynamicMessage::new(input.clone()),
        BodyRule::Whole => body_message(input, body)?,
        BodyRule::Field(name) => {
            let field = input
                .get_field_by_name(name)
                .ok_or_else(|| internal(&format!("{} has no field {name}", input.full_name())))?;
            let Kind::Message(of) = field.kind() else {
                return Err(internal(&format!("{name} is not a message field")));
            };
            let mut message = DynamicMessage::new(input.clone());
            if !is_blank(body) {
                message.set_field(&field, Value::Message(body_message(&of, body)?));
            }
            message
        }
    };
    for (field, value) in variables {
        set_path(&mut message, field, field, value)?;
    }
    if route.body != BodyRule::Whole {
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let in_body = matches!(route.body, BodyRule::Field(f) if key == f || key.starts_with(&format!("{f}.")));
            let in_path = variables.iter().any(|(field, _)| *field == key);
            if in_body || in_path {
                continue;
            }
            set_path(&mut message, &key, &key, &value)?;
        }
    }
    Ok(message)
}

/// A message of `input` from query parameters alone, read as a REST
/// method's are (for the Kubeflow routes served beside the seed's).
pub fn query_message(
    input: &MessageDescriptor,
    query: Option<&str>,
) -> Result<DynamicMessage, ApiError> {
    let mut message = DynamicMessage::new(input.clone());
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        set_path(&mut message, &key, &key, &value)?;
    }
    Ok(message)
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// The body as a message of `of`, in protobuf JSON (proto or JSON field
/// names, enums by name or number). Unknown fields are ignored, as
/// grpc-gateway v1 ignores them.
fn body_message(of: &MessageDescriptor, body: &[u8]) -> Result<DynamicMessage, ApiError> {
    let text: &[u8] = if is_blank(body) { b"{}" } else { body };
    let mut json = serde_json::Deserializer::from_slice(text);
    DynamicMessage::deserialize_with_options(
        of.clone(),
        &mut json,
        &DeserializeOptions::new().deny_unknown_fields(false),
    )
    .and_then(|m| json.end().map(|()| m))
    .map_err(|e| ApiError {
        code: Code::InvalidArgument,
        message: format!("the body is not a {} in protobuf JSON: {e}", of.full_name()),
    })
}

fn internal(message: &str) -> ApiError {
    ApiError {
        code: Code::Internal,
        message: message.to_owned(),
    }
}

/// Sets the field a dotted `path` names (proto or JSON names) to `text`;
/// errors name the whole `key`.
fn set_path(
    message: &mut DynamicMessage,
    key: &str,
    path: &str,
    text: &str,
) -> Result<(), ApiError> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let descriptor = message.descriptor();
    let field = descriptor
        .get_field_by_name(head)
        .or_else(|| descriptor.get_field_by_json_name(head))
        .ok_or_else(|| {
            ApiError::invalid(
                key,
                format!("{} has no field {head}", descriptor.full_name()),
            )
        })?;
    match rest {
        Some(rest) => {
            if field.is_list() || field.is_map() || !matches!(field.kind(), Kind::Message(_)) {
                return Err(ApiError::invalid(
                    key,
                    format!("{head} is not a message field to reach into"),
                ));
            }
            let Value::Message(inner) = message.get_field_mut(&field) else {
                return Err(internal("a message field holds no message"));
            };
            set_path(inner, key, rest, text)
        }
        None => {
            let value =
                parse_value(&field, text).map_err(|problem| ApiError::invalid(key, problem))?;
            if field.is_list() {
                if let Value::List(values) = message.get_field_mut(&field) {
                    values.push(value);
                }
            } else {
                message.set_field(&field, value);
            }
            Ok(())
        }
    }
}

/// One query value as a value of `field`'s kind.
fn parse_value(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("{text:?} is not {what}");
    Ok(match field.kind() {
        Kind::String => Value::String(text.to_owned()),
        Kind::Bool => Value::Bool(text.parse().map_err(|_| bad("true or false"))?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(text.parse().map_err(|_| bad("a 32-bit integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(text.parse().map_err(|_| bad("a 64-bit integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(
            text.parse()
                .map_err(|_| bad("an unsigned 32-bit integer"))?,
        ),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(
            text.parse()
                .map_err(|_| bad("an unsigned 64-bit integer"))?,
        ),
        Kind::Float => Value::F32(text.parse().map_err(|_| bad("a number"))?),
        Kind::Double => Value::F64(text.parse().map_err(|_| bad("a number"))?),
        Kind::Bytes => {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .map_err(|_| bad("base64"))?;
            Value::Bytes(decoded.into())
        }
        Kind::Enum(e) => {
            let number = match e.get_value_by_name(text) {
                Some(v) => v.number(),
                None => text
                    .parse::<i32>()
                    .ok()
                    .filter(|n| e.get_value(*n).is_some())
                    .ok_or_else(|| bad(&format!("a value of {}", e.full_name())))?,
            };
            Value::EnumNumber(number)
        }
        // A well-known type written as one string (a Timestamp in RFC
        // 3339, a Duration, a wrapper): its JSON form.
        Kind::Message(of) => {
            let json = serde_json::Value::String(text.to_owned());
            Value::Message(
                DynamicMessage::deserialize(of.clone(), json)
                    .map_err(|e| format!("{text:?} is not a {}: {e}", of.full_name()))?,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::ReflectMessage;

    fn build(verb: Method, path_and_query: &str, body: &str) -> Result<DynamicMessage, ApiError> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let (route, vars) = route_of(&verb, path).expect("a route");
        let input = route.descriptor().expect("a seed method").input();
        request_message(route, &input, &vars, query, body.as_bytes())
    }

    fn json(message: &DynamicMessage) -> serde_json::Value {
        serde_json::to_value(message).unwrap()
    }

    #[test]
    fn every_route_names_a_seed_method_once() {
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(route.descriptor().is_some(), "{route:?}");
            assert!(seen.insert((route.service, route.method)), "{route:?}");
        }
        let run_methods = seed_pool()
            .get_service_by_name(RUNS)
            .unwrap()
            .methods()
            .count();
        assert_eq!(
            ROUTES.iter().filter(|r| r.service == RUNS).count(),
            run_methods
        );
    }

    #[test]
    fn paths_pick_their_methods_and_variables() {
        let cases = [
            (Method::POST, "/apis/v1beta1/runs", "CreateRunV1", vec![]),
            (Method::GET, "/apis/v1beta1/runs", "ListRunsV1", vec![]),
            (
                Method::GET,
                "/apis/v1beta1/runs/r1",
                "GetRunV1",
                vec![("run_id", "r1")],
            ),
            (
                Method::DELETE,
                "/apis/v1beta1/runs/r1",
                "DeleteRunV1",
                vec![("id", "r1")],
            ),
            (
                Method::POST,
                "/apis/v1beta1/runs/r1:archive",
                "ArchiveRunV1",
                vec![("id", "r1")],
            ),
            (
                Method::POST,
                "/apis/v1beta1/runs/r1:unarchive",
                "UnarchiveRunV1",
                vec![("id", "r1")],
            ),
            (
                Method::POST,
                "/apis/v1beta1/runs/r1:reportMetrics",
                "ReportRunMetricsV1",
                vec![("run_id", "r1")],
            ),
            (
                Method::GET,
                "/apis/v1beta1/runs/r1/nodes/n%2D1/artifacts/mlpipeline-ui-metadata:read",
                "ReadArtifactV1",
                vec![
                    ("run_id", "r1"),
                    ("node_id", "n-1"),
                    ("artifact_name", "mlpipeline-ui-metadata"),
                ],
            ),
            (
                Method::POST,
                "/apis/v1beta1/runs/r1/terminate",
                "TerminateRunV1",
                vec![("run_id", "r1")],
            ),
            (
                Method::POST,
                "/apis/v1beta1/runs/r1/retry",
                "RetryRunV1",
                vec![("run_id", "r1")],
            ),
        ];
        for (verb, path, method, vars) in cases {
            let (route, got) = route_of(&verb, path).unwrap_or_else(|| panic!("{verb} {path}"));
            assert_eq!(route.method, method, "{verb} {path}");
            let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(got, vars, "{verb} {path}");
        }
        assert!(route_of(&Method::PUT, "/apis/v1beta1/runs").is_none());
        assert!(route_of(&Method::GET, "/apis/v1beta1/runs/").is_none());
        assert!(route_of(&Method::POST, "/apis/v1beta1/runs/r1:frobnicate").is_none());
        assert!(route_of(&Method::GET, "/apis/v1beta1/experiments").is_none());
    }

    #[test]
    fn list_query_reaches_nested_fields_and_keeps_the_filter_text() {
        let filter = r#"{"predicates":[{"key":"name","op":"EQUALS","string_value":"a b"}]}"#;
        let query = format!(
            "page_size=10&page_token=t0&sort_by=name%20desc&resource_reference_key.type=EXPERIMENT&resource_reference_key.id=e1&filter={}",
            form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let message = build(Method::GET, &format!("/apis/v1beta1/runs?{query}"), "").unwrap();
        let got = json(&message);
        assert_eq!(got["pageSize"], 10);
        assert_eq!(got["pageToken"], "t0");
        assert_eq!(got["sortBy"], "name desc");
        assert_eq!(got["resourceReferenceKey"]["type"], "EXPERIMENT");
        assert_eq!(got["resourceReferenceKey"]["id"], "e1");
        assert_eq!(got["filter"], filter);
        // The enum by its number too, and JSON names as keys.
        let message = build(
            Method::GET,
            "/apis/v1beta1/runs?resourceReferenceKey.type=1&pageSize=3",
            "",
        )
        .unwrap();
        assert_eq!(json(&message)["resourceReferenceKey"]["type"], "EXPERIMENT");
        assert_eq!(json(&message)["pageSize"], 3);
    }

    #[test]
    fn bad_query_values_are_invalid_arguments_naming_the_key() {
        for (query, key) in [
            ("page_size=ten", "page_size"),
            (
                "resource_reference_key.type=CLUSTER",
                "resource_reference_key.type",
            ),
            ("nonesuch=1", "nonesuch"),
            ("page_size.x=1", "page_size.x"),
        ] {
            let e = build(Method::GET, &format!("/apis/v1beta1/runs?{query}"), "").unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{query}");
            assert!(e.message.starts_with(key), "{query}: {}", e.message);
        }
    }

    #[test]
    fn the_body_is_the_run_field_or_the_whole_request() {
        let message = build(
            Method::POST,
            "/apis/v1beta1/runs",
            r#"{"name": "r", "pipeline_spec": {"workflow_manifest": "{}"},
                "resource_references": [{"key": {"type": "EXPERIMENT", "id": "e1"},
                "relationship": "OWNER"}], "not_in_the_seed": 1}"#,
        )
        .unwrap();
        let got = json(&message);
        assert_eq!(got["run"]["name"], "r");
        assert_eq!(got["run"]["pipelineSpec"]["workflowManifest"], "{}");
        assert_eq!(got["run"]["resourceReferences"][0]["key"]["id"], "e1");

        let message = build(
            Method::POST,
            "/apis/v1beta1/runs/r1:reportMetrics",
            r#"{"metrics": [{"name": "accuracy", "node_id": "n1", "number_value": 0.5}]}"#,
        )
        .unwrap();
        let got = json(&message);
        assert_eq!(
            got["runId"], "r1",
            "the path's variable is set over the body"
        );
        assert_eq!(got["metrics"][0]["nodeId"], "n1");
        assert_eq!(message.descriptor().name(), "ReportRunMetricsRequest");

        let e = build(Method::POST, "/apis/v1beta1/runs", "{not json").unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(e.message.contains("api.Run"), "{}", e.message);
    }
}
