//! How a stored view compares with the fold of its order's events: the drift kinds `orders
//! replay --verify` reports, and what a rebuild writes to mend each.

use orders_domain::OrderId;
use orders_store::OrderView;
use serde::{Deserialize, Serialize};

/// The ways a read model can differ from its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The order has events but no view.
    MissingView,
    /// The view's version is not the version of the order's last event.
    StaleVersion,
    /// The view is at the right version with different contents (a fold that changed, a bug, a
    /// hand edit).
    DifferentFields,
    /// A view with no events behind it (or whose events create no order).
    OrphanView,
}

impl DriftKind {
    pub const ALL: [DriftKind; 4] = [
        DriftKind::MissingView,
        DriftKind::StaleVersion,
        DriftKind::DifferentFields,
        DriftKind::OrphanView,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::MissingView => "missing_view",
            DriftKind::StaleVersion => "stale_version",
            DriftKind::DifferentFields => "different_fields",
            DriftKind::OrphanView => "orphan_view",
        }
    }
}

/// One difference, as `--verify` prints it (a JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub kind: DriftKind,
    pub order_id: OrderId,
    /// The stored view's version (absent for a missing view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_version: Option<u64>,
    /// The version of the order's last event (absent for an orphan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    /// The view's attributes that differ from the fold's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<OrderView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<OrderView>,
}

/// What the fold says of one stored view.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    InSync,
    /// The stored view is newer than the fold: the live projector applied events the scan
    /// had not reached, or the view claims versions that do not exist. Only a fresh load of
    /// the order can tell which.
    StoredAhead,
    /// Write the fold's view, on condition that the stored one is still at `expected_version`
    /// (`None`: still absent).
    Write {
        kind: DriftKind,
        view: OrderView,
        expected_version: Option<u64>,
    },
    /// Delete the orphan view, on condition that it is still at `expected_version`.
    Delete {
        expected_version: u64,
    },
}

/// `folded` is the view of the order's events (`None` when they create no order) and
/// `folded_version` the version of the last of them (0: no events).
pub(super) fn judge(
    stored: Option<&OrderView>,
    folded: Option<&OrderView>,
    folded_version: u64,
) -> Verdict {
    match (stored, folded) {
        (None, None) => Verdict::InSync,
        (Some(stored), _) if stored.version > folded_version => Verdict::StoredAhead,
        (Some(stored), None) => Verdict::Delete {
            expected_version: stored.version,
        },
        (None, Some(folded)) => Verdict::Write {
            kind: DriftKind::MissingView,
            view: folded.clone(),
            expected_version: None,
        },
        (Some(stored), Some(folded)) if stored == folded => Verdict::InSync,
        (Some(stored), Some(folded)) => Verdict::Write {
            kind: if stored.version == folded.version {
                DriftKind::DifferentFields
            } else {
                DriftKind::StaleVersion
            },
            view: folded.clone(),
            expected_version: Some(stored.version),
        },
    }
}

impl Drift {
    pub(super) fn new(
        kind: DriftKind,
        order_id: OrderId,
        stored: Option<&OrderView>,
        expected: Option<&OrderView>,
        expected_version: u64,
    ) -> Self {
        Self {
            kind,
            order_id,
            stored_version: stored.map(|view| view.version),
            expected_version: (expected_version > 0).then_some(expected_version),
            fields: match (stored, expected) {
                (Some(stored), Some(expected)) => differing_fields(stored, expected),
                _ => Vec::new(),
            },
            stored: stored.cloned(),
            expected: expected.cloned(),
        }
    }
}

/// The top-level attributes (in their JSON names) whose values differ.
fn differing_fields(a: &OrderView, b: &OrderView) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return Vec::new();
    };
    let mut fields: Vec<String> = a
        .iter()
        .filter(|(name, value)| b.get(*name) != Some(*value))
        .map(|(name, _)| name.clone())
        .chain(b.keys().filter(|name| !a.contains_key(*name)).cloned())
        .collect();
    fields.sort();
    fields
}
