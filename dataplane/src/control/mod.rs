//! Control plane: control API, persistence, metrics export, admission webhook, fleet sync.

pub mod admission;
pub mod sync;
pub mod webhook;
