//! The signal table: names, numbers, aliases and default actions of every standard and
//! real-time signal, as signal(7) tables them ([`describe`], [`list`], [`name`], [`number`]).

use crate::sys::{libc, rtmax, rtmin};

/// Highest signal number a watch can follow (signals 1..=64 on Linux).
pub(super) const MAX_SIGNAL: usize = 64;

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
