//! The web UI: the assets `build.rs` built from `ui/` (Vite), embedded in
//! the binary and served at `/ui/`. A path that names no asset and has no
//! extension is a client route (`/ui/jobs/web`): it gets `index.html`, and
//! the page routes itself. `/` redirects to `/ui/`. Hashed assets
//! (`/ui/assets/...`) are cached for good; `index.html` is revalidated, so
//! a new scheduler's UI is picked up on the next load.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir};

use super::error::ApiError;

/// The built UI (or the placeholder build.rs writes without npm).
static ASSETS: Dir<'static> = include_dir!("$OUT_DIR/ui");

/// Whether the embedded UI is the placeholder (the UI was not built).
pub fn is_placeholder() -> bool {
    ASSETS
        .get_file("index.html")
        .and_then(|f| f.contents_utf8())
        .is_some_and(|html| html.contains("drover-ui-placeholder"))
}

/// `/` and `/ui`: to `/ui/`.
pub async fn redirect() -> Response {
    (
        StatusCode::FOUND,
        [(LOCATION, HeaderValue::from_static("/ui/"))],
    )
        .into_response()
}

/// `/ui/`.
pub async fn index() -> Response {
    serve("index.html")
}

/// `/ui/{*path}`.
pub async fn asset(Path(path): Path<String>) -> Response {
    serve(&path)
}

/// What is served for `path` (relative to `/ui/`).
fn serve(path: &str) -> Response {
    match resolve(path) {
        Some(file) => {
            let body = file.contents();
            let cache = if file.path().starts_with("assets") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (
                [
                    (CONTENT_TYPE, HeaderValue::from_static(content_type(path))),
                    (CACHE_CONTROL, HeaderValue::from_static(cache)),
                ],
                body,
            )
                .into_response()
        }
        None => ApiError::not_found(format!("UI asset /ui/{path}")).into_response(),
    }
}

/// The embedded file for `path`: the asset itself, else `index.html` for a
/// client route (the last segment has no extension).
fn resolve(path: &str) -> Option<&'static include_dir::File<'static>> {
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    if let Some(file) = ASSETS.get_file(path) {
        return Some(file);
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    (!last.contains('.'))
        .then(|| ASSETS.get_file("index.html"))
        .flatten()
}

/// The content type of an asset, by its extension (what Vite emits).
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("html");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_routes_get_the_index_and_missing_assets_do_not() {
        let index = ASSETS.get_file("index.html").map(|f| f.path());
        assert!(index.is_some(), "build.rs always writes index.html");
        assert_eq!(resolve("").map(|f| f.path()), index);
        assert_eq!(resolve("jobs/web").map(|f| f.path()), index);
        assert_eq!(resolve("pods/web-0").map(|f| f.path()), index);
        assert!(resolve("assets/nothing-here.js").is_none());
        assert!(resolve("favicon.ico").is_none());
    }

    #[test]
    fn types_follow_the_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/index-abc.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("assets/index-abc.css"),
            "text/css; charset=utf-8"
        );
        assert_eq!(content_type("x.bin"), "application/octet-stream");
    }
}
