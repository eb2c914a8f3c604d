//! Versions recorded in run.json.

use serde::{Deserialize, Serialize};

/// The tch release this build binds (Cargo.toml's torch-* features).
#[cfg(not(feature = "torch-2-11"))]
const TCH: &str = "0.26";
#[cfg(feature = "torch-2-11")]
const TCH: &str = "0.24";

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
            tch: TCH.into(),
            libtorch: env!("HEAL_LIBTORCH_VERSION").into(),
        }
    }
}
