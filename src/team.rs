//! The OpenMP team libtorch computes on, for heal's own parallel loops on the CPU.
//!
//! Why not rayon: libtorch's OpenMP threads spin for a while after each of its parallel
//! regions, waiting for the next one (that is what makes its back-to-back kernels fast; with
//! `OMP_WAIT_POLICY=passive` a 2,000-sentence minilm-l6 fine-tuning took 13.7-13.8 s of
//! training against 10.9-11.7 s). A rayon pool started between two of libtorch's regions
//! shares the cores with those spinning threads: on 2 cores the fused optimiser's norm pass
//! read gradients at 5-10 GB/s and its step took ~21 ms where memory allows ~9. Run on the
//! same team, the loop takes the threads that were spinning and no core is oversubscribed;
//! the team's size is libtorch's (`--threads`), not the machine's.
//!
//! How: libgomp's `GOMP_parallel`, the entry point a compiler emits for `#pragma omp
//! parallel`, found at run time in the process (libtorch brings libgomp, or Intel's libiomp,
//! which exports the same symbols). Where neither is loaded the loop runs on rayon's pool.

use rayon::prelude::*;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

type ParallelFn = unsafe extern "C" fn(
    body: unsafe extern "C" fn(*mut c_void),
    data: *mut c_void,
    num_threads: u32,
    flags: u32,
);

/// `GOMP_parallel`, if the process has an OpenMP runtime loaded.
fn gomp_parallel() -> Option<ParallelFn> {
    static FOUND: OnceLock<Option<usize>> = OnceLock::new();
    let addr = *FOUND.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks the name up.
        let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"GOMP_parallel".as_ptr()) };
        (!p.is_null()).then_some(p as usize)
    });
    // SAFETY: the symbol is libgomp's `GOMP_parallel`, whose C signature ParallelFn is.
    addr.map(|a| unsafe { std::mem::transmute::<usize, ParallelFn>(a) })
}

/// What every thread of the team runs: indices taken from a shared counter until none are
/// left (the items differ in size, so a static split would leave a thread idle).
struct Job<'a> {
    next: AtomicUsize,
    n: usize,
    body: &'a (dyn Fn(usize) + Sync),
    panicked: std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

unsafe extern "C" fn run_job(data: *mut c_void) {
    // SAFETY: `data` is the `Job` that `for_each` keeps alive until GOMP_parallel returns.
    let job = unsafe { &*(data as *const Job) };
    // A panic must not unwind through libgomp's frames: caught here, raised again by the
    // caller once the team is done.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
        let i = job.next.fetch_add(1, Ordering::Relaxed);
        if i >= job.n {
            break;
        }
        (job.body)(i);
    }));
    if let Err(payload) = result {
        job.next.store(job.n, Ordering::Relaxed);
        let mut slot = job.panicked.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(payload);
    }
}

/// Runs `body(i)` for every `i` in `0..n`, spread over libtorch's OpenMP team (rayon's pool
/// where the process has no OpenMP runtime). Calls may run in any order and on any thread;
/// results that must not depend on the scheduling go into per-index slots.
pub fn for_each(n: usize, body: impl Fn(usize) + Sync) {
    if n == 0 {
        return;
    }
    let Some(parallel) = gomp_parallel() else {
        (0..n).into_par_iter().for_each(&body);
        return;
    };
    let job = Job {
        next: AtomicUsize::new(0),
        n,
        body: &body,
        panicked: std::sync::Mutex::new(None),
    };
    // libtorch's thread count, asked for explicitly: OpenMP keeps the count per thread, and
    // libtorch sets it on the threads it runs on, which need not include this one.
    let threads = tch::get_num_threads().max(1) as u32;
    // SAFETY: GOMP_parallel runs `run_job` on every thread of the team (the caller included)
    // and returns when all are done, so `job` outlives every use.
    unsafe { parallel(run_job, &job as *const Job as *mut c_void, threads, 0) };
    if let Some(payload) = job.panicked.into_inner().unwrap_or_else(|e| e.into_inner()) {
        std::panic::resume_unwind(payload);
    }
}

/// `f(i)` for every `i` in `0..n`, computed on the team, in index order.
pub fn map<T: Send + Sync>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let slots: Vec<OnceLock<T>> = (0..n).map(|_| OnceLock::new()).collect();
    for_each(n, |i| {
        let _ = slots[i].set(f(i));
    });
    slots
        .into_iter()
        .map(|s| s.into_inner().expect("for_each ran every index"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_runs_once_and_map_keeps_the_order() {
        // libtorch (and with it libgomp) is loaded: the team path is the one tested.
        tch::set_num_threads(2);
        assert!(
            gomp_parallel().is_some(),
            "libtorch's OpenMP runtime is loaded"
        );
        let hits: Vec<AtomicUsize> = (0..1000).map(|_| AtomicUsize::new(0)).collect();
        for_each(hits.len(), |i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
        });
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        let squares = map(1000, |i| (i * i) as u64);
        assert_eq!(squares, (0..1000u64).map(|i| i * i).collect::<Vec<_>>());
        for_each(0, |_| unreachable!());
        // Items long enough for the team's other thread to wake and take some.
        let threads = map(16, |_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            std::thread::current().id()
        });
        let distinct: std::collections::HashSet<_> = threads.into_iter().collect();
        assert_eq!(distinct.len(), 2, "both of the team's threads took items");
    }

    #[test]
    fn a_panic_in_the_body_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| {
            for_each(100, |i| {
                if i == 37 {
                    panic!("item 37");
                }
            })
        });
        let payload = caught.expect_err("the panic propagates");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"item 37"));
    }
}
