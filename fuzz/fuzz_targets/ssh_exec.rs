//! The builtin SSH server's exec-command parser on arbitrary command lines: never panics, is
//! deterministic, and a proxy command's display is never one of its `--` options.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unreachable_pub)]
#[path = "../../actors/src/ssh/exec.rs"]
mod exec;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let first = exec::parse(&line);
    assert_eq!(first, exec::parse(&line));
    if let exec::ExecRequest::Proxy { display: Some(d) } = &first {
        assert!(!d.starts_with("--"), "{d:?}");
    }
});
