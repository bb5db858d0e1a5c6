//! `cqrs-dynamo-peer`: the Orders HTTP API as the cqrs-es demo would build it on DynamoDB
//! (cqrs-es 0.5.0 + dynamo-es 0.5.0), a comparison target for scripts/bench-compare.sh.
//!
//! ```text
//! cqrs-dynamo-peer --listen 127.0.0.1:0 --endpoint http://127.0.0.1:8000 \
//!     --table-prefix peer- [--delete-tables-on-exit]
//! ```
//!
//! It creates its tables (on-demand), prints `listening on http://ADDR` once listening, and
//! stops on SIGTERM/SIGINT (both `peer-shape`'s, ../shape, as in the floor). Credentials come
//! from the SDK's usual chain (AWS_ACCESS_KEY_ID …).

mod domain;
mod http;
mod view;

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{CqrsFramework, Query};
use dynamo_es::{DynamoEventRepository, DynamoViewRepository};
use tracing::{info, warn};

use crate::domain::Order;
use crate::http::ApplicationState;
use crate::view::OrderQuery;

type BoxError = Box<dyn Error + Send + Sync>;

struct Args {
    listen: SocketAddr,
    endpoint: Option<String>,
    table_prefix: String,
    delete_tables_on_exit: bool,
}

impl Args {
    fn parse() -> Result<Self, BoxError> {
        let mut args = Self {
            listen: "127.0.0.1:3000".parse()?,
            endpoint: None,
            table_prefix: "cqrs-peer-".into(),
            delete_tables_on_exit: false,
        };
        let mut argv = std::env::args().skip(1);
        while let Some(flag) = argv.next() {
            let mut value = || argv.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--listen" => args.listen = value()?.parse()?,
                "--endpoint" => args.endpoint = Some(value()?),
                "--table-prefix" => args.table_prefix = value()?,
                "--delete-tables-on-exit" => args.delete_tables_on_exit = true,
                _ => return Err(format!("unknown argument {flag}").into()),
            }
        }
        Ok(args)
    }
}

/// The tables, named as in the demo's `db/create_tables.sh`, after the prefix. The snapshot
/// table is only named: the demo's store (`dynamodb_cqrs`) is an event store without
/// snapshots, which never reads or writes it, so it is not created.
struct Tables {
    events: String,
    snapshots: String,
    view: String,
}

impl Tables {
    fn new(prefix: &str) -> Self {
        Self {
            events: format!("{prefix}Events"),
            snapshots: format!("{prefix}Snapshots"),
            view: format!("{prefix}OrderView"),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let args = Args::parse()?;

    let mut config =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new("us-east-1"));
    if let Some(endpoint) = &args.endpoint {
        config = config.endpoint_url(endpoint);
    }
    let client = Client::new(&config.load().await);
    let tables = Tables::new(&args.table_prefix);
    // The events table: the demo's layout, which dynamo-es reads and writes.
    create_table(
        &client,
        &tables.events,
        &[
            ("AggregateTypeAndId", ScalarAttributeType::S, KeyType::Hash),
            (
                "AggregateIdSequence",
                ScalarAttributeType::N,
                KeyType::Range,
            ),
        ],
    )
    .await?;
    create_table(
        &client,
        &tables.view,
        &[("ViewId", ScalarAttributeType::S, KeyType::Hash)],
    )
    .await?;

    let state = application_state(client.clone(), &tables);
    let listening = peer_shape::listen(args.listen).await?;
    let addr = listening.addr();
    info!(%addr, events = tables.events, view = tables.view, "serving");
    let on_signal = || info!("shutting down");
    listening.serve(http::router(state), on_signal).await?;

    if args.delete_tables_on_exit {
        for table in [&tables.events, &tables.view] {
            client.delete_table().table_name(table).send().await?;
            info!(table, "deleted");
        }
    }
    Ok(())
}

/// The demo's `config.rs`: a `GenericQuery` over a `DynamoViewRepository` (whose Arc the
/// handlers keep for loading) in a `CqrsFramework` over the event store. This is what
/// `dynamo_es::dynamodb_cqrs` builds, spelled out only to pass the prefixed table names.
fn application_state(client: Client, tables: &Tables) -> ApplicationState {
    let order_query_repo = Arc::new(DynamoViewRepository::new(&tables.view, client.clone()));
    let mut order_query = OrderQuery::new(order_query_repo.clone());
    order_query.use_error_handler(Box::new(|e| warn!(error = %e, "updating the view failed")));
    let queries: Vec<Box<dyn Query<Order>>> = vec![Box::new(order_query)];

    let repo = DynamoEventRepository::new(client).with_tables(&tables.events, &tables.snapshots);
    let store = PersistedEventStore::new_event_store(repo);
    ApplicationState {
        cqrs: Arc::new(CqrsFramework::new(store, queries, ())),
        order_query: order_query_repo,
    }
}

async fn create_table(
    client: &Client,
    name: &str,
    keys: &[(&str, ScalarAttributeType, KeyType)],
) -> Result<(), BoxError> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attribute, kind, key_type) in keys {
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*attribute)
                    .attribute_type(kind.clone())
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*attribute)
                    .key_type(key_type.clone())
                    .build()?,
            );
    }
    match request.send().await {
        Ok(_) => info!(table = name, "created"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            warn!(table = name, "already exists; using it");
        }
        Err(e) => return Err(e.into()),
    }
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(Duration::from_secs(60))
        .await?;
    Ok(())
}
