//! Issue #5, the `pam` auth module (cargo feature `pam`): real local accounts whose passwords are
//! set with `chpasswd`, a PAM service written by the test (`/etc/pam.d/xgate-test`, pam_unix),
//! and real xpra clients through the real gateway. Built only with
//! `--features xgate-integration-tests/pam`, and needs an xgate binary built with
//! `--features xgate-supervisor/pam` (scripts/test-all builds both with `--all-features`); a
//! binary without it refuses `pam` at start, which fails the test loudly.
//!
//! pam_unix checks another user's password only for a process that can read `/etc/shadow`
//! (its setgid helper `unix_chkpwd` checks the caller's own password only), so the gateway runs
//! with `gid=shadow`, as an operator would run it.

mod users_support;

use std::process::Command;
use std::time::Duration;

use users_support::reaches;
use xgate_integration_tests::harness::ssh::ssh_command;
use xgate_integration_tests::harness::xpra::client_home_in;
use xgate_integration_tests::harness::{
    run_with_timeout, Attach, Gateway, Session, TestDir, TestUser, Version,
};

/// The PAM service the test writes.
const SERVICE: &str = "xgate-test";

/// A second account: PAM accepts its password, and it has no session of its own.
const OTHER: &str = "xgpam";

/// Writes `/etc/pam.d/xgate-test`: pam_unix for the password and the account (`nodelay`: the
/// gateway has its own failure delay). Written whole and renamed into place, as other test
/// binaries may write the same file at the same time.
fn write_service() {
    let text = "# xgate's integration tests (users_pam.rs)\n\
                auth    required pam_unix.so nodelay\n\
                account required pam_unix.so\n";
    let tmp = format!("/etc/pam.d/.{SERVICE}.{}", std::process::id());
    std::fs::write(&tmp, text).expect("write the PAM service (the tests run as root)");
    std::fs::rename(&tmp, format!("/etc/pam.d/{SERVICE}")).expect("install the PAM service");
}

/// Creates the account `name` (no home, no login shell) unless it exists.
fn ensure_account(name: &str) {
    let exists = || {
        run_with_timeout(
            Command::new("id").args(["-u", name]),
            Duration::from_secs(10),
        )
        .success()
    };
    if !exists() {
        let out = run_with_timeout(
            Command::new("useradd").args(["-M", "-s", "/usr/sbin/nologin", name]),
            Duration::from_secs(30),
        );
        assert!(out.success() || exists(), "useradd {name}: {out}");
    }
}

/// Sets `user`'s password with `chpasswd`.
fn set_password(user: &str, password: &str) {
    run_with_timeout(
        Command::new("sh")
            .args(["-c", "printf '%s:%s\\n' \"$0\" \"$1\" | chpasswd"])
            .args([user, password]),
        Duration::from_secs(30),
    )
    .expect_success();
}

fn random_password() -> String {
    format!("pw-{:016x}", rand::random::<u64>())
}

/// The options of a client that accepts the gateway's generated certificate (6.5.5 also wants
/// the host name check off to take `verify-mode=none`).
const NO_VERIFY: &str = "--ssl-server-verify-mode=none";
const NO_HOSTNAME_CHECK: &str = "--ssl-check-hostname=no";

#[test]
fn pam_checks_real_accounts_and_maps_them_to_their_sessions() {
    let v = Version::V3;
    let dir = TestDir::new("users-pam");
    write_service();
    let owner = TestUser::get();
    let owner_pw = random_password();
    set_password(&owner.name, &owner_pw);
    ensure_account(OTHER);
    let other_pw = random_password();
    set_password(OTHER, &other_pw);
    let session = Session::start(v, false, dir.path());
    let n = session.number();
    let gw = Gateway::start(
        dir.path(),
        &[
            "--gid=shadow".to_string(),
            format!("--ssl-auth=pam,service={SERVICE}"),
            format!("--tcp-auth=pam,service={SERVICE}"),
            format!("--ssh-auth=pam,service={SERVICE}"),
        ],
    );
    let ssl_to = |user: &str, pw: &str, display: &str| {
        format!("ssl://{user}:{pw}@127.0.0.1:{}/{display}", gw.port)
    };
    let ssl = |user: &str, pw: &str| ssl_to(user, pw, "");
    let home = client_home_in(dir.path());

    // The right password, over TLS: the account's session, found under the uid of its passwd
    // entry, shows its pixels. (The test account may have other sessions: the URL names one.)
    let c = Attach::start_with(
        v,
        &ssl_to(&owner.name, &owner_pw, &n.to_string()),
        dir.path(),
        &[NO_VERIFY.to_string()],
        None,
    );
    reaches(c, &session, "pam.png", &gw, &owner.name, &format!(":{n}"));

    // A wrong password, an unknown account, and another account's password all fail.
    for (user, pw) in [
        (owner.name.as_str(), "wrong-password"),
        ("xgate-no-such-account", owner_pw.as_str()),
        (OTHER, owner_pw.as_str()),
    ] {
        v.run(&home, &["info", &ssl(user, pw), NO_VERIFY])
            .assert_auth_failed(&format!("{user}:{pw}"));
    }

    // The other account's own password is accepted (its one-shot request is answered, also
    // to xpra 6.5.5's client)...
    let out = v.run(&home, &["info", &ssl(OTHER, &other_pw), NO_VERIFY]);
    assert!(out.success(), "{OTHER}'s info: {out}");
    let out = Version::V6.run(
        &home,
        &["info", &ssl(OTHER, &other_pw), NO_VERIFY, NO_HOSTNAME_CHECK],
    );
    assert!(out.success(), "{OTHER}'s info with xpra 6.5.5: {out}");
    // ...but its uid owns no session: the session belongs to the first account only.
    let c = Attach::start_with(
        v,
        &ssl_to(OTHER, &other_pw, &n.to_string()),
        dir.path(),
        &[NO_VERIFY.to_string()],
        None,
    );
    gw.wait_logged(
        &[&format!("user={OTHER}"), "session not found"],
        Duration::from_secs(60),
    );
    drop(c);

    // Over plain tcp the gateway never asks for the password in clear (no allow-unencrypted).
    let out = v.run(
        &home,
        &[
            "info",
            &gw.url(Some((owner.name.as_str(), owner_pw.as_str())), ""),
        ],
    );
    assert!(!out.success(), "pam over plain tcp got in: {out}");
    assert!(
        out.all().contains("encrypted transport"),
        "pam over plain tcp: {out}"
    );

    // SSH password logins (OpenSSH's client through sshpass, on the shared port) go through
    // PAM too: the right password logs in (a probe of xpra's clients is answered), a wrong one
    // is refused. The host key is not what this checks.
    let options: Vec<String> = [
        "-F",
        "/dev/null",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "ConnectTimeout=20",
    ]
    .iter()
    .map(|o| o.to_string())
    .collect();
    let ssh = |pw: &str| {
        ssh_command(
            &options,
            gw.port,
            &owner.name,
            Some(pw),
            Some("echo $OSTYPE"),
        )
    };
    let out = ssh(&owner_pw);
    assert!(
        out.success() && out.stdout.contains("linux-gnu"),
        "the PAM user's SSH password login: {out}\n{}",
        gw.process.log_tail()
    );
    let out = ssh("wrong-password");
    assert!(!out.success(), "a wrong SSH password got in: {out}");
}
