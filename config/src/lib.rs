//! xgate configuration.
#![forbid(unsafe_code)]
