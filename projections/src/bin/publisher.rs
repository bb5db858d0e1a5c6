//! The `publisher` Lambda: DESIGN §6 on the events table's DynamoDB stream.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use orders_lambda::metrics;
use orders_projections::Publisher;
use orders_projections::eventbridge::EventBridgeBus;
use orders_projections::lambda::{self, Error};
use orders_projections::stream::{self, DynamoDbEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = lambda::init_publisher().await?;
    // The endpoint comes from the SDK's own variables (AWS_ENDPOINT_URL_EVENTBRIDGE), if any.
    let bus = Arc::new(EventBridgeBus::connect(None).await);
    let publisher = &Publisher::new(bus, config);
    // Each invocation's metrics are EMF log lines before it returns.
    lambda_runtime::run(service_fn(|event: LambdaEvent<DynamoDbEvent>| {
        metrics::flushed(async move { stream::publish(publisher, &event.payload).await })
    }))
    .await
}
