//! The README's table of the Lambda functions' environment variables is rendered from the
//! declarations the functions read (`orders_lambda::EnvVar`), so the code stays the one source:
//! this test fails, printing the table to paste, when the README and the code differ.

use std::fs;
use std::path::Path;

use orders_handlers::Api;
use orders_handlers::lambda::LambdaConfig;
use orders_lambda::{EnvVar, LOG_VARS};
use orders_projections::lambda::{PROJECTOR_VARS, PUBLISHER_VARS};

const BEGIN: &str = "<!-- env-vars: rendered by tests/lambda_env_vars.rs -->";
const END: &str = "<!-- /env-vars -->";

/// One row per variable, in the order the functions declare them (logging's last), naming
/// every function that reads it.
fn rendered_table() -> String {
    let functions: [(&str, &[EnvVar]); 4] = [
        ("command-api", LambdaConfig::vars(Api::Commands)),
        ("query-api", LambdaConfig::vars(Api::Queries)),
        ("projector", &PROJECTOR_VARS),
        ("publisher", &PUBLISHER_VARS),
    ];
    let mut rows: Vec<(EnvVar, Vec<&str>)> = Vec::new();
    let every_function = functions
        .iter()
        .flat_map(|(function, _)| LOG_VARS.iter().map(move |var| (*function, var)));
    let declared = functions
        .iter()
        .flat_map(|(function, vars)| vars.iter().map(move |var| (*function, var)));
    // Each function's own variables first, then logging's, which all four read.
    for (function, var) in declared.chain(every_function) {
        match rows.iter_mut().find(|(known, _)| known.name == var.name) {
            Some((_, readers)) => readers.push(function),
            None => rows.push((*var, vec![function])),
        }
    }
    let mut table = String::from("| variable | read by | default | what |\n|---|---|---|---|\n");
    for (var, readers) in rows {
        let readers = if readers.len() == functions.len() {
            "all four".to_owned()
        } else {
            readers
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let default = match var.default {
            Some(default) => format!("`{default}`"),
            None => "required".to_owned(),
        };
        let secret = if var.secret {
            " (a secret: logged by its length only)"
        } else {
            ""
        };
        table.push_str(&format!(
            "| `{}` | {readers} | {default} | {}{secret} |\n",
            var.name, var.meaning
        ));
    }
    table
}

#[test]
fn the_readme_lists_the_lambda_environment_variables_the_code_declares() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = fs::read_to_string(&readme_path).expect("README.md");
    let expected = rendered_table();
    let block = readme
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(block, _)| block.trim_matches('\n'));
    assert_eq!(
        block,
        Some(expected.trim_end()),
        "README.md must hold, between {BEGIN} and {END}, the table the functions' \
         declarations give:\n\n{expected}"
    );
}
