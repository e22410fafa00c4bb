//! ethernet header view.
