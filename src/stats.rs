//! Small-sample statistics for the study report: the regularised incomplete beta function, the
//! Student t distribution's CDF and the paired t-test (as scipy.stats.ttest_rel, two-sided).
//!
//! Written here rather than taken from a crate: the report needs one distribution, and its
//! p-values must match scipy's to 1e-9 (tests/study.rs checks them against a Python reference).

/// ln Γ(x) for x > 0: Lanczos' approximation (g = 7, 9 terms, about 1e-15 relative), with the
/// reflection formula below 1/2.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The continued fraction of I_x(a, b) (Numerical Recipes' `betacf`, modified Lentz), which
/// converges fast for x < (a + 1) / (a + b + 2).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-16;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=1000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        // The even step, then the odd step, of the fraction's terms.
        for aa in [
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ] {
            d = 1.0 + aa * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + aa / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// The regularised incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1]
/// (scipy.special.betainc). NaN outside that domain.
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if !(a > 0.0 && b > 0.0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if x == 0.0 || x == 1.0 {
        return x;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// P(T <= t) for Student's t distribution with `df` degrees of freedom (scipy.stats.t.cdf).
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    // P(|T| > |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2).
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// A paired t-test of `a` against `b` (the differences a_i - b_i).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PairedTTest {
    pub pairs: usize,
    /// n - 1.
    pub df: usize,
    /// mean(d) / (sd(d) / sqrt(n)), sd with n - 1: ±inf when every difference is the same
    /// non-zero value, NaN when every difference is 0 (as scipy).
    pub statistic: f64,
    /// Two-sided: P(|T| >= |statistic|).
    pub p_value: f64,
}

/// scipy.stats.ttest_rel(a, b) (two-sided). None with fewer than 2 pairs; panics when the
/// lengths differ.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Option<PairedTTest> {
    assert_eq!(a.len(), b.len(), "paired samples of different lengths");
    let n = a.len();
    if n < 2 {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let statistic = mean / (var / n as f64).sqrt();
    let df = n - 1;
    let p_value = if statistic.is_nan() {
        f64::NAN
    } else {
        2.0 * student_t_cdf(-statistic.abs(), df as f64)
    };
    Some(PairedTTest {
        pairs: n,
        df,
        statistic,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scipy 1.17.1, printed by:
    //   from scipy import special, stats
    //   for a, b, x in [(0.5, 0.5, 0.3), (1.0, 2.0, 0.25), (2.5, 0.5, 0.9), (10.0, 0.5, 0.6),
    //                   (50.0, 0.5, 0.99), (0.3, 4.0, 0.01)]:
    //       print((a, b, x, float(special.betainc(a, b, x))))
    //   for t, df in [(0.0, 1.0), (1.0, 1.0), (-2.0, 2.0), (2.5, 3.0), (-0.7, 5.0), (4.0, 10.0),
    //                 (12.0, 4.0), (-30.0, 2.0)]:
    //       print((t, df, float(stats.t.cdf(t, df))))
    //   r = stats.ttest_rel([0.81, 0.77, 0.84, 0.79], [0.85, 0.80, 0.83, 0.86])
    //   print(float(r.statistic), float(r.pvalue))
    const BETAINC: [(f64, f64, f64, f64); 6] = [
        (0.5, 0.5, 0.3, 0.36901011956554536),
        (1.0, 2.0, 0.25, 0.4375),
        (2.5, 0.5, 0.9, 0.48958974456442755),
        (10.0, 0.5, 0.6, 0.0015866364289267268),
        (50.0, 0.5, 0.99, 0.3173043978741973),
        (0.3, 4.0, 0.01, 0.41023606739596147),
    ];
    const T_CDF: [(f64, f64, f64); 8] = [
        (0.0, 1.0, 0.5),
        (1.0, 1.0, 0.75),
        (-2.0, 2.0, 0.09175170953613698),
        (2.5, 3.0, 0.9561466764959672),
        (-0.7, 5.0, 0.2575744741574082),
        (4.0, 10.0, 0.9987408336876317),
        (12.0, 4.0, 0.9998617857257485),
        (-30.0, 2.0, 0.0005546313409798295),
    ];

    #[test]
    fn incomplete_beta_matches_scipy() {
        for (a, b, x, want) in BETAINC {
            let got = incomplete_beta(a, b, x);
            assert!(
                (got - want).abs() < 1e-13,
                "I_{x}({a}, {b}) = {got}, scipy {want}"
            );
        }
        assert_eq!(incomplete_beta(2.0, 3.0, 0.0), 0.0);
        assert_eq!(incomplete_beta(2.0, 3.0, 1.0), 1.0);
        assert!(incomplete_beta(0.0, 1.0, 0.5).is_nan());
    }

    #[test]
    fn t_cdf_matches_scipy() {
        for (t, df, want) in T_CDF {
            let got = student_t_cdf(t, df);
            assert!(
                (got - want).abs() < 1e-13,
                "t {t} df {df}: {got}, scipy {want}"
            );
        }
        assert_eq!(student_t_cdf(f64::INFINITY, 3.0), 1.0);
        assert_eq!(student_t_cdf(f64::NEG_INFINITY, 3.0), 0.0);
    }

    #[test]
    fn paired_test_matches_scipy() {
        let r = paired_t_test(&[0.81, 0.77, 0.84, 0.79], &[0.85, 0.80, 0.83, 0.86]).unwrap();
        assert_eq!((r.pairs, r.df), (4, 3));
        assert!((r.statistic - -1.967289761990741).abs() < 1e-12);
        assert!((r.p_value - 0.14382613717386405).abs() < 1e-12);
        assert!(paired_t_test(&[1.0], &[2.0]).is_none());
        // Every difference 0: scipy gives NaN for both.
        let zero = paired_t_test(&[0.5, 0.6], &[0.5, 0.6]).unwrap();
        assert!(zero.statistic.is_nan() && zero.p_value.is_nan());
        // The same non-zero difference everywhere: an infinite statistic, p = 0.
        let same = paired_t_test(&[0.5, 0.75], &[0.25, 0.5]).unwrap();
        assert_eq!((same.statistic, same.p_value), (f64::INFINITY, 0.0));
    }
}
