//! Who sent a request: the subject (`sub` claim) of the JWT that API Gateway's JWT authorizer
//! verified. The Lambda layer puts it in the request's extensions; without an authorizer (an
//! API deployed without one, or `orders serve`) there is none.
//!
//! It scopes idempotency keys: a key belongs to the caller who sent it, so no caller is ever
//! answered with another's replayed response, or refused with a 422 because another used the
//! same key first. Requests without a caller share one global scope.

use std::fmt;

use sha2::{Digest, Sha256};

/// An authenticated caller.
#[derive(Clone, PartialEq, Eq)]
pub struct Caller {
    subject: String,
}

impl Caller {
    /// The caller a JWT's `sub` names; `None` for an empty one, which names no one.
    pub fn from_subject(subject: impl Into<String>) -> Option<Self> {
        let subject = subject.into();
        (!subject.is_empty()).then_some(Self { subject })
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The scope of this caller's idempotency keys: `sub:` and the hex SHA-256 of the subject.
    /// Hashed because a `sub` is whatever the identity provider chose (any length, any
    /// character): the digest is always 68 bytes of `[0-9a-f:sub]`, so the record key stays
    /// well inside DynamoDB's 2048-byte partition key (68 + 1 + 255 = 324 bytes), never contains
    /// the record key's separator, and keeps the subject itself out of the idempotency table.
    pub fn idempotency_scope(&self) -> String {
        let digest = Sha256::digest(self.subject.as_bytes());
        let mut scope = String::with_capacity(4 + 2 * digest.len());
        scope.push_str("sub:");
        for byte in digest {
            scope.push_str(&format!("{byte:02x}"));
        }
        scope
    }
}

impl fmt::Debug for Caller {
    // The subject is an account identifier: logs see its scope, never the subject itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Caller")
            .field(&self.idempotency_scope())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use orders_store::IdempotencyKey;

    use super::*;

    fn record_key(subject: &str, key: &str) -> IdempotencyKey {
        let caller = Caller::from_subject(subject).unwrap();
        IdempotencyKey::parse(key)
            .unwrap()
            .within(&caller.idempotency_scope())
    }

    #[test]
    fn an_empty_subject_is_no_caller() {
        assert_eq!(Caller::from_subject(""), None);
        assert_eq!(Caller::from_subject("a").unwrap().subject(), "a");
    }

    #[test]
    fn record_keys_of_different_callers_never_collide() {
        // Separators in the subject cannot shift the boundary between subject and key.
        assert_ne!(record_key("a:b", "c"), record_key("a", "b:c"));
        assert_ne!(record_key("a\u{1f}b", "c"), record_key("a", "b:c"));
        assert_ne!(record_key("alice", "k"), record_key("bob", "k"));
        assert_eq!(record_key("alice", "k"), record_key("alice", "k"));

        // No key a client can send (printable ASCII) spells a scoped record key, so a request
        // without a caller never reaches a caller's record either.
        let scoped = record_key("alice", "k");
        assert_ne!(scoped, IdempotencyKey::parse("k").unwrap());
        assert!(
            IdempotencyKey::parse(scoped.as_str()).is_err(),
            "{scoped:?}"
        );
    }

    #[test]
    fn record_keys_fit_dynamodb_whatever_the_subject() {
        let subject = "very-long-subject-".repeat(10_000);
        let longest_key = "k".repeat(IdempotencyKey::MAX_LEN);
        let record = record_key(&subject, &longest_key);
        assert_eq!(record.as_str().len(), 68 + 1 + IdempotencyKey::MAX_LEN);
        assert!(
            record.as_str().len() <= 2048,
            "DynamoDB's partition key limit"
        );
        assert!(!record.as_str().contains("very-long-subject-"));
    }

    #[test]
    fn debug_never_prints_the_subject() {
        let caller = Caller::from_subject("alice@example.com").unwrap();
        assert!(!format!("{caller:?}").contains("alice"));
    }
}
