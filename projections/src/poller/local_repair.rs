//! The repair of DynamoDB Local's Streams responses, for endpoints other than AWS's only.
//!
//! DynamoDB Local's `GetRecords` (reported for 3.x, not 2.6.1 nor the AWS service) renders
//! an empty map attribute in a stream record's image, `{"M": {}}` (e.g. the `data` of an
//! `OrderConfirmed`), as a bare `{}` without its type, which no AWS SDK can parse: the
//! attribute's type is missing already in the raw HTTP body, while `GetItem` of the same item
//! is correct (<https://github.com/awslabs/amazon-dynamodb-local-samples/issues/37>, which
//! reports an empty list, `{"L": []}`, rendered as `{}` too). [`EmptyMapFix`] wraps the
//! Streams client's HTTP client: it restores `{"M": {}}` for every bare `{}` in
//! `Records[].dynamodb.{Keys,NewImage,OldImage}`, at any depth, before the SDK reads the
//! body (an empty list, which the body cannot tell from an empty map, becomes an empty map).
//! AWS itself never sends `{}` there; [`super::StreamReader::connect`] installs the repair
//! only for an `endpoint_url`.

use aws_sdk_dynamodbstreams::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use serde_json::Value;

/// The Streams client's HTTP client, with successful responses repaired ([`fix_records`]).
#[derive(Debug)]
pub(super) struct EmptyMapFix(pub(super) SharedHttpClient);

impl HttpClient for EmptyMapFix {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FixingConnector(self.0.http_connector(settings, components)))
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[derive(Debug)]
struct FixingConnector(SharedHttpConnector);

impl HttpConnector for FixingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.0.clone();
        HttpConnectorFuture::new(async move {
            let mut response = inner.call(request).await?;
            if !response.status().is_success() {
                return Ok(response);
            }
            let body = ByteStream::new(response.take_body())
                .collect()
                .await
                .map_err(|e| ConnectorError::io(Box::new(e)))?
                .into_bytes();
            let mut json = serde_json::from_slice::<Value>(&body).ok();
            let changed = json.as_mut().is_some_and(fix_records);
            let fixed = match json.filter(|_| changed) {
                Some(json) => {
                    // The body changed: its length and checksum headers no longer hold.
                    response.headers_mut().remove("content-length");
                    response.headers_mut().remove("x-amz-crc32");
                    serde_json::to_vec(&json).expect("JSON re-encodes")
                }
                None => body.to_vec(),
            };
            *response.body_mut() = SdkBody::from(fixed);
            Ok(response)
        })
    }
}

/// Restores empty maps in `Records[].dynamodb.{Keys,NewImage,OldImage}`; whether any was.
fn fix_records(json: &mut Value) -> bool {
    let Some(records) = json.get_mut("Records").and_then(Value::as_array_mut) else {
        return false;
    };
    let mut fixed = false;
    for record in records {
        for image in ["Keys", "NewImage", "OldImage"] {
            if let Some(Value::Object(attributes)) = record
                .get_mut("dynamodb")
                .and_then(|change| change.get_mut(image))
            {
                for value in attributes.values_mut() {
                    fixed |= fix_attribute(value);
                }
            }
        }
    }
    fixed
}

fn fix_attribute(value: &mut Value) -> bool {
    let Value::Object(map) = value else {
        return false;
    };
    if map.is_empty() {
        *value = serde_json::json!({"M": {}});
        return true;
    }
    let mut fixed = false;
    if let Some(Value::Object(inner)) = map.get_mut("M") {
        for v in inner.values_mut() {
            fixed |= fix_attribute(v);
        }
    }
    if let Some(Value::Array(items)) = map.get_mut("L") {
        for v in items {
            fixed |= fix_attribute(v);
        }
    }
    fixed
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn empty_maps_in_images_are_restored_at_any_depth() {
        let mut body = json!({"Records": [{"dynamodb": {
            "Keys": {"orderId": {"S": "o"}},
            "NewImage": {"data": {}, "meta": {"M": {"x": {}, "l": {"L": [{}]}}}}
        }}]});
        assert!(super::fix_records(&mut body));
        assert_eq!(
            body["Records"][0]["dynamodb"]["NewImage"],
            json!({"data": {"M": {}}, "meta": {"M": {"x": {"M": {}}, "l": {"L": [{"M": {}}]}}}})
        );
        let mut clean = json!({"Records": [{"dynamodb": {"NewImage": {"data": {"M": {}}}}}]});
        assert!(!super::fix_records(&mut clean));
    }
}
