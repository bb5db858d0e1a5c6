//! The events table (append and load) and the idempotency table.
//!
//! An append is all or nothing: DynamoDB applies every write of it or none, whatever fails and
//! however often it is retried. Nothing is ever half-written. It takes one of two shapes.
//!
//! Both check one side of the expected version only. Each new event is put with
//! `attribute_not_exists(orderId)`: nobody holds that version, so (versions being contiguous)
//! the order is at most at `expected_version`. That the order is at least there needs no check
//! of its own: [`AppendRequest::expected_version`] is the version of the newest event of the
//! history the command folded, loaded with a consistent read ([`load`]), and events are
//! immutable and never deleted, so that event still exists when the write lands. The one
//! caller, the command handler, takes `expected_version` from that fold (never from the
//! request's `If-Match`, which it only compares). A version the caller never read (beyond the
//! stream) is a caller bug the store does not see: it would leave a gap, which every fold then
//! refuses. Checking it would cost a `ConditionCheck`: 2 WRU on every append with a key.
//!
//! **One event and no idempotency record** (a command without an `Idempotency-Key`: every
//! create, confirm, ship or cancel) is ONE `PutItem` of event `expected_version + 1`: 1 WRU for
//! an event of up to 1 KB, where a transaction would cost 2 per item.
//!
//! A failed condition asks DynamoDB for the item that holds the slot
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`, no read capacity). If it is this very
//! event, an earlier attempt of the same call landed and only its answer was lost (the SDK
//! retried after a timeout; a `PutItem` has no `ClientRequestToken`), so the append succeeded,
//! as the transaction's token makes its retried call succeed. Otherwise it is a conflict, and
//! the current version is read as below: the holder proves the order is at least at
//! `expected_version + 1`, not where it is now, and the 409 carries the exact version.
//!
//! **Anything else** (several events, or an idempotency record, which must be stored with the
//! events or not at all) is ONE `TransactWriteItems`. Its actions, in this order (the
//! cancellation reasons come back in the same order, which is how the failure causes are told
//! apart):
//!
//! 1. a `Put` per new event with `attribute_not_exists(orderId)`; with no new events (a no-op
//!    that stores its key), a `ConditionCheck` that `expected_version + 1` does not exist does
//!    the same;
//! 2. the idempotency record's `Put`, with "absent, or expired at the request's `now`".
//!
//! How a failed append is reported (decided on the reasons, in this precedence):
//! - the idempotency `Put`'s condition failed: [`AppendError::IdempotencyKeyInUse`];
//! - a condition of an event `Put` or a version check failed: [`AppendError::Conflict`] with
//!   the current version, read right after (a consistent, newest-first `Query` of one item);
//! - otherwise, if any item failed with `TransactionConflict` or throttling (or the single
//!   `PutItem` met an ongoing transaction on its item, `TransactionConflictException`): retried
//!   with jittered exponential backoff, at most [`MAX_TRANSACTION_ATTEMPTS`] times in all, then
//!   [`StoreError::Unavailable`].
//!
//! A failed condition is definitive even when other items report a transaction conflict or
//! throttling at the same time (a "mixed" cancellation): retrying could not make that
//! condition hold, so the caller learns of the conflict at once instead of after the retries.
//! Throttling of the call as a whole (either shape) is retried by the SDK (see [`crate::aws`]).
//!
//! This file is longer than the project's ~450 lines because the two shapes of one append, the
//! retry loop they share and the failure classification they both feed read best side by side;
//! the reads (`load`, `current_version`, `idempotency_record`) are the small rest.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use orders_domain::{OrderId, Timestamp};

use super::DynamoTables;
use super::attributes::{Item, consistent_get, get_n, get_s, n, s};
use super::error::{
    CONTENDED_RETRY_AFTER, THROTTLED_RETRY_AFTER, internal, is_throttling, sdk_error,
};
use crate::retry::RetryPolicy;
use crate::{
    AppendError, AppendRequest, IdempotencyKey, IdempotencyRecord, StoreError, StoredEvent,
};

/// DynamoDB's limit on the actions of one transaction.
pub(super) const MAX_TRANSACTION_ACTIONS: usize = 100;
/// Attempts of one append that keeps being cancelled by transaction conflicts or throttling,
/// before it gives up with [`StoreError::Unavailable`].
pub(super) const MAX_TRANSACTION_ATTEMPTS: u32 = RetryPolicy::TRANSACTION.max_attempts;

const ABSENT: &str = "attribute_not_exists(orderId)";
/// The key is free if no record holds it, or the record's expiry has passed by the store's
/// clock (TTL deletion lags by up to days, so expired records are still there).
const KEY_FREE: &str = "attribute_not_exists(idempotencyKey) OR expiresAtMillis <= :now";

/// What each transaction action is, to read its cancellation reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// An event `Put` or a version `ConditionCheck`: its condition failing is a conflict.
    Version,
    /// The idempotency record's `Put`.
    Idempotency,
}

/// Why an attempt of an append wrote nothing (a transaction's: decided on all its reasons).
#[derive(Debug, PartialEq, Eq)]
enum Cancelled {
    KeyInUse,
    Conflict,
    /// Worth another attempt; the `Duration` is the `Retry-After` if attempts run out.
    Retry(&'static str, std::time::Duration),
    Other(String),
}

fn classify(reasons: &[CancellationReason], roles: &[Role]) -> Cancelled {
    let code = |reason: &CancellationReason| reason.code().unwrap_or("None").to_owned();
    let failed_condition = |role: Role| {
        reasons
            .iter()
            .zip(roles)
            .any(|(reason, r)| *r == role && reason.code() == Some("ConditionalCheckFailed"))
    };
    if failed_condition(Role::Idempotency) {
        return Cancelled::KeyInUse;
    }
    if failed_condition(Role::Version) {
        return Cancelled::Conflict;
    }
    let codes: Vec<String> = reasons.iter().map(code).collect();
    if codes.iter().any(|c| is_throttling(c)) {
        return Cancelled::Retry("throttled", THROTTLED_RETRY_AFTER);
    }
    if codes.iter().any(|c| c == "TransactionConflict") {
        return Cancelled::Retry("transaction conflict", CONTENDED_RETRY_AFTER);
    }
    Cancelled::Other(format!(
        "the append transaction was cancelled: reasons {codes:?}"
    ))
}

/// Refuses a request whose events do not continue the order's stream one by one, or that does
/// not fit in one transaction: a caller bug, refused before anything is sent.
fn validate(request: &AppendRequest) -> Result<(), StoreError> {
    for (offset, event) in (1u64..).zip(&request.events) {
        if event.order_id != request.order_id {
            return Err(internal(format_args!(
                "event {} belongs to order {}, not {}",
                event.event_id, event.order_id, request.order_id
            )));
        }
        if Some(event.version) != request.expected_version.checked_add(offset) {
            return Err(internal(format_args!(
                "event versions must follow {} contiguously: found {} at position {offset}",
                request.expected_version, event.version
            )));
        }
    }
    let actions = request.events.len().max(1) + usize::from(request.idempotency.is_some());
    if actions > MAX_TRANSACTION_ACTIONS {
        return Err(internal(format_args!(
            "an append of {} events needs {actions} transaction actions; DynamoDB allows {}",
            request.events.len(),
            MAX_TRANSACTION_ACTIONS
        )));
    }
    Ok(())
}

pub(super) fn event_key(order_id: OrderId, version: u64) -> Item {
    Item::from([
        ("orderId".to_owned(), s(order_id.to_string())),
        ("version".to_owned(), n(version)),
    ])
}

fn version_check(
    table: &str,
    order_id: OrderId,
    version: u64,
    condition: &str,
) -> TransactWriteItem {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(event_key(order_id, version)))
        .condition_expression(condition)
        .build()
        .expect("table, key and condition are set");
    TransactWriteItem::builder().condition_check(check).build()
}

pub(super) fn event_item(event: &StoredEvent) -> Result<Item, StoreError> {
    serde_dynamo::to_item(event).map_err(|err| {
        internal(format_args!(
            "cannot encode event {} as an item: {err}",
            event.event_id
        ))
    })
}

pub(super) fn decode_event(item: Item) -> Result<StoredEvent, StoreError> {
    serde_dynamo::from_item(item)
        .map_err(|err| StoreError::Corrupt(format!("an events item does not decode: {err}")))
}

/// The idempotency item: `expiresAt` is the TTL attribute, in epoch seconds rounded up (so TTL
/// never deletes a live record); `expiresAtMillis` is the exact expiry the code compares.
fn idempotency_item(record: &IdempotencyRecord) -> Item {
    let expires_ms = record.expires_at.millis();
    Item::from([
        ("idempotencyKey".to_owned(), s(record.key.as_str())),
        ("fingerprint".to_owned(), s(&record.fingerprint)),
        ("orderId".to_owned(), s(record.order_id.to_string())),
        ("version".to_owned(), n(record.version)),
        ("status".to_owned(), n(record.status)),
        (
            "expiresAt".to_owned(),
            n(expires_ms.div_euclid(1000) + i64::from(expires_ms.rem_euclid(1000) != 0)),
        ),
        ("expiresAtMillis".to_owned(), n(expires_ms)),
    ])
}

/// The transaction's actions and their roles (the key's expiry is judged at `request.now`).
fn actions(
    tables: &DynamoTables,
    request: &AppendRequest,
) -> Result<(Vec<TransactWriteItem>, Vec<Role>), StoreError> {
    let order = request.order_id;
    let expected = request.expected_version;
    let mut items = Vec::new();
    let mut roles = Vec::new();
    for event in &request.events {
        let put = Put::builder()
            .table_name(&tables.events)
            .set_item(Some(event_item(event)?))
            .condition_expression(ABSENT)
            .build()
            .map_err(internal)?;
        items.push(TransactWriteItem::builder().put(put).build());
        roles.push(Role::Version);
    }
    if request.events.is_empty() {
        items.push(version_check(&tables.events, order, expected + 1, ABSENT));
        roles.push(Role::Version);
    }
    if let Some(record) = &request.idempotency {
        let put = Put::builder()
            .table_name(&tables.idempotency)
            .set_item(Some(idempotency_item(record)))
            .condition_expression(KEY_FREE)
            .expression_attribute_values(":now", n(request.now.millis()))
            .build()
            .map_err(internal)?;
        items.push(TransactWriteItem::builder().put(put).build());
        roles.push(Role::Idempotency);
    }
    Ok((items, roles))
}

pub(super) async fn append(
    client: &Client,
    tables: &DynamoTables,
    request: &AppendRequest,
) -> Result<(), AppendError> {
    validate(request)?;
    let single = match (request.events.as_slice(), &request.idempotency) {
        ([], None) => {
            // Nothing to write: just tell whether the order is where the caller thinks it is.
            let current = current_version(client, &tables.events, request.order_id).await?;
            return if current == request.expected_version {
                Ok(())
            } else {
                Err(AppendError::Conflict {
                    current_version: current,
                })
            };
        }
        ([event], None) => Some(event),
        _ => None,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let cancelled = match single {
            Some(event) => put_event(client, &tables.events, event).await?,
            None => transact(client, tables, request).await?,
        };
        let Some(cancelled) = cancelled else {
            return Ok(());
        };
        match cancelled {
            Cancelled::KeyInUse => return Err(AppendError::IdempotencyKeyInUse),
            Cancelled::Conflict => {
                let current = current_version(client, &tables.events, request.order_id).await?;
                tracing::debug!(
                    orderId = %request.order_id,
                    expected = request.expected_version,
                    current,
                    "append lost a condition: a concurrent writer"
                );
                return Err(AppendError::Conflict {
                    current_version: current,
                });
            }
            Cancelled::Retry(why, retry_after) if attempt >= MAX_TRANSACTION_ATTEMPTS => {
                tracing::warn!(orderId = %request.order_id, attempts = attempt, why, "append gave up");
                return Err(StoreError::Unavailable {
                    reason: format!("the append was cancelled {attempt} times: {why}"),
                    retry_after,
                }
                .into());
            }
            Cancelled::Retry(why, _) => {
                let pause = RetryPolicy::TRANSACTION.delay(attempt);
                tracing::debug!(orderId = %request.order_id, attempt, why, ?pause, "retrying the append");
                tokio::time::sleep(pause).await;
            }
            Cancelled::Other(reason) => return Err(StoreError::Internal(reason).into()),
        }
    }
}

/// One attempt of the single-event append: `None` once the event is stored.
async fn put_event(
    client: &Client,
    table: &str,
    event: &StoredEvent,
) -> Result<Option<Cancelled>, StoreError> {
    let result = client
        .put_item()
        .table_name(table)
        .set_item(Some(event_item(event)?))
        .condition_expression(ABSENT)
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let Err(err) = result else {
        return Ok(None);
    };
    match err.as_service_error() {
        Some(PutItemError::ConditionalCheckFailedException(failed)) => {
            let holder = failed.item().and_then(|item| item.get("eventId"));
            if holder == Some(&s(event.event_id.to_string())) {
                // Our own event: an earlier attempt of this call landed, its answer was lost.
                tracing::debug!(orderId = %event.order_id, version = event.version, "the append had landed already");
                Ok(None)
            } else {
                Ok(Some(Cancelled::Conflict))
            }
        }
        // The item is in an ongoing transaction (a keyed append of the same order): as a
        // transaction cancelled by a conflict, worth another attempt.
        Some(service) if service.code() == Some("TransactionConflictException") => Ok(Some(
            Cancelled::Retry("transaction conflict", CONTENDED_RETRY_AFTER),
        )),
        _ => Err(sdk_error("PutItem", err)),
    }
}

/// One attempt of the transactional append: `None` once it committed.
async fn transact(
    client: &Client,
    tables: &DynamoTables,
    request: &AppendRequest,
) -> Result<Option<Cancelled>, StoreError> {
    let (items, roles) = actions(tables, request)?;
    // The SDK fills in a ClientRequestToken, so its own retries of this call (after a
    // timeout, say) are idempotent; each attempt of the append's loop is a new transaction.
    let result = client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await;
    let Err(err) = result else {
        return Ok(None);
    };
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
            Ok(Some(classify(cancel.cancellation_reasons(), &roles)))
        }
        _ => Err(sdk_error("TransactWriteItems", err)),
    }
}

/// The version of the order's newest event (0 if none), read consistently.
pub(super) async fn current_version(
    client: &Client,
    table: &str,
    order_id: OrderId,
) -> Result<u64, StoreError> {
    let output = client
        .query()
        .table_name(table)
        .consistent_read(true)
        .key_condition_expression("orderId = :id")
        .expression_attribute_values(":id", s(order_id.to_string()))
        .projection_expression("#v")
        .expression_attribute_names("#v", "version")
        .scan_index_forward(false)
        .limit(1)
        .send()
        .await
        .map_err(|err| sdk_error("Query", err))?;
    match output.items().first() {
        Some(item) => get_n(item, "version", "events item"),
        None => Ok(0),
    }
}

/// The order's events in version order, following `LastEvaluatedKey` so that a stream larger
/// than one 1 MB query page loads whole.
pub(super) async fn load(
    client: &Client,
    table: &str,
    order_id: OrderId,
    up_to: Option<u64>,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut events = Vec::new();
    let mut start_key: Option<Item> = None;
    loop {
        let mut query = client
            .query()
            .table_name(table)
            .consistent_read(true)
            .expression_attribute_values(":id", s(order_id.to_string()))
            .set_exclusive_start_key(start_key.take());
        query = match up_to {
            Some(up_to) => query
                .key_condition_expression("orderId = :id AND #v <= :up_to")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":up_to", n(up_to)),
            None => query.key_condition_expression("orderId = :id"),
        };
        let output = query.send().await.map_err(|err| sdk_error("Query", err))?;
        for item in output.items.unwrap_or_default() {
            events.push(decode_event(item)?);
        }
        match output.last_evaluated_key {
            Some(key) if !key.is_empty() => start_key = Some(key),
            _ => break,
        }
    }
    Ok(events)
}

/// The live record of `key`: one consistent `GetItem`; a record whose `expiresAtMillis` is at
/// or before `now` is absent (TTL deletion lags).
pub(super) async fn idempotency_record(
    client: &Client,
    table: &str,
    key: &IdempotencyKey,
    now: Timestamp,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let item_key = Item::from([("idempotencyKey".to_owned(), s(key.as_str()))]);
    let Some(item) = consistent_get(client, table, item_key).await? else {
        return Ok(None);
    };
    let what = "idempotency item";
    let expires_ms = match item.get("expiresAtMillis") {
        Some(_) => get_n::<i64>(&item, "expiresAtMillis", what)?,
        // Written by something else than this adapter: the TTL attribute is all there is.
        None => get_n::<i64>(&item, "expiresAt", what)?.saturating_mul(1000),
    };
    if expires_ms <= now.millis() {
        return Ok(None);
    }
    let order_id = get_s(&item, "orderId", what)?;
    let record = IdempotencyRecord {
        key: key.clone(),
        fingerprint: get_s(&item, "fingerprint", what)?.to_owned(),
        order_id: OrderId::parse(order_id)
            .map_err(|_| StoreError::Corrupt(format!("{what}: bad orderId {order_id:?}")))?,
        version: get_n(&item, "version", what)?,
        status: get_n(&item, "status", what)?,
        expires_at: Timestamp::from_millis(expires_ms),
    };
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    #[test]
    fn a_failed_condition_is_definitive_whatever_else_failed() {
        use Role::*;
        let roles = [Version, Version, Idempotency];
        let cases = [
            (
                ["ConditionalCheckFailed", "TransactionConflict", "None"],
                Cancelled::Conflict,
            ),
            (
                ["TransactionConflict", "None", "ConditionalCheckFailed"],
                Cancelled::KeyInUse,
            ),
            (
                ["ConditionalCheckFailed", "None", "ConditionalCheckFailed"],
                Cancelled::KeyInUse,
            ),
            (
                ["ThrottlingError", "ConditionalCheckFailed", "None"],
                Cancelled::Conflict,
            ),
            (
                ["None", "TransactionConflict", "None"],
                Cancelled::Retry("transaction conflict", CONTENDED_RETRY_AFTER),
            ),
            (
                [
                    "ProvisionedThroughputExceeded",
                    "TransactionConflict",
                    "None",
                ],
                Cancelled::Retry("throttled", THROTTLED_RETRY_AFTER),
            ),
        ];
        for (codes, expected) in cases {
            let reasons: Vec<_> = codes.iter().map(|c| reason(c)).collect();
            assert_eq!(classify(&reasons, &roles), expected, "{codes:?}");
        }
        assert!(matches!(
            classify(&[reason("ValidationError")], &[Version]),
            Cancelled::Other(_)
        ));
    }

    #[test]
    fn the_ttl_attribute_rounds_up_to_whole_seconds() {
        let record = |ms| IdempotencyRecord {
            key: IdempotencyKey::parse("k").unwrap(),
            fingerprint: "f".into(),
            order_id: OrderId::from_uuid(uuid::Uuid::now_v7()),
            version: 1,
            status: 201,
            expires_at: Timestamp::from_millis(ms),
        };
        assert_eq!(idempotency_item(&record(5_000))["expiresAt"], n(5));
        assert_eq!(idempotency_item(&record(5_001))["expiresAt"], n(6));
        assert_eq!(
            idempotency_item(&record(5_001))["expiresAtMillis"],
            n(5_001)
        );
    }
}
