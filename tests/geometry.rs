//! Representation-geometry metrics (src/analysis/geometry/): CKA invariances, and silhouette,
//! k-NN accuracy, separation, centroid distances and CKA against the reference numbers in
//! tests/fixtures/geometry/cases.json (scikit-learn and numpy, made by
//! tests/fixtures/make_geometry_refs.py).

use std::collections::BTreeMap;
use std::path::Path;

use heal::analysis::geometry::{
    centroid_distances, class_centroids, cluster_scores, knn_accuracy, layer_drift, linear_cka,
    linear_cka_debiased, mean_row_cosine, separation, silhouette,
};
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

#[derive(serde::Deserialize)]
struct ClusterCase {
    name: String,
    n_classes: usize,
    x: Vec<Vec<f64>>,
    labels: Vec<usize>,
    silhouette: f64,
    knn: BTreeMap<String, f64>,
    knn_vote_ties: BTreeMap<String, usize>,
    separation: f64,
    centroid_distances: Vec<Vec<f64>>,
}

#[derive(serde::Deserialize)]
struct CkaCase {
    name: String,
    x: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    cka: f64,
    cka_debiased: f64,
}

#[derive(serde::Deserialize)]
struct Cases {
    cluster: Vec<ClusterCase>,
    cka: Vec<CkaCase>,
}

fn cases() -> Cases {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geometry/cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn matrix(rows: &[Vec<f64>]) -> Array2<f64> {
    let d = rows[0].len();
    Array2::from_shape_fn((rows.len(), d), |(i, j)| rows[i][j])
}

fn gaussian(rng: &mut ChaCha8Rng, n: usize, d: usize) -> Array2<f64> {
    Array2::from_shape_simple_fn((n, d), || StandardNormal.sample(rng))
}

/// A random orthogonal d x d matrix: Q of the QR decomposition (modified Gram-Schmidt) of a
/// seeded Gaussian matrix.
fn random_orthogonal(rng: &mut ChaCha8Rng, d: usize) -> Array2<f64> {
    let a = gaussian(rng, d, d);
    let mut q = Array2::<f64>::zeros((d, d));
    for j in 0..d {
        let mut v = a.column(j).to_owned();
        for i in 0..j {
            let qi = q.column(i);
            let r = qi.dot(&v);
            v.scaled_add(-r, &qi);
        }
        let norm = v.dot(&v).sqrt();
        q.column_mut(j).assign(&(v / norm));
    }
    let err = (q.t().dot(&q) - Array2::<f64>::eye(d))
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(err < 1e-12, "Q is not orthogonal: {err}");
    q
}

/// Labels 0..n_classes with a shift of each class's centre, so the points cluster.
fn labelled(
    rng: &mut ChaCha8Rng,
    n: usize,
    d: usize,
    n_classes: usize,
) -> (Array2<f64>, Vec<usize>) {
    let centres = gaussian(rng, n_classes, d) * 1.5;
    let mut x = gaussian(rng, n, d);
    let labels: Vec<usize> = (0..n).map(|i| (i * 7 + i / 3) % n_classes).collect();
    for (mut row, &c) in x.rows_mut().into_iter().zip(&labels) {
        row += &centres.row(c);
    }
    (x, labels)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn cka_of_a_matrix_with_itself_is_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // Both code paths: n >= 1.5 d (feature products) and n < 1.5 d (Gram matrices).
    for (n, d) in [(200, 16), (20, 50), (5, 3)] {
        let x = gaussian(&mut rng, n, d) + 4.0;
        let c = linear_cka(x.view(), x.view());
        assert!((c - 1.0).abs() < 1e-12, "n={n} d={d}: CKA(X, X) = {c}");
        let c = linear_cka_debiased(x.view(), x.view());
        assert!(
            (c - 1.0).abs() < 1e-12,
            "n={n} d={d}: debiased CKA(X, X) = {c}"
        );
    }
}

#[test]
fn cka_is_invariant_to_rotation_and_isotropic_scaling() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for (n, d) in [(300, 24), (30, 40), (8, 6)] {
        let x = gaussian(&mut rng, n, d) * 2.0 + 1.0;
        let q = random_orthogonal(&mut rng, d);
        let xq = x.dot(&q);
        let scaled = &x * 3.7;
        // A different second side, so the invariance is not only at the value 1.
        let w = gaussian(&mut rng, d, d / 2 + 1);
        let y = x.dot(&w).mapv(f64::tanh) + gaussian(&mut rng, n, d / 2 + 1) * 0.5;
        for (what, other) in [("XQ", &xq), ("3.7 X", &scaled)] {
            let base = linear_cka(x.view(), x.view());
            let got = linear_cka(x.view(), other.view());
            assert!(
                (got - base).abs() < 1e-12,
                "n={n} d={d}: CKA(X, {what}) = {got}"
            );
            let base = linear_cka_debiased(x.view(), x.view());
            let got = linear_cka_debiased(x.view(), other.view());
            assert!(
                (got - base).abs() < 1e-12,
                "n={n} d={d}: debiased CKA(X, {what}) = {got}"
            );
            let base = linear_cka(y.view(), x.view());
            let got = linear_cka(y.view(), other.view());
            assert!(
                (got - base).abs() < 1e-12,
                "n={n} d={d}: CKA(Y, {what}) = {got} vs {base}"
            );
            let base = linear_cka_debiased(y.view(), x.view());
            let got = linear_cka_debiased(y.view(), other.view());
            assert!(
                (got - base).abs() < 1e-12,
                "n={n} d={d}: debiased CKA(Y, {what}) = {got} vs {base}"
            );
        }
        // Symmetric in its arguments.
        let (a, b) = (
            linear_cka(x.view(), y.view()),
            linear_cka(y.view(), x.view()),
        );
        assert!((a - b).abs() < 1e-12);
    }
}

#[test]
fn cka_equals_numpy_reference() {
    let cases = cases();
    assert!(cases.cka.len() >= 4);
    for c in &cases.cka {
        let (x, y) = (matrix(&c.x), matrix(&c.y));
        let got = linear_cka(x.view(), y.view());
        assert!(
            close(got, c.cka, 1e-10),
            "{}: CKA {got} vs {}",
            c.name,
            c.cka
        );
        let got = linear_cka_debiased(x.view(), y.view());
        assert!(
            close(got, c.cka_debiased, 1e-10),
            "{}: debiased CKA {got} vs {}",
            c.name,
            c.cka_debiased
        );
    }
}

#[test]
fn silhouette_and_knn_equal_scikit_learn() {
    let cases = cases();
    assert!(cases.cluster.len() >= 5);
    let mut vote_ties = 0;
    for c in &cases.cluster {
        let x = matrix(&c.x);
        let got = silhouette(x.view(), &c.labels);
        assert!(
            (got - c.silhouette).abs() < 1e-9,
            "{}: silhouette {got} vs {}",
            c.name,
            c.silhouette
        );
        for (k, &want) in &c.knn {
            let k: usize = k.parse().unwrap();
            let got = knn_accuracy(x.view(), &c.labels, k);
            // Both are (number correct) / n: equal as integers.
            let n = c.labels.len() as f64;
            assert_eq!(
                (got * n).round() as usize,
                (want * n).round() as usize,
                "{}: k={k} accuracy {got} vs {want}",
                c.name
            );
            assert!((got - want).abs() < 1e-12);
        }
        vote_ties += c.knn_vote_ties["4"];
        let scores = cluster_scores(x.view(), &c.labels, 5);
        assert_eq!(scores.silhouette, silhouette(x.view(), &c.labels));
        assert_eq!(scores.knn, knn_accuracy(x.view(), &c.labels, 5));
        assert_eq!(scores.separation, separation(x.view(), &c.labels));
    }
    assert!(vote_ties > 0, "the fixtures should exercise tied votes");
}

#[test]
fn singleton_class_scores_zero_silhouette() {
    let cases = cases();
    let c = cases
        .cluster
        .iter()
        .find(|c| c.name.starts_with("singleton"))
        .expect("a case with a class of one point");
    let counts = (0..c.n_classes)
        .map(|k| c.labels.iter().filter(|&&l| l == k).count())
        .collect::<Vec<_>>();
    // The fixture (compared with scikit-learn above) has a class of one point.
    assert!(counts.contains(&1));
    // The rule by hand: two tight pairs and one lone point, whose own term is 0.
    let x = ndarray::array![
        [0.0, 0.0],
        [0.0, 1.0],
        [10.0, 0.0],
        [10.0, 1.0],
        [5.0, 20.0]
    ];
    let labels = [0, 0, 1, 1, 2];
    // For each paired point a = 1 and b = (10 + sqrt(101)) / 2, the mean distance to the other
    // pair (the lone point is farther).
    let b = (101f64.sqrt() + 10.0) / 2.0;
    let per_point = (b - 1.0) / b;
    let want = 4.0 * per_point / 5.0;
    let got = silhouette(x.view(), &labels);
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
}

#[test]
fn separation_and_centroid_distances_equal_numpy() {
    for c in &cases().cluster {
        let x = matrix(&c.x);
        let got = separation(x.view(), &c.labels);
        assert!(
            close(got, c.separation, 1e-10),
            "{}: separation {got} vs {}",
            c.name,
            c.separation
        );
        let got = centroid_distances(x.view(), &c.labels, c.n_classes);
        let want = matrix(&c.centroid_distances);
        assert_eq!(got.dim(), want.dim());
        for ((i, j), &w) in want.indexed_iter() {
            assert!(
                close(got[[i, j]], w, 1e-10),
                "{}: centroid distance ({i}, {j}) {} vs {w}",
                c.name,
                got[[i, j]]
            );
        }
    }
}

#[test]
fn mean_row_cosine_of_a_matrix_with_itself_is_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = gaussian(&mut rng, 50, 12);
    assert!((mean_row_cosine(x.view(), x.view()) - 1.0).abs() < 1e-12);
    assert!((mean_row_cosine(x.view(), (-&x).view()) + 1.0).abs() < 1e-12);
    // A zero row contributes 0 and is counted.
    let mut z = x.clone();
    z.row_mut(0).fill(0.0);
    let got = mean_row_cosine(x.view(), z.view());
    assert!((got - 49.0 / 50.0).abs() < 1e-12, "{got}");
}

#[test]
fn layer_drift_reports_every_metric() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (a, labels) = labelled(&mut rng, 90, 20, 3);
    let shift = gaussian(&mut rng, 1, 20);
    let b = &a + &shift.row(0);
    let drift = layer_drift(a.view(), b.view(), &labels, 3, 5).unwrap();
    // B is A translated: CKA 1, clustering identical, every centroid moved by |shift|.
    assert!((drift.cka - 1.0).abs() < 1e-12);
    assert!((drift.cka_debiased - 1.0).abs() < 1e-12);
    assert!(drift.mean_cosine.unwrap() < 1.0);
    assert!((drift.silhouette_a - drift.silhouette_b).abs() < 1e-12);
    assert!((drift.separation_a - drift.separation_b).abs() < 1e-12);
    assert_eq!(drift.knn_a, drift.knn_b);
    assert_eq!(drift.knn_a, knn_accuracy(a.view(), &labels, 5));
    assert_eq!(drift.silhouette_a, silhouette(a.view(), &labels));
    let norm = shift.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert_eq!(drift.centroid_shift.len(), 3);
    for s in &drift.centroid_shift {
        assert!((s - norm).abs() < 1e-12);
    }
    let json = serde_json::to_value(&drift).unwrap();
    for key in [
        "cka",
        "cka_debiased",
        "mean_cosine",
        "separation_a",
        "separation_b",
        "silhouette_a",
        "silhouette_b",
        "knn_a",
        "knn_b",
        "centroid_shift",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }

    // Different widths: no cosine, no centroid shift, CKA still defined.
    let narrow = a.slice(ndarray::s![.., ..7]).to_owned();
    let drift = layer_drift(a.view(), narrow.view(), &labels, 3, 5).unwrap();
    assert!(drift.mean_cosine.is_none());
    assert!(drift.centroid_shift.is_empty());
    assert!(drift.cka > 0.0 && drift.cka < 1.0);
    let json = serde_json::to_value(&drift).unwrap();
    assert!(json["mean_cosine"].is_null());
}

#[test]
fn layer_drift_rejects_bad_input_as_user_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (a, labels) = labelled(&mut rng, 30, 6, 3);
    let is_user = |r: anyhow::Result<_>| match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => {
            let msg = heal::error::find_user_error(&e)
                .unwrap_or_else(|| panic!("not a user error: {e:#}"))
                .0
                .clone();
            assert!(!msg.contains('\n'), "{msg}");
            msg
        }
    };
    // Mismatched rows.
    let fewer = a.slice(ndarray::s![..29, ..]).to_owned();
    let msg = is_user(layer_drift(a.view(), fewer.view(), &labels, 3, 5));
    assert!(msg.contains("30") && msg.contains("29"), "{msg}");
    // Too few rows.
    let tiny = a.slice(ndarray::s![..3, ..]).to_owned();
    is_user(layer_drift(tiny.view(), tiny.view(), &labels[..3], 3, 5));
    // Labels length.
    is_user(layer_drift(a.view(), a.view(), &labels[..20], 3, 5));
    // Label out of range.
    is_user(layer_drift(a.view(), a.view(), &labels, 2, 5));
    // Non-finite values.
    let mut bad = a.clone();
    bad[[4, 2]] = f64::NAN;
    let msg = is_user(layer_drift(a.view(), bad.view(), &labels, 3, 5));
    assert!(msg.contains("row 4"), "{msg}");
    bad[[4, 2]] = f64::INFINITY;
    is_user(layer_drift(bad.view(), a.view(), &labels, 3, 5));
    // k = 0.
    is_user(layer_drift(a.view(), a.view(), &labels, 3, 0));
}

#[test]
fn class_centroids_are_class_means() {
    let x = ndarray::array![[1.0, 2.0], [3.0, 4.0], [10.0, 0.0], [0.0, 0.0]];
    let c = class_centroids(x.view(), &[0, 0, 1, 0], 3);
    assert_eq!(c.row(0).to_vec(), vec![4.0 / 3.0, 2.0]);
    assert_eq!(c.row(1).to_vec(), vec![10.0, 0.0]);
    assert!(c.row(2).iter().all(|v| v.is_nan()), "empty class");
}

#[test]
fn works_on_two_columns_and_many() {
    // t-SNE maps have 2 columns; the distance pass takes a direct path up to 16 columns and a
    // matrix-product path above. Both must agree with a brute-force computation.
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for d in [2, 16, 17, 64] {
        let (x, labels) = labelled(&mut rng, 130, d, 4);
        let got = silhouette(x.view(), &labels);
        let want = brute_silhouette(x.view(), &labels, 4);
        assert!((got - want).abs() < 1e-10, "d={d}: {got} vs {want}");
    }
}

#[test]
fn several_tiles_equal_brute_force() {
    // More rows than one tile of the distance pass (256), the last tile partial: silhouette,
    // separation and k-NN accuracy (k = 1, 4, 7; with overlapping classes, so votes tie) equal a
    // brute-force computation, on both distance paths.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for d in [2, 24] {
        let (x, labels) = labelled(&mut rng, 601, d, 4);
        let x = &x * 0.3 + gaussian(&mut rng, 601, d);
        let got = silhouette(x.view(), &labels);
        let want = brute_silhouette(x.view(), &labels, 4);
        assert!(
            (got - want).abs() < 1e-10,
            "d={d}: silhouette {got} vs {want}"
        );
        let got = separation(x.view(), &labels);
        let want = brute_separation(x.view(), &labels);
        assert!(close(got, want, 1e-10), "d={d}: separation {got} vs {want}");
        for k in [1, 4, 7] {
            let got = knn_accuracy(x.view(), &labels, k);
            let want = brute_knn(x.view(), &labels, 4, k);
            assert_eq!(got, want, "d={d} k={k}");
            assert!(got > 0.3 && got < 0.95, "d={d} k={k}: {got}");
        }
    }
}

fn brute_distances(x: ArrayView2<f64>) -> Array2<f64> {
    let n = x.nrows();
    Array2::from_shape_fn((n, n), |(i, j)| {
        x.row(i)
            .iter()
            .zip(x.row(j).iter())
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt()
    })
}

fn brute_separation(x: ArrayView2<f64>, labels: &[usize]) -> f64 {
    let d = brute_distances(x);
    let (mut within, mut nw, mut between, mut nb) = (0.0, 0usize, 0.0, 0usize);
    for i in 0..labels.len() {
        for j in i + 1..labels.len() {
            if labels[i] == labels[j] {
                within += d[[i, j]];
                nw += 1;
            } else {
                between += d[[i, j]];
                nb += 1;
            }
        }
    }
    (between / nb as f64) / (within / nw as f64)
}

fn brute_knn(x: ArrayView2<f64>, labels: &[usize], n_classes: usize, k: usize) -> f64 {
    let d = brute_distances(x);
    let n = labels.len();
    let mut correct = 0;
    for i in 0..n {
        let mut order: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        order.sort_by(|&a, &b| d[[i, a]].total_cmp(&d[[i, b]]).then(a.cmp(&b)));
        let mut votes = vec![0usize; n_classes];
        for &j in &order[..k] {
            votes[labels[j]] += 1;
        }
        let max = *votes.iter().max().unwrap();
        let predicted = votes.iter().position(|&v| v == max).unwrap();
        correct += usize::from(predicted == labels[i]);
    }
    correct as f64 / n as f64
}

fn brute_silhouette(x: ArrayView2<f64>, labels: &[usize], n_classes: usize) -> f64 {
    let n = x.nrows();
    let dist = |i: usize, j: usize| {
        x.row(i)
            .iter()
            .zip(x.row(j).iter())
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt()
    };
    let mut total = 0.0;
    for i in 0..n {
        let mut sums = vec![0.0; n_classes];
        let mut counts = vec![0usize; n_classes];
        for j in 0..n {
            counts[labels[j]] += 1;
            if j != i {
                sums[labels[j]] += dist(i, j);
            }
        }
        let c = labels[i];
        if counts[c] == 1 {
            continue;
        }
        let a = sums[c] / (counts[c] - 1) as f64;
        let b = (0..n_classes)
            .filter(|&o| o != c && counts[o] > 0)
            .map(|o| sums[o] / counts[o] as f64)
            .fold(f64::INFINITY, f64::min);
        total += (b - a) / a.max(b);
    }
    total / n as f64
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (a, labels) = labelled(&mut rng, 700, 40, 5);
    let b = a.mapv(f64::tanh) + gaussian(&mut rng, 700, 40) * 0.3;
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let d = layer_drift(a.view(), b.view(), &labels, 5, 5).unwrap();
                let s2 = cluster_scores(a.slice(ndarray::s![.., ..2]), &labels, 4);
                serde_json::to_string(&(d, s2)).unwrap()
            })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

#[test]
#[ignore = "timing: cargo test --release --test geometry -- --ignored --nocapture"]
fn timing_5000_by_384() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (a, labels) = labelled(&mut rng, 5000, 384, 10);
    let b = a.mapv(f64::tanh) + gaussian(&mut rng, 5000, 384) * 0.3;
    let t = std::time::Instant::now();
    let s = cluster_scores(a.view(), &labels, 10);
    let cluster = t.elapsed();
    let t = std::time::Instant::now();
    let c = linear_cka(a.view(), b.view());
    let cka = t.elapsed();
    let t = std::time::Instant::now();
    let cd = linear_cka_debiased(a.view(), b.view());
    let cka_d = t.elapsed();
    let t = std::time::Instant::now();
    let drift = layer_drift(a.view(), b.view(), &labels, 10, 10).unwrap();
    let whole = t.elapsed();
    println!(
        "{} threads; 5000 x 384: cluster_scores {:.3} s ({s:?}), linear_cka {:.3} s ({c:.6}), \
         linear_cka_debiased {:.3} s ({cd:.6}), layer_drift {:.3} s (cka {:.6})",
        rayon::current_num_threads(),
        cluster.as_secs_f64(),
        cka.as_secs_f64(),
        cka_d.as_secs_f64(),
        whole.as_secs_f64(),
        drift.cka
    );
}
