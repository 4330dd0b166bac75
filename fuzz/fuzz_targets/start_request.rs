//! Start requests from the network: arbitrary bytes decoded as a rencodeplus value and read as
//! a hello's `start-new-session`, and as the arguments of SSH's `xpra _proxy_start`. Never
//! panics; an accepted request stays within its bounds and only carries allowed options.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xgate_protocol::rencodeplus;

#[allow(dead_code, unreachable_pub)]
#[path = "../../actors/src/registry/start/request.rs"]
mod request;

fn check(req: &request::StartRequest) {
    assert!(req.options.len() <= 64, "{} options", req.options.len());
    for (name, value) in &req.options {
        assert!(request::OVERRIDABLE.contains(&name.as_str()), "{name}");
        assert!(value.len() <= 4096 && !value.contains('\0'));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = rencodeplus::decode(data) {
        if let Ok(req) = request::StartRequest::from_hello(&value) {
            check(&req);
        }
    }
    let text = String::from_utf8_lossy(data);
    let args: Vec<String> = text.split(' ').map(str::to_owned).collect();
    for mode in [
        request::StartMode::Start,
        request::StartMode::StartDesktop,
        request::StartMode::Shadow,
    ] {
        if let Ok(req) = request::StartRequest::from_proxy_args(mode, &args) {
            assert_eq!(req.mode, mode);
            check(&req);
        }
    }
});
