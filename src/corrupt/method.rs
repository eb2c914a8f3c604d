//! How the selected tensors are damaged. Every random draw comes from one ChaCha8 stream seeded
//! by the user, tensors taken in name order, so the same seed gives the same bytes on any
//! machine and any device.

use super::select::Role;
use crate::error::user;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;

/// The bound of Kaiming-uniform re-initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kaiming {
    /// bound = sqrt(6 / fan_in): PyTorch's kaiming_uniform_ default (a = 0).
    #[default]
    He,
    /// bound = 1 / sqrt(fan_in): nn.Linear's own reset (a = sqrt(5)).
    Linear,
}

impl Kaiming {
    pub fn bound(self, fan_in: usize) -> f64 {
        match self {
            Kaiming::He => (6.0 / fan_in as f64).sqrt(),
            Kaiming::Linear => 1.0 / (fan_in as f64).sqrt(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Method {
    /// LayerNorm weights 1, biases 0, other weights Kaiming-uniform from their fan-in (the paper).
    Reinit,
    /// w + S * std(w) * N(0, 1), per tensor.
    Noise(f64),
    Zero,
    /// Entries permuted within each tensor.
    Shuffle,
    /// Each bit of each fp32 value flipped with this probability.
    BitflipRate(f64),
    /// Exactly this many bit flips over the whole selection.
    BitflipCount(u64),
}

impl Method {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let t = text.trim();
        let bad = |why: &str| {
            user(format!("--method {text:?}: {why}; use reinit, noise:S, zero, shuffle, bitflip:P or bitflip:n=K"))
        };
        match t {
            "reinit" => return Ok(Method::Reinit),
            "zero" => return Ok(Method::Zero),
            "shuffle" => return Ok(Method::Shuffle),
            _ => {}
        }
        if let Some(s) = t.strip_prefix("noise:") {
            let s: f64 = s
                .parse()
                .map_err(|_| bad("the noise scale is not a number"))?;
            if !(s >= 0.0 && s.is_finite()) {
                return Err(bad("the noise scale must be 0 or more"));
            }
            return Ok(Method::Noise(s));
        }
        if let Some(rest) = t.strip_prefix("bitflip:") {
            if let Some(k) = rest.strip_prefix("n=") {
                let k: u64 = k
                    .parse()
                    .map_err(|_| bad("n= takes a whole number of flips"))?;
                if k == 0 {
                    return Err(bad("n=0 flips nothing"));
                }
                return Ok(Method::BitflipCount(k));
            }
            let p: f64 = rest
                .parse()
                .map_err(|_| bad("the flip probability is not a number"))?;
            if !(p > 0.0 && p <= 1.0) {
                return Err(bad("the flip probability must be in (0, 1]"));
            }
            return Ok(Method::BitflipRate(p));
        }
        Err(bad("unknown method"))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Reinit => write!(f, "reinit"),
            Method::Noise(s) => write!(f, "noise:{s}"),
            Method::Zero => write!(f, "zero"),
            Method::Shuffle => write!(f, "shuffle"),
            Method::BitflipRate(p) => write!(f, "bitflip:{p}"),
            Method::BitflipCount(k) => write!(f, "bitflip:n={k}"),
        }
    }
}

crate::string_serde!(Method);

/// Bit flips by the part of the fp32 word they hit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitFlips {
    pub sign: u64,
    pub exponent: u64,
    pub mantissa: u64,
}

impl BitFlips {
    fn count(&mut self, bit: u32) {
        match bit {
            31 => self.sign += 1,
            23..=30 => self.exponent += 1,
            _ => self.mantissa += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.sign + self.exponent + self.mantissa
    }

    pub fn add(&mut self, other: &BitFlips) {
        self.sign += other.sign;
        self.exponent += other.exponent;
        self.mantissa += other.mantissa;
    }
}

/// Flips one bit of one value.
fn flip(values: &mut [f32], bit_index: u64, flips: &mut BitFlips) {
    let (i, bit) = ((bit_index / 32) as usize, (bit_index % 32) as u32);
    values[i] = f32::from_bits(values[i].to_bits() ^ (1 << bit));
    flips.count(bit);
}

/// Damages one tensor's values in place (every method but bitflip:n=K, which spans tensors).
/// `shape` gives the fan-in (the size of dimension 1) for re-initialised weights.
pub fn apply(
    method: &Method,
    values: &mut [f32],
    shape: &[usize],
    role: Role,
    kaiming: Kaiming,
    rng: &mut impl Rng,
) -> BitFlips {
    let mut flips = BitFlips::default();
    match method {
        Method::Reinit => match role {
            Role::LayerNormWeight => values.fill(1.0),
            Role::Bias => values.fill(0.0),
            Role::Weight => {
                let fan_in = shape
                    .get(1)
                    .copied()
                    .unwrap_or(shape.first().copied().unwrap_or(1))
                    .max(1);
                let bound = kaiming.bound(fan_in) as f32;
                for v in values.iter_mut() {
                    *v = rng.gen_range(-bound..bound);
                }
            }
        },
        Method::Noise(scale) => {
            let sd = std_unbiased(values) * scale;
            for v in values.iter_mut() {
                let z: f64 = StandardNormal.sample(rng);
                *v = (*v as f64 + sd * z) as f32;
            }
        }
        Method::Zero => values.fill(0.0),
        Method::Shuffle => values.shuffle(rng),
        Method::BitflipRate(p) => {
            // Geometric gaps between flipped bits: exact Bernoulli(p) per bit, fast for small p.
            let total_bits = values.len() as u64 * 32;
            let mut pos: u64 = 0;
            loop {
                let gap = if *p >= 1.0 {
                    0
                } else {
                    let u: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
                    (u.ln() / (1.0 - p).ln()).floor() as u64
                };
                pos = pos.saturating_add(gap);
                if pos >= total_bits {
                    break;
                }
                flip(values, pos, &mut flips);
                pos += 1;
            }
        }
        Method::BitflipCount(_) => {
            unreachable!("bitflip:n=K is applied across tensors by flip_exact")
        }
    }
    flips
}

/// Flips exactly `k` distinct bits chosen uniformly over all bits of `tensors` (in order).
pub fn flip_exact(
    tensors: &mut [Vec<f32>],
    k: u64,
    rng: &mut impl Rng,
) -> anyhow::Result<Vec<BitFlips>> {
    let total: u64 = tensors.iter().map(|t| t.len() as u64 * 32).sum();
    if k > total {
        return Err(user(format!(
            "bitflip:n={k}: the selection has only {total} bits"
        )));
    }
    let mut chosen: Vec<u64> = if k * 2 > total {
        let mut all: Vec<u64> = (0..total).collect();
        all.shuffle(rng);
        all.truncate(k as usize);
        all
    } else {
        let mut set = HashSet::with_capacity(k as usize);
        let mut picks = Vec::with_capacity(k as usize);
        while picks.len() < k as usize {
            let b = rng.gen_range(0..total);
            if set.insert(b) {
                picks.push(b);
            }
        }
        picks
    };
    chosen.sort_unstable();
    let mut flips = vec![BitFlips::default(); tensors.len()];
    let mut start = 0u64;
    let mut c = 0usize;
    for (t, values) in tensors.iter_mut().enumerate() {
        let end = start + values.len() as u64 * 32;
        while c < chosen.len() && chosen[c] < end {
            flip(values, chosen[c] - start, &mut flips[t]);
            c += 1;
        }
        start = end;
    }
    Ok(flips)
}

pub fn std_unbiased(values: &[f32]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let ss: f64 = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
    (ss / (n - 1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_methods_and_rejects_bad_ones() {
        assert_eq!(Method::parse("noise:0.5").unwrap(), Method::Noise(0.5));
        assert_eq!(
            Method::parse("bitflip:n=3").unwrap(),
            Method::BitflipCount(3)
        );
        assert_eq!(
            Method::parse("bitflip:1e-6").unwrap(),
            Method::BitflipRate(1e-6)
        );
        for bad in [
            "noise:-1",
            "bitflip:2",
            "bitflip:0",
            "bitflip:n=0",
            "melt",
            "noise:x",
        ] {
            assert!(Method::parse(bad).is_err(), "{bad}");
        }
    }
}
