//! Control plane: control API, persistence, metrics export, admission webhook, fleet sync.

pub mod admission;
#[cfg(feature = "dpdk")]
pub mod api;
#[cfg(feature = "dpdk")]
pub mod apply;
pub mod auth;
pub mod canonical;
#[cfg(feature = "dpdk")]
pub mod capture;
pub mod capture_client;
pub mod client;
pub mod http;
#[cfg(feature = "dpdk")]
pub mod metrics;
#[cfg(feature = "dpdk")]
pub mod plane;
pub mod state;
#[cfg(test)]
mod state_tests;
pub mod sync;
pub mod top;
pub mod top_view;
pub mod webhook;
