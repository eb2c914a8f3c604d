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
            tch: "0.26".into(),
            libtorch: env!("HEAL_LIBTORCH_VERSION").into(),
        }
    }
}
