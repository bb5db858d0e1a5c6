//! The [`Bus`] on Amazon EventBridge: one `PutEvents` call per batch the publisher forms.
//!
//! The per-entry results are passed back as they come (`FailedEntryCount` is the number of
//! entries with an `ErrorCode`); the publisher retries exactly the failed ones. A call that
//! fails as a whole is [`BusError::Unavailable`] when retrying can help (throttling, no
//! answer, a service fault, after the SDK's own bounded retries) and [`BusError::Rejected`]
//! when it cannot (validation, permissions, a bus that does not exist).

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use orders_store::aws::{self, SdkFailure};

use crate::publisher::{Bus, BusEntry, BusError, EntryResult};

/// EventBridge through the AWS SDK. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EventBridgeBus {
    client: Client,
}

impl EventBridgeBus {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A client from [`aws::sdk_config`]: `endpoint_url`, else `AWS_ENDPOINT_URL_EVENTBRIDGE` /
    /// `AWS_ENDPOINT_URL`, else AWS itself.
    pub async fn connect(endpoint_url: Option<&str>) -> Self {
        let config = aws::sdk_config(endpoint_url, "AWS_ENDPOINT_URL_EVENTBRIDGE").await;
        Self::new(Client::new(&config))
    }
}

#[async_trait]
impl Bus for EventBridgeBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<EntryResult>, BusError> {
        let request = entries
            .iter()
            .map(|entry| {
                PutEventsRequestEntry::builder()
                    .source(&entry.source)
                    .detail_type(&entry.detail_type)
                    .detail(&entry.detail)
                    .set_event_bus_name(entry.event_bus_name.clone())
                    .build()
            })
            .collect::<Vec<_>>();
        let output = self
            .client
            .put_events()
            .set_entries(Some(request))
            .send()
            .await
            .map_err(|err| {
                let reason = aws::describe("EventBridge PutEvents", &err);
                match aws::classify(&err) {
                    SdkFailure::Throttled | SdkFailure::Unavailable => {
                        BusError::Unavailable(reason)
                    }
                    SdkFailure::Rejected => BusError::Rejected(reason),
                }
            })?;
        let results: Vec<EntryResult> = output
            .entries()
            .iter()
            .map(|entry| match entry.error_code() {
                Some(code) => EntryResult::Failed {
                    code: code.to_owned(),
                    message: entry.error_message().unwrap_or_default().to_owned(),
                },
                None => EntryResult::Accepted {
                    event_id: entry.event_id().map(str::to_owned),
                },
            })
            .collect();
        let failed = results
            .iter()
            .filter(|r| matches!(r, EntryResult::Failed { .. }))
            .count();
        if usize::try_from(output.failed_entry_count()).ok() != Some(failed) {
            // The entries are what the publisher acts on; the count is only cross-checked.
            tracing::warn!(
                failed_entry_count = output.failed_entry_count(),
                failed_entries = failed,
                "PutEvents' FailedEntryCount disagrees with its entries"
            );
        }
        Ok(results)
    }
}
