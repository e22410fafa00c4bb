//! ipv6 header view.
