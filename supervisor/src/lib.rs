//! OTP-grade supervision for actix actors.
#![forbid(unsafe_code)]
