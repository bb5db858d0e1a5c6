//! The docs name code, and code moves: this test fails when README.md or docs/*.md names a file,
//! a function or a test that no longer exists, listing every broken reference at once.
//!
//! What a reference is, and what is checked (inline code spans, which may wrap across lines):
//! - a path ending in `.rs`, `.ts` or `.sh`, relative to the repository root, must be a file;
//!   `{a,b}` in it expands (`store/src/{fold,clock}.rs` names two files);
//! - a path ending in `/` must be a directory, when its first component is one of the
//!   repository's own directories (`./.orders/` and `target/...` are made at run time);
//! - `file.rs::name` must be defined in that file (`fn`, `struct`, `enum`, `trait`, `type`,
//!   `const`, `static`, `mod`, `macro_rules!`, or a field or variant after a type), and
//!   `file.rs::a::b::name` follows `a` and `b` as modules (an out-of-line `mod a;` moves to its
//!   file) or types (a trailing `(args)` is dropped); `file.ts::name` must be a function,
//!   const, class, interface or method there;
//! - `::name` right after a reference in the same table row or paragraph replaces that
//!   reference's last name (`events.rs::load`, `::current_version`);
//! - `contract::case` must be a fn under `store/src/contract/`;
//! - `stack › "title"` (cdk/test/orders-stack.test.ts), `config › "title"`
//!   (cdk/test/config.test.ts) and `` `file.test.ts` › "title" `` must name a Jest `test`,
//!   `it` or `describe` title of that file, as written in the source (`%s` included);
//! - in a code span that is a command (it holds spaces) and in fenced blocks, only the words that
//!   are paths under one of the repository's directories (`./scripts/moto.sh`) are checked.
//!
//! Not checked: a name without a file (`RetryPolicy::TRANSACTION`, `orders_store::retry`), the
//! case of a `test.each` table a row cites (`(case {"eventSource":"aws.orders"})`), that a
//! `Type::method` is in that type's `impl` rather than elsewhere in the file, and prose.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const STACK_TESTS: &str = "cdk/test/orders-stack.test.ts";
const CONFIG_TESTS: &str = "cdk/test/config.test.ts";
const CONTRACT_DIR: &str = "store/src/contract";

#[test]
fn every_code_reference_in_the_docs_names_something_that_exists() {
    let root = repo_root();
    let mut docs = vec![root.join("README.md")];
    let mut pages: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    docs.extend(pages);

    let mut checked = 0;
    let mut broken = Vec::new();
    for doc in &docs {
        let name = doc
            .strip_prefix(&root)
            .expect("under the root")
            .display()
            .to_string();
        let text = fs::read_to_string(doc).expect("a readable doc");
        let report = check_doc(&root, &text);
        checked += report.checked;
        broken.extend(
            report
                .broken
                .into_iter()
                .map(|b| format!("{name}:{}: `{}`: {}", b.line, b.reference, b.why)),
        );
    }
    assert!(
        checked > 100,
        "only {checked} references found: is the parser still reading the docs?"
    );
    assert!(
        broken.is_empty(),
        "{} of {checked} code references in the docs name nothing that exists:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

/// The checker itself: each kind of reference fails when what it names is missing.
#[test]
fn a_reference_to_a_missing_file_name_case_or_title_is_reported() {
    let root = repo_root();
    let doc = "\
Fine: `tests/doc_references.rs::check_doc`, `::rust_name`, `store/src/`, `contract::append_assigns_contiguous_versions`.
| row | `tests/no_such_file.rs` | `tests/doc_references.rs::no_such_fn` |
| row | `::no_such_either` | `no_such_dir/` is skipped, `store/no_such_dir/` is not |
`contract::no_such_case` and stack › \"no such title\" and config › \"%j is refused\"
```
./scripts/no-such-script.sh with cargo test
```
";
    let report = check_doc(&root, doc);
    let found: Vec<(usize, &str)> = report
        .broken
        .iter()
        .map(|b| (b.line, b.reference.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (2, "tests/no_such_file.rs"),
            (2, "tests/doc_references.rs::no_such_fn"),
            (3, "::no_such_either"),
            (3, "store/no_such_dir/"),
            (4, "contract::no_such_case"),
            (4, "stack › \"no such title\""),
            (6, "./scripts/no-such-script.sh"),
        ],
        "{:#?}",
        report.broken
    );
    assert_eq!(report.checked, 12);
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

#[derive(Debug)]
struct Broken {
    line: usize,
    reference: String,
    why: String,
}

#[derive(Default)]
struct Report {
    checked: usize,
    broken: Vec<Broken>,
}

impl Report {
    fn judge(&mut self, line: usize, reference: &str, verdict: Result<(), String>) {
        self.checked += 1;
        if let Err(why) = verdict {
            self.broken.push(Broken {
                line,
                reference: reference.to_string(),
                why,
            });
        }
    }
}

/// A piece of a Markdown line: plain text, or an inline code span (which may have wrapped).
enum Piece {
    Text(String),
    Code(String),
}

fn check_doc(root: &Path, text: &str) -> Report {
    let mut report = Report::default();
    let mut fenced = false;
    let mut paragraph: Vec<(usize, &str)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            check_paragraph(root, &paragraph, &mut report);
            paragraph.clear();
            fenced = !fenced;
            continue;
        }
        if fenced {
            for word in line.split_whitespace() {
                check_command_word(root, number, word, &mut report);
            }
        } else if line.trim().is_empty() {
            check_paragraph(root, &paragraph, &mut report);
            paragraph.clear();
        } else {
            paragraph.push((number, line));
        }
    }
    check_paragraph(root, &paragraph, &mut report);
    report
}

/// Splits a paragraph into pieces (CommonMark code spans: a run of n backticks up to the next
/// run of exactly n, possibly on a later line) and checks them in order.
fn check_paragraph(root: &Path, lines: &[(usize, &str)], report: &mut Report) {
    let mut chars: Vec<(char, usize)> = Vec::new();
    for (number, line) in lines {
        chars.extend(line.chars().map(|c| (c, *number)));
        chars.push(('\n', *number));
    }
    let run_at = |i: usize| chars[i..].iter().take_while(|(c, _)| *c == '`').count();
    let mut pieces: Vec<(usize, Piece)> = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        let (c, number) = chars[i];
        if c == '`' {
            let n = run_at(i);
            let mut j = i + n;
            let close = loop {
                if j >= chars.len() {
                    break None;
                }
                if chars[j].0 == '`' {
                    let m = run_at(j);
                    if m == n {
                        break Some(j);
                    }
                    j += m;
                } else {
                    j += 1;
                }
            };
            if let Some(close) = close {
                if !text.is_empty() {
                    pieces.push((number, Piece::Text(std::mem::take(&mut text))));
                }
                let code: String = chars[i + n..close]
                    .iter()
                    .map(|(c, _)| if *c == '\n' { ' ' } else { *c })
                    .collect();
                pieces.push((number, Piece::Code(code.trim().to_string())));
                i = close + n;
                continue;
            }
            text.extend(std::iter::repeat_n('`', n));
            i += n;
            continue;
        }
        if c == '\n' {
            if !text.is_empty() {
                pieces.push((number, Piece::Text(std::mem::take(&mut text))));
            }
        } else {
            text.push(c);
        }
        i += 1;
    }

    // The reference a `::name` continues: the last one in the same table row or paragraph.
    let mut base: Option<Reference> = None;
    let mut row = 0;
    let mut last_code: Option<String> = None;
    for (number, piece) in &pieces {
        let is_row = lines
            .iter()
            .any(|(n, l)| n == number && l.trim_start().starts_with('|'));
        if is_row && *number != row {
            base = None;
            row = *number;
        }
        match piece {
            Piece::Code(code) => {
                if let Some(reference) = parse_reference(code, base.as_ref()) {
                    let verdict = check_reference(root, &reference);
                    report.judge(*number, code, verdict);
                    base = Some(reference);
                } else if code.contains(char::is_whitespace) {
                    for word in code.split_whitespace() {
                        check_command_word(root, *number, word, report);
                    }
                }
                last_code = Some(code.clone());
            }
            Piece::Text(text) => {
                check_titles(root, *number, text, last_code.as_deref(), report);
                last_code = None;
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Reference {
    /// A file (or files, after brace expansion) and the names after it.
    File {
        paths: Vec<String>,
        names: Vec<String>,
    },
    Dir(String),
    Contract(String),
}

/// Reads a code span as a reference, or None when it is not one (a command, a type, a value).
fn parse_reference(code: &str, base: Option<&Reference>) -> Option<Reference> {
    if code.contains(char::is_whitespace) || code.is_empty() {
        return None;
    }
    if let Some(name) = code.strip_prefix("::") {
        return Some(match base {
            Some(Reference::File { paths, names }) if !names.is_empty() => {
                let mut names = names.clone();
                names.pop();
                names.extend(name.split("::").map(str::to_string));
                Reference::File {
                    paths: paths.clone(),
                    names,
                }
            }
            Some(Reference::Contract(_)) => Reference::Contract(name.to_string()),
            // Checked as a file that cannot exist, so that it is reported.
            _ => Reference::File {
                paths: vec![code.to_string()],
                names: Vec::new(),
            },
        });
    }
    if let Some(case) = code.strip_prefix("contract::") {
        // `contract::` alone is how the docs introduce the convention.
        return (!case.is_empty()).then(|| Reference::Contract(case.to_string()));
    }
    let (path, rest) = match code.split_once("::") {
        Some((path, rest)) => (path, Some(rest)),
        None => (code, None),
    };
    let path = path.strip_prefix("./").unwrap_or(path);
    if [".rs", ".ts", ".sh"].iter().any(|ext| path.ends_with(ext)) {
        // `connect(None)` names `connect`.
        let names = rest
            .map(|r| {
                r.split("::")
                    .map(|n| n.split('(').next().unwrap_or(n).to_string())
                    .collect()
            })
            .unwrap_or_default();
        return Some(Reference::File {
            paths: expand_braces(path),
            names,
        });
    }
    if rest.is_none() && path.ends_with('/') && is_under_a_repo_dir(path) {
        return Some(Reference::Dir(path.to_string()));
    }
    None
}

fn expand_braces(path: &str) -> Vec<String> {
    match (path.find('{'), path.find('}')) {
        (Some(open), Some(close)) if open < close => path[open + 1..close]
            .split(',')
            .map(|part| format!("{}{part}{}", &path[..open], &path[close + 1..]))
            .collect(),
        _ => vec![path.to_string()],
    }
}

/// The first component is one of the repository's own directories (not `target/`, not hidden).
fn is_under_a_repo_dir(path: &str) -> bool {
    path.split_once('/').is_some_and(|(first, _)| {
        !first.is_empty()
            && first != "target"
            && !first.starts_with('.')
            && repo_root().join(first).is_dir()
    })
}

fn check_reference(root: &Path, reference: &Reference) -> Result<(), String> {
    match reference {
        Reference::Dir(path) => {
            if root.join(path).is_dir() {
                Ok(())
            } else {
                Err("no such directory".into())
            }
        }
        Reference::Contract(case) => {
            let dir = root.join(CONTRACT_DIR);
            let mut files: Vec<PathBuf> = fs::read_dir(&dir)
                .map_err(|e| format!("{CONTRACT_DIR}: {e}"))?
                .map(|entry| entry.expect("a contract file").path())
                .collect();
            files.sort();
            let defined = files
                .iter()
                .any(|f| fs::read_to_string(f).is_ok_and(|text| defines(&text, &["fn"], case)));
            if defined {
                Ok(())
            } else {
                Err(format!("no fn `{case}` under {CONTRACT_DIR}/"))
            }
        }
        Reference::File { paths, names } => {
            let mut errors = Vec::new();
            for path in paths {
                let file = root.join(path);
                let verdict = if !file.is_file() {
                    Err(format!("no such file {path}"))
                } else if names.is_empty() {
                    Ok(())
                } else if path.ends_with(".rs") {
                    rust_name(root, &file, names)
                } else if path.ends_with(".ts") {
                    let text = fs::read_to_string(&file).map_err(|e| e.to_string())?;
                    match names.as_slice() {
                        [name] if defines_ts(&text, name) => Ok(()),
                        _ => Err(format!("{path} defines no `{}`", names.join("::"))),
                    }
                } else {
                    Err("a script has no names to refer to".into())
                };
                errors.extend(verdict.err());
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors.join("; "))
            }
        }
    }
}

/// Follows `a::b::name` from a Rust file: each of `a`, `b` a module (into its file when it is
/// out of line) or a type; `name` must be defined where that leads.
fn rust_name(root: &Path, file: &Path, names: &[String]) -> Result<(), String> {
    let shown = |f: &Path| f.strip_prefix(root).unwrap_or(f).display().to_string();
    let mut file = file.to_path_buf();
    let mut text = fs::read_to_string(&file).map_err(|e| e.to_string())?;
    let (last, path) = names.split_last().expect("at least one name");
    let mut after_type = false;
    for segment in path {
        if let Some(child) = out_of_line_module(&file, &text, segment) {
            text = fs::read_to_string(&child).map_err(|e| e.to_string())?;
            file = child;
            after_type = false;
        } else if defines(&text, &["mod"], segment) {
            after_type = false;
        } else if defines(
            &text,
            &["struct", "enum", "trait", "type", "union", "impl"],
            segment,
        ) {
            after_type = true;
        } else {
            return Err(format!(
                "`{segment}` is neither a module nor a type in {}",
                shown(&file)
            ));
        }
    }
    let items = [
        "fn", "struct", "enum", "trait", "type", "union", "const", "static", "mod",
    ];
    if defines(&text, &items, last)
        || defines(&text, &["macro_rules!"], last)
        || (after_type && defines_member(&text, last))
    {
        Ok(())
    } else {
        Err(format!("{} defines no `{last}`", shown(&file)))
    }
}

/// The file of `mod name;` declared in `file`, if it is declared out of line.
fn out_of_line_module(file: &Path, text: &str, name: &str) -> Option<PathBuf> {
    let declared = text.lines().any(|line| {
        let line = line.trim();
        let line = strip_visibility(line);
        line.strip_prefix("mod ")
            .is_some_and(|rest| rest.trim() == format!("{name};"))
    });
    if !declared {
        return None;
    }
    let parent = file.parent()?;
    let stem = file.file_stem()?.to_str()?;
    let dir = if matches!(stem, "mod" | "lib" | "main") {
        parent.to_path_buf()
    } else {
        parent.join(stem)
    };
    [
        dir.join(format!("{name}.rs")),
        dir.join(name).join("mod.rs"),
    ]
    .into_iter()
    .find(|candidate| candidate.is_file())
}

fn strip_visibility(line: &str) -> &str {
    for prefix in ["pub(crate) ", "pub(super) ", "pub "] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest;
        }
    }
    line
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `keyword name` with `name` a whole word, for any of the keywords (`impl name` too, and
/// `impl<T> name` or `for name` when the keyword is `impl`).
fn defines(text: &str, keywords: &[&str], name: &str) -> bool {
    let word_at =
        |at: usize| text[at..].starts_with(name) && !text[at + name.len()..].starts_with(is_ident);
    for keyword in keywords {
        for (at, _) in text.match_indices(keyword) {
            if text[..at].ends_with(is_ident) {
                continue;
            }
            let rest = &text[at + keyword.len()..];
            let after = rest.trim_start();
            let mut start = at + keyword.len() + (rest.len() - after.len());
            if *keyword == "impl" && after.starts_with('<') {
                // impl<T> Name
                let Some(close) = after.find('>') else {
                    continue;
                };
                let tail = &after[close + 1..];
                start += close + 1 + (tail.len() - tail.trim_start().len());
            }
            if rest.len() > after.len() && word_at(start) {
                return true;
            }
        }
    }
    if keywords.contains(&"impl") {
        return text
            .match_indices("for ")
            .any(|(at, _)| !text[..at].ends_with(is_ident) && word_at(at + 4));
    }
    false
}

/// A field (`name:`) or a variant (`Name,`, `Name(`, `Name {`) at the start of a line.
fn defines_member(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        let line = strip_visibility(line.trim());
        line.strip_prefix(name).is_some_and(|rest| {
            (rest.starts_with(':') && !rest.starts_with("::"))
                || rest.is_empty()
                || [",", "(", " {", "{", " ="]
                    .iter()
                    .any(|s| rest.starts_with(s))
        })
    })
}

/// A TypeScript function, const, class, interface or type, or a method (`name(` at a line start).
fn defines_ts(text: &str, name: &str) -> bool {
    let keywords = [
        "function",
        "const",
        "let",
        "var",
        "class",
        "interface",
        "type",
        "enum",
    ];
    if defines(text, &keywords, name) {
        return true;
    }
    text.lines().any(|line| {
        let mut line = line.trim();
        for modifier in [
            "export ",
            "async ",
            "private ",
            "public ",
            "protected ",
            "static ",
            "readonly ",
        ] {
            line = line.strip_prefix(modifier).unwrap_or(line);
        }
        line.strip_prefix(name)
            .is_some_and(|rest| ["(", "<", " =", ":"].iter().any(|s| rest.starts_with(s)))
    })
}

/// A word of a command or a fenced block: checked only when it is a path under one of the
/// repository's directories (`./scripts/moto.sh`, `cdk/bin/orders.ts`).
fn check_command_word(root: &Path, line: usize, word: &str, report: &mut Report) {
    let word = word.trim_matches(|c: char| matches!(c, ',' | ';' | '(' | ')' | '"' | '\''));
    let path = word.strip_prefix("./").unwrap_or(word);
    let looks_like_a_path = [".rs", ".ts", ".sh"].iter().any(|ext| path.ends_with(ext))
        && !path.contains(['$', '*', '<', '{', '='])
        && is_under_a_repo_dir(path);
    if looks_like_a_path {
        let verdict = if root.join(path).is_file() {
            Ok(())
        } else {
            Err("no such file".into())
        };
        report.judge(line, word, verdict);
    }
}

/// `stack › "title"`, `config › "title"` and `` `file.test.ts` › "title", "title" ``.
fn check_titles(
    root: &Path,
    line: usize,
    text: &str,
    code_before: Option<&str>,
    report: &mut Report,
) {
    let mut rest = text;
    let mut code_before = code_before;
    while let Some(at) = rest.find('›') {
        let before = rest[..at].trim_end();
        let file = if before.ends_with("stack") {
            Some(STACK_TESTS.to_string())
        } else if before.ends_with("config") {
            Some(CONFIG_TESTS.to_string())
        } else if before.is_empty() {
            code_before
                .filter(|c| c.ends_with(".ts"))
                .map(str::to_string)
        } else {
            None
        };
        code_before = None;
        rest = &rest[at + '›'.len_utf8()..];
        let mut titles = Vec::new();
        loop {
            let trimmed = rest.trim_start();
            let Some(open) = trimmed.strip_prefix('"') else {
                break;
            };
            let Some(close) = open.find('"') else { break };
            titles.push(&open[..close]);
            rest = &open[close + 1..];
            match rest.strip_prefix(',') {
                Some(next) if next.trim_start().starts_with('"') => rest = next,
                _ => break,
            }
        }
        let Some(file) = file else {
            report.judge(
                line,
                "›",
                Err("names no test file before it (stack, config or a .ts path)".into()),
            );
            continue;
        };
        if titles.is_empty() {
            report.judge(
                line,
                &format!("{file} ›"),
                Err("no quoted test title after it".into()),
            );
        }
        let known = fs::read_to_string(root.join(&file)).map(|source| jest_titles(&source));
        let shown = if file == STACK_TESTS {
            "stack"
        } else if file == CONFIG_TESTS {
            "config"
        } else {
            &file
        };
        for title in titles {
            let verdict = match &known {
                Ok(known) if known.contains(title) => Ok(()),
                Ok(_) => Err(format!("{file} has no test titled so")),
                Err(e) => Err(format!("{file}: {e}")),
            };
            report.judge(line, &format!("{shown} › \"{title}\""), verdict);
        }
    }
}

/// The string literals that are the first argument of `test(`, `it(`, `describe(`, or of the
/// call a `test.each(...)` returns, unescaped.
fn jest_titles(source: &str) -> BTreeSet<String> {
    let mut titles = BTreeSet::new();
    for (at, _) in source.match_indices('(') {
        let before = source[..at].trim_end();
        let callee = [
            "test",
            "it",
            "describe",
            "test.only",
            "it.only",
            "describe.only",
        ]
        .iter()
        .any(|f| before.ends_with(f) && !before[..before.len() - f.len()].ends_with(is_ident));
        if !(callee || before.ends_with(')')) {
            continue;
        }
        let after = source[at + 1..].trim_start();
        let Some(quote) = after
            .chars()
            .next()
            .filter(|c| matches!(c, '\'' | '"' | '`'))
        else {
            continue;
        };
        let mut title = String::new();
        let mut chars = after[1..].chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => title.extend(chars.next()),
                c if c == quote => {
                    titles.insert(std::mem::take(&mut title));
                    break;
                }
                c => title.push(c),
            }
        }
    }
    titles
}
