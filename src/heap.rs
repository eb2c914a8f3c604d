//! The allocator heal's programs run on: jemalloc, for the whole process, libtorch included.
//!
//! A CPU training step allocates and frees hundreds of activation and gradient tensors, from a
//! few kilobytes to tens of megabytes, in sizes that change with every batch's width. glibc's
//! malloc serves that badly: its heap fragments and keeps growing (a trial build's bf16 run on
//! 8,000 SST-2 sentences went from 1.0 GB after set-up to 1.65 GB at the end of training,
//! 160k page faults on the way, each a fresh page the kernel zeroes). Even told to keep freed
//! memory (this module's previous settings: no per-block mmap, no trimming), it was the
//! slower allocator. jemalloc, with freed pages kept in the process (`dirty_decay_ms:-1`,
//! `muzzy_decay_ms:-1`: a run's memory stays at its peak instead of going back to the system
//! and being faulted in again), on a 2-core Xeon with AMX, the build before and after this
//! change taking turns, `heal finetune --model minilm-l6` on those 8,000 sentences (1 epoch,
//! batch 32), identical F1:
//!
//! | precision | glibc, tuned | jemalloc | evaluation (872 sentences) | peak RSS |
//! |---|---|---|---|---|
//! | bf16 | 21.5-22.4 s | 20.1-20.2 s | 0.57-0.73 -> 0.54-0.55 s | 2.4 -> 1.9 GB |
//! | fp32 | 32.5-34.6 s | 32.2-33.1 s | 1.66-1.82 -> 1.63-1.64 s | 2.2 -> 1.8 GB |
//!
//! On a trial build, preloaded, mimalloc never purging came close to jemalloc (bf16 21.8-22.1
//! against 21.7-22.2 s; glibc 24.3-24.7). `heal tsne` of 67,349 points: 38.4-38.8 s on glibc,
//! 37.5-37.7 s on jemalloc, at 1.36 against 1.11 GB. HF gains too when jemalloc is preloaded
//! (examples/bench/suite.py shows both).
//!
//! How: `tikv-jemalloc-sys` built unprefixed defines `malloc`, `free`, `posix_memalign` and the
//! rest in the executable, which exports them, so the dynamic linker binds every library's
//! calls to them (libtorch's CPU allocator calls `posix_memalign`); [`use_jemalloc!`] in a
//! binary's root pulls the crate in and sets the options. tests/allocator.rs checks both.
//! Users tune it with `MALLOC_CONF` (jemalloc reads it after the built-in options). Tests
//! linking the library alone keep glibc's malloc. Off Linux with glibc, the system allocator.

/// jemalloc's options, as the `malloc_conf` symbol gives them (see the module's text).
pub const JEMALLOC_CONF: &std::ffi::CStr = c"dirty_decay_ms:-1,muzzy_decay_ms:-1";

/// The `malloc_conf` symbol's type: a C string pointer jemalloc reads once, at its start.
#[repr(transparent)]
pub struct ConfPtr(pub *const std::ffi::c_char);

// SAFETY: it points to a string literal, never written.
unsafe impl Sync for ConfPtr {}

/// Makes the binary whose root expands it allocate with jemalloc, process-wide, with
/// [`JEMALLOC_CONF`] (on Linux with glibc; elsewhere it expands to nothing).
#[macro_export]
macro_rules! use_jemalloc {
    () => {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        use tikv_jemalloc_sys as _;

        /// jemalloc's options (see `heal::heap`).
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        #[no_mangle]
        #[allow(non_upper_case_globals)]
        pub static malloc_conf: $crate::heap::ConfPtr =
            $crate::heap::ConfPtr($crate::heap::JEMALLOC_CONF.as_ptr());
    };
}
