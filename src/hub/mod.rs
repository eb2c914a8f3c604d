//! The Hugging Face hub, as huggingface_hub and transformers use it: one HTTP client (token,
//! redirects, downloads checked against the listed size and hash) shared by dataset and model
//! downloads, the HF cache layout that transformers reads too, and the resolution of a
//! `--model` name to a checkpoint folder.

pub mod cache;
pub mod client;
pub mod links;
pub mod model;
pub mod tree;

pub use client::{endpoint_from_env, DEFAULT_ENDPOINT};

/// Whether `HF_HUB_OFFLINE` asks for no network at all (huggingface_hub's truthy values).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_uppercase().as_str(),
            "1" | "ON" | "YES" | "TRUE"
        )
    })
}

/// `~`, from HOME.
pub(crate) fn home() -> std::path::PathBuf {
    std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/"))
}
