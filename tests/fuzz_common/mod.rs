//! Shared pieces of the property tests (tests/fuzz_*.rs): the case count, structured mutations
//! of valid inputs, and the one property every parser of user input keeps.
//!
//! Random bytes alone rarely get past a parser's first check, so every generator here starts
//! from valid inputs and edits them: characters from the grammar, numbers at the extremes,
//! unicode and control characters inserted, ranges deleted or repeated many times, truncation.
//! A failure shrinks to the fewest edits, and proptest keeps it under proptest-regressions/.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// Cases per property: 10,000 (issue 17's floor for CI), or PROPTEST_CASES to go deeper.
pub fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    Config {
        cases,
        // A panic inside the parser is the failure we look for; shrinking it must stay quick.
        max_shrink_iters: 2_000,
        ..Config::default()
    }
}

/// Pieces that reach deep into the grammars: separators, numbers at and past every edge,
/// floats in every spelling, unicode, a byte-order mark, control characters.
pub const TOKENS: &[&str] = &[
    ":",
    ",",
    "-",
    "%",
    "=",
    ".",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\"",
    "'",
    "\\",
    "[",
    "]",
    "{",
    "}",
    "#",
    "0",
    "1",
    "-1",
    "-0",
    "007",
    "2147483648",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "1e308",
    "1e309",
    "-1e308",
    "1e-320",
    "4.9e-324",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "+inf",
    "infinity",
    "0.5",
    "1.0",
    "100",
    "100.0",
    "1e2",
    "0x10",
    "1_000",
    "+1",
    "true",
    "false",
    "null",
    "none",
    "all",
    "\u{feff}",
    "é",
    "ß",
    "日本",
    "😀",
    "\u{200b}",
    "\u{0}",
    "\u{7f}",
    "\u{fffd}",
    "\u{10ffff}",
];

/// One edit of a text, at positions given as fractions of its length (so an edit list keeps
/// its meaning while shrinking).
#[derive(Debug, Clone)]
pub enum Edit {
    Insert(Index, usize),
    InsertChar(Index, char),
    Delete(Index, usize),
    Replace(Index, usize, usize),
    Truncate(Index),
    /// Repeats a range of up to 16 characters this many times in place.
    Repeat(Index, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let token = 0..TOKENS.len();
    prop_oneof![
        4 => (any::<Index>(), token.clone()).prop_map(|(i, t)| Edit::Insert(i, t)),
        2 => (any::<Index>(), any::<char>()).prop_map(|(i, c)| Edit::InsertChar(i, c)),
        2 => (any::<Index>(), 1..8usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        3 => (any::<Index>(), 1..6usize, token).prop_map(|(i, n, t)| Edit::Replace(i, n, t)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), 1..16usize, 2..2_000usize).prop_map(|(i, n, k)| Edit::Repeat(i, n, k)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
    for e in edits {
        let len = chars.len();
        match e {
            Edit::Insert(i, t) => {
                let p = at(i, len);
                chars.splice(p..p, TOKENS[*t].chars());
            }
            Edit::InsertChar(i, c) => chars.insert(at(i, len), *c),
            Edit::Delete(i, n) => {
                let p = at(i, len).min(len);
                chars.drain(p..(p + n).min(len));
            }
            Edit::Replace(i, n, t) => {
                let p = at(i, len).min(len);
                chars.splice(p..(p + n).min(len), TOKENS[*t].chars());
            }
            Edit::Truncate(i) => chars.truncate(at(i, len)),
            Edit::Repeat(i, n, k) => {
                let p = at(i, len).min(len);
                let piece: Vec<char> = chars[p..(p + n).min(len)].to_vec();
                let tail = chars.split_off(p);
                for _ in 0..*k {
                    chars.extend(&piece);
                }
                chars.extend(tail);
            }
        }
    }
    chars.into_iter().collect()
}

/// A valid input from `seeds`, then up to `max_edits` edits; a few unedited seeds too.
pub fn mutated(seeds: &'static [&'static str], max_edits: usize) -> BoxedStrategy<String> {
    (
        prop::sample::select(seeds),
        prop::collection::vec(edit(), 0..=max_edits),
    )
        .prop_map(|(seed, edits)| apply(seed, &edits))
        .boxed()
}

/// Seeds joined by `sep` after each was mutated: lists of items (`q,k,v`, TOML arrays).
pub fn mutated_list(
    seeds: &'static [&'static str],
    sep: &'static str,
    max_items: usize,
) -> BoxedStrategy<String> {
    prop::collection::vec(mutated(seeds, 2), 1..=max_items)
        .prop_map(move |items| items.join(sep))
        .boxed()
}

/// Bytes edits: the text edits on a lossless view (each byte as one char), then back, so
/// invalid UTF-8 and cuts through multi-byte characters happen too.
pub fn mutated_bytes(seeds: Vec<Vec<u8>>, max_edits: usize) -> BoxedStrategy<Vec<u8>> {
    let byte_edit = prop_oneof![
        3 => edit(),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::InsertChar(i, char::from(b))),
    ];
    (
        prop::sample::select(seeds),
        prop::collection::vec(byte_edit, 0..=max_edits),
    )
        .prop_map(|(seed, edits)| {
            let text: String = seed.iter().map(|&b| char::from(b)).collect();
            let edited = apply(&text, &edits);
            // Chars above 0xff (from unicode tokens) go in as their UTF-8 bytes.
            let mut out = Vec::with_capacity(edited.len());
            for c in edited.chars() {
                match u8::try_from(u32::from(c)) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend(c.to_string().as_bytes()),
                }
            }
            out
        })
        .boxed()
}

/// The property every parser of user input keeps: it returns (no panic: proptest catches
/// those and shrinks them), and a rejection is a `UserError` of one line, which the binary
/// prints as `error: MSG` with exit code 2.
pub fn accepted<T>(
    input: &dyn std::fmt::Debug,
    result: anyhow::Result<T>,
) -> Result<Option<T>, TestCaseError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) => match heal::error::find_user_error(&e) {
            Some(u) if !u.0.contains('\n') => Ok(None),
            Some(u) => Err(TestCaseError::fail(format!(
                "{input:?}: the user error spans lines: {:?}",
                u.0
            ))),
            None => Err(TestCaseError::fail(format!(
                "{input:?}: rejected with an error that is not the user's (exit 1): {e:#}"
            ))),
        },
    }
}

/// A temporary folder for one case, in memory where the system has /dev/shm: a case writes a
/// few small files, and on a disk their creation and removal, not the parsing, took the time.
pub fn scratch() -> Result<tempfile::TempDir, TestCaseError> {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::Builder::new().prefix("heal-fuzz").tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    dir.map_err(|e| TestCaseError::fail(format!("a temporary folder: {e}")))
}
