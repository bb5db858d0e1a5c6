//! Commands: what a client asks the order to do. Built from parsed values only.

use crate::values::{CancelReason, Currency, CustomerId, FieldError, Items, Money};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    Create(CreateOrder),
    Confirm,
    Cancel { reason: Option<CancelReason> },
    Ship,
}

impl OrderCommand {
    /// The command's name, as used in logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create(_) => "create",
            Self::Confirm => "confirm",
            Self::Cancel { .. } => "cancel",
            Self::Ship => "ship",
        }
    }
}

/// A validated create request. The total is computed once, here, with checked arithmetic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOrder {
    customer_id: CustomerId,
    currency: Currency,
    items: Items,
    total: Money,
}

impl CreateOrder {
    pub fn new(
        customer_id: CustomerId,
        currency: Currency,
        items: Items,
    ) -> Result<Self, FieldError> {
        let total = items
            .total()
            .ok_or_else(|| FieldError::new("items", "the order total overflows"))?;
        Ok(Self {
            customer_id,
            currency,
            items,
            total,
        })
    }
    pub fn customer_id(&self) -> &CustomerId {
        &self.customer_id
    }
    pub fn currency(&self) -> &Currency {
        &self.currency
    }
    pub fn items(&self) -> &Items {
        &self.items
    }
    pub fn total(&self) -> Money {
        self.total
    }
}
