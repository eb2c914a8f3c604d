#!/usr/bin/env bash
# Builds heal for the GPU node's PyTorch 2.11 (tch 0.24) and packs what a GPU session carries
# into .gpu-dist/: the stripped `heal` and `gpu-probe` binaries and a manifest (sizes,
# checksums, the shared libraries they need).
#
#   bash examples/gpu/build.sh                      build and pack
#   bash examples/gpu/build.sh test --release --workspace
#                                                   any cargo command, same settings (the
#                                                   2.11 build's test suite, incrementally)
#   bash examples/gpu/build.sh lock                 rewrite Cargo.torch-2.11.lock (network)
#
# Each tch release binds one PyTorch release, and the two torch-sys releases cannot share a
# lock file (both declare `links = "tch"`). So the 2.11 build is its own workspace, generated
# in $CARGO_TARGET_DIR/ws: Cargo.toml is the repository's with `tch = "0.26"` replaced by
# `tch = "=0.24.0"`, every other entry of the repository is a symbolic link to it (the same
# source files, tests, fixtures, viz), and Cargo.lock is this folder's Cargo.torch-2.11.lock,
# used with --locked. `lock` makes that file from the repository's Cargo.lock, changing only
# what tch 0.24 needs; rerun it when the repository's dependencies change (--locked says so).
#
# Settings (each may be overridden from the environment):
#   LIBTORCH_211      the torch 2.11 folder built against (exported as LIBTORCH) [default:
#                     .ci/setup-torch 2.11's, provisioned if missing]
#   CARGO_TARGET_DIR  target-211, so that the default build's target/ stays incremental
#   HEAL_RPATH        /opt/torch/.venv/lib/python3.12/site-packages/torch/lib: the node's
#                     libtorch, searched first at run time (then this build's, then
#                     $ORIGIN/libtorch); LD_LIBRARY_PATH overrides all of them
#   HEAL_TORCH_CUDA=1 libtorch_cuda linked (the build fails if the wheel has none)
# and, so that the binary needs no library the node may lack: fontconfig opened at run time
# (only when a figure is drawn) and FreeType compiled in (RUST_FONTCONFIG_DLOPEN,
# FREETYPE2_NO_PKG_CONFIG: build-time switches of yeslogic-fontconfig-sys and freetype-sys).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

LIBTORCH=${LIBTORCH_211:-$(bash .ci/setup-torch 2.11)}
export LIBTORCH
export HEAL_VENV=${HEAL_VENV:-$root/.venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target-211}
export HEAL_RPATH=${HEAL_RPATH:-/opt/torch/.venv/lib/python3.12/site-packages/torch/lib}
export HEAL_TORCH_CUDA=${HEAL_TORCH_CUDA:-1}
export RUST_FONTCONFIG_DLOPEN=1 FREETYPE2_NO_PKG_CONFIG=1

tch='tch = "=0.24.0"'
lock=$root/examples/gpu/Cargo.torch-2.11.lock
ws=$CARGO_TARGET_DIR/ws
mkdir -p "$ws"
find "$ws" -maxdepth 1 -xtype l -delete # links to entries since removed
target_dir=$(cd "$CARGO_TARGET_DIR" && pwd -P)
shopt -s dotglob nullglob
for entry in "$root"/*; do
  name=$(basename "$entry")
  case "$name" in Cargo.toml | Cargo.lock | .git | target) continue ;; esac
  [ "$(cd "$entry" 2>/dev/null && pwd -P)" = "$target_dir" ] && continue
  ln -sfn "$entry" "$ws/$name"
done
manifest=$(awk -v tch="$tch" '/^tch = "[^"]*"$/ { print tch; n++; next } { print } END { if (n != 1) exit 1 }' "$root/Cargo.toml") ||
  { echo "error: Cargo.toml must have exactly one line 'tch = \"<version>\"' to replace" >&2; exit 1; }
# Rewritten only when it changes: build.rs reruns when it does.
[ "$(cat "$ws/Cargo.toml" 2>/dev/null)" = "$manifest" ] || printf '%s\n' "$manifest" >"$ws/Cargo.toml"
in_ws=(--manifest-path "$ws/Cargo.toml")

if [ "${1:-}" = lock ]; then
  cp "$root/Cargo.lock" "$ws/Cargo.lock"
  cargo metadata "${in_ws[@]}" --format-version 1 >/dev/null
  cp "$ws/Cargo.lock" "$lock"
  echo "wrote $lock"
  exit 0
fi
cmp -s "$lock" "$ws/Cargo.lock" || cp "$lock" "$ws/Cargo.lock"

if [ $# -gt 0 ]; then
  sub=$1
  shift
  exec cargo "$sub" "${in_ws[@]}" --locked "$@"
fi

cargo build "${in_ws[@]}" --locked --release --bin heal --example gpu-probe
dist=$root/.gpu-dist
rm -rf "$dist"
mkdir -p "$dist"
strip -o "$dist/heal" "$CARGO_TARGET_DIR/release/heal"
strip -o "$dist/gpu-probe" "$CARGO_TARGET_DIR/release/examples/gpu-probe"
{
  echo "built $(date -u +%FT%TZ) on $(uname -m), $(ldd --version | head -n1)"
  echo "LIBTORCH=$LIBTORCH"
  echo "HEAL_RPATH=$HEAL_RPATH HEAL_TORCH_CUDA=$HEAL_TORCH_CUDA"
  echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!.gpu-dist' || echo ' (with uncommitted changes)')"
  for f in heal gpu-probe; do
    echo
    echo "$f: $(stat -c %s "$dist/$f") bytes, sha256 $(sha256sum "$dist/$f" | cut -c1-64)"
    readelf -d "$dist/$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/  needs \1/p; s/.*(RUNPATH).*\[\(.*\)\]/  runpath \1/p'
    # The newest symbol versions it asks for: the node's glibc and libstdc++ must have them.
    echo "  glibc >= $(objdump -T "$dist/$f" | grep -o 'GLIBC_[0-9.]*' | sort -V | tail -n1)," \
      "libstdc++ >= $(objdump -T "$dist/$f" | grep -o 'GLIBCXX_[0-9.]*' | sort -V | tail -n1)"
  done
  echo
  echo "total $(du -cb "$dist/heal" "$dist/gpu-probe" | tail -n1 | cut -f1) bytes"
} >"$dist/manifest.txt"
# Everything the binaries need beyond libtorch must be on any glibc Linux.
allowed='^(libtorch_cuda|libtorch_cpu|libc10|libstdc\+\+|libgcc_s|libm|libc|ld-linux-x86-64)\.so'
if sed -n 's/^  needs //p' "$dist/manifest.txt" | grep -Ev "$allowed"; then
  echo "error: the binaries need a library outside libtorch and the C/C++ runtime (above)" >&2
  exit 1
fi
if ! grep -q 'needs libtorch_cuda.so' "$dist/manifest.txt"; then
  echo "error: libtorch_cuda is not linked: --device cuda would not work" >&2
  exit 1
fi
cat "$dist/manifest.txt"
