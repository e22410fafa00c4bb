//! ipv4 header view.
