//! diesel's view of xpra's `users` table (reference §4.2).
//!
//! xpra's table has no primary key; diesel's `table!` needs one, so `username` is declared as the
//! key here. That only shapes the Rust side: the SQL schema stays xpra's (see the migration), and
//! nothing in xgate relies on names being unique (several rows per name are allowed, as in xpra).

diesel::table! {
    /// xpra's user table: one row per (user, password), with the user's sessions and options.
    users (username) {
        /// The login name the client gives (`username` in its hello).
        username -> Varchar,
        /// The plain-text password (xpra stores it as is).
        password -> Nullable<Varchar>,
        /// uid whose sessions the user reaches: a number or a login name.
        uid -> Nullable<Varchar>,
        /// gid to go with it: a number or a group name.
        gid -> Nullable<Varchar>,
        /// Comma-separated display strings or URIs (`:100`, `tcp://host:port/`).
        displays -> Nullable<Varchar>,
        /// `K=V;K2=V2`, kept for starting sessions.
        env_options -> Nullable<Varchar>,
        /// `compression_level=0;password=xyz`, applied on the server side.
        session_options -> Nullable<Varchar>,
    }
}
