//! `/version` (pymesos parses `version` with `int()` on each dot-separated
//! part, so it is purely numeric) and `/redirect` (this simulator is always
//! the leader: 307 to itself, protocol-relative as Mesos writes it).

use http::{header, Response, StatusCode};

use super::ControlContext;
use crate::server::{json, text, ResponseBody};

/// The date this build claims, like `mesos-master`'s `build_date`.
const BUILD_DATE: &str = "2024-08-23 00:00:00";

pub fn version(ctx: &ControlContext) -> Response<ResponseBody> {
    json(
        StatusCode::OK,
        &serde_json::json!({
            "version": ctx.version,
            "build_date": BUILD_DATE,
            "build_time": 1_724_371_200.0,
            "build_user": "drover",
        }),
    )
}

pub fn redirect(ctx: &ControlContext) -> Response<ResponseBody> {
    let mut resp = text(StatusCode::TEMPORARY_REDIRECT, "");
    let location = format!("//{}:{}", ctx.address.ip(), ctx.address.port());
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}
