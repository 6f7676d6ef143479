//! The agent's files API for sandboxes, as Mesos serves it:
//! `GET /files/browse?path=DIR` lists a directory and
//! `GET /files/read?path=FILE&offset=N&length=L` answers
//! `{"data": "...", "offset": N}` (no offset, or -1: empty data and the
//! file's size as the offset), and `GET /files/download?path=FILE` sends
//! the file's bytes as they are. Only paths inside the agents' work
//! directory are served; anything else is 404, as an unattached path is.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::server::{json as json_response, text, ResponseBody};

/// The most bytes one read returns (Mesos caps reads at 16 pages too).
pub const MAX_READ_BYTES: u64 = 1 << 20;

/// The query parameters, percent-decoded.
pub fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `ls -l` style mode text, as Mesos' browse shows it.
pub fn mode_string(mode: u32, is_dir: bool) -> String {
    let mut s = String::with_capacity(10);
    s.push(if is_dir { 'd' } else { '-' });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// `path` resolved, if it lies inside `root`. A virtual path Mesos
/// attaches an executor's sandbox at,
/// `/frameworks/<fw>/executors/<exec>/runs/latest[/...]`, is found under
/// the agent that has it (`<root>/agents/<agent>/frameworks/...`; the
/// simulator serves every agent from one address, and executor ids are
/// unique per framework).
fn inside(root: &Path, path: &str) -> Option<PathBuf> {
    let root = root.canonicalize().ok()?;
    let real = match path.strip_prefix('/') {
        Some(rest) if rest.starts_with("frameworks/") => std::fs::read_dir(root.join("agents"))
            .ok()?
            .filter_map(Result::ok)
            .map(|agent| agent.path().join(rest))
            .find(|candidate| candidate.exists())?,
        _ => PathBuf::from(path),
    };
    let real = real.canonicalize().ok()?;
    real.starts_with(&root).then_some(real)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `/files/browse`.
pub fn browse(root: Option<&Path>, query: Option<&str>) -> Response<ResponseBody> {
    let params = query_params(query);
    let Some(path) = param(&params, "path") else {
        return text(StatusCode::BAD_REQUEST, "Expecting 'path=value' in query.");
    };
    let Some(dir) = root.and_then(|r| inside(r, path)).filter(|p| p.is_dir()) else {
        return text(StatusCode::NOT_FOUND, "");
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return text(StatusCode::NOT_FOUND, "");
    };
    let mut listing: Vec<Value> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            // `stat`, as Mesos: a link (`runs/latest`) shows what it points at.
            let meta = std::fs::metadata(e.path()).ok()?;
            // As Mesos: the path asked (virtual or not) and the entry's
            // name, so what is listed can be browsed or read the same way.
            let listed = format!(
                "{}/{}",
                path.trim_end_matches('/'),
                e.file_name().to_string_lossy()
            );
            Some(json!({
                "path": listed,
                "nlink": meta.nlink(),
                "size": meta.len(),
                "mtime": meta.mtime(),
                "mode": mode_string(meta.permissions().mode(), meta.is_dir()),
                "uid": meta.uid().to_string(),
                "gid": meta.gid().to_string(),
            }))
        })
        .collect();
    listing.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    json_response(StatusCode::OK, &Value::Array(listing))
}

/// `/files/read`.
pub fn read(root: Option<&Path>, query: Option<&str>) -> Response<ResponseBody> {
    let params = query_params(query);
    let Some(path) = param(&params, "path") else {
        return text(StatusCode::BAD_REQUEST, "Expecting 'path=value' in query.");
    };
    let offset = match param(&params, "offset").map(str::parse::<i64>) {
        None => -1,
        Some(Ok(o)) if o >= -1 => o,
        Some(_) => return text(StatusCode::BAD_REQUEST, "Failed to parse offset"),
    };
    let length = match param(&params, "length").map(str::parse::<i64>) {
        None => None,
        Some(Ok(l)) if l >= -1 => (l >= 0).then_some(l as u64),
        Some(_) => return text(StatusCode::BAD_REQUEST, "Failed to parse length"),
    };
    let Some(file) = root.and_then(|r| inside(r, path)) else {
        return text(StatusCode::NOT_FOUND, "");
    };
    if file.is_dir() {
        return text(StatusCode::BAD_REQUEST, "Cannot read a directory");
    }
    let Ok(bytes) = std::fs::read(&file) else {
        return text(StatusCode::NOT_FOUND, "");
    };
    let size = bytes.len() as u64;
    if offset == -1 {
        return json_response(StatusCode::OK, &json!({"data": "", "offset": size}));
    }
    let start = (offset as u64).min(size);
    let len = length.unwrap_or(MAX_READ_BYTES).min(MAX_READ_BYTES);
    let end = start.saturating_add(len).min(size);
    let data = String::from_utf8_lossy(&bytes[start as usize..end as usize]).into_owned();
    json_response(StatusCode::OK, &json!({"data": data, "offset": start}))
}

/// `/files/download`: the file's bytes, as Mesos sends them
/// (`application/octet-stream`, as an attachment).
pub fn download(root: Option<&Path>, query: Option<&str>) -> Response<ResponseBody> {
    let params = query_params(query);
    let Some(path) = param(&params, "path") else {
        return text(StatusCode::BAD_REQUEST, "Expecting 'path=value' in query.");
    };
    let Some(file) = root.and_then(|r| inside(r, path)) else {
        return text(StatusCode::NOT_FOUND, "");
    };
    if file.is_dir() {
        return text(StatusCode::BAD_REQUEST, "Cannot download a directory.");
    }
    let Ok(bytes) = std::fs::read(&file) else {
        return text(StatusCode::NOT_FOUND, "");
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().replace('"', ""))
        .unwrap_or_default();
    let body = http_body_util::BodyExt::boxed(http_body_util::Full::new(bytes::Bytes::from(bytes)));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(disposition) =
        http::HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        resp.headers_mut()
            .insert(http::header::CONTENT_DISPOSITION, disposition);
    }
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_percent_decoded() {
        let p = query_params(Some("path=%2Ftmp%2Fa%20b&offset=3&x"));
        assert_eq!(p[0], ("path".into(), "/tmp/a b".into()));
        assert_eq!(p[1], ("offset".into(), "3".into()));
        assert_eq!(p[2], ("x".into(), String::new()));
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string(0o755, true), "drwxr-xr-x");
        assert_eq!(mode_string(0o640, false), "-rw-r-----");
    }

    #[test]
    fn only_paths_inside_the_work_dir_resolve() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("f"), "x").unwrap();
        let inside_path = root.path().join("f");
        assert!(inside(root.path(), inside_path.to_str().unwrap()).is_some());
        let escape = root.path().join("../");
        assert!(inside(root.path(), escape.to_str().unwrap()).is_none());
        assert!(inside(root.path(), "/etc/passwd").is_none());
    }

    #[test]
    fn an_executors_latest_run_is_found_at_its_virtual_path_under_its_agent() {
        let root = tempfile::tempdir().unwrap();
        let runs = root
            .path()
            .join("agents/A-S1/frameworks/F/executors/e1/runs");
        std::fs::create_dir_all(runs.join("c1")).unwrap();
        std::fs::write(runs.join("c1/stdout"), "hi").unwrap();
        std::os::unix::fs::symlink("c1", runs.join("latest")).unwrap();
        let dir = inside(root.path(), "/frameworks/F/executors/e1/runs/latest").unwrap();
        assert_eq!(dir, runs.join("c1").canonicalize().unwrap());
        let file = inside(root.path(), "/frameworks/F/executors/e1/runs/latest/stdout");
        assert!(file.is_some());
        assert!(inside(root.path(), "/frameworks/F/executors/e2/runs/latest").is_none());
        assert!(inside(root.path(), "/frameworks/../../../etc").is_none());
    }

    #[test]
    fn a_download_sends_the_files_bytes_as_they_are() {
        let root = tempfile::tempdir().unwrap();
        let bytes = [0x1f_u8, 0x8b, 0xff, 0x00, b'a'];
        std::fs::write(root.path().join("blob"), bytes).unwrap();
        let path = root.path().join("blob");
        let query = format!("path={}", path.to_str().unwrap());
        let resp = download(Some(root.path()), Some(&query));
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()[http::header::CONTENT_TYPE],
            "application/octet-stream"
        );
        let body = body_bytes(resp.into_body());
        assert_eq!(body, bytes);
        let missing = download(Some(root.path()), Some("path=/etc/passwd"));
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            download(Some(root.path()), None).status(),
            StatusCode::BAD_REQUEST
        );
    }

    /// The whole of a response body (every body here is one buffer).
    fn body_bytes(body: ResponseBody) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            http_body_util::BodyExt::collect(body)
                .await
                .unwrap()
                .to_bytes()
                .to_vec()
        })
    }
}
