//! The `projector` and `publisher` functions' configuration, read once at INIT. Each `main` in
//! `src/bin/` shows its wiring: INIT ([`init_projector`], [`init_publisher`]), the client built
//! once, the handler, `lambda_runtime::run`.
//!
//! The variables each reads are declared once, in [`PROJECTOR_VARS`] and [`PUBLISHER_VARS`]
//! (with logging's [`orders_lambda::LOG_VARS`]); the endpoints come from the AWS SDK's own
//! `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_EVENTBRIDGE` and `AWS_ENDPOINT_URL`.
//!
//! A batch that cannot be answered with a partial batch response (a record without a
//! sequence number) fails as a whole, with the error type `Orders.Stream`.

use lambda_runtime::Diagnostic;
use orders_lambda::{EVENTS_TABLE, EnvVar, ORDERS_TABLE};
use orders_store::dynamodb::DynamoTables;
use thiserror::Error;

use crate::publisher::{DEFAULT_BUS_SOURCE, PublisherConfig};
use crate::stream::StreamError;

pub use orders_lambda::Error;

/// What the `projector` reads besides logging: the events table (it heals gaps from it) and
/// the read model.
pub const PROJECTOR_VARS: [EnvVar; 2] = [EVENTS_TABLE, ORDERS_TABLE];

/// `EVENT_BUS_NAME`: required, so that a missing setting never publishes to the account's
/// default bus.
pub const EVENT_BUS_NAME: EnvVar = EnvVar::required(
    "EVENT_BUS_NAME",
    "the EventBridge bus (name or ARN) the publisher sends to",
);
/// `EVENT_SOURCE`: the `Source` of the entries.
pub const EVENT_SOURCE: EnvVar = EnvVar::with_default(
    "EVENT_SOURCE",
    DEFAULT_BUS_SOURCE,
    "the `Source` of the bus entries",
);
/// What the `publisher` reads besides logging.
pub const PUBLISHER_VARS: [EnvVar; 2] = [EVENT_BUS_NAME, EVENT_SOURCE];

/// A configuration the function cannot start with: it fails INIT as `Orders.Config`.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
}

impl From<ConfigError> for Diagnostic {
    fn from(error: ConfigError) -> Self {
        orders_lambda::config_diagnostic(&error)
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

fn required(var: &impl Fn(&str) -> Option<String>, env_var: EnvVar) -> Result<String, ConfigError> {
    env_var.get(var).ok_or(ConfigError::Missing(env_var.name))
}

/// The projector's tables ([`PROJECTOR_VARS`]). The idempotency table is not used; its name is
/// the default.
pub fn projector_tables(var: impl Fn(&str) -> Option<String>) -> Result<DynamoTables, ConfigError> {
    Ok(DynamoTables {
        events: required(&var, EVENTS_TABLE)?,
        orders: required(&var, ORDERS_TABLE)?,
        idempotency: DynamoTables::DEFAULT_IDEMPOTENCY.to_owned(),
    })
}

/// The publisher's bus settings ([`PUBLISHER_VARS`]).
pub fn publisher_config(
    var: impl Fn(&str) -> Option<String>,
) -> Result<PublisherConfig, ConfigError> {
    Ok(PublisherConfig {
        event_bus_name: Some(required(&var, EVENT_BUS_NAME)?),
        bus_source: EVENT_SOURCE
            .get_or_default(&var)
            .expect("EVENT_SOURCE has a default"),
        ..PublisherConfig::default()
    })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The `projector`'s INIT: logging, then its tables (see [`orders_lambda::init`]).
pub async fn init_projector() -> Result<DynamoTables, Error> {
    orders_lambda::init("projector", &PROJECTOR_VARS, || projector_tables(env)).await
}

/// The `publisher`'s INIT: logging, then its bus settings (see [`orders_lambda::init`]).
pub async fn init_publisher() -> Result<PublisherConfig, Error> {
    orders_lambda::init("publisher", &PUBLISHER_VARS, || publisher_config(env)).await
}

#[cfg(test)]
mod tests {
    use orders_testkit::env::env_of as vars;

    use super::*;

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
        assert_eq!(config.bus_source, "orders");
        let config = publisher_config(vars(&[
            ("EVENT_BUS_NAME", "orders-bus"),
            ("EVENT_SOURCE", "shop.orders"),
        ]))
        .unwrap();
        assert_eq!(config.bus_source, "shop.orders");
    }
}
