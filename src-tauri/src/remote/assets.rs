//! The UI bundle (`ui/dist`, embedded at compile time) and the security headers on every
//! response. Without a bundle a built-in page is served so the headless build never fails.

use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "../ui/dist"]
#[allow_missing = true]
struct Bundle;

/// The Content-Security-Policy of every response: nothing inline, nothing foreign. `connect-src
/// 'self'` also covers the same host's `ws:`/`wss:` (CSP Level 3, all current browsers), so the
/// page cannot open sockets to any other host.
pub(super) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const FALLBACK: &str = "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Stator</title>
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>
<body><h1>Stator</h1>
<p>This server was built without the UI bundle (ui/dist). The API is available:
<code>POST /api/login</code>, <code>GET /api/snapshot</code>, WebSocket <code>/ws</code>,
<code>GET /health</code>, <code>GET /metrics</code>. See docs/protocol.md.</p>
</body></html>
";

/// Adds CSP, nosniff, frame and referrer headers to every response; API answers are not cached.
pub(super) async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str) -> Option<Response> {
    let f = Bundle::get(path)?;
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Some(
        (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, cache),
            ],
            Body::from(f.data.into_owned()),
        )
            .into_response(),
    )
}

/// `GET /`: the bundle's index.html, or the built-in page.
pub(super) async fn index() -> Response {
    serve("index.html").unwrap_or_else(|| {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            FALLBACK,
        )
            .into_response()
    })
}

/// `GET /<path>`: a bundle file; paths without an extension get index.html (client routing).
pub(super) async fn file(Path(path): Path<String>) -> Response {
    if let Some(r) = serve(&path) {
        return r;
    }
    let last = path.rsplit('/').next().unwrap_or("");
    if !last.contains('.') && !path.starts_with("api/") {
        return index().await;
    }
    (StatusCode::NOT_FOUND, "not found").into_response()
}
