//! Logical cores: ids, and running a closure on a worker lcore (`rte_eal_remote_launch`).

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use super::error::{check, DpdkError, Result};

const MAX_LCORE: usize = dpdk_sys::RTE_MAX_LCORE as usize;

/// Worker lcores with a launched closure not yet joined. DPDK's own busy check in
/// `rte_eal_remote_launch` is not atomic against a concurrent launch on the same lcore.
static LAUNCHED: [AtomicBool; MAX_LCORE] = [const { AtomicBool::new(false) }; MAX_LCORE];

/// The calling thread's lcore id, or `None` on a thread EAL does not know.
#[inline]
pub fn lcore_id() -> Option<u32> {
    // SAFETY: reads a thread-local variable; LCORE_ID_ANY on non-EAL threads.
    let id = unsafe { dpdk_sys::rte_lcore_id() };
    (id != dpdk_sys::LCORE_ID_ANY).then_some(id)
}

/// The main lcore (the one that ran `Eal::init`).
pub fn main_lcore() -> u32 {
    // SAFETY: reads EAL's configuration; no preconditions.
    unsafe { dpdk_sys::rte_get_main_lcore() }
}

/// Number of enabled lcores, main included.
pub fn lcore_count() -> u32 {
    // SAFETY: reads EAL's configuration; no preconditions.
    unsafe { dpdk_sys::rte_lcore_count() }
}

/// The enabled worker lcores (all enabled lcores but the main one), in increasing order.
pub fn worker_lcores() -> impl Iterator<Item = u32> {
    let mut prev = u32::MAX; // rte_get_next_lcore starts after `i`; -1 starts at 0
    std::iter::from_fn(move || {
        // SAFETY: reads EAL's configuration; skip_main = 1, wrap = 0.
        let next = unsafe { dpdk_sys::rte_get_next_lcore(prev, 1, 0) };
        (next < dpdk_sys::RTE_MAX_LCORE).then(|| {
            prev = next;
            next
        })
    })
}

/// The NUMA socket of the calling thread's lcore.
pub fn socket_id() -> u32 {
    // SAFETY: reads a thread-local/configuration value; no preconditions.
    unsafe { dpdk_sys::rte_socket_id() }
}

/// A closure running on a worker lcore. [`join`](Self::join) waits for its result;
/// dropping the handle also waits (the worker uses memory the handle owns).
#[must_use = "a launched closure is waited for when its handle drops"]
pub struct Launched<R> {
    lcore: u32,
    job: Option<NonNull<Job<R>>>,
}

struct Job<R> {
    f: Option<Box<dyn FnOnce() -> R + Send>>,
    result: Option<std::thread::Result<R>>,
}

/// Runs `f` on worker lcore `lcore` (`rte_eal_remote_launch`). The lcore must be an enabled
/// worker lcore that is idle.
pub fn launch<F, R>(lcore: u32, f: F) -> Result<Launched<R>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let enabled = lcore < dpdk_sys::RTE_MAX_LCORE
        // SAFETY: reads EAL's configuration for an lcore id below RTE_MAX_LCORE.
        && unsafe { dpdk_sys::rte_lcore_is_enabled(lcore) } != 0;
    if !enabled || lcore == main_lcore() {
        return Err(DpdkError::InvalidArgument(format!(
            "lcore {lcore} is not an enabled worker lcore (workers: {:?})",
            worker_lcores().collect::<Vec<_>>()
        )));
    }
    let busy = &LAUNCHED[lcore as usize];
    if busy.swap(true, Ordering::AcqRel) {
        return Err(DpdkError::from_errno(
            format!("rte_eal_remote_launch(lcore {lcore})"),
            16, // EBUSY
        ));
    }
    let job = Box::new(Job { f: Some(Box::new(f) as Box<dyn FnOnce() -> R + Send>), result: None });
    let job = NonNull::from(Box::leak(job));
    // SAFETY: the lcore is an enabled worker reserved for us (LAUNCHED); `job` stays alive
    // and untouched by this thread until rte_eal_wait_lcore has returned (join/drop).
    let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(run_job::<R>), job.as_ptr().cast(), lcore) };
    if let Err(e) = check("rte_eal_remote_launch", ret) {
        // SAFETY: the launch failed, so the worker never saw `job`.
        drop(unsafe { Box::from_raw(job.as_ptr()) });
        busy.store(false, Ordering::Release);
        return Err(e);
    }
    Ok(Launched { lcore, job: Some(job) })
}

extern "C" fn run_job<R>(arg: *mut c_void) -> c_int {
    // SAFETY: arg is the Job<R> passed by `launch`; the launching thread does not touch it
    // until this function has returned and rte_eal_wait_lcore has seen it.
    let job = unsafe { &mut *arg.cast::<Job<R>>() };
    if let Some(f) = job.f.take() {
        // A panic must not unwind into DPDK's C code: catch it and hand it to join.
        job.result = Some(catch_unwind(AssertUnwindSafe(f)));
    }
    0
}

impl<R> std::fmt::Debug for Launched<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Launched(lcore {})", self.lcore)
    }
}

impl<R> Launched<R> {
    /// The lcore running the closure.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the closure and returns its result (an error if it panicked).
    pub fn join(mut self) -> Result<R> {
        match self.wait() {
            Some(Ok(r)) => Ok(r),
            _ => Err(DpdkError::WorkerPanicked(self.lcore)),
        }
    }

    fn wait(&mut self) -> Option<std::thread::Result<R>> {
        let job = self.job.take()?;
        // SAFETY: the lcore runs our job; this blocks until it has returned.
        unsafe { dpdk_sys::rte_eal_wait_lcore(self.lcore) };
        // SAFETY: the worker is done with `job`; we own it again.
        let mut job = unsafe { Box::from_raw(job.as_ptr()) };
        LAUNCHED[self.lcore as usize].store(false, Ordering::Release);
        job.result.take()
    }
}

impl<R> Drop for Launched<R> {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}
