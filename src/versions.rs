//! Versions recorded in run.json.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Versions {
    pub heal: String,
    pub tch: String,
    pub libtorch: String,
}

impl Versions {
    pub fn current() -> Self {
        Versions {
            heal: env!("CARGO_PKG_VERSION").into(),
            // The manifest's tch requirement (build.rs), "0.26" unless built by examples/gpu/build.sh.
            tch: env!("HEAL_TCH_VERSION").into(),
            libtorch: env!("HEAL_LIBTORCH_VERSION").into(),
        }
    }
}
