//! API Gateway proxy events in the canonical AWS shapes: the `aws_lambda_events` sample events
//! kept in `handlers/src/lambda/fixtures/`, with our method, path, query, headers and body.

use serde_json::{Map, Value, json};

const V2_SAMPLE: &str = include_str!("../../handlers/src/lambda/fixtures/apigw-v2-request.json");
const V1_SAMPLE: &str = include_str!("../../handlers/src/lambda/fixtures/apigw-rest-request.json");

/// An HTTP API (payload 2.0) event on the `$default` stage. `query` is the raw query string.
pub fn v2(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Value {
    let mut event: Value = serde_json::from_str(V2_SAMPLE).expect("the v2 sample");
    let mut all = Map::new();
    all.insert(
        "host".into(),
        json!("id.execute-api.us-east-1.amazonaws.com"),
    );
    if body.is_some()
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        all.insert("content-type".into(), json!("application/json"));
    }
    for (name, value) in headers {
        all.insert(name.to_ascii_lowercase(), json!(value));
    }
    event["rawPath"] = json!(path);
    event["rawQueryString"] = json!(query);
    event["queryStringParameters"] = json!({});
    event["pathParameters"] = json!({});
    event["headers"] = Value::Object(all);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(path);
    event["body"] = body.map_or(Value::Null, |b| json!(b.to_string()));
    event["isBase64Encoded"] = json!(false);
    event
}

/// A REST API (payload 1.0) event on the sample's stage `testStage`, resource `/{proxy+}`.
/// `query` holds decoded `name=value` pairs.
pub fn v1(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Value {
    let mut event: Value = serde_json::from_str(V1_SAMPLE).expect("the v1 sample");
    let mut own: Vec<(&str, &str)> = headers.to_vec();
    if body.is_some()
        && !own
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        own.push(("Content-Type", "application/json"));
    }
    for field in ["headers", "multiValueHeaders"] {
        let map = event[field].as_object_mut().expect("sample headers");
        map.retain(|name, _| {
            !name.eq_ignore_ascii_case("content-type")
                && !own.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
        });
        for (name, value) in &own {
            let value = if field == "headers" {
                json!(value)
            } else {
                json!([value])
            };
            map.insert((*name).to_owned(), value);
        }
    }
    let stage = event["requestContext"]["stage"]
        .as_str()
        .unwrap_or("testStage")
        .to_owned();
    event["httpMethod"] = json!(method);
    event["path"] = json!(path);
    event["pathParameters"] = json!({"proxy": path.trim_start_matches('/')});
    let (single, multi) = if query.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (
            query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect(),
            query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!([v])))
                .collect(),
        )
    };
    event["queryStringParameters"] = single;
    event["multiValueQueryStringParameters"] = multi;
    event["requestContext"]["path"] = json!(format!("/{stage}{path}"));
    event["requestContext"]["httpMethod"] = json!(method);
    event["body"] = body.map_or(Value::Null, |b| json!(b.to_string()));
    event["isBase64Encoded"] = json!(false);
    event
}

/// The parts of an API Gateway response (either payload version) a test looks at.
#[derive(Debug)]
pub struct GatewayResponse {
    pub status: u16,
    /// Lower-case header name -> value (repeated values joined with `, `).
    pub headers: Map<String, Value>,
    pub body: Value,
}

impl GatewayResponse {
    pub fn parse(raw: &Value) -> GatewayResponse {
        let status = raw["statusCode"].as_u64().expect("statusCode") as u16;
        let mut headers = Map::new();
        if let Some(map) = raw["headers"].as_object() {
            for (name, value) in map {
                headers.insert(name.to_ascii_lowercase(), value.clone());
            }
        }
        if let Some(map) = raw["multiValueHeaders"].as_object() {
            for (name, values) in map {
                let joined = values
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                headers.insert(name.to_ascii_lowercase(), json!(joined));
            }
        }
        let body = raw["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        GatewayResponse {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }
}
