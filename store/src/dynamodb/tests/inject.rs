//! Faults DynamoDB Local never produces, injected by an SDK interceptor on a normal client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde_json::json;

use crate::dynamodb::DynamoStore;

use super::*;

/// Answers the first `times` attempts of `operation` with a canned error (the status and JSON
/// body DynamoDB sends), and counts the attempts. The faulted request itself is replaced by a
/// harmless one, unless the fault is a lost answer: then it reaches DynamoDB Local and only
/// its response is replaced, as when a timeout hides a write that landed.
#[derive(Debug, Clone)]
pub(super) struct Fault {
    operation: &'static str,
    status: u16,
    body: String,
    times: usize,
    request_lands: bool,
    attempts: Arc<AtomicUsize>,
}

#[derive(Debug)]
pub(super) struct Injected(bool);

impl Storable for Injected {
    type Storer = StoreReplace<Self>;
}

impl Fault {
    pub(super) fn new(operation: &'static str, body: serde_json::Value, times: usize) -> Self {
        Self {
            operation,
            status: 400,
            body: body.to_string(),
            times,
            request_lands: false,
            attempts: Arc::default(),
        }
    }

    /// The first `times` attempts of `operation` are carried out, but answered with a 500 (which
    /// the SDK retries): the caller cannot know they landed.
    pub(super) fn answer_lost(operation: &'static str, times: usize) -> Self {
        Self {
            status: 500,
            request_lands: true,
            ..Self::new(operation, internal_server_error(), times)
        }
    }

    pub(super) fn always(operation: &'static str, body: serde_json::Value) -> Self {
        Self::new(operation, body, usize::MAX)
    }

    pub(super) fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

impl Intercept for Fault {
    fn name(&self) -> &'static str {
        "FaultInjection"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or_default();
        let inject = target.strip_prefix("DynamoDB_20120810.") == Some(self.operation)
            && self.attempts.fetch_add(1, Ordering::SeqCst) < self.times;
        if inject && !self.request_lands {
            // DynamoDB Local gets a harmless read instead, so a faulted attempt writes nothing.
            let request = context.request_mut();
            request
                .headers_mut()
                .insert("x-amz-target", "DynamoDB_20120810.ListTables");
            request.headers_mut().insert("content-length", "2");
            *request.body_mut() = SdkBody::from("{}");
        }
        cfg.interceptor_state().store_put(Injected(inject));
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Injected>().is_some_and(|injected| injected.0) {
            let response = context.response_mut();
            *response.status_mut() = StatusCode::try_from(self.status).expect("a status code");
            let headers = response.headers_mut();
            headers.insert("content-type", "application/x-amz-json-1.0");
            headers.insert("content-length", self.body.len().to_string());
            headers.remove("x-amz-crc32");
            *response.body_mut() = SdkBody::from(self.body.clone());
        }
        Ok(())
    }
}

pub(super) const DYNAMODB: &str = "com.amazonaws.dynamodb.v20120810";

pub(super) fn cancelled(codes: &[&str]) -> serde_json::Value {
    json!({
        "__type": format!("{DYNAMODB}#TransactionCanceledException"),
        "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons {codes:?}"),
        "CancellationReasons": codes.iter().map(|code| json!({"Code": code})).collect::<Vec<_>>(),
    })
}

pub(super) fn throttling() -> serde_json::Value {
    json!({
        "__type": "com.amazon.coral.availability#ThrottlingException",
        "message": "Rate of requests exceeds the allowed throughput.",
    })
}

pub(super) fn internal_server_error() -> serde_json::Value {
    json!({
        "__type": format!("{DYNAMODB}#InternalServerError"),
        "message": "Internal server error",
    })
}

pub(super) fn transaction_conflict() -> serde_json::Value {
    json!({
        "__type": format!("{DYNAMODB}#TransactionConflictException"),
        "message": "Transaction is ongoing for the item",
    })
}

pub(super) fn throughput_exceeded() -> serde_json::Value {
    json!({
        "__type": format!("{DYNAMODB}#ProvisionedThroughputExceededException"),
        "message": "The level of configured provisioned throughput for the table was exceeded.",
    })
}

/// A store whose client carries `fault`, on fresh tables; and a clean store on the same tables
/// to look at what was really written.
pub(super) async fn faulty_store(fault: &Fault) -> (DynamoStore, DynamoStore) {
    let clean = local_client();
    let tables = fresh_tables(&clean).await;
    (
        DynamoStore::new(faulty_client(fault), tables.clone()),
        DynamoStore::new(clean, tables),
    )
}
