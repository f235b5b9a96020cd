//! The one funnel from a failed system call to a typed error.
//!
//! Every raw call in this crate goes through [`check`] (or builds an [`Error`] with
//! [`Error::last`]), so no call site reads `errno` itself. The error keeps the errno and the
//! name of the system call; its [`Display`](std::fmt::Display) is the Node.js system-error
//! message, `EACCES: permission denied, msgget`, which the binding passes on unchanged.

use std::fmt;

pub use nix::errno::Errno;

/// A failed system call: which errno, from which call.
///
/// ```
/// use ipckit::{Errno, Error};
/// let e = Error::new(Errno::EACCES, "msgget");
/// assert_eq!(e.code(), "EACCES");
/// assert_eq!(e.to_string(), "EACCES: permission denied, msgget");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    errno: Errno,
    syscall: &'static str,
    /// What was hit, when the errno's own text would mislead ([`Error::limit`]).
    detail: Option<&'static str>,
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error with an explicit errno.
    pub const fn new(errno: Errno, syscall: &'static str) -> Self {
        Self {
            errno,
            syscall,
            detail: None,
        }
    }

    /// An error for a limit of this crate's own (not the kernel's), whose message says what the
    /// limit is instead of the errno's text; `operation` names what failed, since no system
    /// call did.
    ///
    /// ```
    /// use ipckit::{Errno, Error};
    /// let e = Error::limit(Errno::EMFILE, "watch", "too many signal watches (at most 128 at once)");
    /// assert_eq!((e.code().as_str(), e.syscall()), ("EMFILE", "watch"));
    /// assert_eq!(e.to_string(), "EMFILE: too many signal watches (at most 128 at once), watch");
    /// ```
    pub const fn limit(errno: Errno, operation: &'static str, detail: &'static str) -> Self {
        Self {
            errno,
            syscall: operation,
            detail: Some(detail),
        }
    }

    /// The error the calling thread's `errno` describes, for `syscall`.
    pub fn last(syscall: &'static str) -> Self {
        Self::new(Errno::last(), syscall)
    }

    /// The error a cancelled wait reports ([`crate::wait::Canceller::cancel`]): `ECANCELED`, which
    /// none of the System V calls ever return on their own.
    pub const fn cancelled(syscall: &'static str) -> Self {
        Self::new(Errno::ECANCELED, syscall)
    }

    /// The errno.
    pub const fn errno(&self) -> Errno {
        self.errno
    }

    /// The errno as the positive number the C library uses (`EACCES` is 13).
    pub const fn raw_errno(&self) -> i32 {
        self.errno as i32
    }

    /// The system call that failed, as its man page names it (`"msgrcv"`).
    pub const fn syscall(&self) -> &'static str {
        self.syscall
    }

    /// The symbolic errno name that Node.js puts in `err.code` (`"EACCES"`).
    pub fn code(&self) -> String {
        errno_name(self.errno)
    }

    /// The description of the errno, in lower case as Node.js prints it (`"permission denied"`),
    /// or what limit was hit for an [`Error::limit`].
    pub fn description(&self) -> String {
        if let Some(detail) = self.detail {
            return detail.to_owned();
        }
        let desc = strerror(self.raw_errno());
        let mut chars = desc.chars();
        match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => String::new(),
        }
    }

    /// True for the error of a wait cancelled through its [`crate::wait::Canceller`].
    pub fn is_cancelled(&self) -> bool {
        self.errno == Errno::ECANCELED
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}, {}",
            self.code(),
            self.description(),
            self.syscall
        )
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::from_raw_os_error(e.raw_errno())
    }
}

/// The symbolic name of an errno (`EACCES`), or `Unknown system error N` for a number the
/// platform does not name, as Node.js's `util.getSystemErrorName` does.
fn errno_name(errno: Errno) -> String {
    match errno {
        Errno::UnknownErrno => format!("Unknown system error {}", errno as i32),
        // `Errno`'s Debug output is its symbolic name.
        named => format!("{named:?}"),
    }
}

/// The C library's text for an errno (`strerror_r`), the text Node.js prints as well.
fn strerror(errno: i32) -> String {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: `buf` is writable for its whole length, which is what we pass; the XSI
    // strerror_r (the one the libc crate binds) NUL-terminates within it on success.
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr(), buf.len()) };
    if rc != 0 {
        return format!("Unknown error {errno}");
    }
    // SAFETY: on success the buffer holds a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The funnel for calls that return `-1` and set `errno` on failure.
///
/// ```
/// # use ipckit::error::check;
/// // SAFETY: getpid has no preconditions.
/// let pid = check(unsafe { libc::getpid() }, "getpid").unwrap();
/// assert!(pid > 0);
/// ```
pub fn check<T: SysResult>(value: T, syscall: &'static str) -> Result<T> {
    if value.is_failure() {
        Err(Error::last(syscall))
    } else {
        Ok(value)
    }
}

/// Return types of raw calls that signal failure with `-1`.
pub trait SysResult: Copy {
    /// True when the value is the failure sentinel.
    fn is_failure(self) -> bool;
}

impl SysResult for i32 {
    fn is_failure(self) -> bool {
        self == -1
    }
}

impl SysResult for isize {
    fn is_failure(self) -> bool {
        self == -1
    }
}

impl SysResult for i64 {
    fn is_failure(self) -> bool {
        self == -1
    }
}

/// For `map_err` on a nix call: its `Errno` as this crate's [`Error`] for `syscall`
/// (`nix::unistd::pipe2(..).map_err(sys("pipe2"))`).
pub(crate) fn sys(syscall: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::new(errno, syscall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_node_style() {
        let e = Error::new(Errno::ENOENT, "msgget");
        assert_eq!(e.to_string(), "ENOENT: no such file or directory, msgget");
        assert_eq!(e.code(), "ENOENT");
        assert_eq!(e.raw_errno(), libc::ENOENT);
        assert_eq!(e.syscall(), "msgget");
        let again = Error::new(Errno::EAGAIN, "msgsnd");
        assert_eq!(
            again.to_string(),
            "EAGAIN: resource temporarily unavailable, msgsnd"
        );
    }

    #[test]
    fn names_cover_sysv_errnos() {
        for (errno, name) in [
            (Errno::EIDRM, "EIDRM"),
            (Errno::ENOMSG, "ENOMSG"),
            (Errno::E2BIG, "E2BIG"),
            (Errno::EAGAIN, "EAGAIN"),
            (Errno::EEXIST, "EEXIST"),
        ] {
            assert_eq!(Error::new(errno, "x").code(), name);
        }
    }

    #[test]
    fn check_reads_errno() {
        // SAFETY: closing an fd number that is certainly not open only sets errno.
        let r = check(unsafe { libc::close(-1) }, "close");
        assert_eq!(r.unwrap_err().errno(), Errno::EBADF);
    }
}
