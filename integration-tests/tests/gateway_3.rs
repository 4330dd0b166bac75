//! Issue #4 for xpra 3.1.3: real clients and a real session through the real gateway
//! (multifile auth, privilege drop to the test user).

mod common;

use xgate_integration_tests::harness::Version;

/// `xpra version`, `xpra id`, `xpra info` and `xpra connect-test` through xgate, by display.
#[test]
fn xpra_3_one_shot_commands_through_xgate() {
    common::one_shot_commands(Version::V3);
}

/// A GUI attach by display, proven by the session's pixels; the detach leaves the session LIVE.
#[test]
fn xpra_3_attach_by_display_shows_xterm_and_detach_keeps_session() {
    common::attach_by_display_then_detach(Version::V3);
}

/// A GUI attach to a `tcp://` display from the multifile, proven by pixels; killing the client
/// leaves the session LIVE and reachable.
#[test]
fn xpra_3_attach_tcp_target_shows_xterm_and_kill_keeps_session() {
    common::attach_tcp_target_then_kill_client(Version::V3);
}
