//! The xpra wire protocol.
#![forbid(unsafe_code)]
