//! The Lambda side of the HTTP API: everything `command-api` and `query-api` share, so each
//! `main` is a few lines (read the config once, build the DynamoDB client once, run).
//!
//! - **Payloads.** `lambda_http` is built with exactly `apigw_rest` and `apigw_http`, so one
//!   binary accepts both API Gateway REST API (payload v1) and HTTP API (payload v2) events.
//!   Responses go back in the shape of the request's origin.
//! - **Stages.** The routers match `/orders/...`; a stage name must not reach them.
//!   `lambda_http` prefixes a REST API's stage to the event's `path` (which API Gateway sends
//!   without it), and an HTTP API puts a named stage in `rawPath` itself. [`ApiHandler`] strips
//!   exactly that prefix, so routing is the same for `$default` and named stages, and does not
//!   depend on `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` (set or not, the result is the same).
//!   Custom-domain base-path mappings are not stripped: map the API at the domain's root.
//! - **Hostile URLs.** API Gateway passes on what clients send: a raw `"`, `<`, `>`, space,
//!   `{`, `}`, `|`, `^`, backquote, `\`, `#`, non-ASCII or control character, or a `%` that
//!   starts no escape, in the path or the query. `lambda_http` alone panics on some of them
//!   (a function error: a 502 and an alarm) and misreads others. The rule, applied to every
//!   event before `lambda_http` converts it ([`ApiHandler::handle`]): in the path (`rawPath`,
//!   REST's `path`) and HTTP API's `rawQueryString`, every byte RFC 3986 does not allow
//!   unescaped there becomes `%XX`; valid `%XX` escapes, `+` and the other allowed characters
//!   stay as sent. So the router decodes what a careful client would have sent escaped: a
//!   query value is served (`a b` is `a%20b`; `+` is a space and `%2B` a plus, as in any
//!   form-encoded query), a path with such a character names no route or no order id and
//!   gets the usual 404 problem. REST's query parameters arrive decoded and `lambda_http`
//!   form-encodes them itself. Whatever still cannot form a URI (a path that does not start
//!   with `/`, a `Host` or `X-Forwarded-Proto` that is not a host and a scheme, a URL over
//!   32 KiB once escaped) never reaches the router: it gets a 400 problem
//!   (`urn:orders:problem:invalid-request`) and a `warn` log line. Nothing panics.
//! - **Correlation.** A request without `X-Correlation-Id` gets API Gateway's request id as
//!   its correlation id, so the access log, the function's log lines, the stored events'
//!   metadata and the response header all carry the same id.
//! - **Callers.** Behind an HTTP API JWT authorizer, the token's `sub` (from
//!   `requestContext.authorizer.jwt.claims`) goes into the request's extensions as a
//!   [`Caller`], which scopes idempotency keys to it: callers never share a key's record.
//!   Without an authorizer there is no caller and keys are global.
//! - **Errors.** The routers turn every failure into problem+json, so almost nothing escapes
//!   them; what does (a response body that fails to read) becomes a [`Diagnostic`] with
//!   `errorType` `Orders.ResponseBody`. Panics are caught and reported by the runtime
//!   (`panic = "unwind"`).
//! - **Configuration.** Read once at INIT ([`init`]): the variables are declared in
//!   [`LambdaConfig::vars`] (the tables, and `CURSOR_KEY` for `query-api`), with logging's
//!   [`orders_lambda::LOG_VARS`]; the endpoint comes from the AWS SDK's own
//!   `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL`. A configuration error fails INIT as
//!   `Orders.Config` (see [`orders_lambda::init`]).
//! - **Logs.** As every function's: see [`orders_lambda`]; the API's lines carry `span` (ours:
//!   `correlationId`, method, path) and `spans` (also the runtime's `requestId`).
//!
//! `EVENT_SOURCE` is the EventBridge `Source` of the publisher (DESIGN §6), not read here: the
//! events' `metadata.source` names the writing function ([`Api::source`]).

mod request_uri;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::fmt;

use axum::Router;
use axum::body::{Body as AxumBody, Bytes};
use axum::http::{HeaderValue, Uri};
use axum::response::Response;
use http_body_util::BodyExt;
use lambda_http::lambda_runtime::{self, Diagnostic};
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::tower::ServiceExt;
use lambda_http::{
    Adapter, Body, LambdaEvent, Request, RequestExt, Service, TransformResponse, service_fn,
};
use orders_lambda::{EVENTS_TABLE, EnvVar, IDEMPOTENCY_TABLE, ORDERS_TABLE};
use orders_store::dynamodb::DynamoTables;
use thiserror::Error;

use crate::app::Caller;
use crate::http::correlation::{self, X_CORRELATION_ID};
use crate::http::{ApiConfig, ApiError};
use request_uri::Refusal;

pub use crate::http::Api;
pub use lambda_http::Error;
pub use orders_lambda::{LogConfig, LogFormat, init_tracing, init_tracing_to, report_init_error};

/// The cursor-signing secret of the query API.
pub const CURSOR_KEY: EnvVar = EnvVar::required(
    "CURSOR_KEY",
    "signs listing cursors: at least 32 bytes, and the same for every instance and version, \
     or cursors break across instances",
)
.secret();
/// A cursor key shorter than this is refused (HMAC-SHA256 wants a key of at least its output size).
pub const MIN_CURSOR_KEY_LEN: usize = 32;

/// A cursor key too short to sign cursors: the one rule for every source of the key, the
/// Lambdas' `CURSOR_KEY` and `orders serve`'s `--cursor-key` and `cursor.key` alike.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
#[error("{len} bytes long; a cursor key must be at least {MIN_CURSOR_KEY_LEN} bytes")]
pub struct WeakCursorKey {
    pub len: usize,
}

/// Checks `key` against [`MIN_CURSOR_KEY_LEN`].
pub fn check_cursor_key(key: &[u8]) -> Result<(), WeakCursorKey> {
    if key.len() < MIN_CURSOR_KEY_LEN {
        return Err(WeakCursorKey { len: key.len() });
    }
    Ok(())
}

/// A configuration the function cannot start with. It fails INIT (see [`init`]).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set: give the function the name of its DynamoDB table")]
    MissingTable(&'static str),
    #[error(
        "CURSOR_KEY is not set: the query API signs listing cursors with it; give every instance \
         the same secret of at least {MIN_CURSOR_KEY_LEN} bytes"
    )]
    MissingCursorKey,
    #[error("CURSOR_KEY is {0} bytes long; it must be at least {MIN_CURSOR_KEY_LEN}")]
    WeakCursorKey(usize),
}

impl From<ConfigError> for Diagnostic {
    fn from(error: ConfigError) -> Self {
        orders_lambda::config_diagnostic(&error)
    }
}

/// Everything a function reads from its environment, once, at INIT.
#[derive(Clone)]
pub struct LambdaConfig {
    pub api: Api,
    pub tables: DynamoTables,
    /// The routers' settings: `metadata.source` and the cursor key.
    pub http: ApiConfig,
    pub log: LogConfig,
}

impl fmt::Debug for LambdaConfig {
    // Hand-written so the cursor key never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaConfig")
            .field("api", &self.api)
            .field("tables", &self.tables)
            .field("source", &self.http.source)
            .field(
                "cursor_key",
                &format_args!("<{} bytes>", self.http.cursor_key.len()),
            )
            .field("log", &self.log)
            .finish()
    }
}

impl LambdaConfig {
    /// The variables `api` reads, besides logging's ([`orders_lambda::LOG_VARS`]): the three
    /// tables (a function never falls back to the local default names), and for the query
    /// API the cursor key. Commands never list, so they never sign a cursor.
    pub fn vars(api: Api) -> &'static [EnvVar] {
        const VARS: [EnvVar; 4] = [EVENTS_TABLE, ORDERS_TABLE, IDEMPOTENCY_TABLE, CURSOR_KEY];
        if api.serves_queries() {
            &VARS
        } else {
            &VARS[..3]
        }
    }

    /// Reads and checks the environment ([`vars`](Self::vars)).
    pub fn from_env(api: Api) -> Result<Self, ConfigError> {
        Self::from_vars(api, |name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), with `var` looking each variable up.
    pub fn from_vars(api: Api, var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table = |table: EnvVar| table.get(&var).ok_or(ConfigError::MissingTable(table.name));
        let tables = DynamoTables {
            events: table(EVENTS_TABLE)?,
            orders: table(ORDERS_TABLE)?,
            idempotency: table(IDEMPOTENCY_TABLE)?,
        };
        let mut cursor_key = Vec::new();
        if api.serves_queries() {
            let key = CURSOR_KEY.get(&var).ok_or(ConfigError::MissingCursorKey)?;
            check_cursor_key(key.as_bytes())
                .map_err(|weak| ConfigError::WeakCursorKey(weak.len))?;
            cursor_key = key.into_bytes();
        }
        Ok(Self {
            api,
            tables,
            http: ApiConfig {
                source: api.source().to_owned(),
                cursor_key,
            },
            log: LogConfig::from_vars(&var),
        })
    }
}

/// INIT: logging, then the configuration (see [`orders_lambda::init`]).
pub async fn init(api: Api) -> Result<LambdaConfig, Error> {
    orders_lambda::init(api.name(), LambdaConfig::vars(api), || {
        LambdaConfig::from_env(api)
    })
    .await
}

/// Serves `router` as this function's handler until the Runtime API stops sending events:
/// `lambda_http::run`, with [`ApiHandler::handle`] in front of its event-to-request conversion.
pub async fn run(router: Router) -> Result<(), Error> {
    let handler = ApiHandler::new(router);
    lambda_runtime::run(service_fn(move |event| handler.handle(event))).await
}

/// An error that escaped the router. The router answers every failure with problem+json, so
/// this is a bug or a broken response body; Lambda records it as a function error.
#[derive(Debug, Error)]
pub enum HandlerError {
    #[error("the response body could not be read: {0}")]
    ResponseBody(String),
}

impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Self {
        let error_type = match error {
            HandlerError::ResponseBody(_) => "Orders.ResponseBody",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: error.to_string(),
        }
    }
}

impl From<Infallible> for HandlerError {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

/// The Lambda handler: one of the axum routers behind `lambda_http`, which adapts it to both
/// payload versions.
#[derive(Clone)]
pub struct ApiHandler {
    router: Router,
}

impl ApiHandler {
    pub fn new(router: Router) -> Self {
        Self { router }
    }

    /// One invocation, from the API Gateway event to the response in the shape of its origin:
    /// the event's URL made safe (`request_uri::sanitize`), then exactly what
    /// `lambda_http::run` does (`lambda_http::Adapter`) over the router, with the request made
    /// the router's (`router_request`) and the response buffered (`buffered`). An event
    /// whose URL cannot be made a URI never reaches the router: it is answered with a 400
    /// problem.
    pub fn handle(
        &self,
        mut event: LambdaEvent<LambdaRequest>,
    ) -> TransformResponse<'static, Response, HandlerError> {
        let router = match request_uri::sanitize(&mut event.payload) {
            Ok(()) => self.router.clone(),
            Err(refusal) => {
                tracing::warn!(%refusal, "request refused: its URL cannot be made a URI");
                refusal_router(refusal)
            }
        };
        // tower's own combinators, in place of the hand-written `Service` this was: the
        // handler's overhead is the same either way, p50 0.029 ms (append) and 0.017 ms (get),
        // three interleaved runs each of `lambda-bench --init-runs 1 --overhead-calls 20000`.
        // `lambda_http` cannot strip a stage itself (`AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH`
        // only stops it adding REST's), so `router_request` still does.
        let service = router.map_request(router_request).and_then(buffered);
        Adapter::from(service).call(event)
    }
}

/// Answers every request with the 400 problem of `refusal`, with the correlation id and the
/// access log line that every response gets.
fn refusal_router(refusal: Refusal) -> Router {
    let detail = format!("The request URL cannot be processed: {refusal}.");
    Router::new()
        .fallback(move || std::future::ready(ApiError::invalid(detail, Vec::new())))
        .layer(axum::middleware::from_fn(correlation::correlate))
}

/// The response with its body read, so a body error is reported as a [`Diagnostic`] instead of
/// the panic `lambda_http` would raise while converting it.
async fn buffered(response: Response) -> Result<Response, HandlerError> {
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|e| HandlerError::ResponseBody(e.to_string()))?
        .to_bytes();
    Ok(Response::from_parts(parts, AxumBody::from(bytes)))
}

/// The request as the router expects it: stage-free path, correlation id, axum body. The
/// Lambda and API Gateway contexts stay in the extensions.
fn router_request(request: Request) -> axum::http::Request<AxumBody> {
    let stage = stage_to_strip(&request).map(str::to_owned);
    let gateway_request_id = gateway_request_id(&request).map(str::to_owned);
    let caller = caller(&request);
    let (mut parts, body) = request.into_parts();
    if let Some(caller) = caller {
        parts.extensions.insert(caller);
    }
    if let Some(uri) = stage.and_then(|stage| strip_stage(&parts.uri, &stage)) {
        parts.uri = uri;
    }
    if !parts.headers.contains_key(&X_CORRELATION_ID)
        && let Some(value) = gateway_request_id.and_then(|id| HeaderValue::from_str(&id).ok())
    {
        parts.headers.insert(X_CORRELATION_ID, value);
    }
    axum::http::Request::from_parts(parts, AxumBody::from(body_bytes(body)))
}

fn body_bytes(body: Body) -> Bytes {
    match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        other => Bytes::copy_from_slice(&other),
    }
}

/// The stage prefix `lambda_http`'s URI carries for this request, if any.
fn stage_to_strip(request: &Request) -> Option<&str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => {
            let stage = named_stage(context.stage.as_deref())?;
            // REST API events carry `path` without the stage; `lambda_http` prefixes it unless
            // the path already starts with `/{stage}/` (or the ignore variable is set, in which
            // case the URI has no prefix and stripping finds none).
            (!request.raw_http_path().starts_with(&format!("/{stage}/"))).then_some(stage)
        }
        // HTTP API: a named stage is part of `rawPath` itself.
        RequestContext::ApiGatewayV2(context) => named_stage(context.stage.as_deref()),
        _ => None,
    }
}

fn named_stage(stage: Option<&str>) -> Option<&str> {
    stage.filter(|s| !s.is_empty() && *s != "$default")
}

fn gateway_request_id(request: &Request) -> Option<&str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => context.request_id.as_deref(),
        RequestContext::ApiGatewayV2(context) => context.request_id.as_deref(),
        _ => None,
    }
}

/// The caller an HTTP API's JWT authorizer verified: the `sub` of
/// `requestContext.authorizer.jwt.claims`. API Gateway only invokes the function once the token
/// is valid, so the claims can be trusted. A request without them (no authorizer, a token
/// without `sub`, a REST API event) has no caller: its idempotency key is global.
fn caller(request: &Request) -> Option<Caller> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => {
            let claims = &context.authorizer.as_ref()?.jwt.as_ref()?.claims;
            Caller::from_subject(claims.get("sub")?.as_str())
        }
        _ => None,
    }
}

/// `uri` without the leading `/{stage}` segment, or `None` if it has none.
fn strip_stage(uri: &Uri, stage: &str) -> Option<Uri> {
    let rest = uri.path().strip_prefix('/')?.strip_prefix(stage)?;
    let rest = match rest {
        "" => "/",
        rest if rest.starts_with('/') => rest,
        _ => return None,
    };
    let path_and_query = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}
