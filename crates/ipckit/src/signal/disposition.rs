//! What a signal does to this process: [`disposition`] reads it, [`ignore`] and
//! [`set_default`] change it (refused while a watch follows the signal).

use super::action::{current_action, is_allowed, set_action};
use super::registry::registry;
use crate::error::{Errno, Error, Result};
use crate::sys::libc;

/// What a signal does to this process now.
///
/// ```
/// use ipckit::signal::{disposition, Disposition};
/// assert_ne!(disposition(libc::SIGKILL)?, Disposition::Ignore);
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The default action (`SIG_DFL`).
    Default,
    /// Ignored (`SIG_IGN`).
    Ignore,
    /// Caught by a handler (Node's, a watch's, or anyone's).
    Handler,
}

impl Disposition {
    /// `default`, `ignore` or `handler`.
    ///
    /// ```
    /// assert_eq!(ipckit::signal::Disposition::Ignore.as_str(), "ignore");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Ignore => "ignore",
            Self::Handler => "handler",
        }
    }
}

/// The current disposition of `signo` (`sigaction` query). `EINVAL` for a bad number.
///
/// For more information, see
/// [`sigaction(2)`](https://man7.org/linux/man-pages/man2/sigaction.2.html).
pub fn disposition(signo: i32) -> Result<Disposition> {
    Ok(match current_action(signo)?.sa_sigaction {
        libc::SIG_DFL => Disposition::Default,
        libc::SIG_IGN => Disposition::Ignore,
        _ => Disposition::Handler,
    })
}

fn set_simple(signo: i32, handler: libc::sighandler_t) -> Result<()> {
    if !is_allowed(signo) {
        return Err(Error::new(Errno::EINVAL, "sigaction"));
    }
    let registry = registry();
    if registry.watches[signo as usize] > 0 {
        return Err(Error::new(Errno::EBUSY, "sigaction"));
    }
    // SAFETY: an all-zero sigaction is "no flags, empty mask"; the handler is set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    set_action(signo, &action)
}

/// Ignores `signo` (`SIG_IGN`). `EBUSY` while a [`Watch`](super::Watch) follows it, `EINVAL` for a signal
/// [`is_allowed`] refuses.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::signal::{ignore, set_default, disposition, Disposition, rtmin};
/// ignore(rtmin() + 5)?;
/// assert_eq!(disposition(rtmin() + 5)?, Disposition::Ignore);
/// set_default(rtmin() + 5)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn ignore(signo: i32) -> Result<()> {
    set_simple(signo, libc::SIG_IGN)
}

/// Gives `signo` its default action back (`SIG_DFL`). Errors as [`ignore`].
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// ipckit::signal::set_default(ipckit::signal::rtmin() + 6)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn set_default(signo: i32) -> Result<()> {
    set_simple(signo, libc::SIG_DFL)
}
