//! Environments for the functions' config parsers, without touching the process's own.

/// An environment given as name/value pairs, for tests that must not set the process's own
/// (the functions' config parsers take a lookup function).
pub fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Clone + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}
