//! The fold from stored events to an order's state, the one every reader uses: the command
//! side, the queries' `minVersion` and `atVersion`, the projector (its fast path and gap heal)
//! and replay. Each event goes through the upcaster; the history must run `1, 2, 3, ...`.

use orders_domain::{DecodeError, OrderEvent, OrderId, OrderState, evolve};
use thiserror::Error;

use crate::StoredEvent;

#[derive(Debug, Error)]
pub enum FoldError {
    /// The payload cannot be decoded (malformed, or a schema newer than this build). Never
    /// skipped: a state that silently missed an event would be wrong from then on.
    #[error("event {version} of order {order_id} cannot be decoded: {source}")]
    Decode {
        order_id: OrderId,
        version: u64,
        #[source]
        source: DecodeError,
    },
    /// The event is not the next one: the history skips or repeats a version.
    #[error("order {order_id}: the event store returned version {found} where {expected} belongs")]
    BrokenHistory {
        order_id: OrderId,
        expected: u64,
        found: u64,
    },
}

/// Folds stored events onto `state`, in version order: the first must be `state.version + 1`,
/// each next one the version after it. Unknown event types advance the version only.
pub fn fold<'a>(
    state: OrderState,
    events: impl IntoIterator<Item = &'a StoredEvent>,
) -> Result<OrderState, FoldError> {
    events.into_iter().try_fold(state, next_state)
}

/// Folds one stored event onto `state`, through the upcaster. The event must be the next one
/// (`state.version + 1`); an unknown event type advances the version only. On an error
/// `state` is left as it was, so a caller can stop at the event and keep what it folded.
pub fn fold_event(state: &mut OrderState, event: &StoredEvent) -> Result<(), FoldError> {
    // `next_state` checks and decodes before it takes the state, so an error leaves it whole.
    let decoded = checked_decode(state, event)?;
    *state = apply(std::mem::take(state), decoded);
    Ok(())
}

/// The state after `event`: the one step both entry points take, by value for [`fold`] (no
/// state is moved out and back per event on the history's hot path).
fn next_state(state: OrderState, event: &StoredEvent) -> Result<OrderState, FoldError> {
    let decoded = checked_decode(&state, event)?;
    Ok(apply(state, decoded))
}

/// The event, decoded, if it is the next one after `state`.
fn checked_decode(
    state: &OrderState,
    event: &StoredEvent,
) -> Result<Option<OrderEvent>, FoldError> {
    let expected = state.version + 1;
    if event.version != expected {
        return Err(FoldError::BrokenHistory {
            order_id: event.order_id,
            expected,
            found: event.version,
        });
    }
    event.decode().map_err(|source| decode_error(event, source))
}

fn apply(state: OrderState, decoded: Option<OrderEvent>) -> OrderState {
    match decoded {
        Some(decoded) => evolve(state, &decoded),
        None => state.skip_unknown(),
    }
}

/// Checks that `event` decodes, without folding it: a consumer that skips an event it has
/// already applied still refuses one it could not have applied.
pub fn check_decodes(event: &StoredEvent) -> Result<(), FoldError> {
    event
        .decode()
        .map(drop)
        .map_err(|source| decode_error(event, source))
}

fn decode_error(event: &StoredEvent, source: DecodeError) -> FoldError {
    FoldError::Decode {
        order_id: event.order_id,
        version: event.version,
        source,
    }
}

#[cfg(test)]
mod tests {
    use orders_domain::{
        Currency, CustomerId, EventData, Items, LineItem, OrderEvent, OrderStatus, Quantity, Sku,
        Timestamp, UnitPrice,
    };
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::EventMetadata;

    fn event(order_id: OrderId, version: u64, data: EventData) -> StoredEvent {
        let metadata = EventMetadata {
            correlation_id: "c".into(),
            causation_id: "c".into(),
            idempotency_key: None,
            source: "fold-test".into(),
        };
        let occurred_at = Timestamp::from_millis(1_790_000_000_000 + version as i64);
        StoredEvent::new(
            order_id,
            version,
            Uuid::now_v7(),
            &OrderEvent { occurred_at, data },
            metadata,
        )
    }

    fn created(order_id: OrderId) -> StoredEvent {
        let items = Items::parse(vec![LineItem {
            sku: Sku::parse("SKU-1").unwrap(),
            quantity: Quantity::parse(2).unwrap(),
            unit_price: UnitPrice::parse(150).unwrap(),
        }])
        .unwrap();
        let data = EventData::OrderCreated {
            customer_id: CustomerId::parse("customer-1").unwrap(),
            currency: Currency::parse("EUR").unwrap(),
            total: items.total().unwrap(),
            items,
        };
        event(order_id, 1, data)
    }

    fn order_id() -> OrderId {
        OrderId::from_uuid(Uuid::now_v7())
    }

    #[test]
    fn a_contiguous_history_folds_to_its_last_version() {
        // Given
        let id = order_id();
        let history = [
            created(id),
            event(id, 2, EventData::OrderConfirmed),
            event(id, 3, EventData::OrderShipped),
        ];
        // When
        let state = fold(OrderState::default(), &history).unwrap();
        // Then
        assert_eq!(state.version, 3);
        assert_eq!(state.status(), Some(OrderStatus::Shipped));
    }

    #[test]
    fn a_skipped_version_is_a_broken_history() {
        // Given events 1 and 3
        let id = order_id();
        let history = [created(id), event(id, 3, EventData::OrderShipped)];
        // When
        let error = fold(OrderState::default(), &history).unwrap_err();
        // Then
        assert!(
            matches!(
                error,
                FoldError::BrokenHistory { order_id, expected: 2, found: 3 } if order_id == id
            ),
            "{error}"
        );
    }

    #[test]
    fn a_history_must_start_after_the_state_it_folds_onto() {
        // Given a state at version 1, and event 1 again
        let id = order_id();
        let state = fold(OrderState::default(), [&created(id)]).unwrap();
        // When
        let error = fold(state, [&created(id)]).unwrap_err();
        // Then
        assert!(
            matches!(
                error,
                FoldError::BrokenHistory {
                    expected: 2,
                    found: 1,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_event_type_advances_the_version_only() {
        // Given a created order, then an event type this build does not know
        let id = order_id();
        let mut state = fold(OrderState::default(), [&created(id)]).unwrap();
        let before = state.order.clone();
        let unknown = StoredEvent {
            event_type: "OrderGiftWrapped".into(),
            data: json!({"paper": "gold"}),
            ..event(id, 2, EventData::OrderConfirmed)
        };
        // When
        fold_event(&mut state, &unknown).unwrap();
        // Then
        assert_eq!(state.version, 2);
        assert_eq!(state.order, before);
    }

    #[test]
    fn an_undecodable_event_is_an_error_and_leaves_the_state_as_it_was() {
        // Given a created order, then a cancellation whose reason is not a string
        let id = order_id();
        let mut state = fold(OrderState::default(), [&created(id)]).unwrap();
        let before = state.clone();
        let undecodable = StoredEvent {
            event_type: "OrderCancelled".into(),
            data: json!({"reason": 42}),
            ..event(id, 2, EventData::OrderConfirmed)
        };
        // When
        let error = fold_event(&mut state, &undecodable).unwrap_err();
        // Then
        assert!(
            matches!(
                error,
                FoldError::Decode {
                    version: 2,
                    source: DecodeError::InvalidPayload { .. },
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(state, before);
        assert!(check_decodes(&undecodable).is_err());
    }
}
