//! The tch release matching the libtorch heal is built against, re-exported whole, so that the
//! library, the binary, the tests and the examples all write `tch::...` whichever it is (heal's
//! Cargo.toml names this crate `tch`).
//!
//! | heal feature           | tch  | PyTorch (libtorch) |
//! |------------------------|------|--------------------|
//! | `torch-2-13` (default) | 0.26 | 2.13               |
//! | `torch-2-11`           | 0.24 | 2.11               |
//!
//! Between 0.24 and 0.26 tch's public API only grew (new generated ops such as the philox
//! and lanczos kernels, `Tensor::get_device`, `Tensor::storage_offset`) and lost
//! `align_as`/`align_tensors`; heal uses none of these, so nothing needs adapting here. An
//! API difference that heal does meet belongs in this file, behind the features below.
//!
//! Both releases' `torch-sys` declare `links = "tch"`, and Cargo allows one package per
//! `links` value in a lock file even when one of them is never built: torch-sys 0.24 is
//! therefore vendored (vendor/torch-sys-0.24.0, VENDORED.md) with only that value changed.

#[cfg(all(feature = "torch-2-13", feature = "torch-2-11"))]
compile_error!(
    "two libtorch releases selected: build for PyTorch 2.11 with \
     `--no-default-features --features torch-2-11`"
);
#[cfg(not(any(feature = "torch-2-13", feature = "torch-2-11")))]
compile_error!("no libtorch release selected: enable heal's feature torch-2-13 or torch-2-11");

#[cfg(all(feature = "torch-2-11", not(feature = "torch-2-13")))]
pub use tch24::*;
#[cfg(feature = "torch-2-13")]
pub use tch26::*;
