//! What the workspace's tests repeat, one copy each. Dev-only: members take it as a
//! dev-dependency, never as a dependency.
//!
//! - [`decider`]: the order decider as given / when / then;
//! - [`env`]: an environment as name/value pairs, for the functions' config parsers;
//! - [`fixtures`]: domain events and ids;
//! - [`problem`]: asserting an RFC 9457 problem answer;
//! - [`apigw`]: API Gateway proxy events in the canonical AWS shapes;
//! - [`fuzz`]: the runner of the fuzz properties;
//! - with the `stores` feature, [`stored`] (events in the store's envelope, appended and
//!   folded) and [`stores`] (a store for one test: SQLite on a temporary file, DynamoDB Local
//!   tables with unique names).
//!
//! A crate's own unit tests cannot use a dev-dependency that depends on that crate: they
//! would see a second copy of its types. So the kit depends on `orders-domain` and, behind
//! `stores`, on `orders-store` only; `orders-domain`'s tests that use it are integration tests
//! (`domain/tests/`), and `orders-store` keeps its contract suite's own fixtures.

pub mod apigw;
pub mod decider;
pub mod env;
pub mod fixtures;
pub mod fuzz;
pub mod problem;
#[cfg(feature = "stores")]
pub mod stored;
#[cfg(feature = "stores")]
pub mod stores;
