//! Parsed values. Each newtype can only be built through `parse`, which enforces the limits
//! of the design (DESIGN §2), so the rest of the domain never re-validates.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::text::{self, TextKind};

/// A value that failed validation, with the JSON path of the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Re-roots the error under a parent path, e.g. `sku` -> `items[3].sku`.
    pub fn under(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Implements `Display` and a serde representation that re-validates on the way in, from the
/// type's `as_str` and `parse`. The plain form also writes `as_str` for a `String` newtype.
/// `stored = f` decodes with `f` instead of `parse`: for a value whose input rule was
/// tightened, so that what was stored under the older rule still loads (see `CustomerId`).
macro_rules! string_value {
    ($name:ident) => {
        string_value!($name, stored = $name::parse);
    };
    ($name:ident, stored = $decode:path) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        string_value!(@impls $name, $decode);
    };
    ($name:ident, as_str) => {
        string_value!(@impls $name, $name::parse);
    };
    (@impls $name:ident, $decode:path) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $decode(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An order id: a UUID (new ones are v7, so they sort by creation time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(Uuid);

impl OrderId {
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Uuid::try_parse(raw)
            .map(Self)
            .map_err(|_| FieldError::new("orderId", "must be a UUID"))
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// 1..=128 characters; no control, line-break or invisible format character ([`text`]).
///
/// Decoding stored data (events, views, cursors) applies the rule ids were first written
/// under, 1..=128 characters without control characters: the format-character rule came
/// later, and an id stored before it must still load rather than poison its order's
/// history. Only `parse`, the way in for clients, enforces the whole rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomerId(String);
string_value!(CustomerId, stored = CustomerId::decode_stored);

impl CustomerId {
    pub const MAX_CHARS: usize = 128;
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let stored = Self::decode_stored(raw)?;
        text::check(raw, TextKind::Identifier)
            .map_err(|message| FieldError::new("customerId", message))?;
        Ok(stored)
    }

    fn decode_stored(raw: &str) -> Result<Self, FieldError> {
        let err = |m: &str| FieldError::new("customerId", m);
        let chars = raw.chars().count();
        if chars == 0 {
            return Err(err("must not be empty"));
        }
        if chars > Self::MAX_CHARS {
            return Err(err("must be at most 128 characters"));
        }
        if raw.chars().any(char::is_control) {
            return Err(err("must not contain control characters"));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// An ISO 4217 code: three upper-case ASCII letters, kept inline (no allocation per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);
string_value!(Currency, as_str);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match <[u8; 3]>::try_from(raw.as_bytes()) {
            Ok(code) if code.iter().all(u8::is_ascii_uppercase) => Ok(Self(code)),
            _ => Err(FieldError::new(
                "currency",
                "must be an ISO 4217 code: three upper-case letters",
            )),
        }
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("parse admits ASCII letters only")
    }
}

/// 1..=64 characters of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sku(String);
string_value!(Sku);

impl Sku {
    pub const MAX_CHARS: usize = 64;
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let ok_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if (1..=Self::MAX_CHARS).contains(&raw.len()) && raw.bytes().all(ok_char) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "sku",
                "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
            ))
        }
    }
}

/// 1..=10 000 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 10_000;
    pub fn parse(raw: i64) -> Result<Self, FieldError> {
        match u32::try_from(raw) {
            Ok(q) if (1..=Self::MAX).contains(&q) => Ok(Self(q)),
            _ => Err(FieldError::new(
                "quantity",
                "must be an integer from 1 to 10000",
            )),
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Quantity::parse(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A price in integer minor units (cents), 0..=1 000 000 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UnitPrice(u64);

impl UnitPrice {
    pub const MAX: u64 = 1_000_000_000;
    pub fn parse(raw: i64) -> Result<Self, FieldError> {
        match u64::try_from(raw) {
            Ok(p) if p <= Self::MAX => Ok(Self(p)),
            _ => Err(FieldError::new(
                "unitPrice",
                "must be an integer number of minor units from 0 to 1000000000",
            )),
        }
    }
    pub fn get(self) -> u64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for UnitPrice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        UnitPrice::parse(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// An amount in integer minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(pub u64);

/// One order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub sku: Sku,
    pub quantity: Quantity,
    pub unit_price: UnitPrice,
}

impl LineItem {
    /// The line total, or `None` on overflow.
    pub fn subtotal(&self) -> Option<Money> {
        u64::from(self.quantity.0)
            .checked_mul(self.unit_price.0)
            .map(Money)
    }
}

/// 1..=100 lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Items(Vec<LineItem>);

impl Items {
    pub const MAX_LINES: usize = 100;
    pub fn parse(lines: Vec<LineItem>) -> Result<Self, FieldError> {
        if (1..=Self::MAX_LINES).contains(&lines.len()) {
            Ok(Self(lines))
        } else {
            Err(FieldError::new("items", "must have from 1 to 100 lines"))
        }
    }
    pub fn lines(&self) -> &[LineItem] {
        &self.0
    }
    /// Σ quantity × unitPrice with checked arithmetic; `None` on overflow.
    pub fn total(&self) -> Option<Money> {
        self.0
            .iter()
            .try_fold(0u64, |sum, line| sum.checked_add(line.subtotal()?.0))
            .map(Money)
    }
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Items::parse(Vec::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A cancel reason: 0..=500 characters of prose; no control, line-break or invisible format
/// character, except the joiners prose needs ([`text`]).
///
/// Decoding stored data applies the rule reasons were first written under, at most 500
/// characters: a reason stored before the character rule still loads (as `CustomerId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CancelReason(String);
string_value!(CancelReason, stored = CancelReason::decode_stored);

impl CancelReason {
    pub const MAX_CHARS: usize = 500;
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let stored = Self::decode_stored(raw)?;
        text::check(raw, TextKind::Prose).map_err(|message| FieldError::new("reason", message))?;
        Ok(stored)
    }

    fn decode_stored(raw: &str) -> Result<Self, FieldError> {
        if raw.chars().count() <= Self::MAX_CHARS {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new("reason", "must be at most 500 characters"))
        }
    }
}

/// A UTC instant with millisecond precision, rendered as RFC 3339 (`2026-01-02T03:04:05.678Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Truncates to whole milliseconds, the precision that is stored.
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Self::from_millis(at.timestamp_millis())
    }
    pub fn from_millis(millis: i64) -> Self {
        Self(
            Utc.timestamp_millis_opt(millis)
                .single()
                .unwrap_or_default(),
        )
    }
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        DateTime::parse_from_rfc3339(raw)
            .map(|t| Self::from_datetime(t.with_timezone(&Utc)))
            .map_err(|_| FieldError::new("occurredAt", "must be an RFC 3339 timestamp"))
    }
    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Timestamp::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_id_limits() {
        assert!(CustomerId::parse("c").is_ok());
        assert!(
            CustomerId::parse(&"é".repeat(128)).is_ok(),
            "limit counts characters, not bytes"
        );
        assert!(CustomerId::parse(&"x".repeat(129)).is_err());
        assert!(CustomerId::parse("").is_err());
        assert!(CustomerId::parse("a\nb").is_err());
        assert!(CustomerId::parse("a\u{7f}b").is_err());
    }

    #[test]
    fn currency_is_three_upper_case_letters() {
        assert!(Currency::parse("EUR").is_ok());
        for bad in ["eur", "EU", "EURO", "E1R", "ÉUR", ""] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sku_charset_and_length() {
        assert!(Sku::parse("A-z_0.9").is_ok());
        assert!(Sku::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "a/b", "ä"] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
        assert!(Sku::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn quantity_and_price_bounds() {
        assert!(Quantity::parse(0).is_err());
        assert_eq!(Quantity::parse(1).unwrap().get(), 1);
        assert_eq!(Quantity::parse(10_000).unwrap().get(), 10_000);
        assert!(Quantity::parse(10_001).is_err());
        assert!(Quantity::parse(-1).is_err());
        assert_eq!(UnitPrice::parse(0).unwrap().get(), 0);
        assert_eq!(
            UnitPrice::parse(1_000_000_000).unwrap().get(),
            1_000_000_000
        );
        assert!(UnitPrice::parse(1_000_000_001).is_err());
        assert!(UnitPrice::parse(-1).is_err());
    }

    #[test]
    fn items_count_and_checked_total() {
        let line = |q, p| LineItem {
            sku: Sku::parse("s").unwrap(),
            quantity: Quantity::parse(q).unwrap(),
            unit_price: UnitPrice::parse(p).unwrap(),
        };
        assert!(Items::parse(vec![]).is_err());
        assert!(Items::parse(vec![line(1, 1); 101]).is_err());
        let max = Items::parse(vec![line(10_000, 1_000_000_000); 100]).unwrap();
        assert_eq!(max.total(), Some(Money(1_000_000_000_000_000)));
        assert_eq!(
            Items::parse(vec![line(2, 150), line(3, 10)])
                .unwrap()
                .total(),
            Some(Money(330))
        );
    }

    #[test]
    fn cancel_reason_limit() {
        assert!(CancelReason::parse("").is_ok());
        assert!(CancelReason::parse(&"r".repeat(500)).is_ok());
        assert!(CancelReason::parse(&"r".repeat(501)).is_err());
    }

    #[test]
    fn customer_ids_refuse_invisible_format_characters() {
        for bad in [
            "a\u{202E}b",
            "a\u{200B}b",
            "\u{2066}a\u{2069}",
            "a\u{200E}",
            "\u{FEFF}a",
            "a\u{200D}b",
            "a\u{2028}b",
        ] {
            let error = CustomerId::parse(bad).unwrap_err();
            assert_eq!(error.field, "customerId", "{bad:?}");
        }
        assert!(CustomerId::parse("Zoë Ångström 顧客 42").is_ok());
    }

    #[test]
    fn cancel_reasons_refuse_control_and_invisible_format_characters() {
        for bad in [
            "a\u{0}b",
            "\u{1B}[31mred",
            "line\nbreak",
            "a\u{85}b",
            "a\u{202E}b",
            "a\u{200B}b",
            "\u{2067}a",
        ] {
            let error = CancelReason::parse(bad).unwrap_err();
            assert_eq!(error.field, "reason", "{bad:?}");
        }
        // Prose keeps the joiners its spelling needs.
        assert!(CancelReason::parse("دیگر نمی\u{200C}خواهم").is_ok());
        assert!(CancelReason::parse("changed my mind, sorry! ¯\\_(ツ)_/¯").is_ok());
    }

    #[test]
    fn values_stored_before_the_character_rule_still_decode() {
        // Given a reason and a customer id stored when only lengths (and, for ids, control
        // characters) were checked,
        let reason: CancelReason = serde_json::from_str("\"late\\u0000\\u202e\"").unwrap();
        let customer: CustomerId = serde_json::from_str("\"c\\u200b1\"").unwrap();
        // then they load as they were, while the same text is refused as new input.
        assert_eq!(reason.as_str(), "late\u{0}\u{202E}");
        assert_eq!(customer.as_str(), "c\u{200B}1");
        assert!(CancelReason::parse(reason.as_str()).is_err());
        assert!(CustomerId::parse(customer.as_str()).is_err());
        // The rules that always held still hold on the way in from storage.
        assert!(serde_json::from_str::<CancelReason>(&format!("\"{}\"", "r".repeat(501))).is_err());
        assert!(serde_json::from_str::<CustomerId>("\"a\\u0007b\"").is_err());
        assert!(serde_json::from_str::<CustomerId>("\"\"").is_err());
    }

    #[test]
    fn timestamp_round_trips_at_millisecond_precision() {
        let t = Timestamp::parse("2026-11-24T04:46:11.123456Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-24T04:46:11.123Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        assert_eq!(Timestamp::from_millis(t.millis()), t);
    }

    #[test]
    fn field_errors_nest() {
        let e = Sku::parse("").unwrap_err().under("items[3]");
        assert_eq!(e.field, "items[3].sku");
    }
}
