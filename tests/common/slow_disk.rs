//! A real slow disk: a FUSE file system (`slow_disk.py`, python3-fusepy) over a temporary
//! folder, whose every write waits as long as the test says, changeable while it is mounted.
//! Mounting needs root and `/dev/fuse`; elsewhere the test says it was skipped, and why.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A mounted slow disk, unmounted when dropped.
pub struct SlowDisk {
    /// Holds the disk's data (`data/`) and its delay (`delay`).
    _dir: tempfile::TempDir,
    mount: tempfile::TempDir,
    delay_file: PathBuf,
    server: Child,
}

impl SlowDisk {
    /// Mounts a disk whose writes each take `delay`, or says why the test `name` is skipped
    /// and returns `None` (not root, no `/dev/fuse`, no python3-fusepy).
    pub fn mount(delay: Duration, name: &str) -> Option<Self> {
        if let Some(missing) = missing_prerequisite() {
            eprintln!("skipped {name}: it needs {missing}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mount = tempfile::tempdir().unwrap();
        let delay_file = dir.path().join("delay");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/slow_disk.py");
        let server = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(&data)
            .arg(mount.path())
            .arg(&delay_file)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut disk = Self {
            _dir: dir,
            mount,
            delay_file,
            server,
        };
        disk.set_delay(delay);
        disk.wait_until_mounted();
        Some(disk)
    }

    /// The mounted folder: files written under it go through the slow disk.
    pub fn path(&self) -> &Path {
        self.mount.path()
    }

    /// Makes every write from now on take `delay`.
    pub fn set_delay(&self, delay: Duration) {
        // Renamed into place, so the file system never reads half a number.
        let temp = self.delay_file.with_extension("new");
        std::fs::write(&temp, delay.as_millis().to_string()).unwrap();
        std::fs::rename(&temp, &self.delay_file).unwrap();
    }

    fn wait_until_mounted(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mount = self.mount.path().to_string_lossy().into_owned();
        loop {
            let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
            if mounts
                .lines()
                .any(|line| line.split(' ').nth(1) == Some(mount.as_str()))
            {
                return;
            }
            if let Some(status) = self.server.try_wait().unwrap() {
                panic!("the slow disk did not mount ({status}); see its error above");
            }
            assert!(
                Instant::now() < deadline,
                "the slow disk did not mount in 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SlowDisk {
    fn drop(&mut self) {
        self.set_delay(Duration::ZERO);
        let unmounted = Command::new("umount")
            .arg(self.mount.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Busy (a file still open): detach it now, the kernel finishes when it can.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.mount.path())
                .status();
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// What this machine lacks to mount the slow disk, if anything.
fn missing_prerequisite() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("root, to mount a FUSE file system");
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse");
    }
    let fusepy = Command::new("/usr/bin/python3")
        .args(["-c", "import fusepy"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!fusepy).then_some("python3-fusepy (apt-get install python3-fusepy)")
}
