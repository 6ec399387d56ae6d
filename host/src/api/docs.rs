//! Interactive API docs at `/docs`: Swagger UI, vendored (host/assets/swagger-ui, MIT
//! licence alongside), so it works with no internet.

use crate::error::ApiError;
use axum::extract::Path;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

const BUNDLE: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");

/// The docs page.
pub async fn index() -> Html<&'static str> {
    Html(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Nexum API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#ui", persistAuthorization: true });</script>
</body></html>"##,
    )
}

/// The vendored assets.
pub async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "swagger-ui-bundle.js" => ([(header::CONTENT_TYPE, "text/javascript")], BUNDLE).into_response(),
        "swagger-ui.css" => ([(header::CONTENT_TYPE, "text/css")], CSS).into_response(),
        _ => ApiError::not_found("docs asset").into_response(),
    }
}
