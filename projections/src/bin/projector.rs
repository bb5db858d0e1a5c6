//! The `projector` Lambda: DESIGN §6 on the events table's DynamoDB stream.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use orders_lambda::metrics;
use orders_projections::Projector;
use orders_projections::lambda::{self, Error};
use orders_projections::stream::{self, DynamoDbEvent};
use orders_store::dynamodb::{self, DynamoStore};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let tables = lambda::init_projector().await?;
    // The endpoint comes from the SDK's own variables (AWS_ENDPOINT_URL_DYNAMODB), if any.
    let store = Arc::new(DynamoStore::new(dynamodb::client(None).await, tables));
    let projector = &Projector::new(store.clone(), store);
    // Each invocation's metrics are EMF log lines before it returns.
    lambda_runtime::run(service_fn(|event: LambdaEvent<DynamoDbEvent>| {
        metrics::flushed(async move { stream::project(projector, &event.payload).await })
    }))
    .await
}
