//! Table creation: idempotent, completing what existing tables lack, named as documented.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, StreamViewType, TimeToLiveStatus,
};
use uuid::Uuid;

use crate::dynamodb::{DynamoTables, TableOutcome, create_tables};

use super::*;

#[tokio::test]
async fn create_tables_is_idempotent_and_sets_up_streams_indexes_and_ttl() {
    let client = local_client();
    let suffix = Uuid::now_v7().simple();
    let tables = DynamoTables {
        events: format!("ct-{suffix}-events"),
        orders: format!("ct-{suffix}-orders"),
        idempotency: format!("ct-{suffix}-idempotency"),
    };
    let first = create_tables(&client, &tables).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|s| (s.name.as_str(), s.outcome))
            .collect::<Vec<_>>(),
        [
            (tables.events.as_str(), TableOutcome::Created),
            (tables.orders.as_str(), TableOutcome::Created),
            (tables.idempotency.as_str(), TableOutcome::Created),
        ]
    );
    assert!(first.iter().all(|s| s.added.is_empty()));
    let second = create_tables(&client, &tables).await.unwrap();
    assert!(
        second
            .iter()
            .all(|s| s.outcome == TableOutcome::AlreadyExisted && s.added.is_empty()),
        "the second run changes nothing: {second:?}"
    );
    assert_tables_complete(&client, &tables, true).await;
}

#[tokio::test]
async fn create_tables_adds_what_existing_tables_lack() {
    let client = local_client();
    let suffix = Uuid::now_v7().simple();
    let tables = DynamoTables {
        events: format!("bare-{suffix}-events"),
        orders: format!("bare-{suffix}-orders"),
        idempotency: format!("bare-{suffix}-idempotency"),
    };
    // Bare tables: the keys only, no stream, no TTL; the orders table has one GSI of two
    // (DynamoDB builds one added index at a time per table, so one is what a run can add).
    for (name, keys) in [
        (
            &tables.events,
            &[
                ("orderId", ScalarAttributeType::S),
                ("version", ScalarAttributeType::N),
            ][..],
        ),
        (&tables.orders, &[("orderId", ScalarAttributeType::S)][..]),
        (
            &tables.idempotency,
            &[("idempotencyKey", ScalarAttributeType::S)][..],
        ),
    ] {
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest);
        for (i, (attribute, kind)) in keys.iter().enumerate() {
            request = request
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(*attribute)
                        .attribute_type(kind.clone())
                        .build()
                        .unwrap(),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(*attribute)
                        .key_type(if i == 0 {
                            KeyType::Hash
                        } else {
                            KeyType::Range
                        })
                        .build()
                        .unwrap(),
                );
        }
        if name == &tables.orders {
            request = request
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("customerId")
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .unwrap(),
                )
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name("createdAt")
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .unwrap(),
                )
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name("byCustomer")
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name("customerId")
                                .key_type(KeyType::Hash)
                                .build()
                                .unwrap(),
                        )
                        .key_schema(
                            KeySchemaElement::builder()
                                .attribute_name("createdAt")
                                .key_type(KeyType::Range)
                                .build()
                                .unwrap(),
                        )
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .unwrap(),
                );
        }
        request.send().await.expect("create a bare table");
    }
    let statuses = create_tables(&client, &tables).await.unwrap();
    assert!(
        statuses
            .iter()
            .all(|s| s.outcome == TableOutcome::AlreadyExisted)
    );
    assert!(
        statuses[0].added.contains(&"stream NEW_IMAGE".to_owned()),
        "{statuses:?}"
    );
    // Either built within the wait, or reported as still CREATING (DynamoDB Local can be slow).
    assert_eq!(statuses[1].added.len(), 1, "{statuses:?}");
    assert!(
        statuses[1].added[0].starts_with("GSI byStatus"),
        "{statuses:?}"
    );
    assert_eq!(statuses[2].added, ["TTL on expiresAt"]);
    assert_tables_complete(&client, &tables, false).await;
    let again = create_tables(&client, &tables).await.unwrap();
    assert!(again.iter().all(|s| s.added.is_empty()), "{again:?}");
    // DynamoDB Local counts tables with indexes still CREATING against a limit of 5: drop
    // these, so that reruns on one DynamoDB Local keep passing.
    for name in [&tables.events, &tables.orders, &tables.idempotency] {
        client.delete_table().table_name(name).send().await.unwrap();
    }
}

/// `indexes_active`: whether the GSIs must be ACTIVE (not for ones added to an existing table,
/// which DynamoDB Local never finishes).
async fn assert_tables_complete(client: &Client, tables: &DynamoTables, indexes_active: bool) {
    let describe = |name: &str| {
        let request = client.describe_table().table_name(name);
        async move { request.send().await.unwrap().table.unwrap() }
    };
    let keys = |table: &aws_sdk_dynamodb::types::TableDescription| {
        table
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
            .collect::<Vec<_>>()
    };

    let events = describe(&tables.events).await;
    assert_eq!(
        keys(&events),
        [
            ("orderId".into(), KeyType::Hash),
            ("version".into(), KeyType::Range)
        ]
    );
    let stream = events.stream_specification().expect("a stream");
    assert!(stream.stream_enabled());
    assert_eq!(stream.stream_view_type(), Some(&StreamViewType::NewImage));
    assert!(events.latest_stream_arn().is_some());

    let orders = describe(&tables.orders).await;
    assert_eq!(keys(&orders), [("orderId".into(), KeyType::Hash)]);
    let mut indexes: Vec<_> = orders
        .global_secondary_indexes()
        .iter()
        .map(|gsi| {
            if indexes_active {
                assert_eq!(gsi.index_status(), Some(&IndexStatus::Active));
            }
            assert_eq!(
                gsi.projection().and_then(|p| p.projection_type()),
                Some(&ProjectionType::All)
            );
            let keys: Vec<_> = gsi
                .key_schema()
                .iter()
                .map(|k| k.attribute_name().to_owned())
                .collect();
            (gsi.index_name().unwrap().to_owned(), keys)
        })
        .collect();
    indexes.sort();
    assert_eq!(
        indexes,
        [
            (
                "byCustomer".to_owned(),
                vec!["customerId".to_owned(), "createdAt".to_owned()]
            ),
            (
                "byStatus".to_owned(),
                vec!["status".to_owned(), "updatedAt".to_owned()]
            ),
        ]
    );

    let idempotency = describe(&tables.idempotency).await;
    assert_eq!(
        keys(&idempotency),
        [("idempotencyKey".into(), KeyType::Hash)]
    );
    for table in [&events, &orders, &idempotency] {
        assert_eq!(
            table.billing_mode_summary().and_then(|b| b.billing_mode()),
            Some(&BillingMode::PayPerRequest),
            "{:?} is on demand",
            table.table_name()
        );
    }
    let ttl = client
        .describe_time_to_live()
        .table_name(&tables.idempotency)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert!(matches!(
        ttl.time_to_live_status(),
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ));
    assert_eq!(ttl.attribute_name(), Some("expiresAt"));
}

#[test]
fn tables_default_to_the_documented_names() {
    let tables = DynamoTables::default();
    assert_eq!(tables.events, "orders-events");
    assert_eq!(tables.orders, "orders-read-model");
    assert_eq!(tables.idempotency, "orders-idempotency");
}
