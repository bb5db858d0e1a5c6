//! The contract suite on DynamoDB Local, plus what only DynamoDB has: table creation, the item
//! layout of DESIGN §3, loads past 1 MB, and the faults DynamoDB Local never produces.
//!
//! Faults are injected by an SDK interceptor ([`Fault`]) on an otherwise normal client: the
//! faulted attempt sends DynamoDB Local a harmless `ListTables` instead of the real request (so
//! it cannot write anything), and its response is replaced by a canned DynamoDB error. The
//! SDK's real error parsing and retry logic, and this adapter's mapping, all run as they would
//! on AWS; every other call goes to DynamoDB Local.
//!
//! These tests need DynamoDB Local at `DYNAMODB_ENDPOINT`. Without it they fail, never skip.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryPartition;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use uuid::Uuid;

use super::{DynamoStore, DynamoTables, create_tables};
use crate::aws::{retry_config, timeout_config};
use crate::contract::Backend;

mod faults;
mod fixtures;
mod inject;
mod items;
mod put_event;
mod tables;

use self::inject::Fault;

const NOT_RUNNING: &str = "DynamoDB Local is not running: run ./scripts/test.sh, or start it \
     with scripts/dynamodb-local.sh and export DYNAMODB_ENDPOINT=http://127.0.0.1:<port>";

fn endpoint() -> String {
    match std::env::var("DYNAMODB_ENDPOINT") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!("{NOT_RUNNING} (DYNAMODB_ENDPOINT is unset)"),
    }
}

/// A client for `endpoint` with the adapter's timeouts and retries, the environment's
/// credentials and region if set (dummy ones otherwise: DynamoDB Local accepts any), and its
/// own retry partition, so one test's throttling cannot drain another's retry quota.
fn config(endpoint: &str) -> aws_sdk_dynamodb::config::Builder {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let credentials = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            Credentials::new(id, secret, env("AWS_SESSION_TOKEN"), None, "environment")
        }
        _ => Credentials::new("local", "local", None, None, "orders-store-tests"),
    };
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .timeout_config(timeout_config())
        .retry_config(retry_config())
        .retry_partition(RetryPartition::new(format!("test-{}", Uuid::now_v7())))
}

fn local_client() -> Client {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Client::from_conf(config(&endpoint()).build())
}

fn faulty_client(fault: &Fault) -> Client {
    Client::from_conf(config(&endpoint()).interceptor(fault.clone()).build())
}

async fn fresh_tables(client: &Client) -> DynamoTables {
    let suffix = Uuid::now_v7().simple();
    let tables = DynamoTables {
        events: format!("test-{suffix}-events"),
        orders: format!("test-{suffix}-orders"),
        idempotency: format!("test-{suffix}-idempotency"),
    };
    create_tables(client, &tables)
        .await
        .unwrap_or_else(|err| panic!("creating the test tables failed: {err}. {NOT_RUNNING}"));
    tables
}

/// Each `fresh` store gets three new tables on DynamoDB Local.
struct DynamoLocal {
    client: Client,
}

impl DynamoLocal {
    fn new() -> Self {
        Self {
            client: local_client(),
        }
    }
}

impl Backend for DynamoLocal {
    type Store = DynamoStore;
    async fn fresh(&self) -> DynamoStore {
        DynamoStore::new(self.client.clone(), fresh_tables(&self.client).await)
    }
}

crate::store_contract_tests!(DynamoLocal::new());
