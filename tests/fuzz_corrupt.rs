//! Property tests of the damage grammar (issue 17, item 4): `--corrupt` / `--spec` layer specs,
//! `--method`, `--modules`, `--include` and `--train` (which embeds a layer spec). Every text
//! either parses into a value whose printed form parses back to it, or is a one-line user
//! error; none panics. A parsed layer spec resolves, for every depth, to what the rounding rule
//! in README says, or to a user error.

mod fuzz_common;

use fuzz_common::{accepted, config, mutated, mutated_list};
use heal::corrupt::method::Method;
use heal::corrupt::select::{parse_modules, Include, ALL_MODULES};
use heal::corrupt::spec::{Amount, LayerSpec};
use heal::train::trainable::TrainMode;
use proptest::prelude::*;

const SPECS: &[&str] = &[
    "none",
    "all",
    "bottom:25%",
    "top:50%",
    "bottom:3",
    "top:2",
    "layers:1-3,7",
    "layers:2",
    "layers:1,1,2-4",
    "bottom:100%",
    "top:0.5%",
    "layers:3-3",
    " bottom:75% ",
];
const METHODS: &[&str] = &[
    "reinit",
    "zero",
    "shuffle",
    "noise:0.1",
    "noise:0",
    "noise:2.5",
    "bitflip:0.001",
    "bitflip:1",
    "bitflip:n=3",
    "bitflip:1e-6",
];
const MODULES: &[&str] = &[
    "all",
    "attention",
    "ffn",
    "layernorm",
    "q",
    "k",
    "v",
    "o",
    "ffn_in",
    "ffn_out",
    "ln_attn",
    "ln_ffn",
];
const INCLUDES: &[&str] = &["embeddings", "pooler", "none", ""];
const TRAINS: &[&str] = &[
    "full",
    "head",
    "layernorm",
    "bias",
    "attention",
    "ffn",
    "layers:1-3",
    "layers:top:2",
    "layers:bottom:50%",
    "layers:all",
    "ln-outliers:4",
    "ln-outliers:1",
];

/// What README's rounding rule gives: floor(L x p / 100 + 0.5) layers, or the count itself.
fn expected_count(amount: &Amount, depth: usize) -> usize {
    match *amount {
        Amount::Percent(p) => (depth as f64 * p / 100.0 + 0.5).floor() as usize,
        Amount::Count(k) => k,
    }
}

/// A parsed spec's layers for one depth: ascending, within 1..=depth, as many as the rule says,
/// from the right end; a refusal is a user error.
fn check_resolution(spec: &LayerSpec, depth: usize) -> Result<(), TestCaseError> {
    let Some(layers) = accepted(&(spec, depth), spec.resolve(depth))? else {
        return Ok(());
    };
    prop_assert!(
        layers.windows(2).all(|w| w[0] < w[1]),
        "{spec} at {depth}: {layers:?}"
    );
    prop_assert!(
        layers.iter().all(|&l| (1..=depth).contains(&l)),
        "{spec} at {depth}: {layers:?}"
    );
    match spec {
        LayerSpec::None => prop_assert!(layers.is_empty()),
        LayerSpec::All => prop_assert_eq!(layers.len(), depth),
        LayerSpec::Bottom(a) => {
            prop_assert_eq!(layers.len(), expected_count(a, depth));
            prop_assert_eq!(layers.first(), Some(&1));
        }
        LayerSpec::Top(a) => {
            prop_assert_eq!(layers.len(), expected_count(a, depth));
            prop_assert_eq!(layers.last(), Some(&depth));
        }
        LayerSpec::Layers(list) => prop_assert_eq!(&layers, list),
    }
    Ok(())
}

/// Well-formed specs with numbers anywhere in their ranges and past them.
fn structured_spec() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        0..40usize,
        Just(usize::MAX),
        any::<usize>(),
        100_000..10_000_000usize
    ];
    let percent = prop_oneof![
        (0.0..=120.0f64).prop_map(|p| p.to_string()),
        Just("1e-320".to_string()),
        Just("100.0000000000001".to_string()),
        any::<f64>().prop_map(|p| p.to_string()),
    ];
    let side = prop::sample::select(vec!["bottom", "top"]);
    let part = (number.clone(), prop::option::of(number.clone())).prop_map(|(a, b)| match b {
        Some(b) => format!("{a}-{b}"),
        None => a.to_string(),
    });
    prop_oneof![
        (side.clone(), percent).prop_map(|(s, p)| format!("{s}:{p}%")),
        (side, number).prop_map(|(s, n)| format!("{s}:{n}")),
        prop::collection::vec(part, 1..12).prop_map(|parts| format!("layers:{}", parts.join(","))),
    ]
}

fn spec_property(text: &str) -> Result<(), TestCaseError> {
    let Some(spec) = accepted(&text, LayerSpec::parse(text))? else {
        return Ok(());
    };
    let printed = spec.to_string();
    let again = LayerSpec::parse(&printed);
    prop_assert!(
        again.is_ok(),
        "{text:?} printed as {printed:?}, which does not parse"
    );
    prop_assert_eq!(
        again.ok(),
        Some(spec.clone()),
        "{:?} -> {:?}",
        text,
        printed
    );
    // Titles and levels are what figures print; they must not panic either.
    let _ = (
        spec.title(),
        spec.level(),
        spec.side(),
        spec.share_percent(),
    );
    for depth in [0, 1, 2, 3, 6, 12, 24, 25, 48] {
        check_resolution(&spec, depth)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn layer_specs_parse_round_trip_and_resolve(text in mutated(SPECS, 6)) {
        spec_property(&text)?;
    }

    #[test]
    fn structured_layer_specs_parse_round_trip_and_resolve(text in structured_spec()) {
        spec_property(&text)?;
    }

    #[test]
    fn methods_parse_and_round_trip(text in mutated(METHODS, 6)) {
        if let Some(method) = accepted(&text, Method::parse(&text))? {
            let printed = method.to_string();
            prop_assert_eq!(Method::parse(&printed).ok(), Some(method), "{:?} -> {:?}", text, printed);
        }
    }

    #[test]
    fn module_lists_parse_to_sorted_distinct_modules(text in mutated_list(MODULES, ",", 5)) {
        if let Some(modules) = accepted(&text, parse_modules(&text))? {
            prop_assert!(!modules.is_empty());
            prop_assert!(modules.windows(2).all(|w| w[0] < w[1]), "{modules:?}");
            prop_assert!(modules.iter().all(|m| ALL_MODULES.contains(m)));
            let names: Vec<&str> = modules.iter().map(|m| m.name()).collect();
            prop_assert_eq!(parse_modules(&names.join(",")).ok(), Some(modules));
        }
    }

    #[test]
    fn include_lists_parse(text in mutated_list(INCLUDES, ",", 4)) {
        if let Some(include) = accepted(&text, Include::parse(&text))? {
            let mut parts = Vec::new();
            if include.embeddings { parts.push("embeddings"); }
            if include.pooler { parts.push("pooler"); }
            prop_assert_eq!(Include::parse(&parts.join(",")).ok(), Some(include));
        }
    }

    #[test]
    fn train_modes_parse_and_round_trip(text in mutated(TRAINS, 6)) {
        if let Some(mode) = accepted(&text, TrainMode::parse(&text))? {
            let printed = mode.to_string();
            prop_assert_eq!(TrainMode::parse(&printed).ok(), Some(mode), "{:?} -> {:?}", text, printed);
        }
    }
}
