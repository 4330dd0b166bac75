//! Typed messages exchanged by xgate actors.
#![forbid(unsafe_code)]
