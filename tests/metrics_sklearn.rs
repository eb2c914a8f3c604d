//! Accuracy, weighted F1 and macro F1 equal scikit-learn's (values committed in
//! tests/fixtures/f1_reference.json by make_fixtures.py) to 1e-9.

mod common;

#[derive(serde::Deserialize)]
struct Case {
    num_labels: usize,
    gold: Vec<i64>,
    predicted: Vec<i64>,
    accuracy: f64,
    f1_weighted: f64,
    f1_macro: f64,
}

#[test]
fn scores_equal_scikit_learn() {
    let text = std::fs::read_to_string(common::fixtures().join("f1_reference.json")).unwrap();
    let cases: Vec<Case> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 7);
    for (i, c) in cases.iter().enumerate() {
        let s = heal::metrics::scores(&c.gold, &c.predicted, c.num_labels);
        assert!(
            (s.accuracy - c.accuracy).abs() < 1e-9,
            "case {i}: accuracy {} vs {}",
            s.accuracy,
            c.accuracy
        );
        assert!(
            (s.f1_weighted - c.f1_weighted).abs() < 1e-9,
            "case {i}: weighted F1 {} vs {}",
            s.f1_weighted,
            c.f1_weighted
        );
        assert!(
            (s.f1_macro - c.f1_macro).abs() < 1e-9,
            "case {i}: macro F1 {} vs {}",
            s.f1_macro,
            c.f1_macro
        );
    }
}
