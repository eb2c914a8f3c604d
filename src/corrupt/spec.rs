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

/// The highest layer number a `layers:` list takes; far above any encoder's depth.
pub const MAX_LAYER: usize = 10_000;

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
                // Ranges first, expanded once merged: `1-99999999999` or a thousand copies of
                // a range must not allocate what no model has.
                let mut ranges = Vec::new();
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
                    if b > MAX_LAYER {
                        return Err(bad(&format!(
                            "layer {b} is beyond any encoder (at most {MAX_LAYER} layers)"
                        )));
                    }
                    ranges.push((a, b));
                }
                ranges.sort_unstable();
                let mut layers: Vec<usize> = Vec::new();
                for (a, b) in ranges {
                    let from = layers.last().map_or(a, |&last| a.max(last + 1));
                    layers.extend(from..=b);
                }
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

/// The end of the encoder a `bottom:`/`top:` spec counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Bottom,
    Top,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Bottom => "bottom",
            Side::Top => "top",
        }
    }
}

impl LayerSpec {
    /// `bottom` or `top` for those forms; None for none, all and explicit layer lists.
    pub fn side(&self) -> Option<Side> {
        match self {
            LayerSpec::Bottom(_) => Some(Side::Bottom),
            LayerSpec::Top(_) => Some(Side::Top),
            _ => None,
        }
    }

    /// The share of layers in percent where the spec states one: 0 for none, 100 for all, p
    /// for `bottom:p%`/`top:p%`; None for counts and layer lists (their share depends on the
    /// model).
    pub fn share_percent(&self) -> Option<f64> {
        match self {
            LayerSpec::None => Some(0.0),
            LayerSpec::All => Some(100.0),
            LayerSpec::Bottom(Amount::Percent(p)) | LayerSpec::Top(Amount::Percent(p)) => Some(*p),
            _ => None,
        }
    }

    /// The corruption level as a table row names it, side left out: "0%", "25%", "100%",
    /// "3 layers", or the spec itself for a layer list.
    pub fn level(&self) -> String {
        match self {
            LayerSpec::None => "0%".into(),
            LayerSpec::All => "100%".into(),
            LayerSpec::Bottom(a) | LayerSpec::Top(a) => match a {
                Amount::Percent(p) => format!("{p}%"),
                Amount::Count(k) => format!("{k} layers"),
            },
            LayerSpec::Layers(_) => self.to_string(),
        }
    }

    /// The setting as the paper's figures name it: "0% (clean)", "bottom 25%",
    /// "top 2 layers", "layers 1-3,7", "100%".
    pub fn title(&self) -> String {
        match self {
            LayerSpec::None => "0% (clean)".into(),
            LayerSpec::All => "100%".into(),
            LayerSpec::Bottom(_) | LayerSpec::Top(_) => {
                let side = self.side().map_or("", Side::name);
                format!("{side} {}", self.level())
            }
            LayerSpec::Layers(_) => {
                let text = self.to_string();
                format!("layers {}", text.trim_start_matches("layers:"))
            }
        }
    }
}

/// Ascending layer numbers as the spec grammar writes them, runs as ranges: `1-3,7`.
fn ranges(layers: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < layers.len() {
        let mut j = i;
        while j + 1 < layers.len() && layers[j + 1] == layers[j] + 1 {
            j += 1;
        }
        parts.push(if j == i {
            layers[i].to_string()
        } else {
            format!("{}-{}", layers[i], layers[j])
        });
        i = j + 1;
    }
    parts.join(",")
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
            LayerSpec::Layers(l) => write!(f, "layers:{}", ranges(l)),
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
    fn levels_sides_and_titles() {
        let spec = |t: &str| LayerSpec::parse(t).unwrap();
        assert_eq!(spec("none").level(), "0%");
        assert_eq!(spec("none").share_percent(), Some(0.0));
        assert_eq!(spec("none").side(), None);
        assert_eq!(spec("all").level(), "100%");
        assert_eq!(spec("all").share_percent(), Some(100.0));
        assert_eq!(spec("top:25%").level(), "25%");
        assert_eq!(spec("top:25%").share_percent(), Some(25.0));
        assert_eq!(spec("top:25%").side(), Some(Side::Top));
        assert_eq!(spec("bottom:3").level(), "3 layers");
        assert_eq!(spec("bottom:3").share_percent(), None);
        assert_eq!(spec("bottom:3").side(), Some(Side::Bottom));
        assert_eq!(spec("none").title(), "0% (clean)");
        assert_eq!(spec("bottom:50%").title(), "bottom 50%");
        assert_eq!(spec("top:2").title(), "top 2 layers");
        assert_eq!(spec("layers:1-3,7").title(), "layers 1-3,7");
        assert_eq!(spec("layers:3,1,2,7").to_string(), "layers:1-3,7");
        assert_eq!(spec("layers:1-3,7").level(), "layers:1-3,7");
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
        // A huge range was expanded before any check: an allocation abort (exit 134).
        let err = LayerSpec::parse("layers:1-99999999999")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 10000 layers"), "{err}");
        let many = vec!["1-10000"; 5000].join(",");
        assert_eq!(layers(&format!("layers:{many},3"), 10_000).len(), 10_000);
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
