//! Black-box tests for xgate: they start the real `xgate` binary and real xpra clients and
//! servers ([`harness`]), and a load generator that speaks the protocol crate ([`load`]).
#![forbid(unsafe_code)]

pub mod harness;
pub mod load;
