//! Local accounts, as the configuration crate reads them (`/etc/passwd`, `/etc/group`): one
//! reader for the whole gateway, re-exported where the actors have always found it.

pub use xgate_config::accounts::*;
