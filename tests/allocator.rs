//! The `heal` binary allocates with jemalloc, libtorch included (src/heap.rs): the dynamic
//! linker binds libtorch's allocation calls to the executable's own, and jemalloc starts with
//! heal's options.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::process::Command;

fn heal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heal"))
}

#[test]
fn libtorch_allocates_through_the_executables_jemalloc() {
    // Every symbol bound at start-up, each binding logged (to LOG.<pid>).
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("bindings");
    let status = heal()
        .arg("--version")
        .env("LD_BIND_NOW", "1")
        .env("LD_DEBUG", "bindings")
        .env("LD_DEBUG_OUTPUT", &log)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text: String = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_heal")).unwrap();
    let exe_name = exe.file_name().unwrap().to_string_lossy().into_owned();
    // "binding file <lib> [0] to <file> [0]: normal symbol `posix_memalign' [GLIBC_2.2.5]"
    let bound_to = |lib: &str, symbol: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains(lib) && l.contains(&format!("`{symbol}'")))
            .filter_map(|l| l.split(" to ").nth(1))
            .filter_map(|rest| rest.split(" [").next())
            .map(str::to_owned)
            .collect()
    };
    // c10's CPU allocator asks for aligned blocks; libtorch itself calls malloc and free.
    for (lib, symbol) in [
        ("libc10.so", "posix_memalign"),
        ("libc10.so", "free"),
        ("libtorch_cpu.so", "malloc"),
    ] {
        let targets = bound_to(lib, symbol);
        assert!(!targets.is_empty(), "no binding of {lib}'s {symbol} logged");
        for t in &targets {
            assert!(
                t.ends_with(&format!("/{exe_name}")) || t == &exe_name,
                "{lib}'s {symbol} bound to {t}, not to the heal executable"
            );
        }
    }
}

#[test]
fn jemalloc_starts_with_heals_options() {
    let out = heal()
        .arg("--version")
        .env("MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Begin jemalloc statistics"),
        "jemalloc printed no statistics:\n{stderr}"
    );
    let conf = heal::heap::JEMALLOC_CONF.to_str().unwrap();
    assert!(
        stderr.contains(&format!("Global variable malloc_conf: \"{conf}\"")),
        "{stderr}"
    );
    for option in conf.split(',') {
        let (name, value) = option.split_once(':').unwrap();
        assert!(
            stderr.contains(&format!("opt.{name}: {value} ")),
            "opt.{name} is not {value}"
        );
    }
}
