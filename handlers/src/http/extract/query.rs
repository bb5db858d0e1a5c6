//! The query string: known parameters only, each at most once, every error reported.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use orders_domain::FieldError;

use crate::http::ApiError;

/// The raw query parameters, in order.
#[derive(Debug, Clone)]
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| Self(pairs))
            .map_err(|_| ApiError::field("query", "the query string is malformed"))
    }
}

impl QueryParams {
    /// Keeps the `allowed` parameters; unknown and repeated ones are field errors.
    pub fn only(self, allowed: &[&'static str]) -> Params {
        let mut params = Params {
            values: BTreeMap::new(),
            errors: Vec::new(),
        };
        for (name, value) in self.0 {
            match allowed.iter().find(|a| **a == name) {
                None => params.error(&name, "is not a known query parameter"),
                Some(known) => {
                    if params.values.insert(known, value).is_some() {
                        params.error(known, "must be given at most once");
                    }
                }
            }
        }
        params
    }
}

/// Query parameters being parsed; errors accumulate so that all of them are reported.
#[derive(Debug)]
pub struct Params {
    values: BTreeMap<&'static str, String>,
    errors: Vec<FieldError>,
}

impl Params {
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Parses `name` if present; a parse failure is recorded and yields `None`.
    pub fn take<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.values.remove(name)?;
        match parse(&raw) {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(name, message);
                None
            }
        }
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// `Err(400)` listing every error recorded so far.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid("invalid query parameters", self.errors))
        }
    }
}

/// A positive integer parameter within `range`.
pub fn integer_in(raw: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, String> {
    let message = || {
        format!(
            "must be an integer from {} to {}",
            range.start(),
            range.end()
        )
    };
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(message());
    }
    raw.parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(message)
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn integer_parameters() {
        assert_eq!(integer_in("20", 1..=100), Ok(20));
        for bad in ["0", "101", "", "-1", "+1", "1.0", "99999999999999999999999"] {
            assert!(integer_in(bad, 1..=100).is_err(), "{bad}");
        }
    }
}
