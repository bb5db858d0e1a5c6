//! The `command-api` Lambda: DESIGN §4 over DynamoDB, behind API Gateway (REST or HTTP API).

use axum::middleware::map_response;
use axum::response::Response;
use orders_handlers::lambda::{self, Api, Error};
use orders_handlers::{Stores, command_router};
use orders_store::dynamodb::{self, DynamoStore};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = lambda::init(Api::Commands).await?;
    // The endpoint comes from the SDK's own variables (AWS_ENDPOINT_URL_DYNAMODB), if any.
    let store = DynamoStore::new(dynamodb::client(None).await, config.tables);
    // Each request is one invocation: its metrics are EMF log lines before it returns.
    let router = command_router(Stores::shared(store), config.http).layer(map_response(flush));
    lambda::run(router).await
}

async fn flush(response: Response) -> Response {
    orders_lambda::metrics::flush();
    response
}
