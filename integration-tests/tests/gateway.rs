//! Issue #4: real clients and a real session through the real gateway (multifile auth, privilege
//! drop to the test user), the same scenarios for xpra 3.1.3 and 6.5.5.

mod common;

use xgate_integration_tests::harness::Version;
use xgate_integration_tests::test_table;

// `xpra version`, `xpra id`, `xpra info` and `xpra connect-test` through xgate, by display.
test_table! {
    common::one_shot_commands:
    xpra_3_one_shot_commands_through_xgate(Version::V3);
    xpra_6_one_shot_commands_through_xgate(Version::V6);
}

// A GUI attach by display, proven by the session's pixels; the detach leaves the session LIVE.
test_table! {
    common::attach_by_display_then_detach:
    xpra_3_attach_by_display_shows_xterm_and_detach_keeps_session(Version::V3);
    xpra_6_attach_by_display_shows_xterm_and_detach_keeps_session(Version::V6);
}

// A GUI attach to a `tcp://` display from the multifile, proven by pixels; killing the client
// leaves the session LIVE and reachable.
test_table! {
    common::attach_tcp_target_then_kill_client:
    xpra_3_attach_tcp_target_shows_xterm_and_kill_keeps_session(Version::V3);
    xpra_6_attach_tcp_target_shows_xterm_and_kill_keeps_session(Version::V6);
}
