//! Fuzzing the stream side: batches of DynamoDB Stream records as Lambda delivers them (JSON),
//! made from valid `INSERT` records of real events with some records mutated (an image
//! attribute of the wrong type, missing or added; an empty or random image; `MODIFY`,
//! `REMOVE` or an unknown event name; a missing or random `SequenceNumber`), through
//! [`decode`], [`project`] and [`publish`]. The rules: nothing panics; a batch holding an
//! undecodable `INSERT` is never committed past it; every failure is named (a
//! `batchItemFailures` entry with the `SequenceNumber` of a record at or before the first bad
//! one, or a [`StreamError`] naming a record without one); valid records decode to the events
//! they were made from.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use orders_domain::{EventData, OrderId};
use orders_store::StoredEvent;
use proptest::prelude::*;

use orders_testkit::fuzz::run_fuzz;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};

use super::{ARN, RejectingBus, impatient_publisher};
use crate::stream::*;
use crate::test_support::*;

/// A DynamoDB attribute value in the stream's JSON, of any type and shape.
fn attribute() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        prop::sample::select(vec![
            "0",
            "1",
            "-1",
            "1.5",
            "1e400",
            "-1e400",
            "18446744073709551616",
            "-9223372036854775809",
            "4294967296",
            "NaN",
            "",
            "one",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<String>(),
    ];
    let leaf = prop_oneof![
        any::<String>().prop_map(|s| json!({ "S": s })),
        prop_oneof![
            Just("01936b2e-7a1c-7cc4-9a4e-4d5b7c0f3e21".to_owned()),
            Just("2026-09-21T14:13:20.000Z".to_owned()),
            Just("OrderCreated".to_owned()),
        ]
        .prop_map(|s| json!({ "S": s })),
        number.clone().prop_map(|n| json!({ "N": n })),
        any::<bool>().prop_map(|b| json!({ "BOOL": b })),
        Just(json!({ "NULL": true })),
        Just(json!({ "B": "AAEC" })),
        prop::collection::vec(any::<String>(), 0..3).prop_map(|ss| json!({ "SS": ss })),
        prop::collection::vec(number, 0..3).prop_map(|ns| json!({ "NS": ns })),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|l| json!({ "L": l })),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| { json!({ "M": Value::Object(m.into_iter().collect()) }) }),
        ]
    })
}

/// The attributes of an event item (DESIGN §3), and one that is not.
fn attribute_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "orderId",
            "version",
            "eventId",
            "eventType",
            "schemaVersion",
            "occurredAt",
            "data",
            "metadata",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z]{1,12}",
    ]
}

/// One change to a valid `INSERT` record.
#[derive(Debug, Clone)]
enum RecordMutation {
    SetAttribute(String, Value),
    RemoveAttribute(String),
    /// A metadata member (correlationId, ...) of another type or shape.
    SetMetadata(String, Value),
    RandomImage(Vec<(String, Value)>),
    EmptyImage,
    EventName(String),
    SequenceNumber(Option<String>),
    /// A value where an attribute value belongs: the whole event then fails to deserialize.
    NotAnAttribute(String, Value),
}

fn record_mutation() -> impl Strategy<Value = RecordMutation> {
    prop_oneof![
        6 => (attribute_name(), attribute())
            .prop_map(|(name, value)| RecordMutation::SetAttribute(name, value)),
        2 => attribute_name().prop_map(RecordMutation::RemoveAttribute),
        2 => (
            prop::sample::select(vec!["correlationId", "causationId", "idempotencyKey", "source"]),
            attribute(),
        )
            .prop_map(|(name, value)| RecordMutation::SetMetadata(name.to_owned(), value)),
        1 => prop::collection::vec((attribute_name(), attribute()), 0..6)
            .prop_map(RecordMutation::RandomImage),
        1 => Just(RecordMutation::EmptyImage),
        2 => prop_oneof![
            Just("MODIFY".to_owned()),
            Just("REMOVE".to_owned()),
            "[A-Za-z]{0,8}",
        ]
        .prop_map(RecordMutation::EventName),
        2 => prop::option::of("[0-9]{1,30}").prop_map(RecordMutation::SequenceNumber),
        1 => (attribute_name(), prop_oneof![Just(json!(1)), Just(json!({"X": 1})), Just(json!([]))])
            .prop_map(|(name, value)| RecordMutation::NotAnAttribute(name, value)),
    ]
}

fn mutate(record: &mut Value, mutation: &RecordMutation) {
    let image = &mut record["dynamodb"]["NewImage"];
    match mutation {
        RecordMutation::SetAttribute(name, value) | RecordMutation::NotAnAttribute(name, value) => {
            image[name.as_str()] = value.clone();
        }
        RecordMutation::RemoveAttribute(name) => {
            image.as_object_mut().unwrap().remove(name);
        }
        RecordMutation::SetMetadata(name, value) => {
            if let Some(Value::Object(metadata)) = image.pointer_mut("/metadata/M") {
                metadata.insert(name.clone(), value.clone());
            }
        }
        RecordMutation::RandomImage(attributes) => {
            *image = Value::Object(attributes.iter().cloned().collect::<Map<_, _>>());
        }
        RecordMutation::EmptyImage => *image = json!({}),
        RecordMutation::EventName(name) => record["eventName"] = json!(name),
        RecordMutation::SequenceNumber(sequence) => match sequence {
            Some(sequence) => record["dynamodb"]["SequenceNumber"] = json!(sequence),
            None => {
                record["dynamodb"]
                    .as_object_mut()
                    .unwrap()
                    .remove("SequenceNumber");
            }
        },
    }
}

/// A record to generate: the next event of one of three orders, maybe mutated.
#[derive(Debug, Clone)]
struct RecordSpec {
    order: usize,
    mutation: Option<RecordMutation>,
}

fn record_spec() -> impl Strategy<Value = RecordSpec> {
    (0..3usize, prop::option::weighted(0.3, record_mutation()))
        .prop_map(|(order, mutation)| RecordSpec { order, mutation })
}

/// A generated batch: the Lambda event (if it deserializes), for each record the event it was
/// made from if the record is still that event's valid `INSERT`, and every event made, as the
/// events table holds them.
struct Batch {
    event: Option<DynamoDbEvent>,
    sources: Vec<Option<StoredEvent>>,
    histories: Vec<Vec<StoredEvent>>,
}

impl Batch {
    fn all_valid(&self) -> bool {
        self.sources.iter().all(Option::is_some)
    }
}

/// Each order's events follow its lifecycle (created, confirmed, shipped); a record for an
/// order already shipped goes to the next order with events left (8 records fit 3 orders).
fn build(orders: &[OrderId; 3], specs: &[RecordSpec]) -> Batch {
    let mut records = Vec::new();
    let mut sources = Vec::new();
    let mut histories: Vec<Vec<StoredEvent>> = vec![Vec::new(); 3];
    for (i, spec) in specs.iter().enumerate() {
        let order = (0..3)
            .map(|k| (spec.order + k) % 3)
            .find(|&k| histories[k].len() < 3)
            .expect("at most 8 records for 9 events");
        let version = histories[order].len() as u64 + 1;
        let data = match version {
            1 => created(),
            2 => EventData::OrderConfirmed,
            _ => EventData::OrderShipped,
        };
        let stored = event(orders[order], version, data);
        histories[order].push(stored.clone());
        let mut record = serde_json::to_value(insert_record(&stored, &(100 + i).to_string(), ARN))
            .expect("a record serializes");
        match &spec.mutation {
            Some(mutation) => {
                mutate(&mut record, mutation);
                sources.push(None);
            }
            None => sources.push(Some(stored)),
        }
        records.push(record);
    }
    Batch {
        event: serde_json::from_value(json!({ "Records": records })).ok(),
        sources,
        histories,
    }
}

/// The checks on `decode` alone; returns the index of the first undecodable record.
fn check_decode(
    event: &DynamoDbEvent,
    sources: &[Option<StoredEvent>],
) -> Result<Option<usize>, TestCaseError> {
    let batch = decode(event);
    prop_assert_eq!(batch.events.len(), batch.record_indexes.len());
    let stop = batch.undecodable.as_ref().map(|(index, _)| *index);
    let end = stop.unwrap_or(event.records.len());
    // Every INSERT before the stop point is decoded, in order; nothing after it is.
    let inserts: Vec<usize> = (0..end)
        .filter(|&i| event.records[i].event_name == "INSERT")
        .collect();
    prop_assert_eq!(&batch.record_indexes, &inserts);
    for (event_index, &record_index) in batch.record_indexes.iter().enumerate() {
        let record = &event.records[record_index];
        let redecoded = decode_record(record).ok();
        prop_assert_eq!(redecoded.as_ref(), Some(&batch.events[event_index]));
        if let Some(source) = &sources[record_index] {
            prop_assert_eq!(&batch.events[event_index], source);
        }
    }
    if let Some((index, reason)) = &batch.undecodable {
        let record = &event.records[*index];
        prop_assert_eq!(record.event_name.as_str(), "INSERT");
        prop_assert!(decode_record(record).is_err());
        prop_assert!(!reason.is_empty());
        prop_assert!(
            sources[*index].is_none(),
            "a valid record was undecodable: {reason}"
        );
    }
    Ok(stop)
}

/// The checks on a handler's answer: a failure is named, and is at or before the first
/// undecodable record (a batch is never committed past one) and any `must_fail_by` record.
fn check_answer(
    event: &DynamoDbEvent,
    answer: Result<DynamoDbEventResponse, StreamError>,
    must_fail_by: Option<usize>,
) -> Result<(), TestCaseError> {
    match answer {
        Ok(response) => {
            prop_assert!(response.batch_item_failures.len() <= 1, "{response:?}");
            let failed = response
                .batch_item_failures
                .first()
                .map(|failure| failure.item_identifier.clone());
            match (failed, must_fail_by) {
                (None, None) => {}
                (None, Some(index)) => {
                    prop_assert!(false, "the batch was committed past record {index}")
                }
                (Some(identifier), bound) => {
                    let identifier = identifier.expect("a failure names its record");
                    let bound = bound.unwrap_or(event.records.len() - 1);
                    prop_assert!(
                        event.records[..=bound]
                            .iter()
                            .any(|r| r.change.sequence_number.as_ref() == Some(&identifier)),
                        "{identifier} is no record at or before {bound}"
                    );
                }
            }
        }
        Err(StreamError::NoSequenceNumber { event_id }) => {
            prop_assert!(
                event
                    .records
                    .iter()
                    .any(|r| r.event_id == event_id && r.change.sequence_number.is_none()),
                "{event_id} names no record without a SequenceNumber"
            );
        }
    }
    Ok(())
}

fn batch_strategy() -> impl Strategy<Value = Vec<RecordSpec>> {
    prop::collection::vec(record_spec(), 0..8)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Checks that the generator mostly makes batches Lambda could deliver, so the property
/// keeps testing the handlers rather than the deserializer.
#[allow(
    clippy::print_stderr,
    reason = "the fuzz summary is for the developer who runs it"
)]
fn assert_mostly_events(target: &str, not_events: &AtomicU64, tried: &AtomicU64) {
    let (not_events, tried) = (
        not_events.load(Ordering::Relaxed),
        tried.load(Ordering::Relaxed),
    );
    eprintln!("fuzz {target}: {not_events} of {tried} batches did not deserialize (skipped)");
    assert!(
        not_events * 2 < tried,
        "{not_events} of {tried} batches did not deserialize: the generator no longer tests \
         the handlers"
    );
}

#[test]
fn fuzz_decode() {
    const TARGET: &str = "stream decode";
    let orders = [new_order_id(), new_order_id(), new_order_id()];
    let (tried, not_events) = (AtomicU64::new(0), AtomicU64::new(0));
    run_fuzz(TARGET, batch_strategy(), |specs| {
        tried.fetch_add(1, Ordering::Relaxed);
        let batch = build(&orders, &specs);
        let Some(event) = &batch.event else {
            not_events.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        check_decode(event, &batch.sources)?;
        Ok(())
    });
    assert_mostly_events(TARGET, &not_events, &tried);
}

#[test]
fn fuzz_project() {
    const TARGET: &str = "stream project";
    let rt = runtime();
    let (_dir, store) = store();
    let projector = {
        let store = Arc::new(store.clone());
        Projector::new(store.clone(), store)
    };
    let (tried, not_events) = (AtomicU64::new(0), AtomicU64::new(0));
    run_fuzz(TARGET, batch_strategy(), |specs| {
        tried.fetch_add(1, Ordering::Relaxed);
        // Fresh orders each case: the store is shared across cases.
        let orders = [new_order_id(), new_order_id(), new_order_id()];
        let batch = build(&orders, &specs);
        let Some(event) = &batch.event else {
            not_events.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        let stop = check_decode(event, &batch.sources)?;
        let answer = rt.block_on(async {
            // The events table holds every event, whatever its stream record looks like.
            for history in batch.histories.iter().filter(|h| !h.is_empty()) {
                append(&store, history).await;
            }
            project(&projector, event).await
        });
        if batch.all_valid() {
            let response = answer.as_ref().expect("a valid batch has sequence numbers");
            prop_assert!(
                response.batch_item_failures.is_empty(),
                "a valid batch failed: {response:?}"
            );
        }
        check_answer(event, answer, stop)
    });
    assert_mostly_events(TARGET, &not_events, &tried);
}

#[test]
fn fuzz_publish() {
    const TARGET: &str = "stream publish";
    let rt = runtime();
    let strategy = (batch_strategy(), prop::collection::vec(any::<bool>(), 8));
    let (tried, not_events) = (AtomicU64::new(0), AtomicU64::new(0));
    run_fuzz(TARGET, strategy, |(specs, rejected)| {
        tried.fetch_add(1, Ordering::Relaxed);
        let orders = [new_order_id(), new_order_id(), new_order_id()];
        let batch = build(&orders, &specs);
        let Some(event) = &batch.event else {
            not_events.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        let stop = check_decode(event, &batch.sources)?;
        // The bus always fails the events of the records marked `rejected`.
        let decoded = decode(event);
        let failing: Vec<_> = decoded
            .events
            .iter()
            .zip(&decoded.record_indexes)
            .filter(|(_, record)| rejected[**record])
            .map(|(event, _)| event.event_id)
            .collect();
        let first_rejected = decoded
            .record_indexes
            .iter()
            .copied()
            .find(|record| rejected[*record]);
        let must_fail_by = stop.into_iter().chain(first_rejected).min();
        let publisher = impatient_publisher(RejectingBus::failing(failing));
        let answer = rt.block_on(publish(&publisher, event));
        if batch.all_valid() && first_rejected.is_none() {
            let response = answer.as_ref().expect("a valid batch has sequence numbers");
            prop_assert!(
                response.batch_item_failures.is_empty(),
                "a valid batch failed: {response:?}"
            );
        }
        check_answer(event, answer, must_fail_by)
    });
    assert_mostly_events(TARGET, &not_events, &tried);
}
