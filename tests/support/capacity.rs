//! The cost model: what AWS would bill, in request units, for each DynamoDB request the
//! recorder (`support/recorder.rs`) saw, by AWS's documented rules, not DynamoDB Local's.
//!
//! - **Item size** (DynamoDB Developer Guide, "Item sizes and formats"): each attribute is its
//!   name's UTF-8 bytes plus its value: a string's UTF-8 bytes, a number's 1 byte per two
//!   significant digits plus 1, a binary's raw bytes, 1 for a boolean or null, and for a list
//!   or map 3 bytes plus its elements, each element 1 byte more.
//! - **Writes** ("Capacity unit consumption for write operations"): 1 unit per 1 KB, rounded
//!   up, of the larger of the item written and the item it replaces; a delete, of the item
//!   deleted; a write whose condition fails, of the existing item (at least 1).
//! - **Reads**: 1 unit per 4 KB, rounded up, strongly consistent; half that eventually
//!   consistent (a global secondary index is always eventually consistent). A `Query` or `Scan`
//!   rounds the sum of the items it read, a `GetItem` or each key of a `BatchGetItem` its own
//!   item; reading nothing still costs the minimum. A projection does not make a read cheaper:
//!   the whole items count.
//! - **Transactions** ("Capacity management for transactions"): 2 units per item and per
//!   1 KB, a `ConditionCheck` included.
//! - **Global secondary indexes** ("Provisioned throughput considerations for GSIs"): a write
//!   that puts an item into an index costs 1 index write of the projected item; one that changes
//!   an indexed key costs 2 (the old entry deleted, the new one put); one that changes only
//!   projected attributes costs 1; removing an item from an index costs 1.
//!
//! The table's key and indexes, the items replaced, and the whole items behind a projected read
//! come from the recorder's probes. DynamoDB Local's own count (`ReturnConsumedCapacity`) is
//! kept beside the model's, for [`cross_check`].

use serde_json::{Map, Value};

/// On-demand prices, us-east-1, Standard table class, as listed on the DynamoDB pricing page
/// since the price cut of 2024-11-01 (checked 2026-12-01).
pub const PRICE_PER_MILLION_WRU: f64 = 0.625;
pub const PRICE_PER_MILLION_RRU: f64 = 0.125;
pub const PRICE_DATE: &str = "2024-11-01 (us-east-1 on-demand, Standard table class)";

const WRITE_UNIT: usize = 1024;
const READ_UNIT: usize = 4096;

/// What one request costs on AWS, and what DynamoDB Local said it cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Charge {
    /// Write request units on base tables.
    pub wru: f64,
    /// Write request units on global secondary indexes.
    pub index_wru: f64,
    /// Read request units.
    pub rru: f64,
    /// DynamoDB Local's `ConsumedCapacity`: base tables, then indexes. `None` when it said nothing.
    pub local: Option<(f64, f64)>,
}

impl std::ops::AddAssign for Charge {
    fn add_assign(&mut self, other: Charge) {
        self.wru += other.wru;
        self.index_wru += other.index_wru;
        self.rru += other.rru;
        self.local = match (self.local, other.local) {
            (Some(a), Some(b)) => Some((a.0 + b.0, a.1 + b.1)),
            (a, b) => a.or(b),
        };
    }
}

impl Charge {
    /// This charge divided over `n` items.
    pub fn per(&self, n: f64) -> Charge {
        Charge {
            wru: self.wru / n,
            index_wru: self.index_wru / n,
            rru: self.rru / n,
            local: self.local.map(|(base, indexes)| (base / n, indexes / n)),
        }
    }

    /// What a million of these cost at [`PRICE_PER_MILLION_WRU`] and [`PRICE_PER_MILLION_RRU`].
    pub fn dollars_per_million(&self) -> f64 {
        (self.wru + self.index_wru) * PRICE_PER_MILLION_WRU + self.rru * PRICE_PER_MILLION_RRU
    }
}

/// A request the model cannot price: it says which, so that a new kind of call fails loudly.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpriced(pub String);

/// The charge of one recorded line, or `Ok(None)` for a request that is not billed in request
/// units (control plane, streams, other services).
pub fn charge(line: &Value) -> Result<Option<Charge>, Unpriced> {
    let Some(operation) = line["target"]
        .as_str()
        .and_then(|t| t.strip_prefix("DynamoDB_20120810."))
    else {
        return Ok(None);
    };
    if !crate::recorder::DATA_PLANE.contains(&operation) {
        return Ok(None);
    }
    let request = &line["body"];
    let failed = line["status"] != 200;
    let error_type = line["response"]["__type"].as_str().unwrap_or_default();
    let before = Before(line["before"].as_array().map(Vec::as_slice).unwrap_or(&[]));
    let tables = &line["tables"];
    let unpriced = |why: &str| Unpriced(format!("{operation}: {why}: {line}"));
    if let Some(error) = probe_error(line) {
        return Err(unpriced(&format!("a probe failed ({error})")));
    }
    let mut charge = Charge {
        local: local_capacity(&line["response"]["ConsumedCapacity"]),
        ..Charge::default()
    };
    if failed
        && !error_type.ends_with("ConditionalCheckFailedException")
        && !error_type.ends_with("TransactionCanceledException")
    {
        // Validation errors, throttling: not billed.
        return Ok(Some(Charge::default()));
    }
    let read = if line.get("unprojected").is_some() {
        &line["unprojected"]
    } else {
        &line["response"]
    };
    match operation {
        "PutItem" => {
            let item = &request["Item"];
            let old = before.item(0);
            if failed {
                charge.wru = write_units(old.map_or(0, item_size));
            } else {
                charge.wru = write_units(item_size(item).max(old.map_or(0, item_size)));
                charge.index_wru = index_writes(tables, table(request), old, Some(item));
            }
        }
        "DeleteItem" => {
            let old = before.item(0);
            charge.wru = write_units(old.map_or(0, item_size));
            if !failed {
                charge.index_wru = index_writes(tables, table(request), old, None);
            }
        }
        "TransactWriteItems" => {
            for (i, member) in request["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let (kind, action) = member
                    .as_object()
                    .and_then(|m| m.iter().next())
                    .ok_or_else(|| unpriced("an empty member"))?;
                let old = before.item(i);
                let old_size = old.map_or(0, item_size);
                match kind.as_str() {
                    "Put" => {
                        charge.wru += 2.0 * write_units(item_size(&action["Item"]).max(old_size));
                        if !failed {
                            charge.index_wru += 2.0
                                * index_writes(tables, table(action), old, Some(&action["Item"]));
                        }
                    }
                    "ConditionCheck" => charge.wru += 2.0 * write_units(old_size),
                    "Delete" => {
                        charge.wru += 2.0 * write_units(old_size);
                        if !failed {
                            charge.index_wru +=
                                2.0 * index_writes(tables, table(action), old, None);
                        }
                    }
                    other => return Err(unpriced(&format!("a {other} member is not modelled"))),
                }
            }
        }
        "BatchWriteItem" => {
            if line["response"]["UnprocessedItems"]
                .as_object()
                .is_some_and(|u| !u.is_empty())
            {
                return Err(unpriced("unprocessed items are not modelled"));
            }
            let mut i = 0;
            for (name, writes) in request["RequestItems"].as_object().into_iter().flatten() {
                for write in writes.as_array().into_iter().flatten() {
                    let old = before.item(i);
                    i += 1;
                    let new = write["PutRequest"].get("Item");
                    let size = new.map_or(0, item_size).max(old.map_or(0, item_size));
                    charge.wru += write_units(size);
                    charge.index_wru += index_writes(tables, name, old, new);
                }
            }
        }
        "GetItem" => {
            let size = read["Item"]
                .as_object()
                .map_or(0, |_| item_size(&read["Item"]));
            charge.rru = read_units(size, consistent(request));
        }
        "Query" | "Scan" => {
            if read["ScannedCount"] != read["Count"] {
                return Err(unpriced("a filter dropped items the model cannot see"));
            }
            let size: usize = read["Items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(item_size)
                .sum();
            // An index is read eventually consistently whatever the request says.
            // A global secondary index is read eventually consistently whatever the request
            // says (a local one honours it).
            let strong = consistent(request) && !reads_a_gsi(tables, request);
            charge.rru = read_units(size, strong);
        }
        "BatchGetItem" => {
            for (name, keys) in request["RequestItems"].as_object().into_iter().flatten() {
                let strong = consistent(keys);
                let found: Vec<usize> = read["Responses"][name]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(item_size)
                    .collect();
                let asked = keys["Keys"].as_array().map_or(0, Vec::len);
                let unprocessed = line["response"]["UnprocessedKeys"][name]["Keys"]
                    .as_array()
                    .map_or(0, Vec::len);
                // Each key is read as its own GetItem; a key with no item costs the minimum.
                let missing = asked.saturating_sub(unprocessed + found.len());
                charge.rru += found.iter().map(|&s| read_units(s, strong)).sum::<f64>()
                    + missing as f64 * read_units(0, strong);
            }
        }
        other => return Err(unpriced(&format!("{other} is not modelled"))),
    }
    Ok(Some(charge))
}

/// The first failure among the recorder's probes of `line`, if any: the model cannot price a
/// request it has not seen whole.
fn probe_error(line: &Value) -> Option<String> {
    let before = line["before"].as_array().into_iter().flatten();
    let tables = line["tables"]
        .as_object()
        .into_iter()
        .flat_map(|t| t.values());
    std::iter::once(&line["unprojected"])
        .chain(before)
        .chain(tables)
        .find_map(|probe| probe.get("probeError"))
        .map(|error| error.to_string())
}

fn reads_a_gsi(tables: &Value, request: &Value) -> bool {
    let Some(index) = request["IndexName"].as_str() else {
        return false;
    };
    tables[table(request)]["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|gsi| gsi["IndexName"] == index)
}

/// The items the recorder read before a write, by position.
struct Before<'a>(&'a [Value]);

impl<'a> Before<'a> {
    fn item(&self, i: usize) -> Option<&'a Value> {
        self.0.get(i).map(|b| &b["item"]).filter(|v| v.is_object())
    }
}

fn table(action: &Value) -> &str {
    action["TableName"].as_str().unwrap_or_default()
}

fn consistent(request: &Value) -> bool {
    request["ConsistentRead"] == true
}

fn write_units(size: usize) -> f64 {
    size.div_ceil(WRITE_UNIT).max(1) as f64
}

fn read_units(size: usize, strong: bool) -> f64 {
    let units = size.div_ceil(READ_UNIT).max(1) as f64;
    if strong { units } else { units / 2.0 }
}

/// DynamoDB Local's `ConsumedCapacity` (one object, or a list for batches and transactions):
/// the base tables' units and the indexes' units.
fn local_capacity(consumed: &Value) -> Option<(f64, f64)> {
    let entries: Vec<&Value> = match consumed {
        Value::Array(list) => list.iter().collect(),
        Value::Object(_) => vec![consumed],
        _ => return None,
    };
    let mut base = 0.0;
    let mut indexes = 0.0;
    for entry in entries {
        let index_units: f64 = entry["GlobalSecondaryIndexes"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, c)| c["CapacityUnits"].as_f64())
            .sum();
        indexes += index_units;
        base += entry["Table"]["CapacityUnits"]
            .as_f64()
            .unwrap_or_else(|| entry["CapacityUnits"].as_f64().unwrap_or(0.0) - index_units);
    }
    Some((base, indexes))
}

/// Index write units for replacing `old` by `new` (`None`: deleted) in `table`.
fn index_writes(tables: &Value, table: &str, old: Option<&Value>, new: Option<&Value>) -> f64 {
    let mut units = 0.0;
    for index in tables[table]["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let keys: Vec<&str> = index["KeySchema"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["AttributeName"].as_str())
            .collect();
        let entry = |item: Option<&Value>| -> Option<Value> {
            let item = item?;
            keys.iter()
                .all(|k| item.get(*k).is_some())
                .then(|| projected(item, index, &tables[table], &keys))
        };
        let key_of =
            |item: &Value| -> Vec<Value> { keys.iter().map(|k| item[*k].clone()).collect() };
        units += match (entry(old), entry(new)) {
            (None, None) => 0.0,
            (Some(_), None) => 1.0,
            (None, Some(added)) => write_units(item_size(&added)),
            (Some(before), Some(after)) if key_of(&before) != key_of(&after) => {
                1.0 + write_units(item_size(&after))
            }
            (Some(before), Some(after)) if before != after => {
                write_units(item_size(&after).max(item_size(&before)))
            }
            _ => 0.0,
        };
    }
    units
}

/// `item` as `index` holds it: its keys, the table's keys and the projected attributes.
fn projected(item: &Value, index: &Value, table: &Value, keys: &[&str]) -> Value {
    let projection = &index["Projection"];
    if projection["ProjectionType"] == "ALL" {
        return item.clone();
    }
    let table_keys = table["KeySchema"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["AttributeName"].as_str());
    let included = projection["NonKeyAttributes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    let mut out = Map::new();
    for name in keys.iter().copied().chain(table_keys).chain(included) {
        if let Some(value) = item.get(name) {
            out.insert(name.to_owned(), value.clone());
        }
    }
    Value::Object(out)
}

/// An item's size in bytes by AWS's rules (see the module docs), from its wire JSON
/// (`{"name": {"S": "…"}, …}`).
pub fn item_size(item: &Value) -> usize {
    item.as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|v| v.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, str::len),
        "N" => number_size(inner.as_str().unwrap_or("0")),
        "B" => binary_size(inner.as_str().unwrap_or_default()),
        "BOOL" | "NULL" => 1,
        "SS" => strings(inner).map(str::len).sum(),
        "NS" => strings(inner).map(number_size).sum(),
        "BS" => strings(inner).map(binary_size).sum(),
        "L" => {
            3 + inner
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| 1 + value_size(v))
                .sum::<usize>()
        }
        "M" => {
            3 + inner
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 0,
    }
}

fn strings(set: &Value) -> impl Iterator<Item = &str> {
    set.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// 1 byte per two significant digits, plus 1; leading and trailing zeros do not count.
fn number_size(number: &str) -> usize {
    let mantissa = number
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()
        .unwrap_or_default();
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

/// The raw length of a base64 value.
fn binary_size(base64: &str) -> usize {
    let padding = base64.chars().rev().take_while(|&c| c == '=').count();
    (base64.len() / 4 * 3).saturating_sub(padding)
}

/// A whole order's life, as the cheapest path through the service runs it: create, confirm
/// and ship with no `Idempotency-Key`, each event projected on its own (as Lambda delivers a
/// quiet stream): `(principal, step, times)`.
pub const LIFECYCLE: &[(&str, &str, f64)] = &[
    ("command-api", "create, no key", 1.0),
    ("command-api", "confirm, no key", 1.0),
    ("command-api", "ship, no key", 1.0),
    ("projector", "one event, a new view", 1.0),
    ("projector", "one event, a view updated", 2.0),
];

/// The fewest base-table writes a lifecycle can cost: one conditional write per event and one
/// per view, of items under 1 KB.
pub const LIFECYCLE_MINIMUM_WRU: f64 = 6.0;

/// What a lifecycle's index writes cost today, as a regression bound, not a minimum: the two
/// listings (by customer, by status) are rewritten on every event (BL-6): 2 for the first
/// view, 3 for each update.
pub const LIFECYCLE_INDEX_WRU_BOUND: f64 = 8.0;

/// The fewest reads a lifecycle needs: confirm and ship each read the order's events strongly
/// consistently (1 unit each: the decision must see the newest event, or a client gets a
/// needless 409), and the projector reads the view each of those two events updates,
/// eventually consistently (0.5 each: the put's version condition catches a stale read). A
/// create needs no read: its id is new, and so is its view.
pub const LIFECYCLE_MINIMUM_RRU: f64 = 3.0;

/// What one step of a recorded scenario cost.
#[derive(Debug, Clone)]
pub struct StepCost {
    pub principal: String,
    pub step: String,
    /// Billed requests, by operation.
    pub operations: std::collections::BTreeMap<String, usize>,
    /// Commands or events handled: the times through the step times the items of each.
    pub items: usize,
    pub total: Charge,
}

impl StepCost {
    pub fn per_item(&self) -> Charge {
        self.total.per(self.items.max(1) as f64)
    }
}

/// The recorded scenario's cost, step by step, in the order the steps first ran.
#[derive(Debug, Clone, Default)]
pub struct Costs {
    pub steps: Vec<StepCost>,
}

impl Costs {
    /// Prices every line (see [`charge`]); fails on a request the model does not know.
    pub fn of(lines: &[Value]) -> Result<Costs, Unpriced> {
        let mut lines: Vec<&Value> = lines.iter().collect();
        lines.sort_by_key(|l| (l["run"].as_str(), l["seq"].as_u64()));
        let mut costs = Costs::default();
        let mut seen_ids = std::collections::BTreeSet::new();
        for line in lines {
            let principal = line["principal"].as_str().unwrap_or_default();
            let step = line["step"].as_str().unwrap_or("(no step)");
            let index = match costs
                .steps
                .iter()
                .position(|s| s.principal == principal && s.step == step)
            {
                Some(index) => index,
                None => {
                    costs.steps.push(StepCost {
                        principal: principal.to_owned(),
                        step: step.to_owned(),
                        operations: Default::default(),
                        items: 0,
                        total: Charge::default(),
                    });
                    costs.steps.len() - 1
                }
            };
            let entry = &mut costs.steps[index];
            let run = line["run"].as_str().unwrap_or_default();
            if seen_ids.insert((run, principal, line["step_id"].as_u64())) {
                entry.items += line["step_items"].as_u64().unwrap_or(1) as usize;
            }
            if let Some(charge) = charge(line)? {
                let operation = line["target"]
                    .as_str()
                    .and_then(|t| t.rsplit('.').next())
                    .unwrap_or_default();
                *entry.operations.entry(operation.to_owned()).or_default() += 1;
                entry.total += charge;
            }
        }
        Ok(costs)
    }

    pub fn step(&self, principal: &str, step: &str) -> Option<&StepCost> {
        self.steps
            .iter()
            .find(|s| s.principal == principal && s.step == step)
    }

    /// A [`LIFECYCLE`]'s charge, or the step the recording lacks.
    pub fn lifecycle(&self) -> Result<Charge, String> {
        let mut total = Charge::default();
        for (principal, step, times) in LIFECYCLE {
            let cost = self
                .step(principal, step)
                .ok_or_else(|| format!("the recording has no step {principal:?} / {step:?}"))?;
            let per_item = cost.per_item();
            for _ in 0..(*times as usize) {
                total += per_item;
            }
        }
        Ok(total)
    }
}

/// Every line of the `*.jsonl` recordings in `dir`.
pub fn read_recordings(dir: &std::path::Path) -> std::io::Result<Vec<Value>> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&path)?.lines() {
                lines.push(serde_json::from_str(line).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?);
            }
        }
    }
    Ok(lines)
}

/// Where the model and DynamoDB Local agree and where they do not, by operation.
#[derive(Debug, Default)]
pub struct CrossCheck {
    /// Operation → requests where the totals agree, and where they differ, by reason.
    pub by_operation:
        std::collections::BTreeMap<String, (usize, std::collections::BTreeMap<String, usize>)>,
}

/// Compares the model's total with DynamoDB Local's `ReturnConsumedCapacity` for each request
/// Local reported on. A difference is explained only when it is exactly what Local is known
/// to leave out (see [`known_gaps`]); any other is "unexplained".
pub fn cross_check(lines: &[Value]) -> Result<CrossCheck, Unpriced> {
    let mut check = CrossCheck::default();
    for line in lines {
        let Some(charge) = charge(line)? else {
            continue;
        };
        let Some((base, indexes)) = charge.local else {
            continue;
        };
        let operation = line["target"]
            .as_str()
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let model = charge.wru + charge.index_wru + charge.rru;
        let local = base + indexes;
        let entry = check.by_operation.entry(operation.clone()).or_default();
        if (model - local).abs() < 1e-9 {
            entry.0 += 1;
            continue;
        }
        let gaps = known_gaps(&operation, line);
        let explained: f64 = gaps.iter().map(|(units, _)| units).sum();
        let why = if (model - local - explained).abs() < 1e-9 {
            let mut reasons: Vec<&str> = gaps.iter().map(|(_, why)| *why).collect();
            reasons.dedup();
            reasons.join("; ")
        } else {
            format!(
                "unexplained (request {} of {}: model {model}, Local {local})",
                line["seq"],
                line["principal"].as_str().unwrap_or_default()
            )
        };
        *entry.1.entry(why).or_default() += 1;
    }
    Ok(check)
}

const FINDS_NOTHING: &str = "a read that finds nothing: AWS bills the minimum, Local 0";
const CONDITION_CHECK: &str = "a ConditionCheck in a transaction: AWS bills 2 units, Local 0";

/// The units DynamoDB Local leaves out of `line`, each with its reason: the minimum of each
/// read (or key) that finds nothing, and the 2 units of each `ConditionCheck`.
fn known_gaps(operation: &str, line: &Value) -> Vec<(f64, &'static str)> {
    let request = &line["body"];
    let read = line.get("unprojected").unwrap_or(&line["response"]);
    let nothing = |strong: bool| (read_units(0, strong), FINDS_NOTHING);
    match operation {
        "GetItem" if !read["Item"].is_object() => vec![nothing(consistent(request))],
        "Query" | "Scan" if read["Count"] == 0 => {
            vec![nothing(
                consistent(request) && !reads_a_gsi(&line["tables"], request),
            )]
        }
        "BatchGetItem" => request["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(table, keys)| {
                let asked = keys["Keys"].as_array().map_or(0, Vec::len);
                let found = read["Responses"][table].as_array().map_or(0, Vec::len);
                std::iter::repeat_n(nothing(consistent(keys)), asked.saturating_sub(found))
            })
            .collect(),
        "TransactWriteItems" => {
            let before = Before(line["before"].as_array().map(Vec::as_slice).unwrap_or(&[]));
            request["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .filter(|(_, member)| member.get("ConditionCheck").is_some())
                .map(|(i, _)| {
                    let old = before.item(i).map_or(0, item_size);
                    (2.0 * write_units(old), CONDITION_CHECK)
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_sizes_follow_the_documented_rules() {
        // "orderId" (7) + 36 bytes; "version" (7) + 1 digit -> 1 + 1.
        let item = json!({
            "orderId": {"S": "01a20bfe-8da1-71db-b7a2-c7129a6a62aa"},
            "version": {"N": "1"},
        });
        assert_eq!(item_size(&item), 7 + 36 + 7 + 2);
        // 12345 has 5 significant digits -> 3 + 1; 1200.00 has 2 -> 1 + 1; -0.001 has 1.
        assert_eq!(number_size("12345"), 4);
        assert_eq!(number_size("1200.00"), 2);
        assert_eq!(number_size("-0.001"), 2);
        // A list or map: 3 bytes, plus 1 per element; a map's element also names itself.
        assert_eq!(
            value_size(&json!({"L": [{"S": "ab"}, {"BOOL": true}]})),
            3 + 3 + 2
        );
        assert_eq!(
            value_size(&json!({"M": {"k": {"NULL": true}}})),
            3 + 1 + 1 + 1
        );
        assert_eq!(value_size(&json!({"L": []})), 3);
        // Binary: the raw bytes, not the base64 text ("aGk=" is "hi").
        assert_eq!(value_size(&json!({"B": "aGk="})), 2);
    }

    fn line(target: &str, status: u16, body: Value, extra: Value) -> Value {
        let mut line = json!({
            "target": format!("DynamoDB_20120810.{target}"),
            "status": status,
            "body": body,
        });
        line.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        line
    }

    fn sized(bytes: usize) -> Value {
        // "k" (1) + "S" value of bytes - 1.
        json!({"k": {"S": "x".repeat(bytes - 1)}})
    }

    #[test]
    fn a_put_costs_the_larger_of_the_new_and_the_replaced_item() {
        let put = |new: usize, old: Option<usize>| {
            let before = json!([{ "item": old.map(sized) }]);
            let l = line(
                "PutItem",
                200,
                json!({"TableName": "t", "Item": sized(new)}),
                json!({"before": before}),
            );
            charge(&l).unwrap().unwrap().wru
        };
        assert_eq!(put(500, None), 1.0);
        assert_eq!(put(1024, None), 1.0);
        assert_eq!(put(1025, None), 2.0);
        assert_eq!(put(500, Some(2500)), 3.0);
    }

    #[test]
    fn a_failed_condition_costs_the_existing_item_and_at_least_one() {
        let failed = |old: Option<usize>| {
            let l = line(
                "PutItem",
                400,
                json!({"TableName": "t", "Item": sized(3000)}),
                json!({
                    "before": [{ "item": old.map(sized) }],
                    "response": {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"},
                }),
            );
            charge(&l).unwrap().unwrap().wru
        };
        assert_eq!(failed(None), 1.0);
        assert_eq!(failed(Some(1500)), 2.0);
    }

    #[test]
    fn a_transaction_costs_two_units_per_item_a_condition_check_included() {
        let l = line(
            "TransactWriteItems",
            200,
            json!({"TransactItems": [
                {"ConditionCheck": {"TableName": "t", "Key": {}}},
                {"Put": {"TableName": "t", "Item": sized(100)}},
                {"Put": {"TableName": "t", "Item": sized(1500)}},
            ]}),
            json!({"before": [{"item": sized(200)}, {"item": null}, {"item": null}]}),
        );
        assert_eq!(charge(&l).unwrap().unwrap().wru, 2.0 + 2.0 + 4.0);
    }

    #[test]
    fn reads_round_up_to_4_kb_and_eventual_consistency_halves_them() {
        let get = |size: Option<usize>, strong: bool| {
            let l = line(
                "GetItem",
                200,
                json!({"TableName": "t", "ConsistentRead": strong}),
                json!({"response": {"Item": size.map(sized)}}),
            );
            charge(&l).unwrap().unwrap().rru
        };
        assert_eq!(get(Some(3500), true), 1.0);
        assert_eq!(get(Some(10 * 1024), true), 3.0);
        assert_eq!(get(Some(10 * 1024), false), 1.5);
        // Reading an item that does not exist still costs the minimum.
        assert_eq!(get(None, true), 1.0);
        assert_eq!(get(None, false), 0.5);
    }

    #[test]
    fn a_query_rounds_the_sum_and_a_batch_get_rounds_each_item() {
        // The guide's example: 1.5 KB and 6.5 KB read by BatchGetItem count as 4 + 8 KB.
        let items = json!([sized(1536), sized(6656)]);
        let batch = line(
            "BatchGetItem",
            200,
            json!({"RequestItems": {"t": {"Keys": [{}, {}, {}], "ConsistentRead": true}}}),
            json!({"response": {"Responses": {"t": items.clone()}}}),
        );
        // Two found (1 + 2 units) and one key with no item (the minimum, 1).
        assert_eq!(charge(&batch).unwrap().unwrap().rru, 4.0);
        let query = line(
            "Query",
            200,
            json!({"TableName": "t", "ConsistentRead": true}),
            json!({"response": {"Items": items, "Count": 2, "ScannedCount": 2}}),
        );
        assert_eq!(charge(&query).unwrap().unwrap().rru, 2.0);
    }

    #[test]
    fn a_projected_read_costs_the_whole_items() {
        let l = line(
            "Query",
            200,
            json!({"TableName": "t", "ConsistentRead": true, "ProjectionExpression": "k"}),
            json!({
                "response": {"Items": [{"k": {"S": "x"}}], "Count": 1, "ScannedCount": 1},
                "unprojected": {"Items": [sized(5000)], "Count": 1, "ScannedCount": 1},
            }),
        );
        assert_eq!(charge(&l).unwrap().unwrap().rru, 2.0);
    }

    #[test]
    fn an_index_costs_a_write_to_enter_two_to_change_key_and_one_to_leave() {
        let tables = json!({"t": {
            "KeySchema": [{"AttributeName": "id"}],
            "GlobalSecondaryIndexes": [{
                "KeySchema": [{"AttributeName": "status"}],
                "Projection": {"ProjectionType": "ALL"},
            }],
        }});
        let item = |status: Option<&str>, note: &str| {
            let mut item = json!({"id": {"S": "1"}, "note": {"S": note}});
            if let Some(status) = status {
                item["status"] = json!({"S": status});
            }
            item
        };
        let put = |old: Option<Value>, new: Value| {
            let l = line(
                "PutItem",
                200,
                json!({"TableName": "t", "Item": new}),
                json!({"before": [{"item": old}], "tables": tables}),
            );
            charge(&l).unwrap().unwrap().index_wru
        };
        assert_eq!(put(None, item(Some("A"), "")), 1.0);
        assert_eq!(put(None, item(None, "")), 0.0);
        assert_eq!(put(Some(item(Some("A"), "")), item(Some("B"), "")), 2.0);
        assert_eq!(put(Some(item(Some("A"), "")), item(Some("A"), "x")), 1.0);
        assert_eq!(put(Some(item(Some("A"), "")), item(Some("A"), "")), 0.0);
        assert_eq!(put(Some(item(Some("A"), "")), item(None, "")), 1.0);
    }

    #[test]
    fn an_operation_the_model_does_not_know_fails_loudly() {
        let l = line("UpdateItem", 200, json!({"TableName": "t"}), json!({}));
        assert!(charge(&l).is_err());
        let control = line("DescribeTable", 200, json!({}), json!({}));
        assert_eq!(charge(&control), Ok(None));
    }

    #[test]
    fn the_cross_check_names_why_local_differs() {
        let empty_query = line(
            "Query",
            200,
            json!({"TableName": "t", "ConsistentRead": true}),
            json!({"response": {
                "Items": [], "Count": 0, "ScannedCount": 0,
                "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.0},
            }}),
        );
        let wrong_put = line(
            "PutItem",
            200,
            json!({"TableName": "t", "Item": sized(100)}),
            json!({"before": [], "response": {"ConsumedCapacity": {"CapacityUnits": 3.0}}}),
        );
        let check = cross_check(&[empty_query, wrong_put]).unwrap();
        let (agree, differ) = &check.by_operation["Query"];
        assert_eq!(*agree, 0);
        assert!(
            differ
                .keys()
                .all(|why| why.starts_with("a read that finds nothing"))
        );
        let (_, differ) = &check.by_operation["PutItem"];
        assert!(differ.keys().all(|why| why.starts_with("unexplained")));
    }

    #[test]
    fn a_lifecycle_adds_its_steps_per_item_and_needs_them_all() {
        let put = |principal: &str, step: &str, id: u64| {
            let mut l = line(
                "PutItem",
                200,
                json!({"TableName": "t", "Item": sized(100)}),
                json!({"before": []}),
            );
            l["principal"] = json!(principal);
            l["step"] = json!(step);
            l["step_id"] = json!(id);
            l["step_items"] = json!(1);
            l
        };
        let mut lines: Vec<Value> = LIFECYCLE
            .iter()
            .enumerate()
            .map(|(i, (principal, step, _))| put(principal, step, i as u64))
            .collect();
        // The same step twice: its cost is per time through it.
        lines.push(put("command-api", "create, no key", 99));
        let costs = Costs::of(&lines).unwrap();
        assert_eq!(
            costs.step("command-api", "create, no key").unwrap().items,
            2
        );
        // One write per step, the view update counted twice.
        assert_eq!(costs.lifecycle().unwrap().wru, 6.0);
        lines.retain(|l| l["step"] != "ship, no key");
        assert!(Costs::of(&lines).unwrap().lifecycle().is_err());
    }

    #[test]
    fn a_request_whose_probe_failed_is_not_priced() {
        for extra in [
            json!({"unprojected": {"probeError": "Query: 400"}}),
            json!({"before": [{"item": null, "probeError": "GetItem: 500"}]}),
            json!({"tables": {"t": {"probeError": "DescribeTable: 400"}}}),
        ] {
            let l = line(
                "PutItem",
                200,
                json!({"TableName": "t", "Item": sized(10)}),
                extra,
            );
            assert!(charge(&l).is_err(), "{l}");
        }
    }

    #[test]
    fn only_the_exact_known_gap_is_explained() {
        let transaction = |local: f64| {
            line(
                "TransactWriteItems",
                200,
                json!({"TransactItems": [
                    {"ConditionCheck": {"TableName": "t", "Key": {}}},
                    {"Put": {"TableName": "t", "Item": sized(100)}},
                ]}),
                json!({
                    "before": [{"item": sized(100)}, {"item": null}],
                    "response": {"ConsumedCapacity": [{"TableName": "t", "CapacityUnits": local}]},
                }),
            )
        };
        // The model: 2 (check) + 2 (put). Local leaves out exactly the check: explained.
        let check = cross_check(&[transaction(2.0)]).unwrap();
        let (_, differ) = &check.by_operation["TransactWriteItems"];
        assert_eq!(differ.keys().collect::<Vec<_>>(), [CONDITION_CHECK]);
        // Anything else beside a check is not.
        let check = cross_check(&[transaction(1.0)]).unwrap();
        let (_, differ) = &check.by_operation["TransactWriteItems"];
        assert!(
            differ.keys().all(|why| why.starts_with("unexplained")),
            "{differ:?}"
        );
    }
}
