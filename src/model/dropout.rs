//! Dropout with masks drawn by a counter-based generator on the CPU.
//!
//! libtorch's CPU dropout draws its mask with `bernoulli_`, which on short-sentence batches
//! costs about a tenth of a fine-tuning step (1.7 ms per call on a [32, 13, 384] tensor, 20
//! calls a step for a 6-layer encoder). Here the mask is written directly: element `i` of the
//! `n`-th mask of a run is kept when a 32-bit hash of (seed, n, i) is at least `p * 2^32`, and
//! kept elements are scaled by `1 / (1 - p)`, as `torch.nn.functional.dropout` does. The
//! product `xs * mask` is an ordinary autograd operation, so the backward pass multiplies the
//! incoming gradient by the same mask.
//!
//! The mask depends only on the seed, the call count since [`seed`] and the element index,
//! never on thread scheduling: a run is reproducible given its seed. On other devices the
//! framework's own dropout runs (GPU random number generation is cheap).

use std::sync::atomic::{AtomicU64, Ordering};
use tch::{Device, Kind, Tensor};

static SEED: AtomicU64 = AtomicU64::new(0x5eed);
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Restarts the mask sequence from `seed` (the trainer calls this once per run).
pub fn seed(seed: u64) {
    SEED.store(seed, Ordering::Relaxed);
    CALLS.store(0, Ordering::Relaxed);
}

/// The number of masks drawn since [`seed`]: with the seed, where the sequence stands
/// (`--resume` saves it at the end of an epoch).
pub fn calls() -> u64 {
    CALLS.load(Ordering::Relaxed)
}

/// Continues the mask sequence after `calls` masks (a resumed run).
pub fn set_calls(calls: u64) {
    CALLS.store(calls, Ordering::Relaxed);
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `out` with the dropout mask for `key`: 0 where dropped, `scale` where kept. Elements
/// `2k` and `2k + 1` take the low and high halves of the `k`-th output of a SplitMix64 stream
/// started at `key`.
#[inline(always)]
fn fill_generic(out: &mut [f32], key: u64, threshold: u32, scale: f32) {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let draw = |k: usize| mix(key.wrapping_add((k as u64 + 1).wrapping_mul(GOLDEN)));
    let pick = |d: u32| if d >= threshold { scale } else { 0.0 };
    // Blocks of 64 draws: the hashing loop vectorises on its own, apart from the stores.
    let mut block = [0u64; 64];
    for (b, chunk) in out.chunks_mut(128).enumerate() {
        for (j, r) in block.iter_mut().enumerate() {
            *r = draw(b * 64 + j);
        }
        // On little-endian machines draw 2k is the low half of hash k, draw 2k + 1 the high.
        // SAFETY: both arrays are 512 bytes and every bit pattern is a valid u32.
        let draws: [u32; 128] = unsafe { std::mem::transmute(block) };
        for (o, &d) in chunk.iter_mut().zip(&draws) {
            *o = pick(d);
        }
    }
}

/// [`fill_generic`] compiled for AVX-512 (eight 64-bit lanes with a native 64-bit multiply).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
unsafe fn fill_avx512(out: &mut [f32], key: u64, threshold: u32, scale: f32) {
    fill_generic(out, key, threshold, scale)
}

/// [`fill_generic`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_avx2(out: &mut [f32], key: u64, threshold: u32, scale: f32) {
    fill_generic(out, key, threshold, scale)
}

/// The widest [`fill_generic`] this CPU runs (the same values on every path).
fn fill(out: &mut [f32], key: u64, threshold: u32, scale: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512dq") && is_x86_feature_detected!("avx512vl") {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { fill_avx512(out, key, threshold, scale) };
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { fill_avx2(out, key, threshold, scale) };
        }
    }
    fill_generic(out, key, threshold, scale)
}

/// A float32 CPU mask of `shape` for one dropout call with probability `p`.
pub fn mask(shape: &[i64], p: f64) -> Tensor {
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let key = mix(SEED.load(Ordering::Relaxed) ^ mix(n.wrapping_add(0x9e37_79b9_7f4a_7c15)));
    let threshold = (p * 4_294_967_296.0).round().min(u32::MAX as f64) as u32;
    let scale = (1.0 / (1.0 - p)) as f32;
    let out = Tensor::empty(shape, (Kind::Float, Device::Cpu));
    let len = out.numel();
    // SAFETY: `out` is a freshly allocated contiguous float32 tensor of `len` elements, and
    // only this function holds it while the slice lives.
    let data = unsafe { std::slice::from_raw_parts_mut(out.data_ptr() as *mut f32, len) };
    fill(data, key, threshold, scale);
    out
}

/// `xs` with dropout `p` applied when `train` is true.
pub fn apply(xs: &Tensor, p: f64, train: bool) -> Tensor {
    if !train || p <= 0.0 {
        return xs.shallow_clone();
    }
    if p >= 1.0 || xs.device() != Device::Cpu || xs.kind() != Kind::Float {
        return xs.dropout(p, train);
    }
    xs * mask(&xs.size(), p)
}

/// [`apply`] on the leading part of a tensor: `xs` is the first `xs.size()[dim]` entries along
/// `dim` of a tensor of shape `full` that is not computed whole (the last layer at the [CLS]
/// position only). Draws the mask for `full`, as [`apply`] on the whole tensor would, and uses
/// its leading part: the kept elements and the call count are those of the whole-tensor pass.
pub fn apply_leading(xs: &Tensor, full: &[i64], dim: usize, p: f64, train: bool) -> Tensor {
    if !train || p <= 0.0 {
        return xs.shallow_clone();
    }
    if p >= 1.0 || xs.device() != Device::Cpu || xs.kind() != Kind::Float {
        return xs.dropout(p, train);
    }
    let len = xs.size()[dim];
    if len == full[dim] {
        return xs * mask(full, p);
    }
    xs * mask(full, p).narrow(dim as i64, 0, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_expected_share_scaled_and_are_reproducible() {
        seed(7);
        let a = mask(&[64, 100, 10], 0.1);
        let b = mask(&[64, 100, 10], 0.1);
        seed(7);
        let a2 = mask(&[64, 100, 10], 0.1);
        assert!(a.equal(&a2), "same seed, same call: same mask");
        assert!(!a.equal(&b), "the next call draws a new mask");
        let values: Vec<f32> = Vec::try_from(a.flatten(0, -1)).unwrap();
        let kept = values.iter().filter(|&&v| v != 0.0).count() as f64;
        let n = values.len() as f64;
        // Binomial(64000, 0.9): the share kept lies within 5 standard deviations of 0.9.
        let sd = (0.9 * 0.1 / n).sqrt();
        assert!((kept / n - 0.9).abs() < 5.0 * sd, "kept share {}", kept / n);
        let scale = 1.0 / 0.9f32;
        assert!(values.iter().all(|&v| v == 0.0 || (v - scale).abs() < 1e-7));
        // Neighbouring elements and chunk borders are independent: no runs of drops.
        let pairs = values
            .windows(2)
            .filter(|w| w[0] == 0.0 && w[1] == 0.0)
            .count() as f64;
        let expected = 0.01 * (n - 1.0);
        assert!(
            (pairs - expected).abs() < 5.0 * expected.sqrt(),
            "{pairs} vs {expected}"
        );
    }

    #[test]
    fn gradient_is_the_mask() {
        seed(3);
        let xs = Tensor::randn([4, 50], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let ys = apply(&xs, 0.3, true);
        ys.sum(Kind::Float).backward();
        let kept = ys.ne(0.0).to_kind(Kind::Float) / 0.7;
        let diff = (xs.grad() - kept).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "{diff}");
        assert!(apply(&xs, 0.3, false).equal(&xs));
    }
}
