//! `sigaction` itself: reading and setting a signal's action, and which signals this crate
//! may touch at all ([`is_allowed`]).

use super::table::MAX_SIGNAL;
use crate::error::{check, Result};
use crate::sys::{libc, mask_signal, wake_signal};

pub(super) fn current_action(signo: i32) -> Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is a valid value for the kernel to overwrite.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `old` is writable.
    let rc = unsafe { libc::sigaction(signo, std::ptr::null(), &mut old) };
    check(rc, "sigaction")?;
    Ok(old)
}

pub(super) fn set_action(signo: i32, action: &libc::sigaction) -> Result<()> {
    // SAFETY: `action` is a complete sigaction (copied from the kernel or fully built here);
    // the old action is not requested.
    let rc = unsafe { libc::sigaction(signo, action, std::ptr::null_mut()) };
    check(rc, "sigaction").map(drop)
}

/// Whether a watch may follow `signo`, and [`ignore`](super::ignore) / [`set_default`](super::set_default) change it: not
/// `SIGKILL`/`SIGSTOP` (the kernel forbids it), not the fault signals `SIGSEGV`, `SIGBUS`,
/// `SIGFPE`, `SIGILL` (a host runtime needs them), not [`wake_signal`] (this crate's own),
/// and only numbers 1..=64.
///
/// ```
/// use ipckit::signal::is_allowed;
/// assert!(is_allowed(libc::SIGUSR1));
/// assert!(!is_allowed(libc::SIGKILL) && !is_allowed(ipckit::wait::wake_signal()));
/// ```
pub fn is_allowed(signo: i32) -> bool {
    (1..=MAX_SIGNAL as i32).contains(&signo)
        && ![
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
        ]
        .contains(&signo)
        && signo != wake_signal()
        && Some(signo) != mask_signal()
}
