#!/usr/bin/python3
"""A slow disk for tests: a FUSE file system that passes everything through to a folder, and
makes each write wait as long as a control file says (milliseconds, re-read on every write), so
a test can slow the disk down and speed it up again while a download runs.

    slow_disk.py BACKING MOUNTPOINT DELAY_FILE

Runs in the foreground, one request at a time (a disk that takes one write after another),
until unmounted. Needs python3-fusepy (Debian's package) and the right to mount: root, or root
of a user and mount namespace.
"""

import errno
import os
import sys
import time

from fusepy import FUSE, FuseOSError, Operations


class SlowDisk(Operations):
    use_ns = True

    def __init__(self, backing, delay_file):
        self.backing = backing
        self.delay_file = delay_file

    def _path(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def _delay(self):
        try:
            with open(self.delay_file) as f:
                return int(f.read().strip() or "0") / 1000.0
        except (OSError, ValueError):
            return 0.0

    def __call__(self, op, path, *args):
        try:
            return super().__call__(op, path, *args)
        except OSError as e:
            raise FuseOSError(e.errno or errno.EIO)

    def access(self, path, amode):
        if not os.access(self._path(path), amode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        os.chmod(self._path(path), mode)

    def chown(self, path, uid, gid):
        os.chown(self._path(path), uid, gid)

    def create(self, path, mode, fi=None):
        # Read-write: the kernel may read through this handle too.
        return os.open(self._path(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)

    def flush(self, path, fh):
        return 0

    def fsync(self, path, datasync, fh):
        if datasync:
            os.fdatasync(fh)
        else:
            os.fsync(fh)
        return 0

    def getattr(self, path, fh=None):
        st = os.lstat(self._path(path))
        keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size", "st_uid")
        attrs = {key: getattr(st, key) for key in keys}
        for key in ("st_atime", "st_ctime", "st_mtime"):
            attrs[key] = getattr(st, key + "_ns")
        return attrs

    def mkdir(self, path, mode):
        os.mkdir(self._path(path), mode)

    def open(self, path, flags):
        return os.open(self._path(path), flags)

    def read(self, path, size, offset, fh):
        return os.pread(fh, size, offset)

    def readdir(self, path, fh):
        return [".", ".."] + os.listdir(self._path(path))

    def release(self, path, fh):
        os.close(fh)
        return 0

    def rename(self, old, new):
        os.rename(self._path(old), self._path(new))

    def rmdir(self, path):
        os.rmdir(self._path(path))

    def statfs(self, path):
        st = os.statvfs(self._path(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")
        return {key: getattr(st, key) for key in keys}

    def truncate(self, path, length, fh=None):
        if fh is None:
            os.truncate(self._path(path), length)
        else:
            os.ftruncate(fh, length)

    def unlink(self, path):
        os.unlink(self._path(path))

    def utimens(self, path, times=None):
        os.utime(self._path(path), ns=times)

    def write(self, path, data, offset, fh):
        time.sleep(self._delay())
        return os.pwrite(fh, data, offset)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    backing, mountpoint, delay_file = sys.argv[1:]
    FUSE(SlowDisk(backing, delay_file), mountpoint, foreground=True, nothreads=True, big_writes=True, max_write=131072)


if __name__ == "__main__":
    main()
