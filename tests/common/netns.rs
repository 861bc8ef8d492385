//! Tests that must never reach past the machine (the DHT, local discovery) run in a network
//! namespace of their own that has only `lo` (`unshare -rn`: a user namespace makes it work
//! for anyone, root or not), with `lo` brought up and able to carry multicast.

use std::process::Command;

/// Set in the copy of a test that runs in the namespace.
const IN_NAMESPACE: &str = "RIVULET_TEST_IN_NETNS";

/// True when the caller runs inside the namespace and should go on. Otherwise the test
/// `name` is run again inside one (its result is this run's: a failure there fails here) and
/// false is returned; where no namespace can be had, a line says the test was skipped.
pub fn in_loopback_namespace(name: &str) -> bool {
    if std::env::var_os(IN_NAMESPACE).is_some() {
        loopback_up();
        return true;
    }
    let usable = Command::new("unshare")
        .args(["-rn", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !usable {
        eprintln!(
            "skipped {name}: it needs a network namespace of its own (unshare(1) with \
             unprivileged user namespaces), so that nothing leaves the machine"
        );
        return false;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new("unshare")
        .arg("-rn")
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(IN_NAMESPACE, "1")
        .output()
        .expect("unshare runs");
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    eprintln!("{name} ran in a network namespace with only lo:\n{said}");
    assert!(
        output.status.success() && said.contains("1 passed"),
        "{name} failed in its namespace"
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
