//! A store for one test: SQLite on a temporary file, or fresh tables on DynamoDB Local.

use aws_sdk_dynamodb::Client;
use orders_store::dynamodb::{DynamoTables, create_tables};
use orders_store::sqlite::SqliteStore;
use tempfile::TempDir;

/// A fresh SQLite store on a temporary file; keep the directory alive as long as the store.
pub fn sqlite() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("orders.db")).unwrap();
    (dir, store)
}

/// The DynamoDB Local endpoint the test command started (`DYNAMODB_ENDPOINT`). Unset means
/// the emulator is not running, which fails the test: these tests never skip.
pub fn dynamodb_endpoint() -> String {
    match std::env::var("DYNAMODB_ENDPOINT") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "DYNAMODB_ENDPOINT is not set: DynamoDB Local is not running. Run ./scripts/test.sh, \
             which installs and starts it, or wrap the command in ./scripts/dynamodb-local.sh with ..."
        ),
    }
}

/// Table names no other test uses: `{prefix}-events-{suffix}` and so on.
pub fn unique_tables(prefix: &str) -> DynamoTables {
    let suffix = uuid::Uuid::now_v7().simple();
    DynamoTables {
        events: format!("{prefix}-events-{suffix}"),
        orders: format!("{prefix}-orders-{suffix}"),
        idempotency: format!("{prefix}-idempotency-{suffix}"),
    }
}

/// Creates fresh [`unique_tables`]; panics if DynamoDB Local does not create them.
pub async fn create_unique_tables(client: &Client, prefix: &str) -> DynamoTables {
    let tables = unique_tables(prefix);
    create_tables(client, &tables).await.unwrap_or_else(|err| {
        panic!(
            "creating the test tables on DynamoDB Local failed: {err}. Is it running at \
             DYNAMODB_ENDPOINT?"
        )
    });
    tables
}
