//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

pub fn golden(name: &str) -> HashMap<String, Tensor> {
    let path = fixtures()
        .join("golden")
        .join(format!("{name}.safetensors"));
    Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// Max |a - b| over the positions where `mask` ([batch, seq]) is 1.
pub fn max_abs_diff_masked(a: &Tensor, b: &Tensor, mask: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    let m = mask.to_kind(tch::Kind::Float).unsqueeze(-1);
    ((a - b).abs() * m).max().double_value(&[])
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a - b).abs().max().double_value(&[])
}

/// The project's Python (the virtual environment made by .ci/setup), for tests whose reference
/// is HF transformers at run time.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("HEAL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("HEAL_VENV")));
    venv.join("bin").join("python")
}

pub fn heal_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_heal"))
}
