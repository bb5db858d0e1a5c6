//! `lambda-hello`: the hello-world `lambda_runtime` bootstrap that `lambda-bench` compares the
//! API bootstraps' INIT with (same build, same profile, same tokio runtime).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({"message": "hello"}))
    }))
    .await
}
