//! API Gateway proxy events in the canonical AWS shapes (the test kit's [`Call`]) as plain
//! functions, and the responses read back.

use orders_testkit::apigw::Call;
use serde_json::{Map, Value, json};

/// An HTTP API (payload 2.0) event on the `$default` stage. `query` is the raw query string.
pub fn v2(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Value {
    call(method, path, headers, body).raw_query(query).v2()
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
    call(method, path, headers, body).query(query).v1()
}

fn call<'a>(
    method: &'a str,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: Option<&Value>,
) -> Call<'a> {
    let call = Call::new(method, path).headers(headers);
    match body {
        Some(body) => call.json(body),
        None => call,
    }
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
