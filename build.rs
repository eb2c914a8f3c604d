//! Makes the `heal` binaries find libtorch at run time without LD_LIBRARY_PATH, links
//! libtorch_cuda in explicitly when the wheel ships it (so one binary uses a GPU where there is
//! one), and records the libtorch version for run.json.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=HEAL_VENV");
    println!("cargo:rerun-if-changed=build.rs");

    let libtorch = std::env::var("LIBTORCH")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            panic!(
                "LIBTORCH is not set: run `bash .ci/setup` first (it creates .libtorch and .venv)"
            )
        });
    let libtorch = libtorch.canonicalize().unwrap_or_else(|_| {
        panic!(
            "LIBTORCH points to {}, which does not exist: run `bash .ci/setup`",
            libtorch.display()
        )
    });
    let lib = libtorch.join("lib");
    // The link may be re-pointed at another environment: rebuild (new rpath) when it is.
    println!(
        "cargo:rerun-if-changed={}",
        lib.join("libtorch_cpu.so").display()
    );
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        // Nothing in our code references a torch_cuda symbol, so the linker's default
        // --as-needed would drop it and CUDA would never register itself with libtorch.
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    println!(
        "cargo:rustc-env=HEAL_LIBTORCH_VERSION={}",
        torch_version(&libtorch)
    );
}

fn torch_version(libtorch: &Path) -> String {
    let text = std::fs::read_to_string(libtorch.join("version.py")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .unwrap_or_else(|| "unknown".to_string())
}
