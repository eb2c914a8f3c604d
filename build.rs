//! Makes the `heal` binaries find libtorch at run time without LD_LIBRARY_PATH, links
//! libtorch_cuda in explicitly when the wheel ships it (so one binary uses a GPU where there is
//! one), and records the libtorch and tch versions for run.json.
//!
//! Build-time settings (examples/gpu/README.md shows them in use):
//! - `HEAL_RPATH`: folders (`:`-separated) searched for libtorch at run time before the one
//!   built against, e.g. the torch/lib of the machine the binary is for. The run path is a
//!   RUNPATH, so LD_LIBRARY_PATH still comes first; `$ORIGIN/libtorch` (a folder or link named
//!   libtorch beside the binary) comes last.
//! - `HEAL_TORCH_CUDA`: `auto` (default: link libtorch_cuda when the wheel has it), `1` (the
//!   build fails without it), `0` (never: a CPU-only binary).
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=HEAL_VENV");
    println!("cargo:rerun-if-env-changed=HEAL_RPATH");
    println!("cargo:rerun-if-env-changed=HEAL_TORCH_CUDA");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");

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
    // RUNPATH rather than RPATH, so that LD_LIBRARY_PATH can override it.
    println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags");
    let extra = std::env::var("HEAL_RPATH").unwrap_or_default();
    for dir in extra.split(':').filter(|d| !d.is_empty()) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/libtorch");

    let cuda = std::env::var("HEAL_TORCH_CUDA").unwrap_or_else(|_| "auto".into());
    let has_cuda = lib.join("libtorch_cuda.so").exists();
    let link_cuda = match cuda.as_str() {
        "auto" | "" => has_cuda,
        "0" => false,
        "1" if has_cuda => true,
        "1" => panic!(
            "HEAL_TORCH_CUDA=1 but {} has no libtorch_cuda.so: LIBTORCH is a CPU-only torch",
            lib.display()
        ),
        other => panic!("HEAL_TORCH_CUDA={other:?}: use auto, 1 or 0"),
    };
    if link_cuda {
        // Nothing in our code references a torch_cuda symbol, so the linker's default
        // --as-needed would drop it and CUDA would never register itself with libtorch.
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    if has_cuda {
        // libtorch_cuda needs the CUDA libraries of the wheel's nvidia-* packages, which a
        // build machine need not have (`pip install --no-deps torch`): they are found where
        // the binary runs. torch-sys names torch_cuda whenever it exists, so this holds for
        // HEAL_TORCH_CUDA=0 as well.
        println!("cargo:rustc-link-arg=-Wl,--allow-shlib-undefined");
    }
    println!(
        "cargo:rustc-env=HEAL_LIBTORCH_VERSION={}",
        torch_version(&libtorch)
    );
    println!("cargo:rustc-env=HEAL_TCH_VERSION={}", tch_requirement());
}

/// The tch release the manifest being built asks for, as major.minor ("0.26"). Read from the
/// manifest rather than written in the code because the PyTorch 2.11 build compiles the same
/// code from a generated manifest that asks for tch 0.24 (examples/gpu/build.sh).
fn tch_requirement() -> String {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let found: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("tch = \""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .collect();
    let [requirement] = found[..] else {
        panic!(
            "{}: expected exactly one line `tch = \"<version>\"`, found {}",
            manifest.display(),
            found.len()
        );
    };
    let version = requirement.trim_start_matches(['=', '^', '~']);
    version.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
}

fn torch_version(libtorch: &Path) -> String {
    let text = std::fs::read_to_string(libtorch.join("version.py")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("__version__ = "))
        .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .unwrap_or_else(|| "unknown".to_string())
}
