//! Sending signals: [`kill`] and [`sigqueue`] (with an integer payload).

use crate::error::{check, Result};
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use crate::error::{Errno, Error};
use crate::sys::libc;

/// Sends signal `signo` (0 only checks that `pid` exists and may be signalled): to process
/// `pid` if positive, to every process of process group `-pid` if negative, to the caller's
/// process group if 0, to every process the caller may signal if -1.
///
/// ```
/// // SAFETY: getpid has no preconditions.
/// ipckit::signal::kill(unsafe { libc::getpid() }, 0)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`kill(2)`](https://man7.org/linux/man-pages/man2/kill.2.html).
pub fn kill(pid: i32, signo: i32) -> Result<()> {
    // SAFETY: kill only reads its integer arguments.
    check(unsafe { libc::kill(pid, signo) }, "kill").map(drop)
}

/// Sends signal `signo` with the integer payload `value` to process `pid`; a watcher of the
/// signal sees it as [`SignalInfo::value`](super::SignalInfo::value). Real-time signals queue (up to `RLIMIT_SIGPENDING`,
/// `EAGAIN` beyond); standard ones coalesce while pending.
///
/// ```
/// // SAFETY: getpid has no preconditions.
/// ipckit::signal::sigqueue(unsafe { libc::getpid() }, 0, 7)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see
/// [`sigqueue(3)`](https://man7.org/linux/man-pages/man3/sigqueue.3.html).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn sigqueue(pid: i32, signo: i32, value: i32) -> Result<()> {
    // The int member of `union sigval` is its first 4 bytes; a pointer-sized value holding
    // the sign-extended integer puts it there on little-endian platforms and leaves no
    // uninitialised bytes.
    let sigval = libc::sigval {
        sival_ptr: value as isize as *mut libc::c_void,
    };
    // SAFETY: sigqueue only reads its arguments; the pointer is never dereferenced.
    check(unsafe { libc::sigqueue(pid, signo, sigval) }, "sigqueue").map(drop)
}

/// Where the C library has no `sigqueue` (macOS): fails with `ENOSYS` (syscall `sigqueue`);
/// [`kill`] sends signals without a payload there.
///
/// ```
/// # #[cfg(target_os = "macos")]
/// assert_eq!(ipckit::signal::sigqueue(1, 0, 7).unwrap_err().code(), "ENOSYS");
/// ```
///
/// For more information, see
/// [`sigqueue(3)`](https://man7.org/linux/man-pages/man3/sigqueue.3.html).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn sigqueue(_pid: i32, _signo: i32, _value: i32) -> Result<()> {
    Err(Error::new(Errno::ENOSYS, "sigqueue"))
}
