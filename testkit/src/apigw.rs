//! API Gateway proxy events in the canonical AWS shapes: the repository's sample events in
//! `events/` (`aws_lambda_events`' samples made into our requests: an HTTP API payload 2.0
//! request, and a REST API payload 1.0 request on stage `testStage`), with a [`Call`]'s method,
//! path, query, headers and body put in. The same files are what `cargo lambda invoke` sends
//! in the README's dev loop; tests/lambda_events.rs checks that they drive the functions.

use serde_json::{Map, Value, json};

const V2_SAMPLE: &str = include_str!("../../events/command-api.create-order.apigw-v2.json");
const V1_SAMPLE: &str = include_str!("../../events/query-api.get-order.apigw-rest.json");

/// One request, put into either sample event.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    method: &'a str,
    path: &'a str,
    /// Decoded `name=value` pairs.
    query: &'a [(&'a str, &'a str)],
    /// The query string as the client sent it, in place of `query`'s (payload 2.0 only).
    raw_query: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
    body: Option<String>,
}

impl<'a> Call<'a> {
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Self {
            method,
            path,
            query: &[],
            raw_query: None,
            headers: &[],
            body: None,
        }
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string());
        self
    }

    pub fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }

    pub fn query(mut self, query: &'a [(&'a str, &'a str)]) -> Self {
        self.query = query;
        self
    }

    /// A raw query string (hostile bytes, escapes) for `rawQueryString`, as an HTTP API event
    /// carries it; a REST event has decoded parameters only, so [`Call::v1`] refuses it.
    pub fn raw_query(mut self, raw: &'a str) -> Self {
        self.raw_query = Some(raw);
        self
    }

    /// `application/json` when there is a body and the call names no content type itself.
    fn content_type(&self) -> Option<(&'a str, &'a str)> {
        let named = self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        (self.body.is_some() && !named).then_some(("content-type", "application/json"))
    }

    /// The HTTP API sample event, on the `$default` stage and route.
    pub fn v2(&self) -> Value {
        self.v2_on_stage("$default")
    }

    /// The HTTP API sample event on `stage`: a named stage is part of `rawPath`.
    pub fn v2_on_stage(&self, stage: &str) -> Value {
        let mut event: Value = serde_json::from_str(V2_SAMPLE).expect("the v2 sample");
        let raw_path = if stage == "$default" {
            self.path.to_owned()
        } else {
            format!("/{stage}{}", self.path)
        };
        let raw_query = self.raw_query.map_or_else(
            || {
                self.query
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            },
            str::to_owned,
        );
        let mut headers = Map::new();
        headers.insert(
            "host".into(),
            json!("id.execute-api.us-east-1.amazonaws.com"),
        );
        for (name, value) in self.headers.iter().copied().chain(self.content_type()) {
            headers.insert(name.to_ascii_lowercase(), json!(value));
        }
        event["rawPath"] = json!(raw_path);
        event["rawQueryString"] = json!(raw_query);
        event["queryStringParameters"] = self.query_map();
        event["headers"] = Value::Object(headers);
        event["pathParameters"] = json!({});
        event["requestContext"]["stage"] = json!(stage);
        event["requestContext"]["requestId"] = json!("apigw-v2-request-id");
        event["requestContext"]["http"]["method"] = json!(self.method);
        event["requestContext"]["http"]["path"] = json!(raw_path);
        event["body"] = self.body.as_ref().map_or(Value::Null, |b| json!(b));
        event["isBase64Encoded"] = json!(false);
        event
    }

    /// The REST API sample event (stage `testStage`, resource `/{proxy+}`).
    pub fn v1(&self) -> Value {
        assert!(
            self.raw_query.is_none(),
            "a REST API event carries decoded query parameters only"
        );
        let mut event: Value = serde_json::from_str(V1_SAMPLE).expect("the v1 sample");
        let stage = event["requestContext"]["stage"]
            .as_str()
            .expect("the sample's stage")
            .to_owned();
        let own: Vec<(&str, &str)> = self
            .headers
            .iter()
            .copied()
            .chain(self.content_type())
            .collect();
        for field in ["headers", "multiValueHeaders"] {
            let headers = event[field].as_object_mut().expect("the sample's headers");
            headers.retain(|name, _| {
                !name.eq_ignore_ascii_case("content-type")
                    && !own.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
            });
            for (name, value) in &own {
                let value = if field == "headers" {
                    json!(value)
                } else {
                    json!([value])
                };
                headers.insert((*name).to_owned(), value);
            }
        }
        event["httpMethod"] = json!(self.method);
        event["path"] = json!(self.path);
        event["pathParameters"] = json!({"proxy": self.path.trim_start_matches('/')});
        if self.query.is_empty() {
            event["queryStringParameters"] = Value::Null;
            event["multiValueQueryStringParameters"] = Value::Null;
        } else {
            event["queryStringParameters"] = self.query_map();
            event["multiValueQueryStringParameters"] = Value::Object(
                self.query
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), json!([v])))
                    .collect(),
            );
        }
        event["requestContext"]["path"] = json!(format!("/{stage}{}", self.path));
        event["requestContext"]["httpMethod"] = json!(self.method);
        event["requestContext"]["requestId"] = json!("apigw-v1-request-id");
        event["body"] = self.body.as_ref().map_or(Value::Null, |b| json!(b));
        event["isBase64Encoded"] = json!(false);
        event
    }

    fn query_map(&self) -> Value {
        Value::Object(
            self.query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect(),
        )
    }
}
