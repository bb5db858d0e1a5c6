//! `GET /`: the local console of `orders serve` (issue 16): the newest orders with filters,
//! an order's timeline with a time-travel slider, the live bus feed and the current lag.
//!
//! One static page with no build step: the HTML, its stylesheet and its script are files in
//! `console/`, compiled into the binary, and read only this service's own API (`/orders…`,
//! `/local/bus`, `/metrics`). The script and the stylesheet are served as files of their own
//! rather than inline, so the Content-Security-Policy can allow scripts and styles from
//! `'self'` only, with no `'unsafe-inline'` and no hashes to keep in step with the code.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// Same-origin scripts, styles and requests; nothing else (no frames, forms, plugins or
/// inline code), so a user string that slipped into the page as markup could not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The console page, its script and its stylesheet.
pub fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/console.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            // Revalidate each time, so that a new build's page is never mixed with an old
            // script from the cache.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = router()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(bytes.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_page_its_script_and_its_stylesheet_are_served_with_their_types_and_the_policy() {
        for (path, content_type, body) in [
            ("/", "text/html; charset=utf-8", PAGE),
            ("/console.js", "text/javascript; charset=utf-8", SCRIPT),
            ("/console.css", "text/css; charset=utf-8", STYLE),
        ] {
            let (status, headers, served) = get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(served, body, "{path}");
        }
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_runs_no_inline_code() {
        // Every src and href is a same-origin path; the policy would block anything else
        // anyway, and the page would silently lose it.
        for attr in ["src=\"", "href=\""] {
            for link in PAGE.split(attr).skip(1) {
                let link = &link[..link.find('"').unwrap()];
                assert!(link.starts_with('/'), "{attr}{link}\" is not same-origin");
            }
        }
        assert!(
            !PAGE.contains("<style"),
            "inline styles are blocked by the policy"
        );
        assert!(
            !PAGE.contains("style=\""),
            "inline styles are blocked by the policy"
        );
        assert!(
            PAGE.matches("<script").count() == 1 && PAGE.contains("<script src=\"/console.js\""),
            "the one script is the served file: inline scripts are blocked by the policy"
        );
        let handler = PAGE.split(" on").skip(1).find(|rest| {
            let name = rest.trim_start_matches(|c: char| c.is_ascii_alphabetic());
            name.len() < rest.len() && name.starts_with('=')
        });
        assert!(
            handler.is_none(),
            "inline event handlers are blocked by the policy"
        );
    }

    #[test]
    fn the_script_renders_text_never_markup() {
        // Orders carry user strings: the script sets textContent only. These are the ways
        // to turn a string into markup or code.
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!SCRIPT.contains(sink), "console.js uses {sink}");
        }
    }
}
