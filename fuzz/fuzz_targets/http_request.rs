//! The HTTP request-head parser on arbitrary bytes: never panics, never reads past 64 KiB, and a
//! parsed head's length lies within the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unreachable_pub)]
#[path = "../../actors/src/upgrade/request.rs"]
mod request;

fuzz_target!(|data: &[u8]| {
    match request::parse_request(data) {
        Ok(Some((req, len))) => {
            assert!(len <= data.len() && len <= request::MAX_HEAD);
            assert!(req.headers.len() <= request::MAX_HEADERS);
            let _ = req.keep_alive();
            let _ = req.path();
            // A prefix of a complete head never parses to a longer head.
            if let Ok(Some((_, l2))) = request::parse_request(&data[..len]) {
                assert_eq!(l2, len);
            }
        }
        Ok(None) => assert!(data.len() < request::MAX_HEAD),
        Err(_) => {}
    }
});
