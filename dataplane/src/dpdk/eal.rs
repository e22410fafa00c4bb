//! EAL initialisation: once per process, from DPDK-syntax arguments.
//!
//! `rte_eal_init` may run only once per process (DPDK keeps global state and refuses a
//! second run with `EALREADY`), so a process-wide state machine guards it: a second
//! [`Eal::init`] is an error, never undefined behaviour. A failed init is reported with
//! DPDK's message; whether it can be retried is DPDK's decision (argument errors reset its
//! run-once flag; failures after memory setup do not, and a retry then reports `EALREADY`).
//!
//! Every DPDK object of this layer (mempool, port, ring, LPM table) holds a [`Live`] token;
//! `rte_eal_cleanup` runs only when none is left, because cleanup unmaps DPDK memory.

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::SeqCst};

use super::error::{DpdkError, Result};

const UNINIT: u8 = 0;
const INITIALISING: u8 = 1;
const RUNNING: u8 = 2;
const CLEANED_UP: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);
static LIVE_OBJECTS: AtomicUsize = AtomicUsize::new(0);

/// Proof that EAL is initialised. Dropping it runs `rte_eal_cleanup` if no DPDK object is
/// alive any more; otherwise cleanup is skipped (the process exit releases the memory).
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Initialises EAL with DPDK-syntax arguments (without `argv[0]`, which is supplied),
    /// e.g. `["--no-huge", "--no-pci", "-m", "256", "--vdev", "net_ring0"]`.
    ///
    /// The calling thread becomes the main lcore.
    pub fn init<I, S>(args: I) -> Result<Eal>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut owned = vec!["dataplane".to_owned()];
        owned.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        let mut c_args = Vec::with_capacity(owned.len());
        for a in &owned {
            let c = CString::new(a.as_str())
                .map_err(|_| DpdkError::InvalidArgument(format!("EAL argument {a:?} contains a NUL byte")))?;
            c_args.push(c);
        }

        match STATE.compare_exchange(UNINIT, INITIALISING, SeqCst, SeqCst) {
            Ok(_) => {}
            Err(_) => return Err(DpdkError::EalAlreadyInitialized),
        }

        // EAL may keep pointers into argv (and getopt permutes it), so argv and its strings
        // live for the rest of the process: a few bytes, once.
        let argv: &'static mut [*mut c_char] =
            Vec::leak(c_args.into_iter().map(CString::into_raw).chain(std::iter::once(std::ptr::null_mut())).collect());
        let argc = (argv.len() - 1) as c_int;
        // SAFETY: argv holds argc valid NUL-terminated strings followed by NULL, all leaked so
        // they outlive EAL; STATE guarantees no other thread is inside rte_eal_init.
        let ret = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let err = DpdkError::last(format!("rte_eal_init({})", owned[1..].join(" ")));
            STATE.store(UNINIT, SeqCst);
            return Err(err);
        }
        STATE.store(RUNNING, SeqCst);
        Ok(Eal { _private: () })
    }

    /// Whether EAL is initialised (and not cleaned up) in this process.
    pub fn is_initialized() -> bool {
        STATE.load(SeqCst) == RUNNING
    }

    /// Whether EAL runs on hugepages (false with `--no-huge`).
    pub fn has_hugepages(&self) -> bool {
        // SAFETY: EAL is initialised (self exists); reads configuration only.
        unsafe { dpdk_sys::rte_eal_has_hugepages() != 0 }
    }

    /// Runs `rte_eal_cleanup` now. Fails, leaving EAL running, while DPDK objects
    /// (mempools, ports, rings, tables) are still alive. After it, creating DPDK objects
    /// fails with `EalNotInitialized`, and EAL cannot be initialised again in this process.
    pub fn cleanup(&mut self) -> Result<()> {
        cleanup()
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // Already cleaned up, or objects still alive: nothing to do (see the type's docs).
        let _ = cleanup();
    }
}

fn cleanup() -> Result<()> {
    if STATE.compare_exchange(RUNNING, CLEANED_UP, SeqCst, SeqCst).is_err() {
        return Err(DpdkError::EalNotInitialized);
    }
    let live = LIVE_OBJECTS.load(SeqCst);
    if live != 0 {
        STATE.store(RUNNING, SeqCst);
        return Err(DpdkError::InvalidState(format!("EAL cleanup refused: {live} DPDK objects are still alive")));
    }
    // SAFETY: EAL was initialised and no object of this layer refers to DPDK memory any more
    // (LIVE_OBJECTS is 0 and no new one can be created: STATE is no longer RUNNING).
    let ret = unsafe { dpdk_sys::rte_eal_cleanup() };
    super::error::check("rte_eal_cleanup", ret).map(|_| ())
}

/// Held by every DPDK object of this layer: EAL is running while one exists.
#[derive(Debug)]
pub(crate) struct Live(());

impl Live {
    /// Fails unless EAL is initialised.
    pub(crate) fn acquire() -> Result<Live> {
        LIVE_OBJECTS.fetch_add(1, SeqCst);
        if STATE.load(SeqCst) != RUNNING {
            LIVE_OBJECTS.fetch_sub(1, SeqCst);
            return Err(DpdkError::EalNotInitialized);
        }
        Ok(Live(()))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE_OBJECTS.fetch_sub(1, SeqCst);
    }
}
