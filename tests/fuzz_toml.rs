//! Property tests of the TOML options (issue 17, item 4): `heal finetune --config FILE.toml`
//! (FinetuneOptions through fsio::read_toml, then resolve) and sweep grids (GridFile, then its
//! cells). No text panics; every refusal is a one-line user error; an accepted config resolves
//! to a FinetuneConfig that its own options (run.json's route for --config run.json) and its
//! JSON form give back unchanged, and an accepted grid has one cell per point of its product,
//! each in its own run directory under the cells folder.

mod fuzz_common;

use fuzz_common::{accepted, config, mutated, TOKENS};
use heal::sweep::GridFile;
use heal::train::{FinetuneConfig, FinetuneOptions};
use proptest::prelude::*;
use std::path::Path;

const CONFIG_FILES: &[&str] = &[
    include_str!("../examples/bbc-news-demo.toml"),
    include_str!("../examples/sst2-8k.toml"),
    "epochs = 1\nlr = 1e-4\ncorrupt = \"bottom:50%\"\nmethod = \"noise:0.5\"\n",
    "train = \"ln-outliers:3\"\nsave-checkpoint = \"corrupted,best\"\ninclude = \"embeddings\"\n",
];
const GRID_FILES: &[&str] = &[
    include_str!("../examples/grids/demo.toml"),
    include_str!("../examples/grids/table3.toml"),
    include_str!("../examples/grids/table5.toml"),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Text(&'static [&'static str]),
    Int,
    Float,
    Bool,
}

const CORRUPT: &[&str] = &["none", "all", "bottom:25%", "top:2", "layers:1-3,7"];
const KEYS: &[(&str, Kind)] = &[
    (
        "model",
        Kind::Text(&["minilm-l6", "tests/fixtures/tiny-bert", "org/name"]),
    ),
    ("revision", Kind::Text(&["main", "v1.0"])),
    (
        "data",
        Kind::Text(&["bbc-news", "sst2", "train.jsonl", "data/"]),
    ),
    ("data-dir", Kind::Text(&["/tmp/data", ""])),
    ("eval-data", Kind::Text(&["test.jsonl", "x.csv"])),
    ("eval-split", Kind::Float),
    ("validation-split", Kind::Float),
    ("max-train-examples", Kind::Int),
    ("epochs", Kind::Int),
    ("lr", Kind::Float),
    ("batch-size", Kind::Int),
    ("gradient-accumulation-steps", Kind::Int),
    ("eval-batch-size", Kind::Int),
    ("max-len", Kind::Int),
    ("pooling", Kind::Text(&["cls", "mean"])),
    ("optimizer", Kind::Text(&["adam", "adamw"])),
    ("weight-decay", Kind::Float),
    ("warmup", Kind::Float),
    ("grad-clip", Kind::Float),
    ("seed", Kind::Int),
    ("device", Kind::Text(&["auto", "cpu", "cuda:0"])),
    ("precision", Kind::Text(&["fp32", "bf16"])),
    ("fused-optimizer", Kind::Bool),
    ("threads", Kind::Int),
    ("out", Kind::Text(&["runs/x", "."])),
    ("corrupt", Kind::Text(CORRUPT)),
    (
        "method",
        Kind::Text(&["reinit", "noise:0.5", "bitflip:n=3", "zero"]),
    ),
    ("modules", Kind::Text(&["all", "q,k", "ffn"])),
    ("include", Kind::Text(&["embeddings", "pooler", "none"])),
    ("kaiming", Kind::Text(&["he", "linear"])),
    ("corrupt-seed", Kind::Int),
    (
        "train",
        Kind::Text(&["full", "head", "layers:top:2", "ln-outliers:2"]),
    ),
    ("feature-cache", Kind::Bool),
    (
        "save-checkpoint",
        Kind::Text(&["best", "corrupted,best", "none"]),
    ),
    (
        "dump-embeddings",
        Kind::Text(&["pretrained,corrupted,best", "best"]),
    ),
    ("overwrite", Kind::Bool),
    ("collapse-threshold", Kind::Float),
    ("early-stopping", Kind::Int),
    ("log-every", Kind::Int),
    ("keep-resume-state", Kind::Bool),
    ("analysis-examples", Kind::Int),
    ("no-such-option", Kind::Int),
];

const INTS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "64",
    "-1",
    "100000",
    "100001",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "1_000",
    "0x10",
    "0o7",
    "0b1",
];
const FLOATS: &[&str] = &[
    "0.0",
    "0.1",
    "0.5",
    "1.0",
    "5e-5",
    "-0.0",
    "-1.0",
    "1e308",
    "1.7976931348623157e308",
    "5e-324",
    "nan",
    "+nan",
    "-nan",
    "inf",
    "+inf",
    "-inf",
    "0.999999999999",
    "1",
    "2",
];

fn toml_string(text: &str) -> String {
    // TOML's basic strings take JSON's escapes for what matters here (quotes, controls,
    // backslashes); anything not valid TOML simply makes the file a user error.
    serde_json::to_string(text).unwrap_or_default()
}

/// A value of the key's own type most of the time (so resolve's checks are reached), a value
/// of another type now and then.
fn value(kind: Kind) -> BoxedStrategy<String> {
    let own = match kind {
        Kind::Text(seeds) => mutated(seeds, 3).prop_map(|s| toml_string(&s)).boxed(),
        Kind::Int => prop_oneof![
            prop::sample::select(INTS).prop_map(str::to_string),
            any::<i64>().prop_map(|i| i.to_string()),
            (0..300i64).prop_map(|i| i.to_string()),
        ]
        .boxed(),
        Kind::Float => prop_oneof![
            prop::sample::select(FLOATS).prop_map(str::to_string),
            (-1.5..1.5f64).prop_map(|f| format!("{f:?}")),
        ]
        .boxed(),
        Kind::Bool => prop::sample::select(&["true", "false", "1", "\"yes\""][..])
            .prop_map(str::to_string)
            .boxed(),
    };
    prop_oneof![
        8 => own,
        1 => prop::sample::select(TOKENS).prop_map(toml_string),
        1 => prop::sample::select(&["[]", "[1, 2]", "{}", "\"\"", "1979-05-27"][..]).prop_map(str::to_string),
    ]
    .boxed()
}

fn assignment() -> BoxedStrategy<String> {
    prop::sample::select(KEYS)
        .prop_flat_map(|(key, kind)| value(kind).prop_map(move |v| format!("{key} = {v}")))
        .boxed()
}

fn options_text() -> BoxedStrategy<String> {
    prop_oneof![
        prop::collection::vec(assignment(), 0..10).prop_map(|lines| lines.join("\n")),
        mutated(CONFIG_FILES, 6),
    ]
    .boxed()
}

/// A grid: a [base] table, short axis lists, datasets.
fn grid_text() -> BoxedStrategy<String> {
    let list = |kind: Kind, max: usize| {
        prop::collection::vec(value(kind), 0..max).prop_map(|v| format!("[{}]", v.join(", ")))
    };
    let axes = (
        list(
            Kind::Text(&["minilm-l6", "a/b", "tests/fixtures/tiny-bert"]),
            4,
        ),
        list(Kind::Text(&["bbc-news", "sst2"]), 3),
        list(Kind::Text(CORRUPT), 6),
        list(Kind::Text(&["reinit", "zero", "noise:0.1"]), 3),
        list(Kind::Text(&["full", "head"]), 3),
        list(Kind::Text(&["cls", "mean"]), 3),
        list(Kind::Float, 4),
        list(Kind::Int, 4),
        prop::collection::vec(0..8usize, 8),
    );
    let grid = axes.prop_map(|(m, d, c, me, t, p, l, s, keep)| {
        let named = [
            ("model", m),
            ("data", d),
            ("corrupt", c),
            ("method", me),
            ("train", t),
            ("pooling", p),
            ("lr", l),
            ("seed", s),
        ];
        let kept: Vec<String> = named
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| *k > 1)
            .map(|((name, v), _)| format!("{name} = {v}"))
            .collect();
        format!("[grid]\n{}\n", kept.join("\n"))
    });
    let base = prop::collection::vec(assignment(), 0..6)
        .prop_map(|lines| format!("[base]\n{}\n", lines.join("\n")));
    let dataset = (
        mutated(&["SST-2", "x"], 1),
        mutated(&["sst2", "bbc-news"], 1),
        value(Kind::Float),
    )
        .prop_map(|(n, d, f)| {
            format!(
                "[[dataset]]\nname = {}\ndata = {}\neval-split = {f}\n",
                toml_string(&n),
                toml_string(&d)
            )
        });
    prop_oneof![
        (base, grid, prop::collection::vec(dataset, 0..3))
            .prop_map(|(b, g, d)| format!("{b}{g}{}", d.join("\n"))),
        mutated(GRID_FILES, 6),
    ]
    .boxed()
}

/// A resolved config is what run.json records: its options resolve to it again, and its JSON
/// reads back to it.
fn check_config(cfg: &FinetuneConfig) -> Result<(), TestCaseError> {
    let mut expected = cfg.clone();
    expected.overwrite = false;
    let again = cfg.to_options().resolve();
    prop_assert!(
        again.is_ok(),
        "{cfg:?}: its own options are refused: {:?}",
        again.err()
    );
    prop_assert_eq!(again.ok(), Some(expected));
    let json = serde_json::to_string(cfg);
    prop_assert!(json.is_ok(), "{cfg:?}: not serialisable: {:?}", json.err());
    let back = serde_json::from_str::<FinetuneConfig>(&json.unwrap_or_default());
    prop_assert_eq!(back.ok(), Some(cfg.clone()));
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), TestCaseError> {
    std::fs::write(path, text).map_err(|e| TestCaseError::fail(format!("{e}")))
}

/// A grid whose axes are `lens` long (distinct values, so that every cell has its own name).
fn long_grid(lens: &[usize]) -> String {
    let names = [
        "model", "data", "corrupt", "method", "train", "pooling", "lr", "seed",
    ];
    let mut text = String::from("[grid]\n");
    for (axis, &n) in names.iter().zip(lens) {
        let values: Vec<String> = (1..=n)
            .map(|i| match *axis {
                "corrupt" => format!("\"layers:{}\"", i.min(10_000)),
                "method" => format!("\"noise:{i}\""),
                "train" => format!("\"ln-outliers:{i}\""),
                "pooling" => ["\"cls\"", "\"mean\""][i % 2].to_string(),
                "lr" => format!("{}e-7", i),
                "seed" => i.to_string(),
                _ => format!("\"m{i}\""),
            })
            .collect();
        text.push_str(&format!("{axis} = [{}]\n", values.join(",")));
    }
    text
}

proptest! {
    // Few cases: each builds a large file; the product of eight axes of up to 3,000 values
    // overflows 64 bits, and a grid must be refused before its cells are laid out.
    #![proptest_config(proptest::test_runner::Config { cases: 64, ..config() })]

    #[test]
    fn huge_grids_are_refused_before_their_cells_are_laid_out(
        long in prop::collection::vec(prop::sample::select(&[320usize, 1_000, 3_000][..]), 2),
        lens in prop::collection::vec(prop::sample::select(&[1usize, 2, 3, 700, 3_000][..]), 6)
    ) {
        // Model and seed always long: at least 102,400 cells, past the limit, so every case
        // is a refusal (grids that expand are the other property's).
        let lens: Vec<usize> = [long[0]].into_iter().chain(lens.into_iter().enumerate()
            .map(|(i, n)| if i == 4 { n.min(2) } else { n })).chain([long[1]]).collect();
        let dir = fuzz_common::scratch()?;
        let path = dir.path().join("grid.toml");
        let text = long_grid(&lens);
        write(&path, &text)?;
        let grid = heal::fsio::read_toml::<GridFile>(&path, "grid");
        prop_assert!(grid.is_ok(), "{:?}", grid.err());
        let Ok(grid) = grid else { return Ok(()) };
        let started = std::time::Instant::now();
        let cells = accepted(&lens, grid.cells(&path, &dir.path().join("cells")))?;
        let product = lens.iter().try_fold(1usize, |a, &n| a.checked_mul(n));
        prop_assert!(cells.is_none(), "{:?} cells laid out", product);
        prop_assert!(started.elapsed().as_secs_f64() < 1.0, "refused after {:?}", started.elapsed());
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_files_resolve_or_are_user_errors(text in options_text()) {
        let dir = fuzz_common::scratch()?;
        let path = dir.path().join("config.toml");
        write(&path, &text)?;
        let Some(options) = accepted(&text, FinetuneOptions::from_toml(&path))? else {
            return Ok(());
        };
        if let Some(cfg) = accepted(&text, options.resolve())? {
            check_config(&cfg)?;
        }
    }

    #[test]
    fn grids_expand_or_are_user_errors(text in grid_text()) {
        let dir = fuzz_common::scratch()?;
        let path = dir.path().join("grid.toml");
        write(&path, &text)?;
        let Some(grid) = accepted(&text, heal::fsio::read_toml::<GridFile>(&path, "grid"))? else {
            return Ok(());
        };
        let cells_dir = dir.path().join("sweep").join("cells");
        let Some(cells) = accepted(&text, grid.cells(&path, &cells_dir))? else {
            return Ok(());
        };
        let axes = &grid.grid;
        let len = |n: Option<usize>| n.unwrap_or(1);
        let datasets = match (&axes.data, grid.dataset.len()) {
            (Some(d), _) => d.len(),
            (None, 0) => 1,
            (None, n) => n,
        };
        let expected = len(axes.model.as_ref().map(Vec::len))
            * datasets
            * len(axes.corrupt.as_ref().map(Vec::len))
            * len(axes.method.as_ref().map(Vec::len))
            * len(axes.train.as_ref().map(Vec::len))
            * len(axes.pooling.as_ref().map(Vec::len))
            * len(axes.lr.as_ref().map(Vec::len))
            * len(axes.seed.as_ref().map(Vec::len));
        prop_assert_eq!(cells.len(), expected);
        let mut names: Vec<&str> = cells.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        prop_assert_eq!(names.len(), cells.len(), "two cells share a run directory");
        for cell in cells.iter().take(50) {
            prop_assert_eq!(&cell.config.out, &cells_dir.join(&cell.name));
            check_config(&cell.config)?;
        }
    }
}

/// Found by `config_files_resolve_or_are_user_errors`: `grad-clip = nan` (and `weight-decay`
/// nan or inf) resolved, and run.json then held null where a number belongs.
#[test]
fn nan_or_infinite_clip_and_decay_are_user_errors() {
    for (key, value) in [
        ("grad-clip", "nan"),
        ("grad-clip", "inf"),
        ("weight-decay", "nan"),
        ("weight-decay", "-inf"),
    ] {
        let options: FinetuneOptions = toml::from_str(&format!("{key} = {value}")).unwrap();
        let err = options.resolve().unwrap_err();
        let msg = heal::error::find_user_error(&err).map(|u| u.0.clone());
        assert!(
            msg.is_some_and(|m| m.contains(key)),
            "{key} = {value}: {err:#}"
        );
    }
}
