//! Linear CKA and its debiased form: how similar two representations of the same examples are,
//! invariant to rotation and isotropic scaling.

use ndarray::{Array2, ArrayView2, Zip};

use super::{centred, row_sq_norms};

/// Linear CKA (Kornblith et al. 2019): `||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)` on
/// column-centred X, Y (equal to the centred-Gram HSIC ratio). Multiplies n x n Gram matrices or
/// d x d feature products, whichever is cheaper for the shapes.
///
/// Panics if the row counts differ. NaN if a side has no variance (all rows equal) or n < 2.
pub fn linear_cka(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    if x.nrows() < 2 {
        assert_eq!(x.nrows(), y.nrows(), "linear_cka: row counts differ");
        return f64::NAN;
    }
    cka_sums(x, y).biased()
}

/// Debiased linear CKA: the unbiased HSIC estimator (Song et al. 2012) on linear Gram matrices,
/// `HSIC_1(K, L) / sqrt(HSIC_1(K, K) HSIC_1(L, L))`.
///
/// Panics if the row counts differ. NaN if n < 4, or if an estimate in the denominator is not
/// positive (possible for tiny n or a side without variance).
pub fn linear_cka_debiased(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    if x.nrows() < 4 {
        assert_eq!(
            x.nrows(),
            y.nrows(),
            "linear_cka_debiased: row counts differ"
        );
        return f64::NAN;
    }
    cka_sums(x, y).debiased()
}

/// The sums both CKA forms need, on column-centred X and Y with K = Xc Xc^T, L = Yc Yc^T.
pub(super) struct CkaSums {
    n: usize,
    /// tr(KL) = ||Yc^T Xc||_F^2
    kl: f64,
    /// tr(KK) = ||Xc^T Xc||_F^2
    kk: f64,
    /// tr(LL)
    ll: f64,
    /// diag(K) . diag(L), diag(K) . diag(K), diag(L) . diag(L)
    dkl: f64,
    dkk: f64,
    dll: f64,
    /// tr(K), tr(L)
    tk: f64,
    tl: f64,
}

impl CkaSums {
    pub(super) fn biased(&self) -> f64 {
        self.kl / (self.kk * self.ll).sqrt()
    }

    /// n (n - 3) HSIC_1 for centred features. With K 1 = 0 and K~ = K - diag(K), the estimator
    /// `tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1` becomes
    /// `tr(KL) - n/(n-2) diag(K).diag(L) + tr(K) tr(L) / ((n-1)(n-2))`.
    fn hsic1(&self, kl: f64, dkl: f64, tk: f64, tl: f64) -> f64 {
        let n = self.n as f64;
        kl - n / (n - 2.0) * dkl + tk * tl / ((n - 1.0) * (n - 2.0))
    }

    pub(super) fn debiased(&self) -> f64 {
        let xy = self.hsic1(self.kl, self.dkl, self.tk, self.tl);
        let xx = self.hsic1(self.kk, self.dkk, self.tk, self.tk);
        let yy = self.hsic1(self.ll, self.dll, self.tl, self.tl);
        let denom = xx * yy;
        if denom > 0.0 {
            xy / denom.sqrt()
        } else {
            f64::NAN
        }
    }
}

fn sum_squares(m: &Array2<f64>) -> f64 {
    m.iter().map(|v| v * v).sum()
}

pub(super) fn cka_sums(x: ArrayView2<f64>, y: ArrayView2<f64>) -> CkaSums {
    assert_eq!(
        x.nrows(),
        y.nrows(),
        "CKA: row counts differ ({} and {})",
        x.nrows(),
        y.nrows()
    );
    let n = x.nrows();
    let (xc, yc) = rayon::join(|| centred(x), || centred(y));
    let (dx, dy) = (xc.ncols(), yc.ncols());
    let (rx, ry) = (row_sq_norms(&xc), row_sq_norms(&yc));

    // Multiply-adds: n^2 (dx + dy) for the Gram form, n (dx^2 + dy^2 + dx dy) for the feature one.
    let gram = n * (dx + dy) < dx * dx + dy * dy + dx * dy;
    let (kl, kk, ll) = if gram {
        let (k, l) = rayon::join(|| xc.dot(&xc.t()), || yc.dot(&yc.t()));
        let kl: f64 = Zip::from(&k).and(&l).fold(0.0, |acc, a, b| acc + a * b);
        (kl, sum_squares(&k), sum_squares(&l))
    } else {
        let (ytx, (xtx, yty)) = rayon::join(
            || yc.t().dot(&xc),
            || rayon::join(|| xc.t().dot(&xc), || yc.t().dot(&yc)),
        );
        (sum_squares(&ytx), sum_squares(&xtx), sum_squares(&yty))
    };
    CkaSums {
        n,
        kl,
        kk,
        ll,
        dkl: rx.dot(&ry),
        dkk: rx.dot(&rx),
        dll: ry.dot(&ry),
        tk: rx.sum(),
        tl: ry.sum(),
    }
}
