//! udp header view.
