//! The `projector` Lambda: DESIGN §6 on the events table's DynamoDB stream.

#[tokio::main]
async fn main() -> Result<(), orders_projections::lambda::Error> {
    orders_projections::lambda::run_projector().await
}
