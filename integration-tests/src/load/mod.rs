//! The load generator: fake xpra clients and servers on the protocol crate.
