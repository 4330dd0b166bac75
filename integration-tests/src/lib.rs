//! Black-box test helpers for xgate.
#![forbid(unsafe_code)]
