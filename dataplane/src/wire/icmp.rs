//! icmp header view.
