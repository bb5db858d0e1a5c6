//! The name of a read-model table: the live one, or a shadow that a replay builds (`--into`).

use std::fmt;

/// A table name valid on both backends: 3 to 255 of `A-Z a-z 0-9 _ . -` (DynamoDB's rule),
/// and none of the embedded store's own tables (`events`, `idempotency`, `checkpoints`,
/// `sqlite_*`), which a shadow read model must never replace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName(String);

impl TableName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !(3..=255).contains(&raw.len()) || !valid_chars {
            return Err(format!(
                "{raw:?} is not a valid table name: use 3 to 255 letters, digits, '_', '.' or '-'"
            ));
        }
        let lower = raw.to_ascii_lowercase();
        if ["events", "idempotency", "checkpoints"].contains(&lower.as_str())
            || lower.starts_with("sqlite_")
        {
            return Err(format!(
                "{raw:?} is one of the event store's own tables, not a read model"
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TableName {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dynamodb_rules_and_spare_the_store_tables() {
        for good in [
            "orders",
            "orders-read-model",
            "orders_v2",
            "orders.shadow-2026",
        ] {
            assert_eq!(TableName::parse(good).unwrap().as_str(), good);
        }
        let too_long = "x".repeat(256);
        for bad in [
            "",
            "ab",
            too_long.as_str(),
            "orders v2",
            "orders;drop",
            "\"orders\"",
            "events",
            "IDEMPOTENCY",
            "checkpoints",
            "sqlite_master",
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
