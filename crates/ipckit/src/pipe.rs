//! Pipes and FIFOs: `pipe2`, `mkfifo`, and opening a FIFO without holding a thread hostage.
//!
//! [`pipe`] returns the two ends of a new pipe as [`OwnedFd`]s, both close-on-exec and
//! *blocking*: a program that inherits one (a C child doing plain `read()`/`write()`) sees the
//! file description it expects. [`mkfifo`] makes a named pipe. Opening a FIFO blocks until the
//! other side opens it too; [`open_fifo_now`] tries without waiting, [`open_fifo`] waits and can
//! be cancelled through a [`Canceller`] (on a FIFO, `open(2)` returns `EINTR` when the wake
//! signal arrives, so [`interruptible`] applies).
//!
//! ```
//! use std::io::{Read, Write};
//! let (r, w) = ipckit::pipe::pipe()?;
//! let (mut r, mut w) = (std::fs::File::from(r), std::fs::File::from(w));
//! w.write_all(b"hi").unwrap();
//! drop(w);
//! let mut s = String::new();
//! r.read_to_string(&mut s).unwrap();
//! assert_eq!(s, "hi");
//! # Ok::<(), ipckit::Error>(())
//! ```

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{self, FcntlArg, OFlag};
use nix::sys::stat::{self, Mode, SFlag};

use crate::error::{sys, Errno, Error, Result};
use crate::wait::{interruptible, Canceller};

/// Which end of a FIFO to open.
///
/// ```
/// assert_ne!(ipckit::pipe::FifoEnd::Read, ipckit::pipe::FifoEnd::Write);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FifoEnd {
    /// The reading end (`O_RDONLY`): the open waits for a writer.
    Read,
    /// The writing end (`O_WRONLY`): the open waits for a reader.
    Write,
}

impl FifoEnd {
    /// The access mode.
    fn access(self) -> OFlag {
        match self {
            FifoEnd::Read => OFlag::O_RDONLY,
            FifoEnd::Write => OFlag::O_WRONLY,
        }
    }

    /// Flags of the open: close-on-exec, and never a controlling terminal should the path
    /// turn out to be a terminal.
    fn flags(self) -> OFlag {
        self.access() | OFlag::O_CLOEXEC | OFlag::O_NOCTTY
    }
}

/// Creates a pipe (`pipe2(O_CLOEXEC)`): `(read end, write end)`, both blocking and
/// close-on-exec.
///
/// ```
/// let (r, w) = ipckit::pipe::pipe()?;
/// # drop((r, w));
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe.2.html).
#[doc(alias = "pipe2")]
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe2"))
}

/// Creates a pipe where there is no `pipe2` (macOS): `pipe`, then `fcntl(FD_CLOEXEC)` on both
/// ends, so the result is the same; a `fork` + `exec` on another thread between the two calls
/// could inherit the ends (the C library offers nothing better there).
///
/// ```
/// let (r, w) = ipckit::pipe::pipe()?;
/// # drop((r, w));
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`pipe(2)`](https://man7.org/linux/man-pages/man2/pipe.2.html).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe().map_err(sys("pipe"))?;
    set_cloexec(read.as_fd())?;
    set_cloexec(write.as_fd())?;
    Ok((read, write))
}

/// A pipe whose ends are both non-blocking and close-on-exec (`pipe2(O_CLOEXEC |
/// O_NONBLOCK)`), for a signal watch: its handler must never block on a full pipe.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn nonblocking_pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(sys("pipe2"))
}

/// A non-blocking pipe where there is no `pipe2` (macOS): [`pipe`], then `O_NONBLOCK` on
/// both ends (a `fork` + `exec` on another thread in between could inherit them; the C
/// library offers no atomic way there).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn nonblocking_pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (read, write) = pipe()?;
    for end in [read.as_fd(), write.as_fd()] {
        let flags = fcntl::fcntl(end, FcntlArg::F_GETFL).map_err(sys("fcntl"))?;
        let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
        fcntl::fcntl(end, FcntlArg::F_SETFL(flags)).map_err(sys("fcntl"))?;
    }
    Ok((read, write))
}

/// Sets close-on-exec on a descriptor made without it, where the platform has no atomic way
/// (`pipe2`, `accept4`, `SOCK_CLOEXEC`, `MSG_CMSG_CLOEXEC` are Linux's): the portable path of
/// this module, [`crate::socket`] and [`crate::signal`].
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn set_cloexec(fd: std::os::fd::BorrowedFd<'_>) -> Result<()> {
    fcntl::fcntl(fd, FcntlArg::F_SETFD(fcntl::FdFlag::FD_CLOEXEC))
        .map(drop)
        .map_err(sys("fcntl"))
}

/// Makes a FIFO (named pipe) at `path` with permission bits `mode` (less the process umask,
/// as for every file the process creates).
///
/// Errors: `EEXIST` (something is there already), `ENOENT` (no such folder), `EACCES`, ...
///
/// ```
/// let dir = std::env::temp_dir().join(format!("ipckit-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("fifo");
/// ipckit::pipe::mkfifo(&path, 0o600)?;
/// assert_eq!(ipckit::pipe::mkfifo(&path, 0o600).unwrap_err().code(), "EEXIST");
/// std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`mkfifo(3)`](https://man7.org/linux/man-pages/man3/mkfifo.3.html).
pub fn mkfifo(path: &Path, mode: u32) -> Result<()> {
    let mode = Mode::from_bits_truncate((mode & 0o7777) as libc::mode_t);
    nix::unistd::mkfifo(path, mode).map_err(sys("mkfifo"))
}

/// Refuses an opened file that is not a FIFO (a regular file, a device): `EINVAL`, so that
/// callers never stream from something that is not a pipe.
fn ensure_fifo(fd: OwnedFd) -> Result<OwnedFd> {
    let st = stat::fstat(fd.as_fd()).map_err(sys("fstat"))?;
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFIFO {
        Ok(fd)
    } else {
        Err(Error::new(Errno::EINVAL, "open"))
    }
}

/// Opens the `end` of the FIFO at `path` if that needs no waiting; `Ok(None)` when it would
/// wait.
///
/// Only the write end can be tried: `open(O_WRONLY | O_NONBLOCK)` fails with `ENXIO` when no
/// reader has the FIFO open, and otherwise opens it (the descriptor is then made blocking
/// again). A read end opened with `O_NONBLOCK` succeeds whether or not a writer exists, which
/// tells nothing, so for [`FifoEnd::Read`] this returns `Ok(None)` without a system call.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ipckit-doc-now-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("fifo");
/// use ipckit::pipe::{mkfifo, open_fifo_now, FifoEnd};
/// mkfifo(&path, 0o600)?;
/// assert!(open_fifo_now(&path, FifoEnd::Write)?.is_none()); // no reader yet
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html)
/// and [`fifo(7)`](https://man7.org/linux/man-pages/man7/fifo.7.html).
pub fn open_fifo_now(path: &Path, end: FifoEnd) -> Result<Option<OwnedFd>> {
    if end == FifoEnd::Read {
        return Ok(None);
    }
    let flags = end.flags() | OFlag::O_NONBLOCK;
    let fd = match fcntl::open(path, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENXIO) => return Ok(None),
        Err(e) => return Err(Error::new(e, "open")),
    };
    let fd = ensure_fifo(fd)?;
    fcntl::fcntl(fd.as_fd(), FcntlArg::F_SETFL(end.access())).map_err(sys("fcntl"))?;
    Ok(Some(fd))
}

/// Opens the `end` of the FIFO at `path` (`open(2)`, blocking, close-on-exec), waiting until
/// the other side opens it; `canceller` stops the wait ([`Error::cancelled`], nothing left
/// open). Run it on a thread of [`crate::wait::spawn`]. A path that is not a FIFO fails with
/// `EINVAL` (and is closed again).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ipckit-doc-open-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("fifo");
/// use ipckit::pipe::{mkfifo, open_fifo, FifoEnd};
/// use ipckit::wait::Canceller;
/// mkfifo(&path, 0o600)?;
/// let c = Canceller::new();
/// c.cancel();
/// assert!(open_fifo(&path, FifoEnd::Read, &c).unwrap_err().is_cancelled());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html)
/// and [`fifo(7)`](https://man7.org/linux/man-pages/man7/fifo.7.html).
pub fn open_fifo(path: &Path, end: FifoEnd, canceller: &Canceller) -> Result<OwnedFd> {
    let fd = interruptible(canceller, "open", || {
        fcntl::open(path, end.flags(), Mode::empty()).map_err(sys("open"))
    })?;
    ensure_fifo(fd)
}

/// Opens the `end` of the FIFO at `path`, blocking the calling thread until the other side
/// opens it (retried after `EINTR`). A path that is not a FIFO fails with `EINVAL`.
///
/// For more information, see [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html).
pub fn open_fifo_blocking(path: &Path, end: FifoEnd) -> Result<OwnedFd> {
    let fd = crate::interrupt::retry_eintr(|| {
        fcntl::open(path, end.flags(), Mode::empty()).map_err(sys("open"))
    })?;
    ensure_fifo(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait::spawn;
    use std::io::{Read, Write};
    use std::path::PathBuf;
    use std::sync::mpsc;
    use std::time::Duration;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> Self {
            let p = std::env::temp_dir().join(format!("ipckit-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn flags(fd: &OwnedFd) -> OFlag {
        OFlag::from_bits_truncate(fcntl::fcntl(fd.as_fd(), FcntlArg::F_GETFL).unwrap())
    }

    fn cloexec(fd: &OwnedFd) -> bool {
        let f = fcntl::fcntl(fd.as_fd(), FcntlArg::F_GETFD).unwrap();
        f & libc::FD_CLOEXEC != 0
    }

    #[test]
    fn pipe_ends_are_blocking_and_cloexec() {
        let (r, w) = pipe().unwrap();
        for fd in [&r, &w] {
            assert!(!flags(fd).contains(OFlag::O_NONBLOCK));
            assert!(cloexec(fd));
        }
        let (mut r, mut w) = (std::fs::File::from(r), std::fs::File::from(w));
        w.write_all(b"abc").unwrap();
        drop(w);
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"abc");
    }

    #[test]
    fn mkfifo_errors() {
        let dir = TempDir::new("mkfifo");
        let path = dir.0.join("f");
        mkfifo(&path, 0o600).unwrap();
        let e = mkfifo(&path, 0o600).unwrap_err();
        assert_eq!((e.code().as_str(), e.syscall()), ("EEXIST", "mkfifo"));
        let e = mkfifo(&dir.0.join("no/such"), 0o600).unwrap_err();
        assert_eq!(e.code(), "ENOENT");
    }

    #[test]
    fn write_end_fast_path_needs_a_reader() {
        let dir = TempDir::new("fast");
        let path = dir.0.join("f");
        mkfifo(&path, 0o600).unwrap();
        assert!(open_fifo_now(&path, FifoEnd::Write).unwrap().is_none());
        let reader =
            fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty()).unwrap();
        let w = open_fifo_now(&path, FifoEnd::Write)
            .unwrap()
            .expect("reader present");
        assert!(!flags(&w).contains(OFlag::O_NONBLOCK));
        assert!(cloexec(&w));
        drop(reader);
    }

    #[test]
    fn not_a_fifo_is_einval() {
        let dir = TempDir::new("notfifo");
        let path = dir.0.join("file");
        std::fs::write(&path, b"x").unwrap();
        let e = open_fifo_blocking(&path, FifoEnd::Read).unwrap_err();
        assert_eq!((e.code().as_str(), e.syscall()), ("EINVAL", "open"));
        let e = open_fifo_now(&path, FifoEnd::Write).unwrap_err();
        assert_eq!(e.code(), "EINVAL");
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }

    #[test]
    fn open_waits_for_the_peer_and_cancels() {
        let _serial = crate::wait::POOL_TESTS.lock();
        let dir = TempDir::new("wait");
        let path = dir.0.join("f");
        mkfifo(&path, 0o600).unwrap();

        // Cancel a reader waiting for a writer.
        let c = Canceller::new();
        let (tx, rx) = mpsc::channel();
        let (tid_tx, tid_rx) = mpsc::channel();
        let (p, c2) = (path.clone(), c.clone());
        spawn(move || {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            tid_tx.send(crate::testing::gettid()).unwrap();
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            tid_tx.send(0).unwrap();
            tx.send(open_fifo(&p, FifoEnd::Read, &c2)).unwrap()
        })
        .unwrap();
        let _tid = tid_rx.recv().unwrap();
        // Cancelled once it sleeps in open(2), which only a writer or the cancellation ends.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        crate::testing::wait_until_in_syscall(_tid, libc::SYS_openat);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        std::thread::sleep(Duration::from_millis(20));
        c.cancel();
        let r = rx
            .recv_timeout(crate::testing::PATIENCE)
            .expect("the cancelled waiter ended");
        assert!(r.unwrap_err().is_cancelled());
        // Nothing stayed open: a writer still finds no reader.
        assert!(open_fifo_now(&path, FifoEnd::Write).unwrap().is_none());

        // A reader waiting for a writer gets it.
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        spawn(move || {
            tx.send(open_fifo(&p, FifoEnd::Read, &Canceller::new()))
                .unwrap()
        })
        .unwrap();
        let w = open_fifo_blocking(&path, FifoEnd::Write).unwrap();
        let r = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        let (mut r, mut w) = (std::fs::File::from(r), std::fs::File::from(w));
        w.write_all(b"fifo").unwrap();
        drop(w);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "fifo");
    }
}
