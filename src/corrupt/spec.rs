//! Which encoder layers: `none`, `all`, `bottom:25%`, `top:50%`, `bottom:3`, `layers:1-3,7`.
//!
//! Layers are numbered from 1 (the one next to the embeddings) to L, as the paper numbers them.
//! A percentage p selects k = floor(L x p / 100 + 0.5) layers (round half up): BERT-Base (12)
//! 25% = 3 layers, BERT-Large (24) 50% = 12, DistilBERT (6) 50% = 3, 75% of 6 = 5.

use crate::error::user;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A parsed layer spec; [`LayerSpec::resolve`] turns it into layer numbers for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum LayerSpec {
    None,
    All,
    Bottom(Amount),
    Top(Amount),
    /// Explicit 1-based layer numbers, ascending, no repeats.
    Layers(Vec<usize>),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Amount {
    Percent(f64),
    Count(usize),
}

pub const ROUNDING_RULE: &str =
    "a percentage p of L layers selects floor(L*p/100 + 0.5) layers (round half up)";

impl LayerSpec {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let t = text.trim();
        let bad = |why: &str| {
            user(format!(
                "layer spec {text:?}: {why}; use none, all, bottom:25%, top:50%, bottom:3 or layers:1-3,7"
            ))
        };
        match t {
            "none" => return Ok(LayerSpec::None),
            "all" => return Ok(LayerSpec::All),
            _ => {}
        }
        let (kind, rest) = t.split_once(':').ok_or_else(|| bad("unknown form"))?;
        match kind {
            "bottom" | "top" => {
                let amount = if let Some(p) = rest.strip_suffix('%') {
                    let p: f64 = p
                        .trim()
                        .parse()
                        .map_err(|_| bad("the percentage is not a number"))?;
                    if !(p > 0.0 && p <= 100.0) {
                        return Err(bad("a percentage must be above 0% and at most 100%"));
                    }
                    Amount::Percent(p)
                } else {
                    let k: usize = rest
                        .trim()
                        .parse()
                        .map_err(|_| bad("expected a count or a percentage"))?;
                    if k == 0 {
                        return Err(bad("a count of 0 selects no layer"));
                    }
                    Amount::Count(k)
                };
                Ok(if kind == "bottom" {
                    LayerSpec::Bottom(amount)
                } else {
                    LayerSpec::Top(amount)
                })
            }
            "layers" => {
                let mut layers = Vec::new();
                for part in rest.split(',') {
                    let part = part.trim();
                    let (a, b) = match part.split_once('-') {
                        Some((a, b)) => (a, b),
                        None => (part, part),
                    };
                    let a: usize = a
                        .trim()
                        .parse()
                        .map_err(|_| bad(&format!("{part:?} is not a layer number or range")))?;
                    let b: usize = b
                        .trim()
                        .parse()
                        .map_err(|_| bad(&format!("{part:?} is not a layer number or range")))?;
                    if a == 0 || b == 0 {
                        return Err(bad("layers are numbered from 1"));
                    }
                    if a > b {
                        return Err(bad(&format!("the range {a}-{b} runs backwards")));
                    }
                    layers.extend(a..=b);
                }
                layers.sort_unstable();
                layers.dedup();
                Ok(LayerSpec::Layers(layers))
            }
            _ => Err(bad("unknown form")),
        }
    }

    /// The selected 1-based layer numbers for a model of `depth` layers.
    pub fn resolve(&self, depth: usize) -> anyhow::Result<Vec<usize>> {
        let count = |a: &Amount| -> anyhow::Result<usize> {
            let k = match *a {
                Amount::Percent(p) => (depth as f64 * p / 100.0 + 0.5).floor() as usize,
                Amount::Count(k) => k,
            };
            if k == 0 {
                return Err(user(format!(
                    "layer spec {self}: selects no layer of this {depth}-layer model ({ROUNDING_RULE})"
                )));
            }
            if k > depth {
                return Err(user(format!(
                    "layer spec {self}: asks for {k} layers, but the model has {depth}"
                )));
            }
            Ok(k)
        };
        match self {
            LayerSpec::None => Ok(vec![]),
            LayerSpec::All => Ok((1..=depth).collect()),
            LayerSpec::Bottom(a) => Ok((1..=count(a)?).collect()),
            LayerSpec::Top(a) => {
                let k = count(a)?;
                Ok((depth - k + 1..=depth).collect())
            }
            LayerSpec::Layers(layers) => {
                if let Some(&l) = layers.iter().find(|&&l| l > depth) {
                    return Err(user(format!(
                        "layer spec {self}: layer {l} is beyond the model's {depth} layers"
                    )));
                }
                Ok(layers.clone())
            }
        }
    }
}

impl fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let amount = |a: &Amount| match a {
            Amount::Percent(p) => format!("{p}%"),
            Amount::Count(k) => k.to_string(),
        };
        match self {
            LayerSpec::None => write!(f, "none"),
            LayerSpec::All => write!(f, "all"),
            LayerSpec::Bottom(a) => write!(f, "bottom:{}", amount(a)),
            LayerSpec::Top(a) => write!(f, "top:{}", amount(a)),
            LayerSpec::Layers(l) => {
                let parts: Vec<String> = l.iter().map(|x| x.to_string()).collect();
                write!(f, "layers:{}", parts.join(","))
            }
        }
    }
}

crate::string_serde!(LayerSpec);

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(spec: &str, depth: usize) -> Vec<usize> {
        LayerSpec::parse(spec).unwrap().resolve(depth).unwrap()
    }

    #[test]
    fn paper_levels() {
        assert_eq!(layers("bottom:25%", 12), vec![1, 2, 3]);
        assert_eq!(layers("bottom:50%", 12), (1..=6).collect::<Vec<_>>());
        assert_eq!(layers("bottom:75%", 12), (1..=9).collect::<Vec<_>>());
        assert_eq!(layers("top:25%", 12), vec![10, 11, 12]);
        assert_eq!(layers("top:75%", 12), (4..=12).collect::<Vec<_>>());
        assert_eq!(layers("bottom:50%", 24), (1..=12).collect::<Vec<_>>());
        assert_eq!(layers("bottom:50%", 6), vec![1, 2, 3]);
        assert_eq!(layers("top:50%", 6), vec![4, 5, 6]);
        assert_eq!(layers("all", 6), (1..=6).collect::<Vec<_>>());
        assert_eq!(layers("none", 6), Vec::<usize>::new());
        assert_eq!(layers("bottom:3", 6), vec![1, 2, 3]);
        assert_eq!(layers("layers:1-3,7", 12), vec![1, 2, 3, 7]);
        assert_eq!(
            layers("bottom:75%", 6),
            vec![1, 2, 3, 4, 5],
            "4.5 rounds up"
        );
    }

    #[test]
    fn bad_specs_are_errors() {
        for bad in [
            "bottom:150%",
            "layers:0",
            "layers:9-7",
            "top:0%",
            "middle:2",
            "bottom:x",
            "layers:a",
            "bottom:0",
        ] {
            assert!(LayerSpec::parse(bad).is_err(), "{bad} should not parse");
        }
        let err = LayerSpec::parse("layers:7")
            .unwrap()
            .resolve(6)
            .unwrap_err()
            .to_string();
        assert!(err.contains("6 layers"), "{err}");
        let err = LayerSpec::parse("bottom:1%")
            .unwrap()
            .resolve(6)
            .unwrap_err()
            .to_string();
        assert!(err.contains("6-layer"), "{err}");
    }
}
