//! The `command-api` Lambda: DESIGN §4 over DynamoDB, behind API Gateway (REST or HTTP API).

use orders_handlers::lambda::{self, Api, Error};
use orders_handlers::{Stores, command_router};
use orders_store::dynamodb::{self, DynamoStore};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = lambda::init(Api::Commands).await?;
    // The endpoint comes from the SDK's own variables (AWS_ENDPOINT_URL_DYNAMODB), if any.
    let store = DynamoStore::new(dynamodb::client(None).await, config.tables);
    lambda::run(command_router(Stores::shared(store), config.http)).await
}
