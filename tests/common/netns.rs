//! Running a test again inside namespaces of its own (`unshare`): a user and mount namespace
//! for tests that mount, a network namespace with only `lo` for tests that must never reach
//! past the machine (the DHT, local discovery). A user namespace makes both work for anyone,
//! root or not.

use std::process::Command;

/// Set in the copy of a test that runs in its namespace.
const IN_NAMESPACE: &str = "RIVULET_TEST_IN_NAMESPACE";

/// Whether this is the copy of a test running inside its namespace.
pub fn inside() -> bool {
    std::env::var_os(IN_NAMESPACE).is_some()
}

/// Runs the test `name` again under `unshare FLAGS` (its result is this run's: a failure
/// there fails here). Where such a namespace cannot be had, says the test was skipped and
/// why (`needs`).
pub fn run_again_under_unshare(flags: &str, name: &str, needs: &str) {
    let usable = !inside()
        && Command::new("unshare")
            .args([flags, "true"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !usable {
        eprintln!("skipped {name}: it needs {needs}");
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new("unshare")
        .arg(flags)
        .arg(exe)
        .args([
            "--exact",
            name,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(IN_NAMESPACE, "1")
        .output()
        .expect("unshare runs");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    eprintln!("{name} ran under `unshare {flags}`:\n{said}");
    assert!(
        output.status.success() && said.contains("1 passed"),
        "{name} failed in its own namespace"
    );
}

/// True when the caller runs inside a network namespace with only `lo` (brought up, with
/// MULTICAST) and should go on; otherwise the test `name` is run again inside one and false
/// is returned.
pub fn in_loopback_namespace(name: &str) -> bool {
    if inside() {
        loopback_up();
        return true;
    }
    run_again_under_unshare(
        "-rn",
        name,
        "a network namespace of its own (unshare(1) with unprivileged user namespaces), so \
         that nothing leaves the machine",
    );
    false
}

/// Brings `lo` up with the MULTICAST flag (a new namespace's `lo` is down).
fn loopback_up() {
    // SAFETY: a plain socket and two ioctls on a zeroed, NUL-terminated `ifreq`.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        assert!(fd >= 0, "a socket for the ioctl");
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        assert_eq!(
            libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req),
            0,
            "SIOCGIFFLAGS"
        );
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_MULTICAST) as libc::c_short;
        assert_eq!(libc::ioctl(fd, libc::SIOCSIFFLAGS, &req), 0, "SIOCSIFFLAGS");
        libc::close(fd);
    }
}
