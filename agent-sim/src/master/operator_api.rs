//! `POST /api/v1`: the operator API, for the calls the simulator serves
//! (maintenance, agent drain and deactivation, GET_AGENTS, GET_HEALTH).
//! The HTTP checks a Mesos master makes (POST, a supported
//! `Content-Type`, a body that decodes, an acceptable `Accept`), then the
//! call goes to the master task, ordered with every other input; a
//! response with a body (the GET calls) is encoded as `Accept` asks, the
//! others are an empty 200. Also Mesos' older JSON endpoints:
//! `/maintenance/schedule` (GET, POST a schedule), `/maintenance/status`
//! (GET), `/machine/down` and `/machine/up` (POST a list of machines),
//! each the same input to the master as the call it stands for.

use bytes::Bytes;
use drover_proto::{MediaError, MediaType};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use prost::Message;

use super::driver::MasterHandle;
use crate::operator_json::{
    call_from_json, cluster_status_json, machine_ids_from_json, response_json, schedule_from_json,
    schedule_json,
};
use crate::operator_proto::{
    call_from_protobuf, Call, CallType, DecodeError, Machines, UpdateMaintenanceSchedule,
};
use crate::server::{json, text, ResponseBody};

/// Handles one request to `/api/v1`.
pub async fn operator(
    req: Request<Incoming>,
    master: &MasterHandle,
    max_body_bytes: usize,
) -> Response<ResponseBody> {
    if req.method() != Method::POST {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!(
                "405 Method Not Allowed. Expecting one of {{ 'POST' }}, but received '{}'.",
                req.method()
            ),
        );
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return resp;
    }
    let headers = req.headers().clone();
    let header_str = |name| {
        headers
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap_or("\u{fffd}"))
    };
    let media = match MediaType::from_content_type(header_str(header::CONTENT_TYPE)) {
        Ok(m) => m,
        Err(e @ MediaError::MissingContentType) => {
            return text(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e) => return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, &e.to_string()),
    };
    let accept = match MediaType::negotiate(header_str(header::ACCEPT)) {
        Ok(m) => m,
        Err(e) => return text(StatusCode::NOT_ACCEPTABLE, &e.to_string()),
    };
    let body = match Limited::new(req.into_body(), max_body_bytes)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "Request body is larger than the simulator's limit of {max_body_bytes} bytes"
                ),
            )
        }
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Failed to read body: {e}"),
            )
        }
    };
    let decoded = match media {
        MediaType::Json => call_from_json(&body),
        MediaType::Protobuf => call_from_protobuf(&body),
    };
    let call = match decoded {
        Ok(c) => c,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let answer = master
        .with(move |m, now| m.on_operator_call(call, now))
        .await;
    match answer {
        Ok(Ok(response)) => {
            if !response.has_body() {
                return bytes(StatusCode::OK, None, Bytes::new());
            }
            let encoded = match accept {
                MediaType::Json => Bytes::from(response_json(&response).to_string()),
                MediaType::Protobuf => Bytes::from(response.encode_to_vec()),
            };
            bytes(StatusCode::OK, Some(accept.as_str()), encoded)
        }
        Ok(Err(e)) => text(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            &e.to_string(),
        ),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn bytes(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: Bytes,
) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Full::new(body)));
    *resp.status_mut() = status;
    if let Some(ct) = content_type {
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, header::HeaderValue::from_static(ct));
    }
    resp
}

/// `POST` of one of the older endpoints: its body, turned into `call`.
async fn old_post(
    req: Request<Incoming>,
    master: &MasterHandle,
    max_body_bytes: usize,
    call: impl FnOnce(&[u8]) -> Result<Call, DecodeError>,
) -> Response<ResponseBody> {
    if req.method() != Method::POST {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!(
                "405 Method Not Allowed. Expecting one of {{ 'POST' }}, but received '{}'.",
                req.method()
            ),
        );
    }
    let body = match Limited::new(req.into_body(), max_body_bytes)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Failed to read body: {e}"),
            )
        }
    };
    let call = match call(&body) {
        Ok(c) => c,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match master
        .with(move |m, now| m.on_operator_call(call, now))
        .await
    {
        Ok(Ok(_)) => bytes(StatusCode::OK, None, Bytes::new()),
        Ok(Err(e)) => text(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            &e.to_string(),
        ),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `/maintenance/schedule`: GET the schedule, or POST a new one (as
/// UPDATE_MAINTENANCE_SCHEDULE).
pub async fn maintenance_schedule(
    req: Request<Incoming>,
    master: &MasterHandle,
    max_body_bytes: usize,
) -> Response<ResponseBody> {
    if req.method() == Method::GET {
        return schedule(master).await;
    }
    old_post(req, master, max_body_bytes, |body| {
        Ok(Call {
            r#type: Some(CallType::UpdateMaintenanceSchedule as i32),
            update_maintenance_schedule: Some(UpdateMaintenanceSchedule {
                schedule: schedule_from_json(body)?,
            }),
            ..Default::default()
        })
    })
    .await
}

/// `POST /machine/down` (START_MAINTENANCE) or `/machine/up` (STOP_MAINTENANCE).
pub async fn machines(
    req: Request<Incoming>,
    master: &MasterHandle,
    max_body_bytes: usize,
    down: bool,
) -> Response<ResponseBody> {
    old_post(req, master, max_body_bytes, |body| {
        let machines = Some(Machines {
            machines: machine_ids_from_json(body)?,
        });
        Ok(if down {
            Call {
                r#type: Some(CallType::StartMaintenance as i32),
                start_maintenance: machines,
                ..Default::default()
            }
        } else {
            Call {
                r#type: Some(CallType::StopMaintenance as i32),
                stop_maintenance: machines,
                ..Default::default()
            }
        })
    })
    .await
}

/// `GET /maintenance/schedule`: the schedule as JSON.
async fn schedule(master: &MasterHandle) -> Response<ResponseBody> {
    match master
        .with(|m, _| (schedule_json(m.maintenance().schedule()), Vec::new()))
        .await
    {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `GET /maintenance/status`: the cluster's maintenance status as JSON.
pub async fn status(master: &MasterHandle) -> Response<ResponseBody> {
    match master
        .with(|m, _| (cluster_status_json(&m.cluster_status()), Vec::new()))
        .await
    {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
