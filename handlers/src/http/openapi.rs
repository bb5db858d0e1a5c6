//! The OpenAPI 3.1 document of both APIs (issue 16), generated from the code.
//!
//! The paths come from the routes themselves: each handler carries a `#[utoipa::path]` and is
//! registered from it (`utoipa_axum::routes!`), so the router and the document are built from
//! one list ([`routes`](super::routes)). The bodies are parsed by hand from a
//! `serde_json::Value` (every field error at once), and the views serialise from the domain's
//! types, so the schemas below are types made for the document, kept next to the parsers they
//! describe. Their limits are DESIGN §2's; tests check that they agree with the parsers
//! (`http::tests::openapi`), and every response of the router tests is validated against this
//! document (`http::tests::contract`).
//!
//! `docs/openapi.json` is this document as [`document_json`] writes it; a test fails when they
//! differ (regenerate with `UPDATE_OPENAPI=1 cargo test -p orders-handlers openapi_document`).

// utoipa's derives write the types they are given with their full paths.
#![allow(unused_qualifications)]

use std::collections::BTreeMap;

use serde::Deserialize;
use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{HeaderBuilder, OpenApi as Document, RefOr, Required, Schema};
use utoipa::{IntoParams, IntoResponses, OpenApi, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::correlation::X_CORRELATION_ID;
use super::problem::{PROBLEM_JSON, ProblemType};
use super::{Api, AppState, routes};

/// The document of both APIs, as `orders serve` serves them.
pub fn document() -> Document {
    document_for(Api::Both)
}

/// The document of the routes `api` serves (each Lambda function serves one half).
pub fn document_for(api: Api) -> Document {
    let mut document = OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .merge(routes::routes(api))
        .into_openapi();
    shared_headers(&mut document);
    document
}

/// [`document`] as pretty JSON with a final newline: the form of `docs/openapi.json`.
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("an OpenAPI document serialises");
    json.push('\n');
    json
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Orders",
        description = "The command API (DESIGN §4) and the query API (DESIGN §5) of the event-sourced order service. \
On AWS they are two Lambda functions behind API Gateway; `orders serve` serves both on one port.\n\n\
Errors are RFC 9457 `application/problem+json`; the `type` URN says what went wrong (see the `Problem` schema). \
Every response carries `X-Correlation-Id`. A path that is no route answers 404 `not-found`, and a method a route \
does not serve answers 405 `method-not-allowed`, both as problems.",
        license(name = "MIT OR Apache-2.0"),
    ),
    tags(
        (name = "commands", description = "Commands change an order by appending events (DESIGN §4)."),
        (name = "queries", description = "Queries read the read model, or fold the events (DESIGN §5)."),
    ),
    // Every schema, so that each API's document (a Lambda function serves one) has those its
    // routes refer to; the optional bodies are named by reference only (an `Option` would
    // make them nullable, and a JSON `null` body is refused).
    components(schemas(
        CreateOrderRequest,
        CancelRequest,
        EmptyRequest,
        LineItem,
        OrderStatus,
        Order,
        History,
        Event,
        EventMetadata,
        Listing,
        ProblemTypeUri,
        FieldError,
        Problem
    ))
)]
struct ApiDoc;

/// Adds what every operation shares: the `X-Correlation-Id` request header, echoed on every
/// response, and `Retry-After` on every 503.
fn shared_headers(document: &mut Document) {
    let correlation_id = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(128))
            .pattern(Some("^[\\x20-\\x7E]+$"))
    };
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(RefOr::T(
                    ParameterBuilder::new()
                        .name("X-Correlation-Id")
                        .parameter_in(ParameterIn::Header)
                        .required(Required::False)
                        .description(Some(
                            "Carried into the events' metadata and the logs, and echoed on the \
                         response. One that is not 1 to 128 printable ASCII characters is \
                         replaced by a new UUID.",
                        ))
                        .schema(Some(correlation_id()))
                        .build(),
                ));
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                response.headers.insert(
                    X_CORRELATION_ID.as_str().to_owned(),
                    RefOr::T(
                        HeaderBuilder::new()
                            .schema(Some(correlation_id()))
                            .description(Some(
                                "The request's correlation id, or the one minted for it.",
                            ))
                            .build(),
                    ),
                );
                if status == "503" {
                    response.headers.insert(
                        "retry-after".to_owned(),
                        RefOr::T(
                            HeaderBuilder::new()
                                .schema(Some(
                                    ObjectBuilder::new()
                                        .schema_type(Type::Integer)
                                        .minimum(Some(1)),
                                ))
                                .description(Some("Seconds to wait before retrying (at least 1)."))
                                .build(),
                        ),
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters

/// The `{id}` of an order route.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrderIdParam {
    /// The order id (a UUID). Anything else cannot name an order: 404 `not-found`.
    #[param(format = "uuid")]
    pub id: String,
}

/// The headers of every command.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct CommandHeaderParams {
    /// Makes the command idempotent for 24 h: the same key with the same request replays the
    /// first response (with `Idempotent-Replayed: true`); with a different request, 422.
    #[serde(rename = "Idempotency-Key")]
    #[param(
        required = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[\\x20-\\x7E]+$"
    )]
    pub idempotency_key: String,
    /// Makes the command conditional: `"<version>"` (the `ETag` of a read) or `*` (the order
    /// exists). Otherwise 412 `precondition-failed`. Weak tags (`W/"3"`) are refused (400).
    #[serde(rename = "If-Match")]
    #[param(
        required = false,
        pattern = "^\\s*(\\*|\"[0-9]+\")\\s*$",
        example = "\"1\""
    )]
    pub if_match: String,
}

/// The query parameters of `GET /orders/{id}`: at most one of the two.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct OrderReadParams {
    /// Read-your-writes: when the read model is behind this version, the order is folded from
    /// its events; 404 if it has fewer.
    #[param(required = false, minimum = 1)]
    pub min_version: u64,
    /// The order as it was after this event (a fold of events 1..=N); 404 if it has fewer.
    #[param(required = false, minimum = 1)]
    pub at_version: u64,
}

/// The query parameters of `GET /orders`: exactly one of `customerId` and `status`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    /// The customer's orders.
    #[param(required = false, min_length = 1, max_length = 128)]
    pub customer_id: String,
    /// The orders in this status.
    #[param(required = false, inline)]
    pub status: OrderStatus,
    /// Orders per page.
    #[param(required = false, minimum = 1, maximum = 100, default = 20)]
    pub limit: u32,
    /// The `nextCursor` of the previous page, with the same filter. Opaque and signed.
    #[param(required = false)]
    pub cursor: String,
}

// ---------------------------------------------------------------------------------------------
// Request bodies: what `extract::create_order`, `cancel_reason` and `no_fields` accept.

/// A new order. Unknown fields are refused.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "customerId": "customer-1",
    "currency": "EUR",
    "items": [{"sku": "SKU-1", "quantity": 2, "unitPrice": 1250}]
}))]
pub struct CreateOrderRequest {
    /// 1 to 128 characters, none of them control, line-break or invisible formatting
    /// characters.
    #[schema(min_length = 1, max_length = 128)]
    pub customer_id: String,
    /// ISO 4217: three upper-case letters.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// 1 to 100 lines; the total must not overflow.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<LineItem>,
}

/// One order line.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineItem {
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$")]
    pub sku: String,
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: u32,
    /// In minor units of the currency (cents for EUR).
    #[schema(minimum = 0, maximum = 1000000000)]
    pub unit_price: u64,
}

/// The optional body of a cancel: no body, `{}`, or a reason (`null` for none).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "changed my mind"}))]
pub struct CancelRequest {
    /// At most 500 characters, none of them control, line-break or invisible formatting
    /// characters (the zero-width joiners excepted).
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// Confirm and ship take no fields: no body, or `{}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({}))]
pub struct EmptyRequest {}

// ---------------------------------------------------------------------------------------------
// Response bodies: what `OrderView`, `StoredEvent` and the routes' own types serialise to.

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Shipped,
    Cancelled,
}

/// An order: the read model's view, or a fold of its events.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Order {
    #[schema(format = "uuid")]
    pub order_id: String,
    /// The version of the last event applied; the `ETag`.
    #[schema(minimum = 1)]
    pub version: u64,
    #[schema(min_length = 1, max_length = 128)]
    pub customer_id: String,
    pub status: OrderStatus,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<LineItem>,
    /// The sum of quantity × unit price, in minor units.
    pub total: u64,
    /// Present when the order was cancelled with a reason.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub cancel_reason: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// An order's events, in version order.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct History {
    #[schema(format = "uuid")]
    pub order_id: String,
    pub events: Vec<Event>,
}

/// One stored event (DESIGN §3), as the bus also publishes it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    #[schema(format = "uuid")]
    pub order_id: String,
    /// 1, 2, 3 ... contiguous per order.
    #[schema(minimum = 1)]
    pub version: u64,
    /// Unique; consumers dedupe on it.
    #[schema(format = "uuid")]
    pub event_id: String,
    /// `OrderCreated`, `OrderConfirmed`, `OrderCancelled` or `OrderShipped`; a newer build may
    /// add types.
    #[schema(min_length = 1, example = "OrderCreated")]
    pub event_type: String,
    #[schema(minimum = 1)]
    pub schema_version: u32,
    /// RFC 3339 UTC, milliseconds.
    #[schema(format = DateTime)]
    pub occurred_at: String,
    /// The payload, whose shape is the event type's at its schema version.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub metadata: EventMetadata,
}

/// Who caused an event and why.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventMetadata {
    pub correlation_id: String,
    pub causation_id: String,
    /// The command's `Idempotency-Key`, if it had one.
    #[serde(default)]
    pub idempotency_key: String,
    /// The API that wrote it, e.g. `orders.command-api`.
    pub source: String,
}

/// A page of orders, newest first.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listing {
    pub items: Vec<Order>,
    /// The `cursor` of the next page; `null` on the last one.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// An RFC 9457 problem: every error the API answers with.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: ProblemTypeUri,
    pub title: String,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    pub detail: String,
    /// For 400: every field that failed, with its path (`customerId`, `items[0].sku`,
    /// `If-Match`, `limit`, `body`).
    #[serde(default)]
    pub errors: Vec<FieldError>,
    /// For 409 `concurrent-modification` and 412: the version to re-read before retrying.
    #[serde(default)]
    pub current_version: u64,
}

/// One field that failed validation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A problem's `type`, one of [`ProblemType::ALL`].
#[derive(Deserialize)]
pub struct ProblemTypeUri(pub String);

impl PartialSchema for ProblemTypeUri {
    fn schema() -> RefOr<Schema> {
        let kinds: BTreeMap<String, &ProblemType> =
            ProblemType::ALL.iter().map(|k| (k.uri(), k)).collect();
        let description = kinds
            .iter()
            .map(|(uri, k)| format!("- `{uri}`: {} ({})", k.title, k.status.as_u16()))
            .collect::<Vec<_>>()
            .join("\n");
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("uri".into())))
            .enum_values(Some(kinds.into_keys()))
            .description(Some(format!(
                "What went wrong, a stable URN to match on; the HTTP status is always the one \
                 listed:\n{description}"
            )))
            .into()
    }
}

impl ToSchema for ProblemTypeUri {}

// ---------------------------------------------------------------------------------------------
// Response header values

/// `ETag`: `"<version>"`, a strong tag, the form `If-Match` takes.
pub struct ETag;

impl PartialSchema for ETag {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^\"[0-9]+\"$"))
            .examples(["\"1\""])
            .into()
    }
}

impl ToSchema for ETag {}

/// `Location` of a new order: `/orders/{orderId}`.
pub struct OrderLocation;

impl PartialSchema for OrderLocation {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(
                "^/orders/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            ))
            .into()
    }
}

impl ToSchema for OrderLocation {}

/// `Idempotent-Replayed`: present, as `true`, only on a replay.
pub struct Replayed;

impl PartialSchema for Replayed {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["true"]))
            .into()
    }
}

impl ToSchema for Replayed {}

// ---------------------------------------------------------------------------------------------
// Responses shared by the commands

/// The responses of `POST /orders`.
#[derive(IntoResponses)]
pub enum CreateResponses {
    /// Created (or the replay of a create made with the same `Idempotency-Key`).
    #[response(
        status = 201,
        headers(
            ("location" = inline(OrderLocation), description = "`/orders/{orderId}`: the new order."),
            ("etag" = inline(ETag), description = "`\"<version>\"`: the order's version, for `If-Match`."),
            ("idempotent-replayed" = inline(Replayed), description = "`true` when this repeats the first response to the same `Idempotency-Key`."),
        )
    )]
    Created(Order),
    /// `invalid-request`: malformed JSON, a key named twice, or invalid fields or headers;
    /// `errors` lists every one that failed.
    #[response(status = 400, content_type = PROBLEM_JSON)]
    BadRequest(Problem),
    /// `idempotency-key-in-use`: a request with this `Idempotency-Key` is still in progress.
    #[response(status = 409, content_type = PROBLEM_JSON)]
    Conflict(Problem),
    /// `precondition-failed`: `If-Match` was given; a new order has no version to match.
    #[response(status = 412, content_type = PROBLEM_JSON)]
    PreconditionFailed(Problem),
    /// `payload-too-large`: the body is over 64 KiB.
    #[response(status = 413, content_type = PROBLEM_JSON)]
    PayloadTooLarge(Problem),
    /// `unsupported-media-type`: a body that is not `application/json` (or `application/*+json`).
    #[response(status = 415, content_type = PROBLEM_JSON)]
    UnsupportedMediaType(Problem),
    /// `idempotency-key-reused`: this `Idempotency-Key` was used for a different request.
    #[response(status = 422, content_type = PROBLEM_JSON)]
    KeyReused(Problem),
    /// `internal`: the details are logged, never sent.
    #[response(status = 500, content_type = PROBLEM_JSON)]
    Internal(Problem),
    /// `unavailable`: the store is throttling or unavailable; retry after `Retry-After`.
    #[response(status = 503, content_type = PROBLEM_JSON)]
    Unavailable(Problem),
}

/// The responses of `POST /orders/{id}/confirm|cancel|ship`.
#[derive(IntoResponses)]
pub enum TransitionResponses {
    /// Applied; or nothing to do (confirming a `CONFIRMED` order, cancelling a `CANCELLED`
    /// one); or the replay of the first response to the same `Idempotency-Key`.
    #[response(
        status = 200,
        headers(
            ("etag" = inline(ETag), description = "`\"<version>\"`: the order's version, for `If-Match`."),
            ("idempotent-replayed" = inline(Replayed), description = "`true` when this repeats the first response to the same `Idempotency-Key`."),
        )
    )]
    Applied(Order),
    /// `invalid-request`: malformed JSON, a key named twice, unknown or invalid fields, or
    /// invalid headers; `errors` lists every one that failed.
    #[response(status = 400, content_type = PROBLEM_JSON)]
    BadRequest(Problem),
    /// `order-not-found`: no such order; `not-found`: the id is not a UUID.
    #[response(status = 404, content_type = PROBLEM_JSON)]
    NotFound(Problem),
    /// `invalid-transition`: the order's status does not allow the command;
    /// `concurrent-modification`: another writer appended first (`currentVersion` says where
    /// the order is); `idempotency-key-in-use`: a request with this key is still in progress.
    #[response(status = 409, content_type = PROBLEM_JSON)]
    Conflict(Problem),
    /// `precondition-failed`: `If-Match` does not match the order's version
    /// (`currentVersion`).
    #[response(status = 412, content_type = PROBLEM_JSON)]
    PreconditionFailed(Problem),
    /// `payload-too-large`: the body is over 64 KiB.
    #[response(status = 413, content_type = PROBLEM_JSON)]
    PayloadTooLarge(Problem),
    /// `unsupported-media-type`: a body that is not `application/json` (or `application/*+json`).
    #[response(status = 415, content_type = PROBLEM_JSON)]
    UnsupportedMediaType(Problem),
    /// `idempotency-key-reused`: this `Idempotency-Key` was used for a different request.
    #[response(status = 422, content_type = PROBLEM_JSON)]
    KeyReused(Problem),
    /// `internal`: the details are logged, never sent.
    #[response(status = 500, content_type = PROBLEM_JSON)]
    Internal(Problem),
    /// `unavailable`: the store is throttling or unavailable; retry after `Retry-After`.
    #[response(status = 503, content_type = PROBLEM_JSON)]
    Unavailable(Problem),
}
