//! Running our own parallel work on libtorch's OpenMP threads.
//!
//! Why: libtorch parallelises each operation over an OpenMP team, and after
//! an operation its worker threads spin for a while (libgomp's default wait
//! policy) before they sleep. Threads of our own started right after an
//! operation compete with those spinning workers for the same cores: the
//! Winograd convolution ([`super::winograd`]) on threads of its own made the
//! paper model's inference 9% slower (178 against 195 steps/s, 2 threads,
//! docs/performance.md). Handing
//! the work to the same OpenMP team, as libtorch's own `at::parallel_for`
//! does, lets the spinning workers pick it up instead, and keeps the process
//! within the thread count `tch::set_num_threads` gave it.
//!
//! libtorch's CPU library links GNU OpenMP (libgomp), so `GOMP_parallel`, the
//! entry point GCC compiles `#pragma omp parallel` to, is in the process. It is
//! looked up at run time; where it is absent (a libtorch built without
//! OpenMP), the work runs on scoped threads of our own instead.

use std::any::Any;
use std::ffi::{c_uint, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, OnceLock};

/// `void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags)`.
type GompParallel = unsafe extern "C" fn(extern "C" fn(*mut c_void), *mut c_void, c_uint, c_uint);

fn gomp_parallel() -> Option<GompParallel> {
    static FOUND: OnceLock<Option<GompParallel>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        // SAFETY: dlsym with a NUL-terminated name; a non-null result for this
        // symbol is libgomp's function of the signature above.
        let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"GOMP_parallel".as_ptr()) };
        (!symbol.is_null())
            .then(|| unsafe { std::mem::transmute::<*mut c_void, GompParallel>(symbol) })
    })
}

/// What each OpenMP thread is handed: the work, and where a panic lands.
struct Job<'a> {
    work: &'a (dyn Fn() + Sync),
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

extern "C" fn run_job(data: *mut c_void) {
    // SAFETY: `data` is the `Job` that `run` keeps alive until GOMP_parallel returns.
    let job = unsafe { &*(data as *const Job) };
    // A panic must not unwind through libgomp's C frames: keep it, rethrow after.
    if let Err(payload) = catch_unwind(AssertUnwindSafe(job.work)) {
        job.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
    }
}

/// Runs `work` once on each of up to `threads` threads (the caller among
/// them: OpenMP may grant fewer, inside another parallel region say) and
/// returns when all have finished. The threads share the work through
/// whatever `work` captures (an atomic counter of blocks, say), so the result
/// must not depend on how many there are.
pub fn run(threads: usize, work: &(dyn Fn() + Sync)) {
    let threads = threads.max(1);
    if threads == 1 {
        return work();
    }
    match gomp_parallel() {
        Some(parallel) => {
            let job = Job { work, panic: Mutex::new(None) };
            // SAFETY: `job` outlives the call, which joins every thread before
            // returning; `run_job` only reads it.
            unsafe {
                parallel(run_job, &job as *const Job as *mut c_void, threads as c_uint, 0);
            }
            if let Some(payload) = job.panic.into_inner().unwrap_or_else(|e| e.into_inner()) {
                std::panic::resume_unwind(payload);
            }
        }
        None => run_on_own_threads(threads, work),
    }
}

/// The fallback: `work` on the caller and `threads - 1` scoped threads.
fn run_on_own_threads(threads: usize, work: &(dyn Fn() + Sync)) {
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// libtorch is linked into the tests, so libgomp is there to be found.
    #[test]
    fn finds_libtorchs_openmp() {
        // Touch libtorch so that its libraries are certainly loaded.
        let _ = tch::get_num_threads();
        assert!(gomp_parallel().is_some(), "GOMP_parallel not found next to libtorch");
    }

    /// Both routes, OpenMP's and the fallback. (An `OMP_THREAD_LIMIT` below 3
    /// in the environment would make OpenMP grant fewer threads than asked.)
    #[test]
    fn runs_the_work_once_per_thread_on_distinct_threads() {
        type Runner = fn(usize, &(dyn Fn() + Sync));
        for (route, runner) in [("openmp", run as Runner), ("own threads", run_on_own_threads)] {
            for threads in [1, 2, 3] {
                let calls = AtomicUsize::new(0);
                let ids = Mutex::new(HashSet::new());
                runner(threads, &|| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    ids.lock().unwrap().insert(std::thread::current().id());
                });
                assert_eq!(calls.load(Ordering::SeqCst), threads, "{route}");
                assert_eq!(ids.lock().unwrap().len(), threads, "{route}");
            }
        }
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller() {
        let result = catch_unwind(|| run(2, &|| panic!("inside the work")));
        let payload = result.expect_err("the panic must reach the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"inside the work"));
    }
}
