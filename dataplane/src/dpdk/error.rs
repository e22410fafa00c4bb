//! Errors of the DPDK layer. DPDK failures carry DPDK's own message (`rte_strerror`).

use std::ffi::CStr;

/// Result of the DPDK layer.
pub type Result<T> = std::result::Result<T, DpdkError>;

/// Everything that can go wrong in the DPDK layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpdkError {
    /// A DPDK call failed; `message` is DPDK's `rte_strerror(errno)`.
    #[error("{call}: {message} (errno {errno})")]
    Call { call: String, errno: i32, message: String },
    /// `rte_eal_init` was called (successfully) before in this process.
    #[error("EAL is already initialised in this process (it can be initialised once)")]
    EalAlreadyInitialized,
    /// A DPDK object was requested before `Eal::init` succeeded, or after cleanup.
    #[error("EAL is not initialised (call Eal::init first)")]
    EalNotInitialized,
    /// The device has fewer queues than requested.
    #[error("port {port} ({name}): {requested} {dir} queues requested, device supports at most {max}")]
    TooManyQueues { port: u16, name: String, dir: &'static str, requested: u16, max: u16 },
    /// No ethdev port with this id or name.
    #[error("unknown port {0}")]
    UnknownPort(String),
    /// An argument was rejected before reaching DPDK.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The object is not in a state that allows the operation.
    #[error("{0}")]
    InvalidState(String),
    /// A closure launched on a worker lcore panicked.
    #[error("the function launched on lcore {0} panicked")]
    WorkerPanicked(u32),
}

impl DpdkError {
    /// A failed DPDK call with a positive errno value (DPDK returns `-errno` or sets `rte_errno`).
    pub fn from_errno(call: impl Into<String>, errno: i32) -> Self {
        let errno = errno.abs();
        DpdkError::Call { call: call.into(), errno, message: strerror(errno) }
    }

    /// A failed DPDK call that reported its error through `rte_errno`.
    pub fn last(call: impl Into<String>) -> Self {
        Self::from_errno(call, errno())
    }

    /// The errno of a failed DPDK call, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            DpdkError::Call { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// This thread's `rte_errno`.
pub fn errno() -> i32 {
    // SAFETY: reads a thread-local integer; no preconditions.
    unsafe { dpdk_sys::dpdk_sys_errno() }
}

/// DPDK's message for an errno value (covers both libc and DPDK-specific codes).
pub fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any value and returns a NUL-terminated string, either
    // static or in a thread-local buffer; it is copied out before this thread calls it again.
    unsafe {
        let msg = dpdk_sys::rte_strerror(errno);
        if msg.is_null() {
            return format!("error {errno}");
        }
        CStr::from_ptr(msg).to_string_lossy().into_owned()
    }
}

/// Turns a DPDK `int` return (negative errno on failure) into a `Result`.
pub(crate) fn check(call: &str, ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(DpdkError::from_errno(call, ret))
    } else {
        Ok(ret)
    }
}
