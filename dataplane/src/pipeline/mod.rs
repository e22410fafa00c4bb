//! Per-packet logic, generic over a packet buffer: parse -> flow -> policy -> verdict.
