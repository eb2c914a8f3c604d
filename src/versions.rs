//! Versions recorded in run.json.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    pub heal: &'static str,
    pub tch: &'static str,
    pub libtorch: &'static str,
}

impl Versions {
    pub fn current() -> Self {
        Versions {
            heal: env!("CARGO_PKG_VERSION"),
            tch: "0.26",
            libtorch: env!("HEAL_LIBTORCH_VERSION"),
        }
    }
}
