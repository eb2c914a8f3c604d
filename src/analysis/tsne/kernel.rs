//! The two inner sums of the t-SNE gradient over the Student-t kernel
//! q = 1 / (1 + |p - c|^2): the repulsion of a point by a list of (summarised) points and the
//! attraction of a point by its neighbours in P.
//!
//! Both run in four fixed lanes: entry k goes to lane k % 4 and the lanes are added as
//! (l0 + l1) + (l2 + l3) at the end. On x86-64 CPUs with AVX2 the four lanes are one register
//! (explicit intrinsics: the compiler's own vectorisation of the portable loop stays in SSE2
//! halves with shuffles); elsewhere the portable loop runs. Both do the same operations in the
//! same order without fused multiply-adds, so every CPU gives the same bits.

/// sum_k m_k q_k^2 (p - c_k) and sum_k m_k q_k, with c_k = (xs[k], ys[k]) and m_k = ms[k].
pub(super) fn repulsion(p: [f64; 2], xs: &[f64], ys: &[f64], ms: &[f64]) -> ([f64; 2], f64) {
    debug_assert!(xs.len() == ys.len() && ys.len() == ms.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked on the line above.
            return unsafe { avx2::repulsion(p, xs, ys, ms) };
        }
    }
    repulsion_portable(p, xs, ys, ms)
}

/// sum_k v_k q_k (p - y[j_k]) over the entries (j_k, v_k) of a row of P.
pub(super) fn attraction(p: [f64; 2], cols: &[u32], vals: &[f64], y: &[[f64; 2]]) -> [f64; 2] {
    debug_assert_eq!(cols.len(), vals.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked on the line above; every column index is a
            // point of `y` (checked in the loop).
            return unsafe { avx2::attraction(p, cols, vals, y) };
        }
    }
    attraction_portable(p, cols, vals, y)
}

fn lane_sum(a: [f64; 4]) -> f64 {
    (a[0] + a[1]) + (a[2] + a[3])
}

fn repulsion_portable(p: [f64; 2], xs: &[f64], ys: &[f64], ms: &[f64]) -> ([f64; 2], f64) {
    repulsion_from(p, xs, ys, ms, 0, [[0.0; 4]; 3])
}

/// The portable loop from entry `from` on, onto lanes `acc` = (fx, fy, z); then the lane sums.
/// The AVX2 version ends with it for the entries after the last whole group of four.
fn repulsion_from(
    p: [f64; 2],
    xs: &[f64],
    ys: &[f64],
    ms: &[f64],
    from: usize,
    acc: [[f64; 4]; 3],
) -> ([f64; 2], f64) {
    let [mut fx, mut fy, mut z] = acc;
    for k in from..xs.len() {
        let l = k % 4;
        let dx = p[0] - xs[k];
        let dy = p[1] - ys[k];
        let q = 1.0 / (1.0 + dx * dx + dy * dy);
        let mq = ms[k] * q;
        z[l] += mq;
        fx[l] += mq * q * dx;
        fy[l] += mq * q * dy;
    }
    ([lane_sum(fx), lane_sum(fy)], lane_sum(z))
}

fn attraction_portable(p: [f64; 2], cols: &[u32], vals: &[f64], y: &[[f64; 2]]) -> [f64; 2] {
    attraction_from(p, cols, vals, y, 0, [[0.0; 4]; 2])
}

/// The portable loop from entry `from` on, onto lanes `acc` = (ax, ay); then the lane sums.
fn attraction_from(
    p: [f64; 2],
    cols: &[u32],
    vals: &[f64],
    y: &[[f64; 2]],
    from: usize,
    acc: [[f64; 4]; 2],
) -> [f64; 2] {
    let [mut ax, mut ay] = acc;
    for k in from..cols.len() {
        let l = k % 4;
        let c = y[cols[k] as usize];
        let dx = p[0] - c[0];
        let dy = p[1] - c[1];
        let w = vals[k] / (1.0 + dx * dx + dy * dy);
        ax[l] += w * dx;
        ay[l] += w * dy;
    }
    [lane_sum(ax), lane_sum(ay)]
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    unsafe fn lanes(v: __m256d) -> [f64; 4] {
        let mut out = [0.0f64; 4];
        _mm256_storeu_pd(out.as_mut_ptr(), v);
        out
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn repulsion(
        p: [f64; 2],
        xs: &[f64],
        ys: &[f64],
        ms: &[f64],
    ) -> ([f64; 2], f64) {
        let n = xs.len().min(ys.len()).min(ms.len());
        let (px, py) = (_mm256_set1_pd(p[0]), _mm256_set1_pd(p[1]));
        let one = _mm256_set1_pd(1.0);
        let (mut fx, mut fy, mut z) = (
            _mm256_setzero_pd(),
            _mm256_setzero_pd(),
            _mm256_setzero_pd(),
        );
        let whole = n / 4 * 4;
        let mut k = 0;
        while k < whole {
            let dx = _mm256_sub_pd(px, _mm256_loadu_pd(xs.as_ptr().add(k)));
            let dy = _mm256_sub_pd(py, _mm256_loadu_pd(ys.as_ptr().add(k)));
            let d = _mm256_add_pd(
                _mm256_add_pd(one, _mm256_mul_pd(dx, dx)),
                _mm256_mul_pd(dy, dy),
            );
            let q = _mm256_div_pd(one, d);
            let mq = _mm256_mul_pd(_mm256_loadu_pd(ms.as_ptr().add(k)), q);
            z = _mm256_add_pd(z, mq);
            let mqq = _mm256_mul_pd(mq, q);
            fx = _mm256_add_pd(fx, _mm256_mul_pd(mqq, dx));
            fy = _mm256_add_pd(fy, _mm256_mul_pd(mqq, dy));
            k += 4;
        }
        super::repulsion_from(p, xs, ys, ms, whole, [lanes(fx), lanes(fy), lanes(z)])
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn attraction(
        p: [f64; 2],
        cols: &[u32],
        vals: &[f64],
        y: &[[f64; 2]],
    ) -> [f64; 2] {
        let n = cols.len().min(vals.len());
        let (px, py) = (_mm256_set1_pd(p[0]), _mm256_set1_pd(p[1]));
        let one = _mm256_set1_pd(1.0);
        let (mut ax, mut ay) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let whole = n / 4 * 4;
        let mut k = 0;
        while k < whole {
            // Bounds-checked reads of the four neighbours, then the same arithmetic as the
            // portable loop, lane k % 4 for entry k.
            let c0 = y[cols[k] as usize];
            let c1 = y[cols[k + 1] as usize];
            let c2 = y[cols[k + 2] as usize];
            let c3 = y[cols[k + 3] as usize];
            let cx = _mm256_set_pd(c3[0], c2[0], c1[0], c0[0]);
            let cy = _mm256_set_pd(c3[1], c2[1], c1[1], c0[1]);
            let dx = _mm256_sub_pd(px, cx);
            let dy = _mm256_sub_pd(py, cy);
            let d = _mm256_add_pd(
                _mm256_add_pd(one, _mm256_mul_pd(dx, dx)),
                _mm256_mul_pd(dy, dy),
            );
            let w = _mm256_div_pd(_mm256_loadu_pd(vals.as_ptr().add(k)), d);
            ax = _mm256_add_pd(ax, _mm256_mul_pd(w, dx));
            ay = _mm256_add_pd(ay, _mm256_mul_pd(w, dy));
            k += 4;
        }
        super::attraction_from(p, cols, vals, y, whole, [lanes(ax), lanes(ay)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The dispatched sums (AVX2 where the CPU has it) give the portable loop's bits, for every
    /// remainder length, and agree with a plain sequential sum to round-off.
    #[test]
    fn dispatched_sums_are_the_portable_bits() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let y: Vec<[f64; 2]> = (0..50)
            .map(|_| [rng.gen_range(-20.0..20.0), rng.gen_range(-20.0..20.0)])
            .collect();
        for len in 0..23 {
            let xs: Vec<f64> = (0..len).map(|_| rng.gen_range(-30.0..30.0)).collect();
            let ys: Vec<f64> = (0..len).map(|_| rng.gen_range(-30.0..30.0)).collect();
            let ms: Vec<f64> = (0..len).map(|_| rng.gen_range(1.0..40.0)).collect();
            let cols: Vec<u32> = (0..len).map(|_| rng.gen_range(0..50)).collect();
            let p = [rng.gen_range(-5.0..5.0), rng.gen_range(-5.0..5.0)];
            let (f, z) = repulsion(p, &xs, &ys, &ms);
            let (fp, zp) = repulsion_portable(p, &xs, &ys, &ms);
            assert_eq!(
                (f[0].to_bits(), f[1].to_bits(), z.to_bits()),
                (fp[0].to_bits(), fp[1].to_bits(), zp.to_bits()),
                "repulsion, {len} entries"
            );
            let a = attraction(p, &cols, &ms, &y);
            let ap = attraction_portable(p, &cols, &ms, &y);
            assert_eq!(
                (a[0].to_bits(), a[1].to_bits()),
                (ap[0].to_bits(), ap[1].to_bits()),
                "attraction, {len} entries"
            );
            // (sum, sum of magnitudes) per output, sequentially.
            let mut want = [[0.0f64; 2]; 5];
            let mut add = |o: usize, v: f64| {
                want[o][0] += v;
                want[o][1] += v.abs();
            };
            for k in 0..len {
                let (dx, dy) = (p[0] - xs[k], p[1] - ys[k]);
                let q = 1.0 / (1.0 + dx * dx + dy * dy);
                add(0, ms[k] * q * q * dx);
                add(1, ms[k] * q * q * dy);
                add(2, ms[k] * q);
                let c = y[cols[k] as usize];
                let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
                let w = ms[k] / (1.0 + dx * dx + dy * dy);
                add(3, w * dx);
                add(4, w * dy);
            }
            for (o, got) in [f[0], f[1], z, a[0], a[1]].into_iter().enumerate() {
                let [sum, scale] = want[o];
                assert!(
                    (got - sum).abs() <= 1e-14 * scale,
                    "output {o}, {len} entries: {got} vs {sum}"
                );
            }
        }
    }
}
