//! eventfd: a 64-bit counter behind a file descriptor (`eventfd`), the cheapest wake-up channel
//! between threads and processes that the kernel offers.
//!
//! [`write()`] adds to the counter; [`read`] takes it: the whole count, resetting it to 0, or,
//! in semaphore mode ([`EventFdOptions::semaphore`], `EFD_SEMAPHORE`), 1 at a time. The
//! descriptor is readable while the count is above 0, so it can be waited on with `poll`,
//! `epoll` or this crate's [`poller`](crate::poller), and handed to another process as any fd.
//!
//! Every eventfd made here is close-on-exec and non-blocking (`EFD_CLOEXEC | EFD_NONBLOCK`):
//! [`read`] and [`write()`] never block, and answer `None` / `false` where a blocking call would
//! wait; wait for readiness separately. (`O_NONBLOCK` belongs to the open file, so a process
//! the descriptor is given to sees it too.)
//!
//! ```
//! # #[cfg(any(target_os = "linux", target_os = "android"))] {
//! use ipckit::eventfd::{self, EventFdOptions};
//! use std::os::fd::AsFd;
//!
//! let fd = eventfd::eventfd(0, EventFdOptions::default())?;
//! assert_eq!(eventfd::read(fd.as_fd())?, None); // nothing yet
//! eventfd::write(fd.as_fd(), 3)?;
//! eventfd::write(fd.as_fd(), 4)?;
//! assert_eq!(eventfd::read(fd.as_fd())?, Some(7));
//! # }
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! On macOS, which has no eventfd, every function fails with `ENOSYS` (syscall `eventfd`).
//!
//! For more information, see [`eventfd(2)`](https://man7.org/linux/man-pages/man2/eventfd.2.html).

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::fd::{BorrowedFd, OwnedFd};

#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::error::check;
use crate::error::{Errno, Error, Result};

/// The largest count an eventfd holds (`0xffff_ffff_ffff_fffe`): a write that would pass it
/// waits (or, non-blocking, fails), and a write of `u64::MAX` is refused (`EINVAL`).
///
/// ```
/// assert_eq!(ipckit::eventfd::MAX_COUNT, u64::MAX - 1);
/// ```
pub const MAX_COUNT: u64 = u64::MAX - 1;

/// How [`eventfd`] makes the counter.
///
/// ```
/// let semaphore = ipckit::eventfd::EventFdOptions { semaphore: true };
/// assert!(!ipckit::eventfd::EventFdOptions::default().semaphore);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventFdOptions {
    /// Semaphore mode (`EFD_SEMAPHORE`): each [`read`] takes 1 from the count and returns 1,
    /// instead of taking the whole count.
    pub semaphore: bool,
}

/// Creates an eventfd holding `initial` (`eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK [|
/// EFD_SEMAPHORE])`). Errors: `EMFILE`, `ENFILE`, `ENOMEM`; `ENOSYS` on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let fd = ipckit::eventfd::eventfd(2, ipckit::eventfd::EventFdOptions { semaphore: true })?;
/// assert_eq!(ipckit::eventfd::read(fd.as_fd())?, Some(1));
/// assert_eq!(ipckit::eventfd::read(fd.as_fd())?, Some(1));
/// assert_eq!(ipckit::eventfd::read(fd.as_fd())?, None);
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`eventfd(2)`](https://man7.org/linux/man-pages/man2/eventfd.2.html).
#[doc(alias = "eventfd2")]
pub fn eventfd(initial: u32, options: EventFdOptions) -> Result<OwnedFd> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut flags = libc::EFD_CLOEXEC | libc::EFD_NONBLOCK;
        if options.semaphore {
            flags |= libc::EFD_SEMAPHORE;
        }
        // SAFETY: eventfd takes no pointers.
        let fd = check(unsafe { libc::eventfd(initial, flags) }, "eventfd")?;
        // SAFETY: eventfd just returned this descriptor; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (initial, options);
        Err(Error::new(Errno::ENOSYS, "eventfd"))
    }
}

/// Takes the count (or 1 of it, in semaphore mode) without waiting: `Some(count)`, or `None`
/// while the count is 0. Errors: `EBADF`, `EINVAL` (not an eventfd: `read` of fewer than 8
/// bytes); `ENOSYS` on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let fd = ipckit::eventfd::eventfd(5, Default::default())?;
/// assert_eq!(ipckit::eventfd::read(fd.as_fd())?, Some(5));
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`eventfd(2)`](https://man7.org/linux/man-pages/man2/eventfd.2.html).
pub fn read(fd: BorrowedFd<'_>) -> Result<Option<u64>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut buf = [0u8; 8];
        let n = crate::interrupt::retry_eintr(|| {
            check(
                // SAFETY: `buf` is writable for the 8 bytes passed.
                unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) },
                "read",
            )
        });
        match n {
            Ok(8) => Ok(Some(u64::from_ne_bytes(buf))),
            Ok(_) => Err(Error::new(Errno::EINVAL, "read")),
            Err(e) if e.errno() == Errno::EAGAIN => Ok(None),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        Err(Error::new(Errno::ENOSYS, "eventfd"))
    }
}

/// Adds `value` to the count without waiting: `true` once added (waking readers), `false`
/// when the count would pass [`MAX_COUNT`] (nothing was added). Errors: `EINVAL` for
/// `u64::MAX`, `EBADF`; `ENOSYS` on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::eventfd::{self, MAX_COUNT};
/// use std::os::fd::AsFd;
/// let fd = eventfd::eventfd(0, Default::default())?;
/// assert!(eventfd::write(fd.as_fd(), MAX_COUNT)?);
/// assert!(!eventfd::write(fd.as_fd(), 1)?); // full
/// assert_eq!(eventfd::write(fd.as_fd(), u64::MAX).unwrap_err().code(), "EINVAL");
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`eventfd(2)`](https://man7.org/linux/man-pages/man2/eventfd.2.html).
pub fn write(fd: BorrowedFd<'_>, value: u64) -> Result<bool> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let buf = value.to_ne_bytes();
        let n = crate::interrupt::retry_eintr(|| {
            check(
                // SAFETY: `buf` holds the 8 bytes passed.
                unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), 8) },
                "write",
            )
        });
        match n {
            Ok(8) => Ok(true),
            Ok(_) => Err(Error::new(Errno::EINVAL, "write")),
            Err(e) if e.errno() == Errno::EAGAIN => Ok(false),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (fd, value);
        Err(Error::new(Errno::ENOSYS, "eventfd"))
    }
}

/// What [`adopt`] found out about an eventfd received from elsewhere.
///
/// ```
/// let unknown = ipckit::eventfd::Adopted { semaphore: None }; // a kernel before 6.6
/// assert_eq!(unknown.semaphore, None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Adopted {
    /// Whether it is in semaphore mode, where the kernel says (`eventfd-semaphore` in
    /// `/proc/self/fdinfo`, Linux 6.6 and later); `None` where it does not.
    pub semaphore: Option<bool>,
}

/// Checks that `fd` is an eventfd (its `/proc/self/fd` link is `anon_inode:[eventfd]`) and
/// makes it non-blocking (`O_NONBLOCK`, which the process that sent it sees as well), so that
/// [`read`] and [`write()`] never wait. Errors: `EINVAL` (syscall `eventfd`) for any other
/// descriptor, `EBADF`; `ENOSYS` on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let fd = ipckit::eventfd::eventfd(0, ipckit::eventfd::EventFdOptions { semaphore: true })?;
/// let found = ipckit::eventfd::adopt(fd.as_fd())?;
/// assert_ne!(found.semaphore, Some(false));
/// let (r, _w) = ipckit::pipe::pipe()?;
/// assert_eq!(ipckit::eventfd::adopt(r.as_fd()).unwrap_err().code(), "EINVAL");
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn adopt(fd: BorrowedFd<'_>) -> Result<Adopted> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        check(
            // SAFETY: F_GETFD takes no argument; it only tells whether `fd` is open.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) },
            "fcntl",
        )?;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|_| Error::new(Errno::EBADF, "eventfd"))?;
        if link.as_os_str() != "anon_inode:[eventfd]" {
            return Err(Error::new(Errno::EINVAL, "eventfd"));
        }
        crate::socket::set_nonblocking(fd, true)?;
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
            .unwrap_or_default();
        let semaphore = info
            .lines()
            .find_map(|l| l.strip_prefix("eventfd-semaphore:"))
            .map(|v| v.trim() == "1");
        Ok(Adopted { semaphore })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        Err(Error::new(Errno::ENOSYS, "eventfd"))
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use crate::poller::{watch, Interest};
    use std::os::fd::AsFd;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn counter_and_semaphore_modes() {
        let counter = eventfd(0, EventFdOptions::default()).unwrap();
        let fd = counter.as_fd();
        for v in [1, 2, 1 << 40] {
            assert!(write(fd.as_fd(), v).unwrap());
        }
        assert_eq!(read(fd.as_fd()).unwrap(), Some(3 + (1 << 40)));
        assert_eq!(read(fd.as_fd()).unwrap(), None);
        let sem = eventfd(0, EventFdOptions { semaphore: true }).unwrap();
        write(sem.as_fd(), 3).unwrap();
        let taken: Vec<_> = (0..4).map(|_| read(sem.as_fd()).unwrap()).collect();
        assert_eq!(taken, [Some(1), Some(1), Some(1), None]);
    }

    #[test]
    fn a_full_counter_refuses_without_adding() {
        let fd = eventfd(0, EventFdOptions::default()).unwrap();
        assert!(write(fd.as_fd(), MAX_COUNT - 1).unwrap());
        assert!(write(fd.as_fd(), 1).unwrap());
        assert!(!write(fd.as_fd(), 1).unwrap());
        assert_eq!(read(fd.as_fd()).unwrap(), Some(MAX_COUNT));
    }

    #[test]
    fn the_poller_wakes_on_a_write_from_another_thread() {
        let fd = eventfd(0, EventFdOptions::default()).unwrap();
        let (tx, rx) = mpsc::channel();
        watch(fd.as_fd(), Interest::Read, move |r| tx.send(r).unwrap()).unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        std::thread::scope(|s| {
            s.spawn(|| write(fd.as_fd(), 9).unwrap());
        });
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap().is_ok());
        assert_eq!(read(fd.as_fd()).unwrap(), Some(9));
    }

    #[test]
    fn adopt_checks_the_kind_and_sets_nonblocking() {
        // SAFETY: eventfd takes no pointers; a blocking one, as a C program would make it.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(raw >= 0);
        // SAFETY: just created, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let found = adopt(fd.as_fd()).unwrap();
        assert_ne!(found.semaphore, Some(true));
        assert_eq!(read(fd.as_fd()).unwrap(), None, "non-blocking now");
        let (a, _b) = crate::socket::socketpair(crate::socket::Kind::Stream).unwrap();
        assert_eq!(adopt(a.as_fd()).unwrap_err().errno(), Errno::EINVAL);
    }
}
