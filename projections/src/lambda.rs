//! The `projector` and `publisher` functions' configuration, read once at INIT, and the two
//! handlers as `lambda_runtime` services. Each `main` in `src/bin/` is three lines.
//!
//! | variable | used by | meaning |
//! |---|---|---|
//! | `EVENTS_TABLE` | both | the events table (the projector heals gaps from it); required |
//! | `ORDERS_TABLE` | projector | the read-model table; required |
//! | `EVENT_BUS_NAME` | publisher | the EventBridge bus (name or ARN); required, so that a missing setting never publishes to the account's default bus |
//! | `EVENT_SOURCE` | publisher | the entries' `Source`; default `orders` |
//! | `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_EVENTBRIDGE`, `AWS_ENDPOINT_URL` | both | the SDK's own endpoint overrides (emulators) |
//! | `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`, `RUST_LOG` | both | logging (see `orders_lambda`) |
//!
//! A batch that cannot be answered with a partial batch response (a record without a
//! sequence number) fails as a whole, with the error type `Orders.Stream`.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use orders_store::dynamodb::{self, DynamoStore, DynamoTables};
use thiserror::Error;

use crate::eventbridge::EventBridgeBus;
use crate::projector::Projector;
use crate::publisher::{Publisher, PublisherConfig};
use crate::stream::{self, DynamoDbEvent, StreamError};

pub use orders_lambda::Error;

/// A configuration the function cannot start with: it fails INIT as `Orders.Config`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
}

impl From<ConfigError> for Diagnostic {
    fn from(error: ConfigError) -> Self {
        Diagnostic {
            error_type: "Orders.Config".into(),
            error_message: error.to_string(),
        }
    }
}

impl From<StreamError> for Diagnostic {
    fn from(error: StreamError) -> Self {
        Diagnostic {
            error_type: "Orders.Stream".into(),
            error_message: error.to_string(),
        }
    }
}

fn required(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    var(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// The projector's tables. The idempotency table is not used; its name is the default.
pub fn projector_tables(var: impl Fn(&str) -> Option<String>) -> Result<DynamoTables, ConfigError> {
    Ok(DynamoTables {
        events: required(&var, "EVENTS_TABLE")?,
        orders: required(&var, "ORDERS_TABLE")?,
        idempotency: DynamoTables::DEFAULT_IDEMPOTENCY.to_owned(),
    })
}

/// The publisher's bus settings.
pub fn publisher_config(
    var: impl Fn(&str) -> Option<String>,
) -> Result<PublisherConfig, ConfigError> {
    let mut config = PublisherConfig {
        event_bus_name: Some(required(&var, "EVENT_BUS_NAME")?),
        ..PublisherConfig::default()
    };
    if let Some(source) = var("EVENT_SOURCE").filter(|s| !s.trim().is_empty()) {
        config.source = source.trim().to_owned();
    }
    Ok(config)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The `projector` function: INIT, then one [`stream::project`] per batch.
pub async fn run_projector() -> Result<(), Error> {
    let tables = orders_lambda::init("projector", || projector_tables(env)).await?;
    tracing::info!(function = "projector", ?tables, "configured");
    let store = Arc::new(DynamoStore::new(dynamodb::client(None).await, tables));
    let projector = Projector::new(store.clone(), store);
    let projector = &projector;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<DynamoDbEvent>| async move {
            stream::project(projector, &event.payload).await
        },
    ))
    .await
}

/// The `publisher` function: INIT, then one [`stream::publish`] per batch.
pub async fn run_publisher() -> Result<(), Error> {
    let config = orders_lambda::init("publisher", || publisher_config(env)).await?;
    tracing::info!(function = "publisher", bus = ?config.event_bus_name, source = %config.source, "configured");
    let publisher = Publisher::new(Arc::new(EventBridgeBus::connect(None).await), config);
    let publisher = &publisher;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<DynamoDbEvent>| async move {
            stream::publish(publisher, &event.payload).await
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_projector_needs_both_tables() {
        assert_eq!(
            projector_tables(vars(&[("EVENTS_TABLE", "e")])),
            Err(ConfigError::Missing("ORDERS_TABLE"))
        );
        let tables =
            projector_tables(vars(&[("EVENTS_TABLE", "e"), ("ORDERS_TABLE", " o ")])).unwrap();
        assert_eq!((tables.events.as_str(), tables.orders.as_str()), ("e", "o"));
    }

    #[test]
    fn the_publisher_needs_a_bus_and_defaults_its_source() {
        let error = publisher_config(vars(&[])).unwrap_err();
        assert_eq!(error, ConfigError::Missing("EVENT_BUS_NAME"));
        assert_eq!(Diagnostic::from(error).error_type, "Orders.Config");

        let config = publisher_config(vars(&[("EVENT_BUS_NAME", "orders-bus")])).unwrap();
        assert_eq!(config.event_bus_name.as_deref(), Some("orders-bus"));
        assert_eq!(config.source, "orders");
        let config = publisher_config(vars(&[
            ("EVENT_BUS_NAME", "orders-bus"),
            ("EVENT_SOURCE", "shop.orders"),
        ]))
        .unwrap();
        assert_eq!(config.source, "shop.orders");
    }
}
