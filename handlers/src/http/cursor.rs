//! Opaque listing cursors: `base64url(payload ‖ HMAC-SHA256(key, payload))`, where the payload
//! is JSON `{v, filter, after}`. The store's page key never comes back from a client unsigned,
//! and a cursor made for one listing cannot be replayed against another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use orders_store::{ListFilter, PageKey};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

const TAG_LEN: usize = 32;
const VERSION: u8 = 1;
/// Far above any cursor this API issues; refuses to decode junk of arbitrary size.
const MAX_CURSOR_CHARS: usize = 4096;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum CursorError {
    #[error("is not a valid cursor")]
    Invalid,
    #[error("belongs to a different listing")]
    OtherListing,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    v: u8,
    filter: String,
    after: PageKey,
}

/// Signs and verifies cursors with one key. Every instance serving a listing (e.g. each
/// query-api Lambda) must share the key, or cursors break across instances.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

impl CursorCodec {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    pub fn encode(&self, filter: &ListFilter, after: &PageKey) -> String {
        let payload = serde_json::to_vec(&Payload {
            v: VERSION,
            filter: identity(filter),
            after: after.clone(),
        })
        .expect("a JSON value always serializes");
        let mut token = payload.clone();
        token.extend_from_slice(&self.mac(&payload).finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The page key, if `cursor` was made by [`encode`](Self::encode) with this key for `filter`.
    pub fn decode(&self, filter: &ListFilter, cursor: &str) -> Result<PageKey, CursorError> {
        if cursor.len() > MAX_CURSOR_CHARS {
            return Err(CursorError::Invalid);
        }
        let token = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| CursorError::Invalid)?;
        if token.len() <= TAG_LEN {
            return Err(CursorError::Invalid);
        }
        let (payload, tag) = token.split_at(token.len() - TAG_LEN);
        // Constant-time comparison.
        self.mac(payload)
            .verify_slice(tag)
            .map_err(|_| CursorError::Invalid)?;
        let payload: Payload = serde_json::from_slice(payload).map_err(|_| CursorError::Invalid)?;
        if payload.v != VERSION {
            return Err(CursorError::Invalid);
        }
        if payload.filter != identity(filter) {
            return Err(CursorError::OtherListing);
        }
        Ok(payload.after)
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(payload);
        mac
    }
}

fn identity(filter: &ListFilter) -> String {
    match filter {
        ListFilter::Customer(customer) => format!("customer:{customer}"),
        ListFilter::Status(status) => format!("status:{status}"),
    }
}

#[cfg(test)]
mod tests {
    use orders_domain::{CustomerId, OrderStatus};
    use serde_json::json;

    use super::*;

    fn customer(id: &str) -> ListFilter {
        ListFilter::Customer(CustomerId::parse(id).unwrap())
    }

    #[test]
    fn round_trip_and_refusals() {
        let codec = CursorCodec::new(b"secret".to_vec());
        let key = PageKey(json!({"createdAt": "2026-01-01T00:00:00.000Z", "orderId": "x"}));
        let filter = customer("c-1");
        let cursor = codec.encode(&filter, &key);
        assert_eq!(codec.decode(&filter, &cursor), Ok(key.clone()));

        assert_eq!(
            codec.decode(&customer("c-2"), &cursor),
            Err(CursorError::OtherListing)
        );
        assert_eq!(
            codec.decode(&ListFilter::Status(OrderStatus::Pending), &cursor),
            Err(CursorError::OtherListing)
        );
        let other_key = CursorCodec::new(b"other".to_vec());
        assert_eq!(
            other_key.decode(&filter, &cursor),
            Err(CursorError::Invalid)
        );

        // Flip one bit anywhere: the signature no longer verifies.
        let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        for i in [0, bytes.len() / 2, bytes.len() - 1] {
            bytes[i] ^= 1;
            let tampered = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(codec.decode(&filter, &tampered), Err(CursorError::Invalid));
            bytes[i] ^= 1;
        }
        for junk in ["", "!!!", "abc", &"A".repeat(5000)] {
            assert_eq!(codec.decode(&filter, junk), Err(CursorError::Invalid));
        }
    }
}
