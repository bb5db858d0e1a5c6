//! CloudWatch Embedded Metric Format lines in a function's log, read as CloudWatch Logs would
//! extract them (issue 16): each line with an `_aws` member is checked against the rules of
//! the EMF specification that CloudWatch enforces (a timestamp; one namespace per directive;
//! dimension sets of at most 30 keys, each a string member of the line; each metric a number
//! or an array of at most 100 numbers, at most 100 metrics per directive), then its values
//! are collected.

use serde_json::Value;

/// The log's EMF lines (JSON objects with an `_aws` member), each checked.
pub fn lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.get("_aws").is_some())
        .inspect(check)
        .collect()
}

/// Every value of `metric` in `namespace` on the lines whose dimensions are exactly
/// `dimensions` (names and values), in log order; a histogram's array counts value by value.
pub fn values(log: &str, namespace: &str, metric: &str, dimensions: &[(&str, &str)]) -> Vec<f64> {
    let mut found = Vec::new();
    for line in lines(log) {
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        let declared = directive["Metrics"]
            .as_array()
            .is_some_and(|metrics| metrics.iter().any(|m| m["Name"] == metric));
        if directive["Namespace"] != namespace || !declared {
            continue;
        }
        let keys: Vec<&str> = directive["Dimensions"][0]
            .as_array()
            .map(|set| set.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let same = keys.len() == dimensions.len()
            && dimensions
                .iter()
                .all(|(name, value)| keys.contains(name) && line[*name] == *value);
        if !same {
            continue;
        }
        match &line[metric] {
            Value::Array(samples) => found.extend(samples.iter().filter_map(Value::as_f64)),
            value => found.extend(value.as_f64()),
        }
    }
    found
}

/// The EMF rules CloudWatch Logs checks before it extracts anything from a line.
fn check(line: &Value) {
    let aws = &line["_aws"];
    assert!(
        aws["Timestamp"].is_u64(),
        "EMF: no millisecond Timestamp: {line}"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .unwrap_or_else(|| panic!("EMF: CloudWatchMetrics is not an array: {line}"));
    for directive in directives {
        assert!(
            directive["Namespace"]
                .as_str()
                .is_some_and(|n| !n.is_empty()),
            "EMF: no Namespace: {line}"
        );
        for set in directive["Dimensions"]
            .as_array()
            .unwrap_or_else(|| panic!("EMF: Dimensions is not an array: {line}"))
        {
            let set = set
                .as_array()
                .unwrap_or_else(|| panic!("EMF: a dimension set is not an array: {line}"));
            assert!(set.len() <= 30, "EMF: over 30 dimensions: {line}");
            for key in set {
                let key = key.as_str().expect("a dimension key is a string");
                assert!(
                    line[key].is_string(),
                    "EMF: dimension {key} has no string value: {line}"
                );
            }
        }
        let metrics = directive["Metrics"]
            .as_array()
            .unwrap_or_else(|| panic!("EMF: Metrics is not an array: {line}"));
        assert!(
            metrics.len() <= 100,
            "EMF: over 100 metrics in a directive: {line}"
        );
        for metric in metrics {
            let name = metric["Name"].as_str().expect("a metric has a Name");
            match &line[name] {
                Value::Number(_) => {}
                Value::Array(samples) => {
                    assert!(
                        samples.len() <= 100,
                        "EMF: over 100 values of {name}: {line}"
                    );
                    assert!(samples.iter().all(Value::is_number), "EMF: {name}: {line}");
                }
                other => panic!("EMF: {name} is {other}, not a number or an array: {line}"),
            }
        }
    }
}
