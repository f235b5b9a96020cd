//! pidfd: a file descriptor that refers to one process (`pidfd_open`), to signal it
//! (`pidfd_send_signal`) and learn that it exited (the descriptor turns readable) without the
//! pid-reuse race.
//!
//! A pid is only a number: once its process has exited and been reaped, the kernel may give it
//! to a new process, and a `kill(pid)` meant for the old one hits the new one. A pidfd keeps
//! referring to the process it was opened for: signalling it after that process is gone fails
//! with `ESRCH`, whoever has the pid now. It works for any process this one may signal or see,
//! not only children; for a child, [`exit_status`] also tells how it ended.
//!
//! ```
//! # #[cfg(any(target_os = "linux", target_os = "android"))] {
//! use std::os::fd::AsFd;
//! use std::time::Duration;
//!
//! let mut child = std::process::Command::new("sleep").arg("10").spawn().unwrap();
//! let fd = ipckit::pidfd::open(child.id() as i32)?;
//! assert!(!ipckit::pidfd::has_exited(fd.as_fd())?);
//! ipckit::pidfd::send_signal(fd.as_fd(), libc::SIGTERM)?;
//! assert!(ipckit::pidfd::wait_exit(fd.as_fd(), Some(Duration::from_secs(10)))?);
//! let status = ipckit::pidfd::exit_status(fd.as_fd())?;
//! assert_eq!(status, Some(ipckit::pidfd::ExitStatus::Signaled { signal: libc::SIGTERM, core_dumped: false }));
//! child.wait().unwrap(); // reaped: the pid may now be reused
//! assert_eq!(ipckit::pidfd::send_signal(fd.as_fd(), libc::SIGTERM).unwrap_err().code(), "ESRCH");
//! # }
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! On macOS, which has no pidfd, every function fails with `ENOSYS` (syscall `pidfd_open`,
//! `pidfd_send_signal`, ...).
//!
//! For more information, see [`pidfd_open(2)`](https://man7.org/linux/man-pages/man2/pidfd_open.2.html).

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::mem::MaybeUninit;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::error::check;
use crate::error::{Errno, Error, Result};

/// How a process ended, from `waitid` (only a parent learns it).
///
/// ```
/// use ipckit::pidfd::ExitStatus;
/// assert_ne!(ExitStatus::Exited(0), ExitStatus::Signaled { signal: 9, core_dumped: false });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code (`CLD_EXITED`).
    Exited(i32),
    /// A signal ended it (`CLD_KILLED`, or `CLD_DUMPED` with `core_dumped`).
    Signaled {
        /// The signal number.
        signal: i32,
        /// Whether it left a core dump.
        core_dumped: bool,
    },
}

/// Opens a pidfd for process `pid` (`pidfd_open(pid, 0)`; close-on-exec). Errors: `ESRCH` (no
/// such process), `EINVAL` (0 and below), `ENOENT` (Linux 6.9 and later) or `EINVAL`
/// (before) for a thread that does not lead its process (see [`open_thread`]), `EMFILE`,
/// `ENFILE`, `ENOMEM`; `ENOSYS` on kernels before 5.3 and on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// let me = ipckit::pidfd::open(std::process::id() as i32)?;
/// assert_eq!(ipckit::pidfd::open(0).unwrap_err().code(), "EINVAL");
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`pidfd_open(2)`](https://man7.org/linux/man-pages/man2/pidfd_open.2.html).
#[doc(alias = "pidfd_open")]
pub fn open(pid: i32) -> Result<OwnedFd> {
    pidfd_open(pid, 0)
}

/// Opens a pidfd for thread `tid` (`pidfd_open(tid, PIDFD_THREAD)`, Linux 6.9 and later;
/// close-on-exec): readable once that one thread has ended, even while its process lives on,
/// where [`open`] refuses a thread that does not lead its process. Errors: `ESRCH` (no such
/// thread), `EINVAL` on kernels before 6.9 (they do not know the flag), `EMFILE`, `ENFILE`,
/// `ENOMEM`; `ENOSYS` on kernels before 5.3 and on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// let tid = ipckit::channel::lock_id() as i32; // this thread's id (gettid)
/// match ipckit::pidfd::open_thread(tid) {
///     Ok(_fd) => {}                           // readable once this thread ends
///     Err(e) => assert_eq!(e.code(), "EINVAL"), // a kernel before 6.9
/// }
/// # }
/// ```
///
/// For more information, see [`pidfd_open(2)`](https://man7.org/linux/man-pages/man2/pidfd_open.2.html).
#[doc(alias = "PIDFD_THREAD")]
pub fn open_thread(tid: i32) -> Result<OwnedFd> {
    // PIDFD_THREAD is O_EXCL (include/uapi/linux/pidfd.h).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return pidfd_open(tid, libc::O_EXCL);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    return pidfd_open(tid, 0);
}

/// `pidfd_open(pid, flags)` ([`open`], [`open_thread`]): `EINVAL` for 0 and below.
fn pidfd_open(pid: i32, flags: libc::c_int) -> Result<OwnedFd> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        if pid <= 0 {
            return Err(Error::new(Errno::EINVAL, "pidfd_open"));
        }
        // SAFETY: pidfd_open takes a pid (or a thread id) and flags; no pointers.
        let fd = check(
            unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) },
            "pidfd_open",
        )?;
        let fd = RawFd::try_from(fd).map_err(|_| Error::new(Errno::EBADF, "pidfd_open"))?;
        // SAFETY: the kernel just made this descriptor; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (pid, flags);
        Err(Error::new(Errno::ENOSYS, "pidfd_open"))
    }
}

/// Sends `signal` to the process of `fd` (`pidfd_send_signal`; 0 checks that it still runs and
/// may be signalled). Errors: `ESRCH` once the process has exited (even if its pid was reused
/// since), `EPERM`, `EINVAL` (a bad signal number, or `fd` is not a pidfd); `ENOSYS` on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let me = ipckit::pidfd::open(std::process::id() as i32)?;
/// ipckit::pidfd::send_signal(me.as_fd(), 0)?; // alive
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`pidfd_send_signal(2)`](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html).
#[doc(alias = "pidfd_send_signal")]
pub fn send_signal(fd: BorrowedFd<'_>, signal: i32) -> Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: a null siginfo makes the kernel fill it in as kill(2) does; flags are 0.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd,
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        check(rc, "pidfd_send_signal").map(drop)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (fd, signal);
        Err(Error::new(Errno::ENOSYS, "pidfd_send_signal"))
    }
}

/// Whether the process of `fd` has exited (its pidfd is readable), without waiting.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let me = ipckit::pidfd::open(std::process::id() as i32)?;
/// assert!(!ipckit::pidfd::has_exited(me.as_fd())?);
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn has_exited(fd: BorrowedFd<'_>) -> Result<bool> {
    wait_exit(fd, Some(Duration::ZERO))
}

/// Blocks until the process of `fd` exits, or `timeout` passes (`None` waits for ever); returns
/// whether it exited. Signals do not end the wait early (`EINTR` re-arms it with the time
/// left). Errors: `EBADF`; `ENOSYS` on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// let me = ipckit::pidfd::open(std::process::id() as i32)?;
/// assert!(!ipckit::pidfd::wait_exit(me.as_fd(), Some(Duration::from_millis(5)))?);
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html).
pub fn wait_exit(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<bool> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let deadline = timeout.map(|t| std::time::Instant::now().checked_add(t));
        // Through retry_eintr: a signal re-arms the wait with the time left, and a thread
        // whose host wants it stopped (a terminated Worker) ends it (see `interrupt`).
        crate::interrupt::retry_eintr(|| loop {
            let ms: libc::c_int = match deadline {
                None | Some(None) => -1,
                Some(Some(at)) => {
                    let left = at.saturating_duration_since(std::time::Instant::now());
                    // Rounded up, so that a wait never ends before its deadline.
                    let ms = left.as_nanos().div_ceil(1_000_000);
                    libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
                }
            };
            let mut pfd = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `pfd` is one valid pollfd, as the count says.
            match check(unsafe { libc::poll(&mut pfd, 1, ms) }, "poll") {
                Ok(0) if ms == 0 => return Ok(false),
                // Woken early by a timer's rounding: go round with what is left.
                Ok(0) => continue,
                Ok(_) if pfd.revents & libc::POLLNVAL != 0 => {
                    return Err(Error::new(Errno::EBADF, "poll"))
                }
                Ok(_) => return Ok(true),
                Err(e) => return Err(e),
            }
        })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (fd, timeout);
        Err(Error::new(Errno::ENOSYS, "pidfd_open"))
    }
}

/// How the process of `fd` ended, if this process is its parent and it has exited and not yet
/// been reaped (`waitid(P_PIDFD, fd, WEXITED | WNOHANG | WNOWAIT)`): the status is read
/// without reaping, so whoever reaps the child (Node.js does its own children) still can.
/// `None` while it runs, when it is not a child of this process, or once it was reaped.
/// Errors: `EBADF`, `EINVAL`; `ENOSYS` on kernels before 5.4 and on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let me = ipckit::pidfd::open(std::process::id() as i32)?;
/// assert_eq!(ipckit::pidfd::exit_status(me.as_fd())?, None); // not a child
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html).
#[doc(alias = "waitid")]
pub fn exit_status(fd: BorrowedFd<'_>) -> Result<Option<ExitStatus>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let id =
            libc::id_t::try_from(fd.as_raw_fd()).map_err(|_| Error::new(Errno::EBADF, "waitid"))?;
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        let rc = crate::interrupt::retry_eintr(|| {
            check(
                // SAFETY: `info` points to a siginfo_t that waitid fills in.
                unsafe {
                    libc::waitid(
                        libc::P_PIDFD,
                        id,
                        info.as_mut_ptr(),
                        libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                    )
                },
                "waitid",
            )
        });
        match rc {
            Ok(_) => {}
            Err(e) if e.errno() == Errno::ECHILD => return Ok(None),
            Err(e) => return Err(e),
        }
        // SAFETY: zeroed and then filled by waitid (with WNOHANG and no child ready, it stays
        // zeroed: si_pid 0).
        let info = unsafe { info.assume_init() };
        // SAFETY: after waitid, the siginfo holds a SIGCHLD record, whose pid and status
        // fields these accessors read.
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        Ok(match info.si_code {
            libc::CLD_EXITED => Some(ExitStatus::Exited(status)),
            libc::CLD_KILLED => Some(ExitStatus::Signaled {
                signal: status,
                core_dumped: false,
            }),
            libc::CLD_DUMPED => Some(ExitStatus::Signaled {
                signal: status,
                core_dumped: true,
            }),
            _ => None,
        })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        Err(Error::new(Errno::ENOSYS, "waitid"))
    }
}

/// Checks that `fd` is a pidfd (received from elsewhere) and returns the pid of its process as
/// this process's pid namespace sees it (`Pid:` in `/proc/self/fdinfo`): `None` when the
/// process has exited and was reaped, or lives where this namespace cannot see it. Errors:
/// `EINVAL` (syscall `pidfd_open`) for any other descriptor, `EBADF`; `ENOSYS` on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let me = ipckit::pidfd::open(std::process::id() as i32)?;
/// assert_eq!(ipckit::pidfd::adopt(me.as_fd())?, Some(std::process::id() as i32));
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn adopt(fd: BorrowedFd<'_>) -> Result<Option<i32>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        check(
            // SAFETY: F_GETFD takes no argument; it only tells whether `fd` is open.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) },
            "fcntl",
        )?;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|_| Error::new(Errno::EBADF, "pidfd_open"))?;
        let link = link.to_string_lossy();
        if link != "anon_inode:[pidfd]" && !link.starts_with("pidfd:") {
            return Err(Error::new(Errno::EINVAL, "pidfd_open"));
        }
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
            .map_err(|_| Error::new(Errno::EBADF, "pidfd_open"))?;
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("Pid:"))
            .and_then(|v| v.trim().parse::<i32>().ok());
        Ok(pid.filter(|&p| p > 0))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        Err(Error::new(Errno::ENOSYS, "pidfd_open"))
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::process::Command;

    #[test]
    fn exit_status_of_a_child_without_reaping_it() {
        let mut child = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
        let fd = open(child.id() as i32).unwrap();
        assert!(wait_exit(fd.as_fd(), Some(Duration::from_secs(20))).unwrap());
        assert!(has_exited(fd.as_fd()).unwrap());
        assert_eq!(
            exit_status(fd.as_fd()).unwrap(),
            Some(ExitStatus::Exited(7))
        );
        // Not reaped: the parent's own wait still gets the status.
        assert_eq!(child.wait().unwrap().code(), Some(7));
        assert_eq!(exit_status(fd.as_fd()).unwrap(), None, "reaped now");
        assert_eq!(
            send_signal(fd.as_fd(), libc::SIGKILL).unwrap_err().errno(),
            Errno::ESRCH
        );
        assert_eq!(adopt(fd.as_fd()).unwrap(), None, "gone");
    }

    #[test]
    fn timeouts_and_bad_descriptors() {
        let me = open(std::process::id() as i32).unwrap();
        let started = std::time::Instant::now();
        assert!(!wait_exit(me.as_fd(), Some(Duration::from_millis(30))).unwrap());
        assert!(started.elapsed() >= Duration::from_millis(30));
        let (r, _w) = crate::pipe::pipe().unwrap();
        assert_eq!(adopt(r.as_fd()).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(send_signal(r.as_fd(), 0).unwrap_err().errno(), Errno::EBADF);
        assert_eq!(open(i32::MAX).unwrap_err().errno(), Errno::ESRCH);
        assert_eq!(open(-5).unwrap_err().errno(), Errno::EINVAL);
    }
}
