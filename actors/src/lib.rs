//! xgate actors.
#![forbid(unsafe_code)]
