//! An EventBridge bus on the moto server with a rule that sends every `orders` event to an
//! SQS queue: what a subscriber of the bus receives, for the end-to-end tests.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orders_projections::{PublisherConfig, RetryPolicy};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::streams::moto_endpoint;

/// A bus on moto with a rule that sends every `orders` event to a new SQS queue.
pub struct BusWithQueue {
    pub bus_name: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl BusWithQueue {
    /// A new bus, rule and queue, named `<prefix>-<unique suffix>`, on `MOTO_ENDPOINT`.
    pub async fn create(prefix: &str) -> Self {
        let endpoint = moto_endpoint();
        let config =
            orders_store::aws::sdk_config(Some(&endpoint), "AWS_ENDPOINT_URL_EVENTBRIDGE").await;
        let events = aws_sdk_eventbridge::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let suffix = Uuid::now_v7().simple().to_string();
        let bus_name = format!("{prefix}-{suffix}");
        events
            .create_event_bus()
            .name(&bus_name)
            .send()
            .await
            .expect("create the bus");
        events
            .put_rule()
            .name("all-orders")
            .event_bus_name(&bus_name)
            .event_pattern(json!({"source": ["orders"]}).to_string())
            .send()
            .await
            .expect("put the rule");
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{prefix}-{suffix}"))
            .send()
            .await
            .expect("create the queue")
            .queue_url()
            .expect("the queue's URL")
            .to_owned();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("the queue's ARN");
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .expect("the queue has an ARN")
            .clone();
        events
            .put_targets()
            .rule("all-orders")
            .event_bus_name(&bus_name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()
                    .expect("a valid target"),
            )
            .send()
            .await
            .expect("target the queue");
        Self {
            bus_name,
            sqs,
            queue_url,
        }
    }

    /// Every message the queue holds now, as the EventBridge events they carry (the queue is
    /// drained: each page of messages is deleted with one batch call).
    pub async fn drain(&self) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            let messages = out.messages();
            if messages.is_empty() {
                return all;
            }
            let mut deletes = Vec::new();
            for (n, message) in messages.iter().enumerate() {
                all.push(
                    serde_json::from_str(message.body().expect("a message body"))
                        .expect("each message is an EventBridge event"),
                );
                deletes.push(
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(n.to_string())
                        .receipt_handle(message.receipt_handle().expect("a receipt handle"))
                        .build()
                        .expect("a valid delete entry"),
                );
            }
            let deleted = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(deletes))
                .send()
                .await
                .expect("delete the messages received");
            assert!(
                deleted.failed().is_empty(),
                "deletes failed: {:?}",
                deleted.failed()
            );
        }
    }

    /// Drains the queue in the background from now on, keeping the `eventId` of every event
    /// received. A queue left to fill up gets slow to read: moto looks through every message
    /// it holds for each `ReceiveMessage`, and a crash loop sends thousands.
    pub fn collect_in_background(&self) -> QueueCollector {
        let seen: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
        let queue = Self {
            bus_name: self.bus_name.clone(),
            sqs: self.sqs.clone(),
            queue_url: self.queue_url.clone(),
        };
        let task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    let mut received = HashSet::new();
                    queue.collect_event_ids(&mut received).await;
                    let idle = received.is_empty();
                    seen.lock().unwrap().extend(received);
                    if idle {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        };
        QueueCollector { seen, task }
    }

    /// [`drain`](Self::drain)s the queue into `seen`: the `eventId` of each event received.
    pub async fn collect_event_ids(&self, seen: &mut HashSet<Uuid>) {
        for message in self.drain().await {
            let id = message["detail"]["eventId"]
                .as_str()
                .and_then(|id| id.parse().ok())
                .unwrap_or_else(|| panic!("an event without an eventId: {message}"));
            seen.insert(id);
        }
    }

    /// A publisher configuration for this bus, with quick retries.
    pub fn publisher_config(&self) -> PublisherConfig {
        PublisherConfig {
            event_bus_name: Some(self.bus_name.clone()),
            retry: RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
            },
            ..PublisherConfig::default()
        }
    }
}

/// The `eventId`s a queue has received, collected by a background task (stopped on drop).
pub struct QueueCollector {
    seen: Arc<Mutex<HashSet<Uuid>>>,
    task: JoinHandle<()>,
}

impl QueueCollector {
    /// Every `eventId` received so far.
    pub fn seen(&self) -> HashSet<Uuid> {
        assert!(
            !self.task.is_finished(),
            "the queue's collector stopped (it panicked: see above)"
        );
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for QueueCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}
