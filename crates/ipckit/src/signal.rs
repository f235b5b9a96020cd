//! Signals: `kill`, `sigqueue`, `sigaction`, and watching delivered signals with their sender.
//!
//! - [`kill`] and [`sigqueue`] send a signal (the latter with an integer payload).
//! - [`describe`] / [`list`] give every standard and real-time signal with its default action,
//!   as signal(7) tables them; [`disposition`], [`ignore`] and [`set_default`] read and change
//!   what a signal does to this process.
//! - A [`Watch`] receives each delivered signal with the sender's pid and uid and the
//!   `sigqueue` payload ([`SignalInfo`]).
//!
//! # How a watch works
//!
//! The first watch of a signal installs one `SA_SIGINFO` handler for it, saving the action it
//! replaces. The handler does only async-signal-safe work: for every watch of that signal it
//! `write`s a fixed-size record (signal, `si_code`, pid, uid, value) to the watch's own
//! non-blocking pipe, then chains to the saved handler (unless told not to, see
//! [`Watch::with_chain`]), as the `signal-hook` crate does. `signalfd` is never used: it needs
//! the signal blocked in every thread, and a host such as Node.js has threads we do not own.
//! Readers take records from the pipe ([`Watch::try_next`], or [`Watch::next`] which waits
//! in `poll` and can be cancelled). When the last watch of a signal ends, the saved action is
//! put back, unless someone else has replaced our handler meanwhile (then theirs stays).
//!
//! # Order of real-time signals
//!
//! Real-time signals queue in the kernel and are handed out in order, but in a multi-threaded
//! process to whichever thread does not block them: two deliveries handled at the same moment
//! on two threads could be recorded swapped. A watch is therefore *ordered* by default
//! ([`Watch::ordered`]): while it lives, each real-time signal it follows is blocked in every
//! thread of the process except this crate's poller thread ([`crate::poller`]), where the
//! handler then runs for every delivery, one after the other. Existing threads get their mask
//! changed by a private signal ([`mask_signal`]), threads caught with every signal blocked for
//! a moment (inside `pthread_create`) the instant they unblock, and threads started later
//! inherit it; the last ordered watch of a signal unblocks it again. A
//! thread-directed signal (`pthread_kill`, `tgkill`) sent to another thread meanwhile waits in
//! that thread's queue until then. [`Watch::with_options`] with `ordered: false` leaves every
//! mask alone.
//!
//! ```
//! # #[cfg(any(target_os = "linux", target_os = "android"))] {
//! use ipckit::signal::{self, Watch};
//! let watch = Watch::new(&[libc::SIGUSR2])?;
//! // SAFETY: getpid has no preconditions.
//! signal::sigqueue(unsafe { libc::getpid() }, libc::SIGUSR2, 42)?;
//! let info = watch.next(&ipckit::wait::Canceller::new())?;
//! assert_eq!((info.signo, info.value), (libc::SIGUSR2, Some(42)));
//! # }
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! For more information, see [`signal(7)`](https://man7.org/linux/man-pages/man7/signal.7.html).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::{check, Errno, Error, Result};
use crate::sys::{libc, wake_signal};
pub use crate::sys::{mask_signal, rtmax, rtmin};
use crate::wait::{interruptible, Canceller};

/// Highest signal number a watch can follow (signals 1..=64 on Linux).
const MAX_SIGNAL: usize = 64;
/// Watches that may exist at once in a process ([`Watch::new`] fails with `EMFILE` beyond,
/// naming this limit): the slots of the table the signal handler reads, which must be a fixed
/// array since a handler may not allocate.
///
/// ```
/// assert!(ipckit::signal::MAX_WATCHES >= 64);
/// ```
pub const MAX_WATCHES: usize = 128;

/// The error past [`MAX_WATCHES`]; its text names the number.
const TOO_MANY_WATCHES: Error = Error::limit(
    Errno::EMFILE,
    "watch",
    "too many signal watches (ipckit allows 128 at once in a process)",
);
const _: () = assert!(MAX_WATCHES == 128, "update TOO_MANY_WATCHES");

/// What a signal does to a process that neither catches nor ignores it (signal(7)).
///
/// ```
/// use ipckit::signal::{describe, DefaultAction};
/// assert_eq!(describe(libc::SIGSEGV).unwrap().default_action, DefaultAction::Core);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// Terminate the process (`Term`).
    Terminate,
    /// Terminate the process and dump core (`Core`).
    Core,
    /// Ignore the signal (`Ign`).
    Ignore,
    /// Stop the process (`Stop`).
    Stop,
    /// Continue the process if it is stopped (`Cont`).
    Continue,
}

impl DefaultAction {
    /// The lower-case name: `terminate`, `core`, `ignore`, `stop`, `continue`.
    ///
    /// ```
    /// assert_eq!(ipckit::signal::DefaultAction::Core.as_str(), "core");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Terminate => "terminate",
            Self::Core => "core",
            Self::Ignore => "ignore",
            Self::Stop => "stop",
            Self::Continue => "continue",
        }
    }
}

/// A signal as signal(7) describes it.
///
/// ```
/// let d = ipckit::signal::describe(libc::SIGTERM).unwrap();
/// assert_eq!((d.name.as_str(), d.number), ("SIGTERM", 15));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// The name Node.js uses (`SIGABRT` for 6, `SIGIO` for 29), or `SIGRTMIN+N` / `SIGRTMAX-N`.
    pub name: String,
    /// The signal number on this platform.
    pub number: i32,
    /// The default action.
    pub default_action: DefaultAction,
    /// The description signal(7) gives.
    pub description: &'static str,
}

use DefaultAction::{Continue, Core, Ignore, Stop, Terminate};

/// The standard signals, named as Node.js's `os.constants.signals` names them, with their
/// default action and the signal(7) description.
const STANDARD: &[(i32, &str, DefaultAction, &str)] = &[
    (
        libc::SIGHUP,
        "SIGHUP",
        Terminate,
        "Hangup detected on controlling terminal or death of controlling process",
    ),
    (libc::SIGINT, "SIGINT", Terminate, "Interrupt from keyboard"),
    (libc::SIGQUIT, "SIGQUIT", Core, "Quit from keyboard"),
    (libc::SIGILL, "SIGILL", Core, "Illegal Instruction"),
    (libc::SIGTRAP, "SIGTRAP", Core, "Trace/breakpoint trap"),
    (libc::SIGABRT, "SIGABRT", Core, "Abort signal from abort(3)"),
    (
        libc::SIGBUS,
        "SIGBUS",
        Core,
        "Bus error (bad memory access)",
    ),
    (
        libc::SIGFPE,
        "SIGFPE",
        Core,
        "Erroneous arithmetic operation",
    ),
    (libc::SIGKILL, "SIGKILL", Terminate, "Kill signal"),
    (libc::SIGUSR1, "SIGUSR1", Terminate, "User-defined signal 1"),
    (libc::SIGSEGV, "SIGSEGV", Core, "Invalid memory reference"),
    (libc::SIGUSR2, "SIGUSR2", Terminate, "User-defined signal 2"),
    (
        libc::SIGPIPE,
        "SIGPIPE",
        Terminate,
        "Broken pipe: write to pipe with no readers",
    ),
    (
        libc::SIGALRM,
        "SIGALRM",
        Terminate,
        "Timer signal from alarm(2)",
    ),
    (libc::SIGTERM, "SIGTERM", Terminate, "Termination signal"),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    (
        libc::SIGSTKFLT,
        "SIGSTKFLT",
        Terminate,
        "Stack fault on coprocessor (unused)",
    ),
    (
        libc::SIGCHLD,
        "SIGCHLD",
        Ignore,
        "Child stopped, terminated, or continued",
    ),
    (libc::SIGCONT, "SIGCONT", Continue, "Continue if stopped"),
    (libc::SIGSTOP, "SIGSTOP", Stop, "Stop process"),
    (libc::SIGTSTP, "SIGTSTP", Stop, "Stop typed at terminal"),
    (
        libc::SIGTTIN,
        "SIGTTIN",
        Stop,
        "Terminal input for background process",
    ),
    (
        libc::SIGTTOU,
        "SIGTTOU",
        Stop,
        "Terminal output for background process",
    ),
    (libc::SIGURG, "SIGURG", Ignore, "Urgent condition on socket"),
    (libc::SIGXCPU, "SIGXCPU", Core, "CPU time limit exceeded"),
    (libc::SIGXFSZ, "SIGXFSZ", Core, "File size limit exceeded"),
    (
        libc::SIGVTALRM,
        "SIGVTALRM",
        Terminate,
        "Virtual alarm clock",
    ),
    (
        libc::SIGPROF,
        "SIGPROF",
        Terminate,
        "Profiling timer expired",
    ),
    (libc::SIGWINCH, "SIGWINCH", Ignore, "Window resize signal"),
    (libc::SIGIO, "SIGIO", Terminate, "I/O now possible"),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    (libc::SIGPWR, "SIGPWR", Terminate, "Power failure"),
    // macOS's two signals that Linux does not have (its signal(3) table).
    #[cfg(target_vendor = "apple")]
    (libc::SIGEMT, "SIGEMT", Core, "Emulate instruction executed"),
    #[cfg(target_vendor = "apple")]
    (
        libc::SIGINFO,
        "SIGINFO",
        Ignore,
        "Status request from keyboard",
    ),
    (libc::SIGSYS, "SIGSYS", Core, "Bad system call"),
];

/// Other names of standard signals, as people type them (C headers, Python's `signal`,
/// Perl's `%SIG`, Node's `os.constants.signals`), where the platform has them: `SIGIOT` is
/// `SIGABRT` everywhere; on Linux `SIGPOLL` is `SIGIO`, `SIGCLD` is `SIGCHLD` (System V's
/// name) and `SIGUNUSED` is `SIGSYS` (the kernel headers' old name for 31). macOS has none of
/// those three (its headers give `SIGPOLL` only in strict POSIX mode, as 7).
const ALIASES: &[(&str, i32)] = &[
    ("SIGIOT", libc::SIGABRT),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    ("SIGPOLL", libc::SIGIO),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    ("SIGCLD", libc::SIGCHLD),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    ("SIGUNUSED", libc::SIGSYS),
];

/// The other names of signal `signo` ([`number`] takes them too), empty for most.
///
/// ```
/// use ipckit::signal::aliases;
/// assert_eq!(aliases(libc::SIGABRT), ["SIGIOT"]);
/// # #[cfg(target_os = "linux")]
/// assert_eq!(aliases(libc::SIGCHLD), ["SIGCLD"]);
/// assert!(aliases(libc::SIGTERM).is_empty());
/// ```
pub fn aliases(signo: i32) -> Vec<&'static str> {
    ALIASES
        .iter()
        .filter(|a| a.1 == signo)
        .map(|a| a.0)
        .collect()
}

/// The name of signal `signo`: Node's name for a standard signal, `SIGRTMIN`, `SIGRTMIN+N`
/// (lower half of the real-time range), `SIGRTMAX-N` (upper half) or `SIGRTMAX`, as `kill -l`
/// prints them; `None` for numbers that name no signal here (0, the C library's private 32
/// and 33, or out of range).
///
/// ```
/// use ipckit::signal::{name, rtmin, rtmax};
/// assert_eq!(name(6).as_deref(), Some("SIGABRT"));
/// # #[cfg(any(target_os = "linux", target_os = "android"))]
/// assert_eq!(name(rtmin() + 3).as_deref(), Some("SIGRTMIN+3"));
/// # #[cfg(any(target_os = "linux", target_os = "android"))]
/// assert_eq!(name(rtmax() - 2).as_deref(), Some("SIGRTMAX-2"));
/// assert_eq!(name(0), None);
/// ```
pub fn name(signo: i32) -> Option<String> {
    if let Some(&(_, n, _, _)) = STANDARD.iter().find(|s| s.0 == signo) {
        return Some(n.to_owned());
    }
    let (min, max) = (rtmin(), rtmax());
    if signo < min || signo > max {
        return None;
    }
    Some(if signo == min {
        "SIGRTMIN".to_owned()
    } else if signo == max {
        "SIGRTMAX".to_owned()
    } else if signo - min <= (max - min) / 2 {
        format!("SIGRTMIN+{}", signo - min)
    } else {
        format!("SIGRTMAX-{}", max - signo)
    })
}

/// The number of the signal called `name`: Node's names, their [`aliases`] (`SIGIOT`, and on
/// Linux `SIGPOLL`, `SIGCLD`, `SIGUNUSED`), and `SIGRTMIN+N` / `SIGRTMAX-N` for any N within
/// the real-time range.
///
/// ```
/// use ipckit::signal::{number, rtmin};
/// assert_eq!(number("SIGTERM"), Some(libc::SIGTERM));
/// # #[cfg(any(target_os = "linux", target_os = "android"))]
/// assert_eq!(number("SIGRTMIN+3"), Some(rtmin() + 3));
/// assert_eq!(number("SIGNOPE"), None);
/// ```
pub fn number(name: &str) -> Option<i32> {
    if let Some(s) = STANDARD.iter().find(|s| s.1 == name) {
        return Some(s.0);
    }
    if let Some(a) = ALIASES.iter().find(|a| a.0 == name) {
        return Some(a.1);
    }
    let (min, max) = (rtmin(), rtmax());
    let offset = |rest: &str| -> Option<i32> {
        if rest.is_empty() {
            return Some(0);
        }
        let digits = rest.get(1..)?;
        if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let signo = if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        if !(rest.is_empty() || rest.starts_with('+')) {
            return None;
        }
        min + offset(rest)?
    } else if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        if !(rest.is_empty() || rest.starts_with('-')) {
            return None;
        }
        max - offset(rest)?
    } else {
        return None;
    };
    (min..=max).contains(&signo).then_some(signo)
}

/// Name, number, default action and description of signal `signo`, `None` if [`name`] has
/// none. Real-time signals terminate by default.
///
/// ```
/// use ipckit::signal::{describe, DefaultAction};
/// let d = describe(libc::SIGCHLD).unwrap();
/// assert_eq!(d.default_action, DefaultAction::Ignore);
/// ```
pub fn describe(signo: i32) -> Option<Description> {
    if let Some(&(number, name, default_action, description)) =
        STANDARD.iter().find(|s| s.0 == signo)
    {
        return Some(Description {
            name: name.to_owned(),
            number,
            default_action,
            description,
        });
    }
    Some(Description {
        name: name(signo)?,
        number: signo,
        default_action: Terminate,
        description: "Real-time signal",
    })
}

/// Every standard signal (in number order), then every real-time signal from [`rtmin`] to
/// [`rtmax`].
///
/// ```
/// let all = ipckit::signal::list();
/// assert_eq!(all.len(), 31 + (ipckit::signal::rtmax() - ipckit::signal::rtmin() + 1) as usize);
/// ```
pub fn list() -> Vec<Description> {
    let mut standard: Vec<i32> = STANDARD.iter().map(|s| s.0).collect();
    standard.sort_unstable();
    standard
        .into_iter()
        .chain(rtmin()..=rtmax())
        .filter_map(describe)
        .collect()
}

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
/// signal sees it as [`SignalInfo::value`]. Real-time signals queue (up to `RLIMIT_SIGPENDING`,
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

fn current_action(signo: i32) -> Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is a valid value for the kernel to overwrite.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `old` is writable.
    let rc = unsafe { libc::sigaction(signo, std::ptr::null(), &mut old) };
    check(rc, "sigaction")?;
    Ok(old)
}

fn set_action(signo: i32, action: &libc::sigaction) -> Result<()> {
    // SAFETY: `action` is a complete sigaction (copied from the kernel or fully built here);
    // the old action is not requested.
    let rc = unsafe { libc::sigaction(signo, action, std::ptr::null_mut()) };
    check(rc, "sigaction").map(drop)
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

/// Whether a watch may follow `signo`, and [`ignore`] / [`set_default`] change it: not
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

/// Ignores `signo` (`SIG_IGN`). `EBUSY` while a [`Watch`] follows it, `EINVAL` for a signal
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

/// A delivered signal, as a [`Watch`] reports it.
///
/// ```
/// let info = ipckit::signal::SignalInfo { signo: 10, code: 0, pid: Some(1), uid: Some(0), value: None };
/// # #[cfg(any(target_os = "linux", target_os = "android"))] // the libc crate has no SI_USER for Apple
/// assert_eq!(info.code, libc::SI_USER);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalInfo {
    /// The signal number.
    pub signo: i32,
    /// `si_code`: `SI_USER` (0, `kill`), `SI_QUEUE` (-1, `sigqueue`), `SI_TKILL` (-6,
    /// `tgkill`), `SI_KERNEL` (0x80), or a signal-specific code (`CLD_EXITED`, ...).
    pub code: i32,
    /// The sender's pid, when the kernel reports one (sent by a process, or `SIGCHLD`).
    pub pid: Option<i32>,
    /// The sender's real uid, when the kernel reports one.
    pub uid: Option<u32>,
    /// The `sigqueue` payload (`sival_int`), for `SI_QUEUE` signals, or the value a POSIX
    /// message queue notification carries (`SI_MESGQ`); `None` for others.
    pub value: Option<i32>,
}

/// The fixed-size record the handler writes to a watch's pipe (atomically: far below
/// `PIPE_BUF`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Record {
    signo: i32,
    code: i32,
    pid: i32,
    uid: u32,
    value: i32,
    /// Bit 0: `pid`/`uid` are meaningful; bit 1: `value` is.
    flags: i32,
}

const RECORD: usize = std::mem::size_of::<Record>();
const HAS_SENDER: i32 = 1;
const HAS_VALUE: i32 = 2;

impl Record {
    fn info(&self) -> SignalInfo {
        let sender = self.flags & HAS_SENDER != 0;
        SignalInfo {
            signo: self.signo,
            code: self.code,
            pid: sender.then_some(self.pid),
            uid: sender.then_some(self.uid),
            value: (self.flags & HAS_VALUE != 0).then_some(self.value),
        }
    }
}

/// The size of one encoded [`SignalInfo`] (see [`SignalInfo::encode`]).
///
/// ```
/// assert_eq!(ipckit::signal::ENCODED_LEN, 24);
/// ```
pub const ENCODED_LEN: usize = RECORD;

impl SignalInfo {
    /// The info as 24 little-endian bytes, the layout the Node.js binding hands to
    /// JavaScript: `signo`, `code`, `pid`, `uid`, `value` (i32 each, 0 when absent), then
    /// flags (bit 0: pid and uid present, bit 1: value present).
    ///
    /// ```
    /// let info = ipckit::signal::SignalInfo { signo: 12, code: -1, pid: Some(5), uid: Some(0), value: Some(-3) };
    /// let bytes = info.encode();
    /// assert_eq!(&bytes[..4], &12i32.to_le_bytes());
    /// assert_eq!(&bytes[16..20], &(-3i32).to_le_bytes());
    /// ```
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let fields = [
            self.signo,
            self.code,
            self.pid.unwrap_or(0),
            self.uid.unwrap_or(0) as i32,
            self.value.unwrap_or(0),
            i32::from(self.pid.is_some()) * HAS_SENDER
                + i32::from(self.value.is_some()) * HAS_VALUE,
        ];
        let mut out = [0u8; ENCODED_LEN];
        for (chunk, field) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&field.to_le_bytes());
        }
        out
    }
}

/// One watch as the handler sees it: the write end of its pipe and the signals it follows.
struct Slot {
    fd: AtomicI32,
    /// Bit `n - 1` set: follows signal `n`.
    mask: AtomicU64,
    /// Records that did not fit in the pipe.
    dropped: AtomicU64,
    /// Handlers between reading `fd` and finishing their write; the fd is closed only after
    /// the slot was cleared and this was seen at zero.
    busy: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise the array
const EMPTY_SLOT: Slot = Slot {
    fd: AtomicI32::new(-1),
    mask: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
    busy: AtomicUsize::new(0),
};
static SLOTS: [Slot; MAX_WATCHES] = [EMPTY_SLOT; MAX_WATCHES];

/// The action our handler replaced for a signal, and whether to call it.
struct Prev {
    action: libc::sigaction,
    chain: bool,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise the array
const NO_PREV: AtomicPtr<Prev> = AtomicPtr::new(std::ptr::null_mut());
/// Per signal: the replaced action while our handler is installed, else null. A record is
/// never freed (a handler on another thread may still read it); one small allocation per
/// installation.
static PREV: [AtomicPtr<Prev>; MAX_SIGNAL + 1] = [NO_PREV; MAX_SIGNAL + 1];

/// Bookkeeping outside the handler (never touched by it).
struct Registry {
    used: [bool; MAX_WATCHES],
    /// Watches per signal.
    watches: [usize; MAX_SIGNAL + 1],
    /// Ordered watches per real-time signal.
    ordered: [usize; MAX_SIGNAL + 1],
    /// Per real-time signal: `Some(the threads that existed when it was confined)` while it is
    /// confined to the poller thread (see `confine`).
    confined: [Option<Vec<i32>>; MAX_SIGNAL + 1],
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    used: [false; MAX_WATCHES],
    watches: [0; MAX_SIGNAL + 1],
    ordered: [0; MAX_SIGNAL + 1],
    confined: [const { None }; MAX_SIGNAL + 1],
});

impl Registry {
    /// Counts an ordered watch of real-time signal `signo`, confining it if it is not yet;
    /// whether it is confined now.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn order(&mut self, signo: i32) -> Result<bool> {
        let s = signo as usize;
        if self.confined[s].is_none() {
            self.confined[s] = confine::confine(signo)?;
        }
        self.ordered[s] += 1;
        Ok(self.confined[s].is_some())
    }

    /// No real-time signals there.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn order(&mut self, signo: i32) -> Result<bool> {
        self.ordered[signo as usize] += 1;
        Ok(false)
    }

    /// Uncounts an ordered watch of `signo`; the last one releases the confinement.
    fn unorder(&mut self, signo: i32) {
        let s = signo as usize;
        self.ordered[s] -= 1;
        if self.ordered[s] == 0 {
            if let Some(_before) = self.confined[s].take() {
                #[cfg(any(target_os = "linux", target_os = "android"))]
                confine::release(signo, &_before);
            }
        }
    }
}

/// Deliveries of `signo` handled on another thread than the receiver while it was confined
/// (none where nothing is confined).
fn escapes(signo: i32) -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        confine::escapes(signo)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = signo;
        0
    }
}

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn sender_known(signo: i32, code: i32) -> bool {
    // kill, sigqueue, a message queue notification, tgkill; and SIGCHLD's child.
    matches!(
        code,
        libc::SI_USER | libc::SI_QUEUE | libc::SI_MESGQ | libc::SI_TKILL
    ) || signo == libc::SIGCHLD
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn sender_known(signo: i32, code: i32) -> bool {
    // kill, sigqueue, a message queue notification (no tgkill there); and SIGCHLD's child.
    matches!(code, libc::SI_USER | libc::SI_QUEUE | libc::SI_MESGQ) || signo == libc::SIGCHLD
}

/// The handler: async-signal-safe only (atomics, `write`, errno save/restore), then the chain.
extern "C" fn on_signal(signo: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    let errno = unsafe { *libc::__errno_location() };
    if (1..=MAX_SIGNAL as i32).contains(&signo) && !info.is_null() {
        // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
        let si = unsafe { &*info };
        let mut record = Record {
            signo,
            code: si.si_code,
            ..Record::default()
        };
        if sender_known(signo, si.si_code) {
            // SAFETY: for these codes the kernel filled the pid/uid members of the union.
            unsafe {
                record.pid = si.si_pid();
                record.uid = si.si_uid();
            }
            record.flags |= HAS_SENDER;
        }
        if si.si_code == libc::SI_QUEUE || si.si_code == libc::SI_MESGQ {
            // SAFETY: sigqueue (or a POSIX message queue notification, with the sigev_value
            // registered by mq_notify) filled si_value; its int member is the low 4 bytes.
            record.value = unsafe { si.si_value().sival_ptr } as usize as u32 as i32;
            record.flags |= HAS_VALUE;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        confine::on_delivery(signo, ctx);
        let bit = 1u64 << (signo - 1);
        for slot in &SLOTS {
            if slot.mask.load(Ordering::SeqCst) & bit == 0 {
                continue;
            }
            slot.busy.fetch_add(1, Ordering::SeqCst);
            // Checked again once counted as busy: the slot may have been released (and even
            // reused by another watch) since the first look.
            let fd = if slot.mask.load(Ordering::SeqCst) & bit != 0 {
                slot.fd.load(Ordering::SeqCst)
            } else {
                -1
            };
            if fd < 0 {
                slot.busy.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            // SAFETY: `fd` is the write end of a watch's pipe; it stays open until the slot
            // is cleared and its `busy` count was seen at 0, which cannot happen while we run.
            // `record` is RECORD readable bytes.
            let n = unsafe { libc::write(fd, (&record as *const Record).cast(), RECORD) };
            if n != RECORD as isize {
                slot.dropped.fetch_add(1, Ordering::Relaxed);
            }
            slot.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
    if (0..=MAX_SIGNAL as i32).contains(&signo) {
        let prev = PREV[signo as usize].load(Ordering::SeqCst);
        // SAFETY: non-null records are leaked boxes, valid forever.
        if let Some(prev) = unsafe { prev.as_ref() } {
            // SAFETY: the saved action came from the kernel; a handler other than SIG_DFL /
            // SIG_IGN has the signature its SA_SIGINFO flag says, and was meant to be called
            // in signal context with these arguments.
            unsafe { chain(prev, signo, info, ctx) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Calls the action our handler replaced, as signal-hook-registry's `Prev::execute` does.
///
/// # Safety
/// Must be called from a signal handler for `signo` with its arguments.
unsafe fn chain(prev: &Prev, signo: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let handler = prev.action.sa_sigaction;
    if !prev.chain || handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        return;
    }
    if prev.action.sa_flags & libc::SA_SIGINFO != 0 {
        type Action = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
        // SAFETY: SA_SIGINFO handlers have this signature (caller's contract).
        let f = unsafe { std::mem::transmute::<libc::sighandler_t, Action>(handler) };
        f(signo, info, ctx);
    } else {
        type Handler = extern "C" fn(libc::c_int);
        // SAFETY: plain handlers have this signature (caller's contract).
        let f = unsafe { std::mem::transmute::<libc::sighandler_t, Handler>(handler) };
        f(signo);
    }
}

fn our_handler() -> libc::sighandler_t {
    on_signal as *const () as libc::sighandler_t
}

/// Installs our handler for `signo`, saving what it replaces.
fn install(signo: i32, chain: bool) -> Result<()> {
    let old = current_action(signo)?;
    if old.sa_sigaction == our_handler() {
        return Ok(());
    }
    // Stored before the switch, so a signal arriving right after it chains correctly.
    let prev = Box::into_raw(Box::new(Prev { action: old, chain }));
    PREV[signo as usize].store(prev, Ordering::SeqCst);
    // SAFETY: an all-zero sigaction is "no flags"; every field used is set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = our_handler();
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: sa_mask is a valid sigset_t owned by `action`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // The mask signal waits while the handler runs: a delivery that a thread took just before
    // its mask was changed is recorded before the thread answers (see `confine`).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: as above; mask_signal is a valid signal number.
    unsafe {
        libc::sigaddset(&mut action.sa_mask, confine::mask_signal())
    };
    // SAFETY: `action` is complete; `replaced` is writable.
    let mut replaced: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    let rc = unsafe { libc::sigaction(signo, &action, &mut replaced) };
    check(rc, "sigaction")?;
    if replaced.sa_sigaction != old.sa_sigaction {
        // Someone changed it between our query and our switch: chain to what we replaced.
        let prev = Box::into_raw(Box::new(Prev {
            action: replaced,
            chain,
        }));
        PREV[signo as usize].store(prev, Ordering::SeqCst);
    }
    Ok(())
}

/// Puts back the saved action of `signo` if our handler is still the one installed.
fn uninstall(signo: i32) {
    let prev = PREV[signo as usize].load(Ordering::SeqCst);
    // SAFETY: non-null records are leaked boxes, valid forever.
    let Some(prev) = (unsafe { prev.as_ref() }) else {
        return;
    };
    if let Ok(current) = current_action(signo) {
        if current.sa_sigaction == our_handler() {
            // Nothing useful to do if it fails: the handler stays and records go nowhere.
            let _ = set_action(signo, &prev.action);
        }
    }
    PREV[signo as usize].store(std::ptr::null_mut(), Ordering::SeqCst);
}

/// Puts our handler back for `signo` if something replaced it while watches follow it (a
/// host that installs its own handler without chaining, such as libuv when Node.js gets its
/// first `process.on('SIGxxx')` listener), chaining to the newcomer when `chain`. Returns
/// whether it had to. Does nothing when no watch follows `signo`.
///
/// ```
/// assert!(!ipckit::signal::reclaim(libc::SIGWINCH, true)?);
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn reclaim(signo: i32, chain: bool) -> Result<bool> {
    if !is_allowed(signo) {
        return Ok(false);
    }
    let registry = registry();
    if registry.watches[signo as usize] == 0 {
        return Ok(false);
    }
    if current_action(signo)?.sa_sigaction == our_handler() {
        return Ok(false);
    }
    install(signo, chain)?;
    drop(registry);
    Ok(true)
}

/// Ordered delivery of real-time signals (Linux).
///
/// Real-time signals queue in the kernel and are handed out in send order, but to whichever
/// thread of the process does not block them: with a handler running on two threads at once,
/// the two records may be written swapped. To keep the kernel's order, a real-time signal
/// that an ordered watch follows is *confined*: blocked in every thread of the process but
/// this crate's poller thread (the receiver, [`crate::poller`]), so that every delivery runs
/// the handler there, one after the other. `signalfd` is still not used, and
/// the handler still chains to the one it replaced.
///
/// Threads that already exist cannot be told to change their mask by a call, so each one is
/// sent a private signal ([`mask_signal`], `SIGRTMAX - 7`) whose handler edits the mask that
/// `sigreturn` puts back when it returns (as glibc's `setxid` broadcast reaches every thread).
/// Threads created later inherit the mask of the thread that creates them.
///
/// What `/proc/self/task/*/status` shows of a thread's mask (`SigBlk`) is only its mask of
/// the moment, not the one it goes back to: the C library blocks every signal inside
/// `pthread_create` (and the new thread starts so, until it takes its creator's saved mask);
/// a signal handler runs with its own mask. Such a thread looks as if it blocked the signal
/// already, yet takes it a moment later (and a thread it is creating would too). So no
/// thread is trusted on its looks:
///
/// - The mask handler applies a *state*, not a change: every confined signal is blocked in the
///   mask its thread returns to, and a signal that this crate blocked there (the thread's entry
///   in `TABLE`) and that is no longer confined is unblocked. It runs whenever the thread
///   lets it: a thread that blocks everything for a moment gets it, queued in its own
///   queue, the instant it unblocks, before any process-wide signal (the kernel takes a
///   thread's own signals first). Only the handler sees whether a thread blocked a signal on
///   its own before (then it is left blocked when the confinement ends).
/// - Every thread but the receiver and the caller is sent the mask signal once per change (not
///   again while one is still queued to it), and the change is complete when each thread has
///   run the handler since, or is *settled*: it blocks the mask signal and the confined one and
///   has slept without running for a while (the handler then runs when it wakes up and
///   unblocks), or is one of this crate's own waiting threads (they block every signal but
///   [`wake_signal`] for good). A thread that blocks everything and runs, or sleeps only
///   for a moment (glibc's `pthread_create` never sleeps with every signal blocked; musl's
///   may wait for its thread-list lock), may be about to start a thread with its old mask:
///   that one is waited for; so is a thread the C library has blocked its own signals in (32
///   and 33, which no application mask holds). Passes repeat until one finds nothing more to
///   wait for, so the threads started meanwhile are handled too.
/// - The mask handler may run nested in another handler whose mask lets it in (the kernel hands
///   out a thread's lower-numbered signal first): it then edits that handler's mask, and the
///   other handler's return puts the thread's old mask back. So a thread counts only if it has
///   applied the change *and* blocks the signal at each look (its entry is read before its
///   status); one found unblocked again is sent the mask signal again and counts only after a
///   later run; and a change is complete after two looks in a row, a moment apart, that find
///   nothing to wait for.
/// - The watch's own handler runs with the mask signal blocked, so a delivery that a thread
///   took just before it was blocked is recorded before that thread answers; the watch is
///   given its records only once the confinement is complete, so every record it gets was
///   written by the receiver, in the kernel's order.
/// - A delivery handled on another thread once a signal is confined (a thread that unblocked
///   it again on its own, or one that escaped in a way not foreseen here) is counted (`ESCAPES`), which turns [`Watch::ordered`] false; that thread gets the signal blocked.
///
/// When the last ordered watch of the signal ends, every thread that this crate blocked it in
/// (its entry says so), and every thread started during the confinement that blocks it
/// (inherited from a confined thread), gets it unblocked the same way.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod confine {
    use super::*;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    pub(crate) use crate::sys::mask_signo as mask_signal;

    /// The signals confined now (bit `n - 1` for signal `n`): the mask handler blocks them.
    /// Written only under the registry lock, always before [`GENERATION`] is bumped.
    static CONFINED: AtomicU64 = AtomicU64::new(0);
    /// The confined signals whose confinement is complete: from then on, a delivery handled on
    /// another thread than the receiver is an escape.
    static ESTABLISHED: AtomicU64 = AtomicU64::new(0);
    /// Bumped after every change of [`CONFINED`]; a thread's entry records the generation its
    /// handler last applied.
    static GENERATION: AtomicU64 = AtomicU64::new(0);
    /// The receiver's thread id, once a signal was confined.
    static RECEIVER: AtomicI32 = AtomicI32::new(0);

    #[allow(clippy::declare_interior_mutable_const)] // only used to initialise the array
    const NO_ESCAPE: AtomicU64 = AtomicU64::new(0);
    /// Per signal: deliveries handled on another thread than the receiver while it was
    /// confined (see [`Watch::ordered`]).
    pub static ESCAPES: [AtomicU64; MAX_SIGNAL + 1] = [NO_ESCAPE; MAX_SIGNAL + 1];

    /// One thread this crate changed or asked to change.
    struct Entry {
        /// The thread id; 0 for a free entry.
        tid: AtomicI32,
        /// The signals this crate blocked in the thread's mask (the thread did not).
        ours: AtomicU64,
        /// The last [`GENERATION`] the thread's mask handler applied.
        applied: AtomicU64,
        /// How many times its mask handler ran.
        runs: AtomicU64,
    }

    /// Threads an entry can be kept for; confinement fails beyond (the watch is unordered).
    const MAX_THREADS: usize = 1024;

    #[allow(clippy::declare_interior_mutable_const)] // only used to initialise the array
    const FREE: Entry = Entry {
        tid: AtomicI32::new(0),
        ours: AtomicU64::new(0),
        applied: AtomicU64::new(0),
        runs: AtomicU64::new(0),
    };
    /// The entries, made (and freed, once their thread has ended) only under the registry lock;
    /// the handlers only look them up.
    static TABLE: [Entry; MAX_THREADS] = [FREE; MAX_THREADS];

    /// How long the threads may take to answer before a change is given up. Generous: on a
    /// busy machine a runnable thread may wait a while for a CPU.
    const PATIENCE: Duration = Duration::from_secs(5);

    /// The entry of thread `tid`. Async-signal-safe (atomic loads only).
    fn entry(tid: i32) -> Option<&'static Entry> {
        TABLE.iter().find(|e| e.tid.load(Ordering::SeqCst) == tid)
    }

    /// The entry of thread `tid`, made if it has none; `None` when the table is full.
    fn entry_for(tid: i32) -> Option<&'static Entry> {
        if let Some(e) = entry(tid) {
            return Some(e);
        }
        let e = TABLE.iter().find(|e| e.tid.load(Ordering::SeqCst) == 0)?;
        e.ours.store(0, Ordering::SeqCst);
        e.applied.store(0, Ordering::SeqCst);
        e.runs.store(0, Ordering::SeqCst);
        e.tid.store(tid, Ordering::SeqCst);
        Some(e)
    }

    /// Whether thread `tid`'s mask handler has applied `generation` in a run after its first
    /// `after` runs; and how many runs it has made. Read before the thread's status: a status
    /// read after a handler set this is at least as new as the mask that handler returns to.
    fn applied(tid: i32, generation: u64, after: u64) -> (bool, u64) {
        let Some(e) = entry(tid) else {
            return (false, 0);
        };
        let runs = e.runs.load(Ordering::SeqCst);
        let applied = e.applied.load(Ordering::SeqCst) >= generation;
        (applied && runs > after, runs)
    }

    /// Frees the entries of threads that are not in `alive` (they have ended).
    fn sweep(alive: &[i32]) {
        for e in &TABLE {
            let tid = e.tid.load(Ordering::SeqCst);
            if tid != 0 && !alive.contains(&tid) {
                e.tid.store(0, Ordering::SeqCst);
            }
        }
    }

    /// Brings `set`, the mask the calling thread returns to, in line with [`CONFINED`]: blocks
    /// every confined signal, unblocks those this crate blocked there that are confined no
    /// more, and records both in the thread's entry. Async-signal-safe: atomics, `gettid`,
    /// `sigismember`/`sigaddset`/`sigdelset`.
    fn apply(set: &mut libc::sigset_t) {
        // The generation first: a handler that sees a generation sees the CONFINED written
        // before it.
        let generation = GENERATION.load(Ordering::SeqCst);
        let confined = CONFINED.load(Ordering::SeqCst);
        let entry = entry(gettid());
        let ours = entry.map_or(0, |e| e.ours.load(Ordering::SeqCst));
        let mut added = 0;
        for signo in 1..=MAX_SIGNAL as i32 {
            let bit = 1u64 << (signo - 1);
            // SAFETY: `set` is a valid sigset_t; these calls only test, set or clear a bit.
            unsafe {
                if confined & bit != 0 {
                    if libc::sigismember(set, signo) == 0 {
                        libc::sigaddset(set, signo);
                        added |= bit;
                    }
                } else if ours & bit != 0 {
                    libc::sigdelset(set, signo);
                }
            }
        }
        if let Some(e) = entry {
            e.ours.store((ours & confined) | added, Ordering::SeqCst);
            e.applied.store(generation, Ordering::SeqCst);
            e.runs.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Applies [`CONFINED`] to the mask its thread gets back when the handler returns.
    extern "C" fn on_mask_signal(_: libc::c_int, _: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        if ctx.is_null() {
            return;
        }
        // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
        let errno = unsafe { *libc::__errno_location() };
        // SAFETY: an SA_SIGINFO handler's third argument is the interrupted thread's
        // ucontext_t, which `sigreturn` reads back (its signal mask included) when we return;
        // nothing else uses it while the handler runs.
        let uc = unsafe { &mut *ctx.cast::<libc::ucontext_t>() };
        apply(&mut uc.uc_sigmask);
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
    }

    /// Called by the watches' handler for every delivery, before its records are written: a
    /// delivery of a confined signal on another thread than the receiver is counted as an
    /// escape, and that thread gets the signal blocked when the handler returns.
    /// Async-signal-safe.
    pub fn on_delivery(signo: i32, ctx: *mut libc::c_void) {
        let bit = 1u64 << (signo - 1);
        if ESTABLISHED.load(Ordering::SeqCst) & bit == 0 || ctx.is_null() {
            return;
        }
        if gettid() == RECEIVER.load(Ordering::SeqCst) {
            return;
        }
        ESCAPES[signo as usize].fetch_add(1, Ordering::SeqCst);
        // SAFETY: as in `on_mask_signal`: the handler's context, which sigreturn reads back.
        let uc = unsafe { &mut *ctx.cast::<libc::ucontext_t>() };
        apply(&mut uc.uc_sigmask);
    }

    fn install_mask_handler() -> Result<()> {
        static INSTALLED: OnceLock<std::result::Result<(), Errno>> = OnceLock::new();
        let installed = INSTALLED.get_or_init(|| {
            // SAFETY: an all-zero sigaction is "no flags"; every field used is set below.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_mask_signal as *const () as libc::sighandler_t;
            // SA_RESTART: the interrupted thread's own calls resume as after any handled
            // signal (libuv installs Node's handlers the same way).
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
            // SAFETY: sa_mask is a valid sigset_t owned by `action`.
            unsafe { libc::sigfillset(&mut action.sa_mask) };
            // SAFETY: `action` is complete; the old action is not wanted.
            let rc = unsafe { libc::sigaction(mask_signal(), &action, std::ptr::null_mut()) };
            check(rc, "sigaction").map(drop).map_err(|e| e.errno())
        });
        (*installed).map_err(|errno| Error::new(errno, "sigaction"))
    }

    /// Whether [`mask_signal`]'s action is still our handler (nobody replaced it).
    fn mask_handler_installed() -> bool {
        current_action(mask_signal())
            .is_ok_and(|a| a.sa_sigaction == on_mask_signal as *const () as libc::sighandler_t)
    }

    fn gettid() -> i32 {
        // SAFETY: gettid has no preconditions and cannot fail.
        unsafe { libc::syscall(libc::SYS_gettid) as i32 }
    }

    /// The thread that keeps a confined signal unblocked: this crate's poller thread
    /// ([`crate::poller`]), which lives as long as the process and leaves real-time signals
    /// unblocked. A delivery's record lands in the watch's pipe while that thread is in
    /// `epoll_wait`, which then reports the pipe ready with no further thread hop.
    fn receiver() -> Result<i32> {
        crate::poller::thread_id()
    }

    /// The threads of this process now; `None` without `/proc`.
    fn threads() -> Option<Vec<i32>> {
        let dir = std::fs::read_dir("/proc/self/task").ok()?;
        Some(
            dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                .collect(),
        )
    }

    /// What `/proc/self/task/<tid>/status` tells of a thread.
    struct Status {
        /// The state letter (`R`, `S`, `D`, ...).
        state: u8,
        /// Signals queued to the thread itself (`SigPnd`).
        pending: u64,
        /// Its mask of the moment (`SigBlk`).
        blocked: u64,
        /// Context switches so far (voluntary and not): unchanged while it has not run.
        switches: u64,
    }

    /// Thread `tid`'s state, or `None` once it has ended.
    fn status(tid: i32) -> Option<Status> {
        let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        let hex = |name: &str| u64::from_str_radix(field(name)?, 16).ok();
        let count = |name: &str| field(name)?.parse::<u64>().ok();
        let state = *field("State:")?.as_bytes().first()?;
        if matches!(state, b'Z' | b'X') {
            return None;
        }
        Some(Status {
            state,
            pending: hex("SigPnd:")?,
            blocked: hex("SigBlk:")?,
            switches: count("voluntary_ctxt_switches:")? + count("nonvoluntary_ctxt_switches:")?,
        })
    }

    fn bit(signo: i32) -> u64 {
        1u64 << (signo - 1)
    }

    /// One of this crate's waiting threads: they block every signal but the wake signal, for
    /// good (the C library's own signals 32, 33 and musl's 34 aside, which no application mask
    /// holds).
    fn ours_waiting(st: &Status) -> bool {
        let wake = bit(wake_signal());
        let others =
            !(wake | bit(libc::SIGKILL) | bit(libc::SIGSTOP) | bit(32) | bit(33) | bit(34));
        st.blocked & wake == 0 && st.blocked & others == others
    }

    /// How long a thread must have slept without running to count as asleep for good.
    const STILL: Duration = Duration::from_millis(2);

    /// How long the threads must stay as wanted, from one pass to a last one, for a change to
    /// be complete: a mask handler that ran nested in another handler (whose return puts the
    /// mask it saved back) is seen undone by then, unless that handler runs longer.
    const QUIET: Duration = Duration::from_millis(1);

    /// The threads seen asleep, each with its context switches then and since when.
    #[derive(Default)]
    struct Asleep(Vec<(i32, u64, Instant)>);

    impl Asleep {
        /// Whether thread `tid` sleeps and has not run for [`STILL`] at least (looked at again
        /// until then). A thread waiting for a lock wakes up within moments; one that
        /// blocks everything for good (Node's inspector thread) stays so.
        fn still(&mut self, tid: i32, st: &Status) -> bool {
            let seen = self.0.iter_mut().find(|seen| seen.0 == tid);
            match seen {
                _ if st.state != b'S' => {
                    self.0.retain(|seen| seen.0 != tid);
                    false
                }
                Some(seen) if seen.1 == st.switches => seen.2.elapsed() >= STILL,
                Some(seen) => {
                    *seen = (tid, st.switches, Instant::now());
                    false
                }
                None => {
                    self.0.push((tid, st.switches, Instant::now()));
                    false
                }
            }
        }

        /// Whether a thread that blocks the mask signal and the confined one now can be left
        /// to run the mask handler whenever it unblocks (see the module notes): one of this
        /// crate's waiting threads, or a thread asleep for good ([`still`](Self::still)) that
        /// the C library does not hold with its own signals blocked too (inside
        /// `pthread_create`, a thread's start or end, `posix_spawn`).
        fn settled(&mut self, tid: i32, st: &Status) -> bool {
            if ours_waiting(st) {
                return true;
            }
            let internal = bit(32) | bit(33);
            st.blocked & internal != internal && self.still(tid, st)
        }
    }

    /// Sends the mask signal to `tid` unless one is already queued to it (its handler applies
    /// the state of the moment it runs, so one is enough; more would use up the queue).
    fn signal(pid: i32, tid: i32, st: &Status) {
        if st.pending & bit(mask_signal()) != 0 {
            return;
        }
        // SAFETY: tgkill sends a signal whose handler is installed; a thread that has
        // ended meanwhile makes it fail with ESRCH, which the passes below accept.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, mask_signal()) };
    }

    /// Changes the calling thread's mask directly; whether `signo` was blocked before.
    fn change_own_mask(signo: i32, block: bool) -> bool {
        // SAFETY: `set` is initialised by sigemptyset before sigaddset and pthread_sigmask
        // read it; `old` is written by pthread_sigmask before sigismember reads it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signo);
            let how = if block {
                libc::SIG_BLOCK
            } else {
                libc::SIG_UNBLOCK
            };
            libc::pthread_sigmask(how, &set, &mut old);
            libc::sigismember(&old, signo) == 1
        }
    }

    /// Whether the calling thread blocks `signo` now.
    fn own_blocks(signo: i32) -> bool {
        // SAFETY: a null new set only queries; `old` is written before sigismember reads it.
        unsafe {
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut old);
            libc::sigismember(&old, signo) == 1
        }
    }

    /// Bumps the generation after a change of [`CONFINED`]; the new generation.
    fn next_generation() -> u64 {
        GENERATION.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Blocks `signo` in every thread but the receiver. Returns the threads that existed
    /// before (see [`release`]), or `None` if some thread could not be changed (one that
    /// blocks [`mask_signal`] but not `signo` and sleeps so, or that did not answer within
    /// [`PATIENCE`], or more threads than [`MAX_THREADS`]); then nothing stays changed.
    ///
    /// The caller holds the registry lock (one change at a time).
    pub fn confine(signo: i32) -> Result<Option<Vec<i32>>> {
        install_mask_handler()?;
        let receiver = receiver()?;
        RECEIVER.store(receiver, Ordering::SeqCst);
        let me = gettid();
        let (bit, mask_bit) = (bit(signo), bit(mask_signal()));
        // Someone else's handler for our private signal would run (or its default action
        // kill the process) in every thread signalled below; and without /proc (a container
        // that does not mount it) no thread can be listed nor a change seen. Unordered then.
        if !mask_handler_installed() || me == receiver {
            return Ok(None);
        }
        // Listed before anything changes: a thread started later and found blocking the signal
        // when it is released inherited it from a confined thread.
        let Some(before) = threads() else {
            return Ok(None);
        };
        sweep(&before);
        CONFINED.fetch_or(bit, Ordering::SeqCst);
        let generation = next_generation();
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        // The calling thread first: threads it creates from now on inherit the block.
        let Some(mine) = entry_for(me) else {
            release(signo, &before);
            return Ok(None);
        };
        if !change_own_mask(signo, true) {
            mine.ours.fetch_or(bit, Ordering::SeqCst);
        }
        let deadline = Instant::now() + PATIENCE;
        // The threads signalled, each with the handler runs that do not count (see below).
        let mut signalled: Vec<(i32, u64)> = Vec::new();
        let mut asleep = Asleep::default();
        // Complete after two passes in a row that find nothing to wait for, QUIET apart.
        let mut clean_since: Option<Instant> = None;
        let complete = 'passes: loop {
            let Some(tids) = threads() else {
                break false;
            };
            let mut waiting = false;
            for tid in tids {
                if tid == receiver || tid == me {
                    continue;
                }
                let after = signalled.iter().find(|s| s.0 == tid).map(|s| s.1);
                let (applied, runs) = applied(tid, generation, after.unwrap_or(0));
                let Some(st) = status(tid) else { continue };
                if applied {
                    if st.blocked & bit != 0 {
                        continue;
                    }
                    // Applied, and unblocked since: the handler ran nested in another handler
                    // (one whose mask lets ours in), whose return put the old mask back. Only a
                    // later run counts.
                    match signalled.iter_mut().find(|s| s.0 == tid) {
                        Some(s) => s.1 = runs,
                        None => signalled.push((tid, runs)),
                    }
                    signal(pid, tid, &st);
                    waiting = true;
                } else if after.is_none() {
                    if entry_for(tid).is_none() {
                        break 'passes false;
                    }
                    signal(pid, tid, &st);
                    signalled.push((tid, 0));
                    waiting = true;
                } else if st.blocked & mask_bit == 0 {
                    // It runs the handler as soon as it is scheduled.
                    waiting = true;
                } else if st.blocked & bit == 0 {
                    // It could take the signal now and cannot be changed while it blocks ours:
                    // for a moment (wait), or for good (give up).
                    if asleep.still(tid, &st) {
                        break 'passes false;
                    }
                    waiting = true;
                } else if !asleep.settled(tid, &st) {
                    waiting = true;
                }
            }
            if waiting {
                clean_since = None;
            } else {
                match clean_since {
                    Some(since) if since.elapsed() >= QUIET => break true,
                    Some(_) => {}
                    None => clean_since = Some(Instant::now()),
                }
            }
            if Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_micros(if waiting { 50 } else { 250 }));
        };
        if !complete {
            release(signo, &before);
            return Ok(None);
        }
        ESTABLISHED.fetch_or(bit, Ordering::SeqCst);
        Ok(Some(before))
    }

    /// Unblocks `signo` again in every thread that this crate blocked it in, and in every
    /// thread not in `before` (started during the confinement) that blocks it, but the
    /// receiver and this crate's waiting threads. Threads that blocked it on their own before
    /// keep it blocked.
    pub fn release(signo: i32, before: &[i32]) {
        let (bit, mask_bit) = (bit(signo), bit(mask_signal()));
        ESTABLISHED.fetch_and(!bit, Ordering::SeqCst);
        CONFINED.fetch_and(!bit, Ordering::SeqCst);
        let generation = next_generation();
        let me = gettid();
        let ours = |tid: i32| entry(tid).is_some_and(|e| e.ours.load(Ordering::SeqCst) & bit != 0);
        // The calling thread directly: blocked by this crate, or inherited.
        if ours(me) || (own_blocks(signo) && !before.contains(&me)) {
            change_own_mask(signo, false);
            if let Some(e) = entry(me) {
                e.ours.fetch_and(!bit, Ordering::SeqCst);
            }
        }
        let Ok(receiver) = receiver() else { return };
        if !mask_handler_installed() {
            return;
        }
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let deadline = Instant::now() + PATIENCE;
        let mut signalled: Vec<(i32, u64)> = Vec::new();
        let mut asleep = Asleep::default();
        loop {
            let Some(tids) = threads() else { return };
            let mut waiting = false;
            for &tid in &tids {
                if tid == receiver || tid == me {
                    continue;
                }
                let after = signalled.iter().find(|s| s.0 == tid).map(|s| s.1);
                let (applied, runs) = applied(tid, generation, after.unwrap_or(0));
                let Some(st) = status(tid) else { continue };
                if after.is_some() {
                    if applied && st.blocked & bit != 0 && st.blocked & mask_bit == 0 {
                        // Applied, and blocked again since (nested in another handler, see
                        // `confine`): once more, and only a later run counts.
                        if let Some(e) = entry(tid) {
                            e.ours.fetch_or(bit, Ordering::SeqCst);
                        }
                        if let Some(s) = signalled.iter_mut().find(|s| s.0 == tid) {
                            s.1 = runs;
                        }
                        signal(pid, tid, &st);
                        waiting = true;
                    } else if !applied && (st.blocked & mask_bit == 0 || !asleep.settled(tid, &st))
                    {
                        waiting = true;
                    }
                    continue;
                }
                let inherited =
                    !before.contains(&tid) && st.blocked & bit != 0 && !ours_waiting(&st);
                if ours(tid) {
                    // Unblocked by its handler (ours no longer confined).
                } else if inherited {
                    let Some(e) = entry_for(tid) else { continue };
                    e.ours.fetch_or(bit, Ordering::SeqCst);
                } else {
                    continue;
                }
                signal(pid, tid, &st);
                signalled.push((tid, 0));
                waiting = true;
            }
            if !waiting || Instant::now() > deadline {
                sweep(&tids);
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// The deliveries of `signo` handled on another thread than the receiver while it was
    /// confined.
    pub fn escapes(signo: i32) -> u64 {
        ESCAPES[signo as usize].load(Ordering::SeqCst)
    }

    /// Whether thread `tid` of this process blocks `signo` now (tests).
    #[cfg(test)]
    pub fn blocks(tid: i32, signo: i32) -> bool {
        status(tid).is_some_and(|s| s.blocked & bit(signo) != 0)
    }

    /// Each living thread with its mask, each read once (tests: a thread's mask may change
    /// between two reads, and one that ended reads as blocking nothing).
    #[cfg(test)]
    pub fn masks_now() -> Vec<(i32, u64)> {
        threads()
            .unwrap()
            .into_iter()
            .filter_map(|tid| Some((tid, status(tid)?.blocked)))
            .collect()
    }

    #[cfg(test)]
    pub fn receiver_tid() -> i32 {
        receiver().unwrap()
    }

    #[cfg(test)]
    pub fn tests_gettid() -> i32 {
        gettid()
    }

    /// Thread `tid` as the confinement sees it (for test failures): its status lines about
    /// signals and its entry.
    #[cfg(test)]
    pub fn tests_describe(tid: i32) -> String {
        let status =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap_or_default();
        let lines: Vec<&str> = status
            .lines()
            .filter(|l| {
                ["Name:", "State:", "Sig", "ShdPnd:", "voluntary"]
                    .iter()
                    .any(|k| l.starts_with(k))
            })
            .collect();
        let entry = entry(tid).map(|e| {
            (
                e.ours.load(Ordering::SeqCst),
                e.applied.load(Ordering::SeqCst),
            )
        });
        format!(
            "{} entry (ours, applied) {entry:x?} generation {} pid {}",
            lines.join(" | "),
            GENERATION.load(Ordering::SeqCst),
            std::process::id()
        )
    }

    /// How many times the mask handler ran on thread `tid` (tests). Async-signal-safe.
    #[cfg(test)]
    pub fn tests_runs(tid: i32) -> u64 {
        entry(tid).map_or(0, |e| e.runs.load(Ordering::SeqCst))
    }

    #[cfg(test)]
    pub fn tests_block_own(signo: i32) {
        change_own_mask(signo, true);
    }
}

/// Receives the signals it follows, each delivery once, with sender and payload.
///
/// Several watches of one signal each receive every delivery. Dropping the watch (or
/// [`close`](Self::close)) stops following; when the last watch of a signal ends, its
/// previous action is restored.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::signal::Watch;
/// let watch = Watch::new(&[ipckit::signal::rtmin() + 2])?;
/// assert!(watch.try_next()?.is_none());
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub struct Watch {
    slot: usize,
    signals: Vec<i32>,
    /// The real-time signals this watch counts as ordered (see [`Watch::ordered`]).
    confines: Vec<i32>,
    ordered: bool,
    /// Per confined signal, the escapes counted when the watch started (see
    /// [`Watch::ordered`]).
    escapes: Vec<(i32, u64)>,
    closed: AtomicBool,
    read: OwnedFd,
    _write: OwnedFd,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("signals", &self.signals)
            .finish()
    }
}

impl Watch {
    /// Follows `signals`, chaining to every handler it replaces (see [`with_chain`](Self::with_chain)).
    /// `EINVAL` for a signal [`is_allowed`] refuses, `EMFILE` (syscall `"watch"`, the message
    /// naming the limit) when [`MAX_WATCHES`] exist.
    pub fn new(signals: &[i32]) -> Result<Self> {
        Self::with_chain(signals, |_| true)
    }

    /// Follows `signals`; the handler of a signal that `chain(signo)` refuses is replaced
    /// rather than called after ours (for a host's own default-like handlers).
    ///
    /// The handlers are installed before this returns: a signal sent afterwards is seen.
    ///
    /// ```
    /// let w = ipckit::signal::Watch::with_chain(&[libc::SIGWINCH], |_| false)?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn with_chain(signals: &[i32], chain: impl Fn(i32) -> bool) -> Result<Self> {
        Self::with_options(signals, chain, true)
    }

    /// As [`with_chain`](Self::with_chain); `ordered: false` leaves every thread's signal
    /// mask alone, and real-time deliveries handled at the same moment on two threads may
    /// then be recorded swapped (see [`ordered`](Self::ordered)).
    ///
    /// ```
    /// let w = ipckit::signal::Watch::with_options(&[ipckit::signal::rtmin() + 9], |_| true, false)?;
    /// assert!(!w.ordered());
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn with_options(
        signals: &[i32],
        chain: impl Fn(i32) -> bool,
        ordered: bool,
    ) -> Result<Self> {
        let mut signals = signals.to_vec();
        signals.sort_unstable();
        signals.dedup();
        if signals.is_empty() || !signals.iter().all(|&s| is_allowed(s)) {
            return Err(Error::new(Errno::EINVAL, "sigaction"));
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let mut fds = [-1; 2];
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        #[cfg(any(target_os = "linux", target_os = "android"))]
        check(rc, "pipe2")?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // No pipe2 elsewhere (macOS): pipe + FD_CLOEXEC, then O_NONBLOCK on both ends.
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let (read, write) = nonblocking_pipe()?;
        // Room for bursts (1 MiB, the unprivileged maximum); the default 64 KiB when refused.
        // SAFETY: F_SETPIPE_SZ takes an int; failure leaves the pipe as it was.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        unsafe {
            libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20)
        };

        let mut registry = registry();
        let slot = registry
            .used
            .iter()
            .position(|used| !used)
            .ok_or(TOO_MANY_WATCHES)?;
        registry.used[slot] = true;
        let is_real_time = |s: &i32| (rtmin()..=rtmax()).contains(s);
        let mask = signals.iter().fold(0u64, |m, &s| m | 1u64 << (s - 1));
        // The real-time signals of an ordered watch are recorded once they are confined (below);
        // the others from the moment the handler is in place, as a host's handler that is
        // not chained no longer sees them.
        let later = signals
            .iter()
            .filter(|s| ordered && is_real_time(s))
            .fold(0u64, |m, &s| m | 1u64 << (s - 1));
        SLOTS[slot].dropped.store(0, Ordering::SeqCst);
        SLOTS[slot].fd.store(write.as_raw_fd(), Ordering::SeqCst);
        SLOTS[slot].mask.store(mask & !later, Ordering::SeqCst);
        for (i, &signo) in signals.iter().enumerate() {
            registry.watches[signo as usize] += 1;
            let installed = if registry.watches[signo as usize] == 1 {
                install(signo, chain(signo))
            } else {
                Ok(())
            };
            if let Err(e) = installed {
                for &undo in &signals[..=i] {
                    registry.watches[undo as usize] -= 1;
                    if registry.watches[undo as usize] == 0 {
                        uninstall(undo);
                    }
                }
                release_slot(slot);
                registry.used[slot] = false;
                return Err(e);
            }
        }
        let mut confines = Vec::new();
        let mut all_confined = true;
        for signo in signals
            .iter()
            .copied()
            .filter(|s| ordered && is_real_time(s))
        {
            match registry.order(signo) {
                Ok(confined) => {
                    confines.push(signo);
                    all_confined &= confined;
                }
                Err(e) => {
                    for &undo in &confines {
                        registry.unorder(undo);
                    }
                    release_slot(slot);
                    registry.used[slot] = false;
                    for &undo in &signals {
                        registry.watches[undo as usize] -= 1;
                        if registry.watches[undo as usize] == 0 {
                            uninstall(undo);
                        }
                    }
                    return Err(e);
                }
            }
        }
        let escapes = confines.iter().map(|&s| (s, escapes(s))).collect();
        // Records of the confined signals from now on: only the receiver writes them, in the
        // kernel's order (a delivery that another thread took before it was blocked has been
        // written before that thread answered).
        SLOTS[slot].mask.store(mask, Ordering::SeqCst);
        Ok(Self {
            slot,
            ordered: ordered && all_confined,
            confines,
            escapes,
            signals,
            closed: AtomicBool::new(false),
            read,
            _write: write,
        })
    }

    /// The signals followed, in number order, without duplicates.
    ///
    /// ```
    /// let w = ipckit::signal::Watch::new(&[libc::SIGUSR2, libc::SIGHUP, libc::SIGUSR2])?;
    /// assert_eq!(w.signals(), &[libc::SIGHUP, libc::SIGUSR2]);
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn signals(&self) -> &[i32] {
        &self.signals
    }

    /// Whether the real-time signals this watch follows are recorded in the order the kernel
    /// hands them out (which is send order for one signal number, and lower numbers first
    /// among pending ones), for deliveries sent once the watch exists. True when each of them
    /// is confined to this crate's poller thread (see the module docs); false for an
    /// unordered watch, where the platform has no real-time signals, if some other thread
    /// could not be changed (one that blocks [`mask_signal`] but not the signal and sleeps so,
    /// or that did not run its handler within 5 s), and from the moment a delivery of one of
    /// them was handled on another thread while the watch lived (a thread that unblocked it on
    /// its own: the order is not certain any more). A watch of standard signals only is
    /// ordered: those never queue, the kernel merges them.
    ///
    /// ```
    /// let w = ipckit::signal::Watch::new(&[libc::SIGUSR2])?;
    /// assert!(w.ordered());
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn ordered(&self) -> bool {
        self.ordered
            && self
                .escapes
                .iter()
                .all(|&(signo, before)| escapes(signo) == before)
    }

    /// Deliveries lost because this watch's pipe was full (a reader far behind).
    ///
    /// ```
    /// let w = ipckit::signal::Watch::new(&[libc::SIGUSR2])?;
    /// assert_eq!(w.dropped(), 0);
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn dropped(&self) -> u64 {
        if self.closed.load(Ordering::SeqCst) {
            return 0;
        }
        SLOTS[self.slot].dropped.load(Ordering::SeqCst)
    }

    /// The read end of the watch's pipe: readable while a delivery is waiting, for a caller
    /// that waits for readiness elsewhere (an event loop, [`crate::poller`]) and then calls
    /// [`try_next`](Self::try_next).
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let w = ipckit::signal::Watch::new(&[libc::SIGWINCH])?;
    /// assert!(w.as_fd().as_raw_fd() >= 0);
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.read.as_fd()
    }

    /// The next delivery if one is waiting, without blocking.
    ///
    /// ```
    /// let w = ipckit::signal::Watch::new(&[libc::SIGWINCH])?;
    /// assert_eq!(w.try_next()?, None);
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn try_next(&self) -> Result<Option<SignalInfo>> {
        let mut record = Record::default();
        // SAFETY: `record` is RECORD writable bytes; the fd is our pipe's read end.
        let n = unsafe {
            libc::read(
                self.read.as_raw_fd(),
                (&mut record as *mut Record).cast(),
                RECORD,
            )
        };
        match n {
            n if n == RECORD as isize => Ok(Some(record.info())),
            -1 if Errno::last() == Errno::EAGAIN => Ok(None),
            -1 => Err(Error::last("read")),
            // Records are written whole (atomically, below PIPE_BUF), so this cannot happen.
            _ => Err(Error::new(Errno::EIO, "read")),
        }
    }

    /// Waits for the next delivery; `canceller` interrupts the wait (then nothing was taken).
    ///
    /// ```
    /// use ipckit::{signal::Watch, wait::Canceller};
    /// let w = Watch::new(&[libc::SIGUSR1])?;
    /// // SAFETY: getpid has no preconditions.
    /// ipckit::signal::kill(unsafe { libc::getpid() }, libc::SIGUSR1)?;
    /// assert_eq!(w.next(&Canceller::new())?.signo, libc::SIGUSR1);
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn next(&self, canceller: &Canceller) -> Result<SignalInfo> {
        loop {
            if let Some(info) = self.try_next()? {
                return Ok(info);
            }
            interruptible(canceller, "poll", || {
                let mut pfd = libc::pollfd {
                    fd: self.read.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                check(unsafe { libc::poll(&mut pfd, 1, -1) }, "poll").map(drop)
            })?;
        }
    }

    /// Stops following: the handler writes nothing more here, and a signal no other watch
    /// follows gets its previous action back. Records already received stay readable.
    /// Idempotent; dropping the watch does the same.
    ///
    /// ```
    /// # #[cfg(any(target_os = "linux", target_os = "android"))] {
    /// use ipckit::signal::{disposition, Disposition, Watch, rtmin};
    /// let w = Watch::new(&[rtmin() + 4])?;
    /// w.close();
    /// assert_eq!(disposition(rtmin() + 4)?, Disposition::Default);
    /// # }
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut registry = registry();
        release_slot(self.slot);
        registry.used[self.slot] = false;
        // Unblocked before the old handlers come back: a delivery that waited in a thread's
        // own queue meanwhile still meets our handler, which chains to them.
        for &signo in &self.confines {
            registry.unorder(signo);
        }
        for &signo in &self.signals {
            registry.watches[signo as usize] -= 1;
            if registry.watches[signo as usize] == 0 {
                uninstall(signo);
            }
        }
    }
}

/// A watch's pipe where there is no `pipe2` (macOS): `pipe`, then `FD_CLOEXEC` and
/// `O_NONBLOCK` on both ends (a `fork` + `exec` on another thread in between could inherit
/// them; the C library offers no atomic way there).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn nonblocking_pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    check(unsafe { libc::pipe(fds.as_mut_ptr()) }, "pipe")?;
    // SAFETY: pipe succeeded, so both are open descriptors that nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in fds {
        // SAFETY: F_SETFD takes an int; `fd` is open, owned by `read` or `write`.
        let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        check(rc, "fcntl")?;
        // SAFETY: F_GETFL takes no argument; `fd` is open.
        let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) }, "fcntl")?;
        // SAFETY: F_SETFL takes an int; `fd` is open.
        let rc = unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
        check(rc, "fcntl")?;
    }
    Ok((read, write))
}

/// Detaches a slot from the handler and waits until no handler can still be using its fd.
fn release_slot(slot: usize) {
    SLOTS[slot].mask.store(0, Ordering::SeqCst);
    SLOTS[slot].fd.store(-1, Ordering::SeqCst);
    while SLOTS[slot].busy.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Dispositions are process-wide: tests that change them run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next delivery, waiting for it (a signal sent to the process may be handled by
    /// another thread, after `kill` returns).
    fn recv(w: &Watch) -> SignalInfo {
        w.next(&Canceller::new()).unwrap()
    }

    /// The chained handler runs after the record is written, maybe on another thread.
    fn wait_for(done: impl Fn() -> bool) {
        let start = std::time::Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(5), "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn me() -> i32 {
        // SAFETY: getpid has no preconditions.
        unsafe { libc::getpid() }
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "no real-time signals (SIGRTMIN+N)"
    )]
    fn names_round_trip_for_every_signal() {
        for d in list() {
            assert_eq!(number(&d.name), Some(d.number), "{}", d.name);
            assert_eq!(name(d.number).as_deref(), Some(d.name.as_str()));
        }
        assert_eq!(number("SIGIOT"), Some(libc::SIGABRT));
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            assert_eq!(number("SIGPOLL"), Some(libc::SIGIO));
            assert_eq!(number("SIGCLD"), Some(libc::SIGCHLD));
            assert_eq!(number("SIGUNUSED"), Some(libc::SIGSYS));
            assert_eq!(aliases(libc::SIGIO), ["SIGPOLL"]);
        }
        #[cfg(target_vendor = "apple")]
        assert_eq!(number("SIGCLD"), None);
        assert_eq!(number("SIGRTMIN+0"), Some(rtmin()));
        assert_eq!(number("SIGRTMAX-0"), Some(rtmax()));
        for bad in [
            "",
            "SIGRTMIN+",
            "SIGRTMIN-1",
            "SIGRTMAX+1",
            "SIGRTMIN+99",
            "sigterm",
            "SIGRTMIN+ 1",
        ] {
            assert_eq!(number(bad), None, "{bad}");
        }
        assert_eq!(name(0), None);
        assert_eq!(name(65), None);
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "no real-time signals (SIGRTMIN+N)"
    )]
    fn default_actions_follow_signal_7() {
        assert_eq!(describe(libc::SIGQUIT).unwrap().default_action, Core);
        assert_eq!(describe(libc::SIGCONT).unwrap().default_action, Continue);
        assert_eq!(describe(libc::SIGTTOU).unwrap().default_action, Stop);
        assert_eq!(describe(libc::SIGWINCH).unwrap().default_action, Ignore);
        assert_eq!(describe(rtmin() + 1).unwrap().default_action, Terminate);
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "sigqueue is ENOSYS, and no real-time signals"
    )]
    fn watch_receives_value_and_sender_and_restores_default() {
        let _serial = serial();
        let signo = rtmin() + 7;
        assert_eq!(disposition(signo).unwrap(), Disposition::Default);
        let a = Watch::new(&[signo]).unwrap();
        let b = Watch::new(&[signo, libc::SIGWINCH]).unwrap();
        assert_eq!(disposition(signo).unwrap(), Disposition::Handler);
        sigqueue(me(), signo, -5).unwrap();
        for w in [&a, &b] {
            let info = recv(w);
            assert_eq!(info.value, Some(-5));
            assert_eq!(info.pid, Some(me()));
            assert_eq!(info.code, libc::SI_QUEUE);
        }
        assert!(a.try_next().unwrap().is_none());
        drop(a);
        assert_eq!(disposition(signo).unwrap(), Disposition::Handler);
        kill(me(), signo).unwrap();
        let info = recv(&b);
        assert_eq!((info.code, info.value), (libc::SI_USER, None));
        b.close();
        assert_eq!(disposition(signo).unwrap(), Disposition::Default);
        assert_eq!(disposition(libc::SIGWINCH).unwrap(), Disposition::Default);
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "sigqueue is ENOSYS, and no real-time signals"
    )]
    fn real_time_signals_queue_and_arrive_in_send_order() {
        let _serial = serial();
        let signo = rtmin() + 8;
        let w = Watch::new(&[signo]).unwrap();
        assert!(w.ordered());
        // Sent from several threads of this (multi-threaded) process while others run.
        let senders: Vec<_> = (0..2)
            .map(|_| std::thread::spawn(move || std::thread::sleep(Duration::from_millis(20))))
            .collect();
        for i in 0..500 {
            sigqueue(me(), signo, i).unwrap();
        }
        let got: Vec<i32> = (0..500).map(|_| recv(&w).value.unwrap()).collect();
        assert_eq!(got, (0..500).collect::<Vec<_>>());
        assert_eq!(w.dropped(), 0);
        for s in senders {
            s.join().unwrap();
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn an_ordered_watch_confines_its_real_time_signal_and_gives_it_back() {
        let _serial = serial();
        let signo = rtmin() + 10;
        // A thread that blocks the signal on its own before, and keeps it blocked after.
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let own = std::thread::spawn(move || {
            confine::tests_block_own(signo);
            tx.send(confine::tests_gettid()).unwrap();
            stop_rx.recv().unwrap();
        });
        let own_tid = rx.recv().unwrap();
        // Threads that block it before: that one, and threads blocking every signal (this
        // crate's waiting threads, which other tests start meanwhile too).
        let has = |mask: u64, signo: i32| mask & 1u64 << (signo - 1) != 0;
        let ms = confine::mask_signal();
        let mut blocked_before = Vec::new();
        for (tid, mask) in confine::masks_now() {
            if has(mask, signo) {
                assert!(tid == own_tid || has(mask, ms), "thread {tid}: {mask:x}");
                blocked_before.push(tid);
            }
        }

        let w = Watch::new(&[signo, libc::SIGUSR2]).unwrap();
        assert!(w.ordered());
        let receiver = confine::receiver_tid();
        // A thread started now, from this (confined) thread, inherits the block.
        let late = std::thread::spawn(move || {
            let tid = confine::tests_gettid();
            (tid, confine::blocks(tid, signo))
        });
        let (_, late_blocks) = late.join().unwrap();
        assert!(late_blocks);
        for (tid, mask) in confine::masks_now() {
            assert_eq!(
                has(mask, signo),
                tid != receiver,
                "thread {tid}: {mask:x}; {}",
                confine::tests_describe(tid)
            );
        }
        // Standard signals are never confined.
        assert!(!confine::blocks(confine::tests_gettid(), libc::SIGUSR2));
        // A second ordered watch shares the confinement; an unordered one changes nothing.
        let w2 = Watch::new(&[signo]).unwrap();
        let u = Watch::with_options(&[signo], |_| true, false).unwrap();
        assert!(w2.ordered() && !u.ordered());
        w.close();
        assert!(confine::blocks(confine::tests_gettid(), signo));
        w2.close();
        for (tid, mask) in confine::masks_now() {
            assert!(
                !has(mask, signo) || blocked_before.contains(&tid) || has(mask, ms),
                "thread {tid}: {mask:x}; {}",
                confine::tests_describe(tid)
            );
        }
        assert!(confine::blocks(own_tid, signo));
        u.close();
        stop_tx.send(()).unwrap();
        own.join().unwrap();
    }

    /// Threads that start threads all along (as a host's thread pools and workers do) while
    /// ordered watches start and end: threads caught inside `pthread_create`, with every signal
    /// blocked for a moment, must be confined too, and given the signal back after.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn threads_started_while_a_watch_starts_are_confined_and_given_back() {
        use std::sync::Arc;
        let _serial = serial();
        let signo = rtmin() + 13;
        let ms = mask_signal().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let spawners: Vec<_> = (0..3)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        // Each new thread starts another one in turn.
                        std::thread::spawn(|| std::thread::spawn(|| ()).join().unwrap())
                            .join()
                            .unwrap();
                    }
                })
            })
            .collect();
        for round in 0..20 {
            let w = Watch::new(&[signo]).unwrap();
            assert!(w.ordered(), "round {round}");
            for i in 0..200 {
                sigqueue(me(), signo, i).unwrap();
            }
            let got: Vec<i32> = (0..200).map(|_| recv(&w).value.unwrap()).collect();
            assert_eq!(got, (0..200).collect::<Vec<_>>(), "round {round}");
            // No delivery was handled on another thread than the receiver meanwhile.
            assert!(w.ordered(), "round {round}");
            drop(w);
        }
        stop.store(true, Ordering::SeqCst);
        for s in spawners {
            s.join().unwrap();
        }
        // Given back: only threads that block every signal (this crate's own) still block it.
        for (tid, mask) in confine::masks_now() {
            let has = |signo: i32| mask & 1u64 << (signo - 1) != 0;
            assert!(
                !has(signo) || has(ms),
                "thread {tid}: {mask:x}; {}",
                confine::tests_describe(tid)
            );
        }
    }

    /// The mask handler runs nested in another handler whose mask lets it in (here one that
    /// returns as soon as the mask handler has run in it): that handler's return puts the
    /// thread's old mask back, and the confinement must see it and change the thread again.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_thread_inside_another_handler_is_confined_once_that_handler_returns() {
        let _serial = serial();
        let signo = rtmin() + 14;
        let other = rtmin() + 2;
        static IN_HANDLER: AtomicBool = AtomicBool::new(false);
        extern "C" fn busy(_: libc::c_int) {
            IN_HANDLER.store(true, Ordering::SeqCst);
            let me = confine::tests_gettid();
            let runs = confine::tests_runs(me);
            let start = std::time::Instant::now();
            while confine::tests_runs(me) == runs && start.elapsed() < Duration::from_secs(10) {
                std::hint::spin_loop();
            }
            IN_HANDLER.store(false, Ordering::SeqCst);
        }
        /// Gives `other` its default action back however the test ends.
        struct Restore(i32);
        impl Drop for Restore {
            fn drop(&mut self) {
                set_default(self.0).unwrap();
            }
        }
        // SAFETY: zeroed is "no flags, empty mask" (the mask signal gets in); the handler only
        // uses atomics, gettid and the clock.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = busy as *const () as libc::sighandler_t;
        set_action(other, &action).unwrap();
        let _restore = Restore(other);
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: pthread_self has no preconditions.
            let me = unsafe { libc::pthread_self() };
            tx.send((confine::tests_gettid(), me)).unwrap();
            stop_rx.recv().unwrap();
        });
        let (tid, thread) = rx.recv().unwrap();
        crate::testing::wait_until_in_syscall(tid, libc::SYS_futex);
        // SAFETY: the thread is alive (it waits for `stop`) and `other` has a handler.
        unsafe { libc::pthread_kill(thread, other) };
        crate::testing::wait_until("the thread runs the other handler", || {
            IN_HANDLER.load(Ordering::SeqCst)
        });
        let w = Watch::new(&[signo]).unwrap();
        assert!(w.ordered());
        // Once the thread is back in its wait (its own mask again), it blocks the signal.
        crate::testing::wait_until("the thread is back in its wait", || {
            !IN_HANDLER.load(Ordering::SeqCst)
        });
        crate::testing::wait_until_in_syscall(tid, libc::SYS_futex);
        assert!(
            confine::tests_runs(tid) >= 2,
            "{}",
            confine::tests_describe(tid)
        );
        assert!(
            confine::blocks(tid, signo),
            "{}",
            confine::tests_describe(tid)
        );
        assert!(w.ordered());
        drop(w);
        assert!(
            !confine::blocks(tid, signo),
            "{}",
            confine::tests_describe(tid)
        );
        stop_tx.send(()).unwrap();
        t.join().unwrap();
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn no_confinement_once_someone_else_took_the_mask_signal() {
        let _serial = serial();
        let signo = rtmin() + 12;
        let ms = mask_signal().unwrap();
        drop(Watch::new(&[signo]).unwrap()); // installs our mask handler
        /// Puts our handler back however the test ends (later tests need it).
        struct Restore(libc::sigaction);
        impl Drop for Restore {
            fn drop(&mut self) {
                set_action(mask_signal().unwrap(), &self.0).unwrap();
            }
        }
        let ours = current_action(ms).unwrap();
        let restore = Restore(ours);
        let mut ignore = ours;
        ignore.sa_sigaction = libc::SIG_IGN;
        set_action(ms, &ignore).unwrap();
        let w = Watch::new(&[signo]).unwrap();
        // No thread was signalled, none changed; the watch works, unordered.
        assert!(!w.ordered());
        for (tid, mask) in confine::masks_now() {
            let has = |signo: i32| mask & 1u64 << (signo - 1) != 0;
            assert!(!has(signo) || has(ms), "thread {tid}: {mask:x}");
        }
        sigqueue(me(), signo, 7).unwrap();
        assert_eq!(recv(&w).value, Some(7));
        drop(w);
        drop(restore);
        assert!(Watch::new(&[signo]).unwrap().ordered());
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "sigqueue is ENOSYS, and no real-time signals"
    )]
    fn an_unordered_watch_leaves_masks_alone() {
        let _serial = serial();
        let signo = rtmin() + 11;
        let w = Watch::with_options(&[signo], |_| true, false).unwrap();
        assert!(!w.ordered());
        #[cfg(any(target_os = "linux", target_os = "android"))]
        for (tid, mask) in confine::masks_now() {
            let has = |signo: i32| mask & 1u64 << (signo - 1) != 0;
            assert!(
                !has(signo) || has(confine::mask_signal()),
                "thread {tid}: {mask:x}"
            );
        }
        // Still receives every delivery.
        for i in 0..50 {
            sigqueue(me(), signo, i).unwrap();
        }
        let mut got: Vec<i32> = (0..50).map(|_| recv(&w).value.unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn refuses_reserved_and_fault_signals() {
        for signo in [
            libc::SIGKILL,
            libc::SIGSTOP,
            libc::SIGSEGV,
            libc::SIGILL,
            wake_signal(),
            0,
            65,
        ] {
            assert_eq!(Watch::new(&[signo]).unwrap_err().errno(), Errno::EINVAL);
            assert_eq!(ignore(signo).unwrap_err().errno(), Errno::EINVAL);
        }
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "no real-time signals (SIGRTMIN+N)"
    )]
    fn ignore_is_refused_while_watched_and_chain_reaches_the_old_handler() {
        let _serial = serial();
        static OLD_CALLS: AtomicUsize = AtomicUsize::new(0);
        extern "C" fn old(_: libc::c_int) {
            OLD_CALLS.fetch_add(1, Ordering::SeqCst);
        }
        let signo = rtmin() + 9;
        // SAFETY: zeroed is "no flags, empty mask"; the handler is async-signal-safe.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = old as *const () as libc::sighandler_t;
        set_action(signo, &action).unwrap();
        let w = Watch::new(&[signo]).unwrap();
        assert_eq!(ignore(signo).unwrap_err().errno(), Errno::EBUSY);
        kill(me(), signo).unwrap();
        recv(&w);
        wait_for(|| OLD_CALLS.load(Ordering::SeqCst) == 1);
        // Someone replaces our handler: reclaim puts it back and chains to the newcomer.
        set_action(signo, &action).unwrap();
        assert!(reclaim(signo, true).unwrap());
        kill(me(), signo).unwrap();
        recv(&w);
        wait_for(|| OLD_CALLS.load(Ordering::SeqCst) == 2);
        drop(w);
        assert_eq!(
            current_action(signo).unwrap().sa_sigaction,
            action.sa_sigaction
        );
        set_default(signo).unwrap();
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "sigqueue is ENOSYS, and no real-time signals"
    )]
    fn next_waits_and_cancels() {
        let _serial = serial();
        let _pool = crate::wait::POOL_TESTS
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let signo = rtmin() + 10;
        let w = std::sync::Arc::new(Watch::new(&[signo]).unwrap());
        let canceller = Canceller::new();
        let (tx, rx) = mpsc::channel();
        let (w2, c2) = (w.clone(), canceller.clone());
        crate::wait::spawn(move || tx.send(w2.next(&c2)).unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        sigqueue(me(), signo, 9).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(got.value, Some(9));
        let (tx, rx) = mpsc::channel();
        let (w2, c2) = (w.clone(), canceller.clone());
        crate::wait::spawn(move || tx.send(w2.next(&c2)).unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        canceller.cancel();
        let r = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(r.unwrap_err().is_cancelled());
    }
}
