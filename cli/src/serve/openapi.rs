//! `GET /openapi.json` and the API reference page of `orders serve` (issue 16).
//!
//! The document is generated from the routes (`orders_handlers::http::openapi`); the page at
//! `/docs/` is Swagger UI, whose files are embedded in the binary (utoipa-swagger-ui's
//! `vendored` feature: its build script unpacks the copy in utoipa-swagger-ui-vendored and
//! downloads nothing), so it works with no internet.

use axum::Router;
use orders_handlers::http::openapi;
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// The reference page (`/docs` redirects to `/docs/`).
pub const PAGE_PATH: &str = "/docs";

/// The OpenAPI document and its reference page.
pub fn router() -> Router {
    let config = Config::new([DOCUMENT_PATH])
        // Swagger UI would otherwise show a badge fetched from validator.swagger.io.
        .validator_url("none")
        .try_it_out_enabled(true);
    SwaggerUi::new(PAGE_PATH)
        .url(DOCUMENT_PATH, openapi::document())
        .config(config)
        .into()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
        let response = router()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, body.to_vec())
    }

    #[tokio::test]
    async fn serves_the_generated_document() {
        let (status, content_type, body) = get(DOCUMENT_PATH).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some("application/json"));
        let served: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(served, serde_json::to_value(openapi::document()).unwrap());
        assert_eq!(served["openapi"], "3.1.0");
    }

    /// The page and every file it loads come from the binary: nothing from another host.
    #[tokio::test]
    async fn the_reference_page_and_its_assets_are_embedded() {
        let (status, _, _) = get(PAGE_PATH).await;
        assert!(status.is_redirection(), "{status}");
        let (status, content_type, page) = get("/docs/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.unwrap().starts_with("text/html"));
        let page = String::from_utf8(page).unwrap();
        let mut assets = Vec::new();
        for attribute in ["src=\"", "href=\""] {
            for (at, _) in page.match_indices(attribute) {
                let rest = &page[at + attribute.len()..];
                assets.push(rest[..rest.find('"').unwrap()].to_owned());
            }
        }
        assert!(
            assets.iter().any(|a| a.ends_with("swagger-ui-bundle.js")),
            "{assets:?}"
        );
        for asset in &assets {
            assert!(
                !asset.contains("//"),
                "the page loads {asset} from elsewhere"
            );
            let path = format!("/docs/{}", asset.trim_start_matches("./"));
            let (status, _, body) = get(&path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(!body.is_empty(), "{path}");
        }
        // The initializer points Swagger UI at the document and away from the validator badge.
        let (status, _, init) = get("/docs/swagger-initializer.js").await;
        assert_eq!(status, StatusCode::OK);
        let init = String::from_utf8(init).unwrap();
        assert!(init.contains(DOCUMENT_PATH), "{init}");
        assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
    }
}
