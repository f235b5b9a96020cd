//! POSIX message queues: `mq_open`, `mq_send`/`mq_timedsend`, `mq_receive`/`mq_timedreceive`,
//! `mq_getattr`/`mq_setattr`, `mq_notify`, `mq_unlink`; the system's limits
//! (`/proc/sys/fs/mqueue`) and a listing of the queues (the `mqueue` file system, usually
//! mounted at `/dev/mqueue`).
//!
//! A queue has a name (`/jobs`), holds up to `max_messages` messages of up to `message_size`
//! bytes each, fixed when it is created, and hands out the oldest message of the highest
//! priority first. It lives until [`unlink`], whatever happens to the processes using it.
//!
//! On Linux a queue descriptor (`mqd_t`) is a file descriptor: a [`MessageQueue`] owns it as an
//! [`OwnedFd`] (close-on-exec, as the kernel always makes it), and `poll`/`epoll` tell when it
//! has a message (readable) or room (writable), so an asynchronous caller waits on its poller
//! instead of on a thread. Elsewhere (macOS has no POSIX message queues) every call fails with
//! `ENOSYS`.
//!
//! ```
//! # #[cfg(target_os = "linux")] {
//! use ipckit::mqueue::{self, MessageQueue, OpenOptions, Wait};
//!
//! let name = format!("/ipckit-doc-{}", std::process::id());
//! let q = MessageQueue::open(&name, &OpenOptions { create: true, ..Default::default() })?;
//! q.send(b"low", 1, Wait::Now)?;
//! q.send(b"high", 9, Wait::Now)?;
//! let mut buf = vec![0u8; q.attributes()?.message_size as usize];
//! let (len, priority) = q.receive(&mut buf, Wait::Now)?;
//! assert_eq!((&buf[..len], priority), (&b"high"[..], 9));
//! mqueue::unlink(&name)?;
//! # }
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! For more information, see [`mq_overview(7)`](https://man7.org/linux/man-pages/man7/mq_overview.7.html).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Errno, Error, Result};

/// The longest queue name, without its leading slash (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Priorities run from 0 to `PRIORITY_MAX` (`MQ_PRIO_MAX - 1` on Linux); a larger message
/// priority fails with `EINVAL`.
pub const PRIORITY_MAX: u32 = 32767;

/// Where the `mqueue` file system is mounted on most Linux systems.
pub const DEFAULT_MOUNT: &str = "/dev/mqueue";

/// Checks a queue name as `mq_overview(7)` defines it: one leading slash, then 1 to
/// [`NAME_MAX`] bytes, none of them a slash or NUL, and not `.` or `..` (which the kernel
/// refuses). Fails with `EINVAL` (`ENAMETOOLONG` for a name too long), naming `syscall`.
///
/// ```
/// use ipckit::mqueue::check_name;
/// assert!(check_name("/jobs", "mq_open").is_ok());
/// assert_eq!(check_name("jobs", "mq_open").unwrap_err().code(), "EINVAL");
/// assert_eq!(check_name("/a/b", "mq_open").unwrap_err().code(), "EINVAL");
/// assert_eq!(check_name(&format!("/{}", "x".repeat(256)), "mq_open").unwrap_err().code(), "ENAMETOOLONG");
/// ```
pub fn check_name(name: &str, syscall: &'static str) -> Result<CString> {
    let invalid = || Error::new(Errno::EINVAL, syscall);
    let rest = name.strip_prefix('/').ok_or_else(invalid)?;
    if rest.is_empty() || rest.contains(['/', '\0']) || rest == "." || rest == ".." {
        return Err(invalid());
    }
    if rest.len() > NAME_MAX {
        return Err(Error::new(Errno::ENAMETOOLONG, syscall));
    }
    CString::new(name).map_err(|_| invalid())
}

/// Which operations a descriptor allows (`O_RDONLY`, `O_WRONLY`, `O_RDWR`).
///
/// ```
/// assert_eq!(ipckit::mqueue::Access::default(), ipckit::mqueue::Access::ReadWrite);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// Receive only (`O_RDONLY`).
    Read,
    /// Send only (`O_WRONLY`).
    Write,
    /// Both (`O_RDWR`).
    #[default]
    ReadWrite,
}

/// How [`MessageQueue::open`] finds or creates a queue.
///
/// ```
/// let o = ipckit::mqueue::OpenOptions { create: true, max_messages: Some(8), ..Default::default() };
/// assert_eq!(o.mode, 0o600);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// What this descriptor may do.
    pub access: Access,
    /// Create the queue if it does not exist (`O_CREAT`).
    pub create: bool,
    /// Fail with `EEXIST` if it exists (`O_CREAT | O_EXCL`); implies `create`.
    pub exclusive: bool,
    /// Permission bits of a created queue; the process's umask clears some, as for a file.
    pub mode: u32,
    /// Sends and receives fail with `EAGAIN` instead of waiting (`O_NONBLOCK`). The `Wait` of
    /// each call still applies: a [`Wait::Forever`] on such a descriptor polls until ready.
    pub nonblocking: bool,
    /// Capacity in messages of a created queue (`mq_maxmsg`); default: the system's
    /// `msg_default`. Above `msg_max` fails with `EINVAL` unless privileged.
    pub max_messages: Option<i64>,
    /// Largest message of a created queue (`mq_msgsize`); default: `msgsize_default`. Above
    /// `msgsize_max` fails with `EINVAL` unless privileged.
    pub message_size: Option<i64>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            access: Access::ReadWrite,
            create: false,
            exclusive: false,
            mode: 0o600,
            nonblocking: false,
            max_messages: None,
            message_size: None,
        }
    }
}

/// A queue's attributes (`struct mq_attr`, from `mq_getattr`).
///
/// ```
/// let a = ipckit::mqueue::Attributes { nonblocking: false, max_messages: 10, message_size: 8192, messages: 0 };
/// assert_eq!(a.messages, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// Whether this descriptor is non-blocking (`O_NONBLOCK` in `mq_flags`).
    pub nonblocking: bool,
    /// Capacity in messages (`mq_maxmsg`).
    pub max_messages: i64,
    /// Largest message in bytes (`mq_msgsize`).
    pub message_size: i64,
    /// Messages in the queue now (`mq_curmsgs`).
    pub messages: i64,
}

/// The owner and permissions of a queue (`fstat` of its descriptor).
///
/// ```
/// let o = ipckit::mqueue::Owner { uid: 0, gid: 0, mode: 0o600 };
/// assert_eq!(o.mode, 0o600);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

/// How long a send or receive may wait.
///
/// ```
/// use ipckit::mqueue::Wait;
/// let w = Wait::Until(std::time::Instant::now() + std::time::Duration::from_millis(50));
/// assert_ne!(w, Wait::Now);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Not at all: a full (send) or empty (receive) queue fails with `EAGAIN`, named as the
    /// untimed call (`mq_send`, `mq_receive`).
    Now,
    /// As long as it takes.
    Forever,
    /// Until the deadline, then `ETIMEDOUT` (`mq_timedsend`, `mq_timedreceive`); a deadline
    /// already past still takes a message that is there (or room that is free).
    Until(Instant),
}

/// What [`MessageQueue::notify`] registers (`struct sigevent`).
///
/// ```
/// let n = ipckit::mqueue::Notify::Signal { signal: libc::SIGUSR2, value: 7 };
/// assert_ne!(n, ipckit::mqueue::Notify::Remove);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notify {
    /// Send `signal` to this process with `value` as its `sigval` (`SIGEV_SIGNAL`, `si_code`
    /// `SI_MESGQ`) when a message arrives in the empty queue and nobody is waiting in a
    /// receive.
    Signal {
        /// The signal number.
        signal: i32,
        /// The `sival_int` the signal carries.
        value: i32,
    },
    /// Register without any notification (`SIGEV_NONE`): keeps other processes from
    /// registering.
    Register,
    /// Remove this process's registration (`mq_notify(mqdes, NULL)`).
    Remove,
}

/// A POSIX message queue descriptor, closed (`mq_close`) when dropped.
#[derive(Debug)]
pub struct MessageQueue {
    fd: OwnedFd,
}

impl MessageQueue {
    /// Opens or creates the queue `name` (`mq_open`), close-on-exec.
    ///
    /// Errors: `EINVAL` (a bad name, or `max_messages`/`message_size` out of the system's
    /// limits), `ENAMETOOLONG`, `ENOENT` (no queue, no `create`), `EEXIST` (`exclusive`),
    /// `EACCES`, `EMFILE` (the process's descriptors, or the bytes its user may hold in
    /// queues: `RLIMIT_MSGQUEUE`), `ENFILE`, `ENOSPC` (the system's `queues_max`), `ENOSYS`
    /// where there are no POSIX message queues (macOS).
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use ipckit::mqueue::{self, MessageQueue, OpenOptions};
    /// let name = format!("/ipckit-doc-open-{}", std::process::id());
    /// let q = MessageQueue::open(&name, &OpenOptions {
    ///     exclusive: true, max_messages: Some(4), message_size: Some(128), ..Default::default()
    /// })?;
    /// assert_eq!((q.attributes()?.max_messages, q.attributes()?.message_size), (4, 128));
    /// mqueue::unlink(&name)?;
    /// # }
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`mq_open(3)`](https://man7.org/linux/man-pages/man3/mq_open.3.html).
    #[doc(alias = "mq_open")]
    pub fn open(name: &str, options: &OpenOptions) -> Result<Self> {
        let cname = check_name(name, "mq_open")?;
        let fd = sys::open(&cname, options)?;
        Ok(Self { fd })
    }

    /// Sends `data` with `priority` (0..=[`PRIORITY_MAX`]) (`mq_send`, `mq_timedsend`).
    /// Waits as `wait` says while the queue is full; retried after `EINTR`.
    ///
    /// Errors: `EAGAIN` (full, [`Wait::Now`]), `ETIMEDOUT`, `EMSGSIZE` (longer than
    /// `message_size`), `EINVAL` (priority too large), `EBADF` (a receive-only descriptor).
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use ipckit::mqueue::{self, MessageQueue, OpenOptions, Wait};
    /// use std::time::{Duration, Instant};
    /// let name = format!("/ipckit-doc-send-{}", std::process::id());
    /// let q = MessageQueue::open(&name, &OpenOptions { exclusive: true, max_messages: Some(1), ..Default::default() })?;
    /// q.send(b"first", 3, Wait::Forever)?;
    /// let full = q.send(b"second", 3, Wait::Until(Instant::now() + Duration::from_millis(10))).unwrap_err();
    /// assert_eq!((full.code(), full.syscall()), ("ETIMEDOUT".to_string(), "mq_timedsend"));
    /// mqueue::unlink(&name)?;
    /// # }
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`mq_send(3)`](https://man7.org/linux/man-pages/man3/mq_send.3.html).
    #[doc(alias = "mq_send")]
    #[doc(alias = "mq_timedsend")]
    pub fn send(&self, data: &[u8], priority: u32, wait: Wait) -> Result<()> {
        send(self.fd.as_fd(), data, priority, wait)
    }

    /// Takes the oldest message of the highest priority into `buf` (`mq_receive`,
    /// `mq_timedreceive`) and returns its length and priority. `buf` must hold at least the
    /// queue's `message_size` bytes (else `EMSGSIZE`, and the message stays). Waits as `wait`
    /// says while the queue is empty; retried after `EINTR`.
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use ipckit::mqueue::{self, MessageQueue, OpenOptions, Wait};
    /// let name = format!("/ipckit-doc-receive-{}", std::process::id());
    /// let q = MessageQueue::open(&name, &OpenOptions { exclusive: true, message_size: Some(16), ..Default::default() })?;
    /// let mut buf = [0u8; 16];
    /// assert_eq!(q.receive(&mut buf, Wait::Now).unwrap_err().code(), "EAGAIN");
    /// q.send(b"hi", 1, Wait::Now)?;
    /// assert_eq!(q.receive(&mut buf, Wait::Now)?, (2, 1));
    /// mqueue::unlink(&name)?;
    /// # }
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`mq_receive(3)`](https://man7.org/linux/man-pages/man3/mq_receive.3.html).
    #[doc(alias = "mq_receive")]
    #[doc(alias = "mq_timedreceive")]
    pub fn receive(&self, buf: &mut [u8], wait: Wait) -> Result<(usize, u32)> {
        receive(self.fd.as_fd(), buf, wait)
    }

    /// The queue's attributes and this descriptor's flags (`mq_getattr`).
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use ipckit::mqueue::{self, MessageQueue, OpenOptions, Wait};
    /// let name = format!("/ipckit-doc-attr-{}", std::process::id());
    /// let q = MessageQueue::open(&name, &OpenOptions { exclusive: true, max_messages: Some(3), message_size: Some(32), ..Default::default() })?;
    /// q.send(b"x", 0, Wait::Now)?;
    /// let a = q.attributes()?;
    /// assert_eq!((a.max_messages, a.message_size, a.messages, a.nonblocking), (3, 32, 1, false));
    /// mqueue::unlink(&name)?;
    /// # }
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`mq_getattr(3)`](https://man7.org/linux/man-pages/man3/mq_getattr.3.html).
    #[doc(alias = "mq_getattr")]
    pub fn attributes(&self) -> Result<Attributes> {
        attributes(self.fd.as_fd())
    }

    /// Makes this descriptor non-blocking or blocking (`mq_setattr` of `O_NONBLOCK`, the only
    /// attribute it changes) and returns the attributes as they were.
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use ipckit::mqueue::{self, MessageQueue, OpenOptions};
    /// let name = format!("/ipckit-doc-setattr-{}", std::process::id());
    /// let q = MessageQueue::open(&name, &OpenOptions { exclusive: true, ..Default::default() })?;
    /// assert!(!q.set_nonblocking(true)?.nonblocking);
    /// assert!(q.attributes()?.nonblocking);
    /// mqueue::unlink(&name)?;
    /// # }
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`mq_setattr(3)`](https://man7.org/linux/man-pages/man3/mq_setattr.3.html).
    #[doc(alias = "mq_setattr")]
    pub fn set_nonblocking(&self, on: bool) -> Result<Attributes> {
        sys::set_nonblocking(self.fd.as_raw_fd(), on)
    }

    /// Registers or removes this process's notification (`mq_notify`). One process at a time
    /// may be registered (`EBUSY` otherwise); a notification is sent once, then the
    /// registration is gone. Closing any descriptor of the queue in this process (not only
    /// this one) cancels the registration, as `mq_close` does.
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use ipckit::mqueue::{self, MessageQueue, Notify, OpenOptions};
    /// let name = format!("/ipckit-doc-notify-{}", std::process::id());
    /// let q = MessageQueue::open(&name, &OpenOptions { exclusive: true, ..Default::default() })?;
    /// q.notify(Notify::Register)?;
    /// assert_eq!(q.notify(Notify::Register).unwrap_err().code(), "EBUSY");
    /// q.notify(Notify::Remove)?;
    /// mqueue::unlink(&name)?;
    /// # }
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`mq_notify(3)`](https://man7.org/linux/man-pages/man3/mq_notify.3.html).
    #[doc(alias = "mq_notify")]
    pub fn notify(&self, how: Notify) -> Result<()> {
        sys::notify(self.fd.as_raw_fd(), how)?;
        if let Some(inode) = inode_of(self.fd.as_fd()) {
            let mut regs = registrations();
            regs.retain(|r| r.inode != inode);
            let (notify, signo) = match how {
                Notify::Remove => return Ok(()),
                Notify::Register => (libc::SIGEV_NONE, 0),
                Notify::Signal { signal, .. } => (libc::SIGEV_SIGNAL, signal),
            };
            regs.push(Registration {
                inode,
                notify,
                signo,
            });
        }
        Ok(())
    }

    /// The queue's owner and permission bits (`fstat`); [`set_mode`](Self::set_mode) and
    /// [`set_owner`](Self::set_owner) change them.
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use ipckit::mqueue::{self, MessageQueue, OpenOptions};
    /// let name = format!("/ipckit-doc-owner-{}", std::process::id());
    /// let q = MessageQueue::open(&name, &OpenOptions { exclusive: true, ..Default::default() })?;
    /// q.set_mode(0o640)?;
    /// assert_eq!(q.owner()?.mode, 0o640);
    /// mqueue::unlink(&name)?;
    /// # }
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn owner(&self) -> Result<Owner> {
        owner(self.fd.as_fd())
    }

    /// Changes the queue's permission bits (`fchmod`); the owner or a privileged process may.
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        nix::sys::stat::fchmod(
            self.fd.as_fd(),
            nix::sys::stat::Mode::from_bits_truncate((mode & 0o777) as _),
        )
        .map_err(|e| Error::new(e, "fchmod"))
    }

    /// Changes the queue's owner (`fchown`); `None` keeps the current one.
    pub fn set_owner(&self, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
        nix::unistd::fchown(
            self.fd.as_fd(),
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
        )
        .map_err(|e| Error::new(e, "fchown"))
    }
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        // The kernel cancels this process's registration on the queue when any of its
        // descriptors closes: forget ours too. (The descriptor itself closes after this.)
        let mut regs = registrations();
        if !regs.is_empty() {
            if let Some(inode) = inode_of(self.fd.as_fd()) {
                regs.retain(|r| r.inode != inode);
            }
        }
    }
}

/// A notification this process registered through [`MessageQueue::notify`], by the queue's
/// inode: [`list`] must not read (open, then close) the file of such a queue, which would
/// cancel the registration.
struct Registration {
    inode: (u64, u64),
    notify: i32,
    signo: i32,
}

fn registrations() -> std::sync::MutexGuard<'static, Vec<Registration>> {
    static REGISTRATIONS: std::sync::Mutex<Vec<Registration>> = std::sync::Mutex::new(Vec::new());
    REGISTRATIONS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The device and inode numbers of a descriptor's file.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)] // dev_t, ino_t differ by target
fn inode_of(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd).ok()?;
    Some((st.st_dev as u64, st.st_ino as u64))
}

impl AsFd for MessageQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for MessageQueue {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// [`MessageQueue::send`] on a borrowed descriptor.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use ipckit::mqueue::{self, MessageQueue, OpenOptions, Wait};
/// use std::os::fd::AsFd;
/// let name = format!("/ipckit-doc-fd-{}-send", std::process::id());
/// let q = MessageQueue::open(&name, &OpenOptions { exclusive: true, message_size: Some(8), ..Default::default() })?;
/// mqueue::send(q.as_fd(), b"ok", 2, Wait::Now)?;
/// assert_eq!(q.attributes()?.messages, 1);
/// mqueue::unlink(&name)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn send(fd: BorrowedFd<'_>, data: &[u8], priority: u32, wait: Wait) -> Result<()> {
    with_wait(
        fd.as_raw_fd(),
        wait,
        libc::POLLOUT,
        "mq_send",
        "mq_timedsend",
        |ts| sys::timedsend(fd.as_raw_fd(), data, priority, ts),
    )
}

/// [`MessageQueue::receive`] on a borrowed descriptor.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use ipckit::mqueue::{self, MessageQueue, OpenOptions, Wait};
/// use std::os::fd::AsFd;
/// let name = format!("/ipckit-doc-fd-{}-receive", std::process::id());
/// let q = MessageQueue::open(&name, &OpenOptions { exclusive: true, message_size: Some(8), ..Default::default() })?;
/// q.send(b"ok", 2, Wait::Now)?;
/// let mut buf = [0u8; 8];
/// assert_eq!(mqueue::receive(q.as_fd(), &mut buf, Wait::Now)?, (2, 2));
/// mqueue::unlink(&name)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn receive(fd: BorrowedFd<'_>, buf: &mut [u8], wait: Wait) -> Result<(usize, u32)> {
    with_wait(
        fd.as_raw_fd(),
        wait,
        libc::POLLIN,
        "mq_receive",
        "mq_timedreceive",
        |ts| sys::timedreceive(fd.as_raw_fd(), buf, ts),
    )
}

/// [`MessageQueue::attributes`] on a borrowed descriptor.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use ipckit::mqueue::{self, MessageQueue, OpenOptions, Wait};
/// use std::os::fd::AsFd;
/// let name = format!("/ipckit-doc-fd-{}-attributes", std::process::id());
/// let q = MessageQueue::open(&name, &OpenOptions { exclusive: true, message_size: Some(8), ..Default::default() })?;
/// assert_eq!(mqueue::attributes(q.as_fd())?.message_size, 8);
/// mqueue::unlink(&name)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn attributes(fd: BorrowedFd<'_>) -> Result<Attributes> {
    sys::getattr(fd.as_raw_fd())
}

/// [`MessageQueue::owner`] on a borrowed descriptor.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use ipckit::mqueue::{self, MessageQueue, OpenOptions, Wait};
/// use std::os::fd::AsFd;
/// let name = format!("/ipckit-doc-fd-{}-owner", std::process::id());
/// let q = MessageQueue::open(&name, &OpenOptions { exclusive: true, message_size: Some(8), ..Default::default() })?;
/// assert_eq!(mqueue::owner(q.as_fd())?, q.owner()?);
/// mqueue::unlink(&name)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
#[allow(clippy::useless_conversion)] // st_mode is a u16 on macOS
pub fn owner(fd: BorrowedFd<'_>) -> Result<Owner> {
    let st = nix::sys::stat::fstat(fd).map_err(|e| Error::new(e, "fstat"))?;
    Ok(Owner {
        uid: st.st_uid,
        gid: st.st_gid,
        mode: u32::from(st.st_mode) & 0o777,
    })
}

/// An absolute `CLOCK_REALTIME` time `left` from now, as the timed calls take it.
fn realtime_in(left: Duration) -> libc::timespec {
    // SystemTime is CLOCK_REALTIME, the clock of the timed calls.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let at = now.saturating_add(left);
    libc::timespec {
        tv_sec: at.as_secs().min(i64::MAX as u64) as _,
        tv_nsec: at.subsec_nanos() as _,
    }
}

/// The time 0 (1970): a timed call with it answers at once. Linux checks it before sleeping
/// (a zero expiry never arms a timer), so it costs no more than a non-blocking call. Passed
/// from a local copy, never from read-only memory: qemu-user 7.x answers `EFAULT` for a
/// timespec in a read-only page (a C program with a `static const` one shows it).
const EXPIRED: libc::timespec = libc::timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// Runs a timed send or receive as `wait` says, whatever the descriptor's `O_NONBLOCK`:
/// `call(Some(ts))` is `mq_timed*` with an absolute time, `call(None)` the untimed call.
fn with_wait<T>(
    fd: RawFd,
    wait: Wait,
    events: libc::c_short,
    untimed: &'static str,
    timed: &'static str,
    mut call: impl FnMut(Option<&libc::timespec>) -> Result<T>,
) -> Result<T> {
    loop {
        // Through retry_eintr: a signal retries the call (with the time that is left), and a
        // thread whose host wants it stopped (a terminated Worker) ends it (see `interrupt`).
        let expired = EXPIRED;
        let result = crate::interrupt::retry_eintr(|| match wait {
            Wait::Now => call(Some(&expired)),
            Wait::Forever => call(None),
            Wait::Until(deadline) => match deadline.saturating_duration_since(Instant::now()) {
                left if left.is_zero() => call(Some(&expired)),
                left => call(Some(&realtime_in(left))),
            },
        });
        let e = match result {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        match (e.errno(), wait) {
            // A blocking descriptor reports the expired time 0 as a timeout.
            (Errno::ETIMEDOUT | Errno::EAGAIN, Wait::Now) => {
                return Err(Error::new(Errno::EAGAIN, untimed))
            }
            // A non-blocking descriptor: wait for readiness here, then try again.
            (Errno::EAGAIN, Wait::Forever) => poll(fd, events, None, untimed)?,
            (Errno::EAGAIN, Wait::Until(deadline)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::new(Errno::ETIMEDOUT, timed));
                }
                poll(fd, events, Some(left), timed)?;
            }
            // The call made stands for the one asked for: untimed unless a deadline was given.
            (errno, Wait::Now | Wait::Forever) => return Err(Error::new(errno, untimed)),
            (errno, Wait::Until(_)) => return Err(Error::new(errno, timed)),
        }
    }
}

/// Waits until `fd` has `events`, or `left` passed (no error then: the caller tries again).
/// Through `retry_eintr`, so a thread whose host wants it stopped ends here too (a signal
/// otherwise just returns, and the caller tries again with the time that is left).
fn poll(
    fd: RawFd,
    events: libc::c_short,
    left: Option<Duration>,
    syscall: &'static str,
) -> Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // Whole milliseconds, rounded up so that the deadline has passed when it returns.
    let ms = left.map_or(-1, |d| {
        d.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
    });
    let mut interrupted = false;
    let polled = crate::interrupt::retry_eintr(|| {
        if interrupted {
            // Interrupted once and not stopped: back to the caller, which recomputes the time.
            return Ok(0);
        }
        // SAFETY: `pfd` is one valid pollfd, as the count says.
        let rc = crate::error::check(unsafe { libc::poll(&mut pfd, 1, ms) }, "poll");
        interrupted = rc.as_ref().is_err_and(|e| e.errno() == Errno::EINTR);
        rc
    });
    match polled {
        Err(e) => Err(e),
        _ if pfd.revents & libc::POLLNVAL != 0 => Err(Error::new(Errno::EBADF, syscall)),
        _ => Ok(()),
    }
}

/// Removes the queue `name` (`mq_unlink`): the name is free at once, and the queue goes away
/// when the last descriptor on it is closed.
///
/// ```
/// assert_eq!(ipckit::mqueue::unlink("/ipckit-no-such-queue").unwrap_err().code(),
///            if cfg!(target_os = "linux") { "ENOENT" } else { "ENOSYS" });
/// ```
///
/// For more information, see [`mq_unlink(3)`](https://man7.org/linux/man-pages/man3/mq_unlink.3.html).
#[doc(alias = "mq_unlink")]
pub fn unlink(name: &str) -> Result<()> {
    let cname = check_name(name, "mq_unlink")?;
    sys::unlink(&cname)
}

/// The system's limits on POSIX message queues, from `/proc/sys/fs/mqueue` (per IPC
/// namespace); a field is `None` where its file cannot be read (not Linux).
///
/// ```
/// let l = ipckit::mqueue::limits();
/// # #[cfg(target_os = "linux")]
/// assert!(l.msg_max.unwrap() >= 1 && l.msgsize_max.unwrap() >= 128);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// The largest `max_messages` an unprivileged process may ask for (`msg_max`).
    pub msg_max: Option<i64>,
    /// The largest `message_size` an unprivileged process may ask for (`msgsize_max`).
    pub msgsize_max: Option<i64>,
    /// Queues the system holds at most, unless the creator is privileged (`queues_max`).
    pub queues_max: Option<i64>,
    /// `max_messages` of a queue created without it (`msg_default`).
    pub msg_default: Option<i64>,
    /// `message_size` of a queue created without it (`msgsize_default`).
    pub msgsize_default: Option<i64>,
}

/// Reads the limits (see [`Limits`]) now; an administrator may change them at any time.
///
/// For more information, see [`mq_overview(7)`](https://man7.org/linux/man-pages/man7/mq_overview.7.html).
pub fn limits() -> Limits {
    let read = |name: &str| -> Option<i64> {
        std::fs::read_to_string(format!("/proc/sys/fs/mqueue/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Limits {
        msg_max: read("msg_max"),
        msgsize_max: read("msgsize_max"),
        queues_max: read("queues_max"),
        msg_default: read("msg_default"),
        msgsize_default: read("msgsize_default"),
    }
}

/// The bytes the user's `RLIMIT_MSGQUEUE` is charged for a queue of these attributes, as the
/// kernel counts it (the messages, plus their headers and a tree node per priority); a
/// creation that would take the user's total above the limit fails with `EMFILE`.
///
/// ```
/// assert!(ipckit::mqueue::charged_bytes(10, 8192) > 81920);
/// ```
pub fn charged_bytes(max_messages: i64, message_size: i64) -> u64 {
    // struct msg_msg is 48 bytes and struct posix_msg_tree_node 40 on 64-bit kernels
    // (ipc/mqueue.c, mqueue_get_inode); an estimate elsewhere.
    let m = max_messages.max(0) as u64;
    let s = message_size.max(0) as u64;
    m.saturating_mul(48)
        .saturating_add(m.min(32768).saturating_mul(40))
        .saturating_add(m.saturating_mul(s))
}

/// The soft `RLIMIT_MSGQUEUE` of this process, in bytes (`None` for unlimited or unknown).
///
/// ```
/// if let Some(bytes) = ipckit::mqueue::rlimit_msgqueue() {
///     assert!(ipckit::mqueue::charged_bytes(1, 1) <= bytes);
/// }
/// ```
pub fn rlimit_msgqueue() -> Option<u64> {
    sys::rlimit_msgqueue()
}

/// A queue as the `mqueue` file system shows it (see [`list`]).
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// for q in ipckit::mqueue::list(None).unwrap_or_default() {
///     println!("{} {:?} bytes, mode {:o}", q.name, q.bytes, q.mode);
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name, with its leading slash (`/jobs`).
    pub name: String,
    /// Bytes of the messages in the queue (`QSIZE`); `None` for a queue this process is
    /// registered on for notification (see [`list`]).
    pub bytes: Option<u64>,
    /// The registered notification: `None` when no process is registered, else the
    /// `sigev_notify` value (`SIGEV_SIGNAL` 0, `SIGEV_NONE` 1, `SIGEV_THREAD` 2; `NOTIFY`).
    pub notify: Option<i32>,
    /// The signal of a `SIGEV_SIGNAL` registration (`SIGNO`), 0 otherwise.
    pub signo: i32,
    /// The process registered for notification (`NOTIFY_PID`), 0 for none.
    pub notify_pid: i32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    /// The attributes (`mq_getattr`), when this process may open the queue; `None` when it
    /// may not, and for a queue this process is registered on for notification (see
    /// [`list`]).
    pub attributes: Option<Attributes>,
}

/// Where the `mqueue` file system is mounted: [`DEFAULT_MOUNT`] if it is mounted there, else
/// the first mount of it in `/proc/self/mountinfo`; `None` when it is not mounted.
///
/// ```
/// if let Some(dir) = ipckit::mqueue::mount_point() { println!("queues live in {}", dir.display()); }
/// ```
pub fn mount_point() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut found: Option<PathBuf> = None;
    for line in info.lines() {
        // "<id> <parent> <major:minor> <root> <mount point> <options> [optional...] - <fstype> ..."
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split_whitespace().next() != Some("mqueue") {
            continue;
        }
        let Some(point) = left.split_whitespace().nth(4) else {
            continue;
        };
        let point = PathBuf::from(unescape_mountinfo(point));
        if point == Path::new(DEFAULT_MOUNT) {
            return Some(point);
        }
        found.get_or_insert(point);
    }
    found
}

/// Undoes the octal escapes (`\040` for a space) of a mountinfo field.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = field
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lists the queues in the `mqueue` file system at `dir` (default: [`mount_point`]), sorted
/// by name, as `ls /dev/mqueue` and `cat /dev/mqueue/NAME` show them: the file's contents
/// (`QSIZE:... NOTIFY:... SIGNO:... NOTIFY_PID:...`) and its owner and mode. Queues that go
/// away meanwhile are left out.
///
/// Reading a queue's file opens the queue, and closing any descriptor of a queue cancels the
/// notification the closing process registered on it (`mq_close` does, whatever the
/// descriptor): so a queue this process registered through [`MessageQueue::notify`] is not
/// read, and is listed from what this process knows of it (its registration, owner and mode;
/// `bytes` and `attributes` are `None`). A registration used up by its notification since is
/// still shown.
///
/// The file system shows the queues of the IPC namespace that mounted it. Errors: `ENOENT`
/// (syscall `opendir`) when it is not mounted (`mount -t mqueue none /dev/mqueue` mounts it),
/// `ENOSYS` (syscall `mq_open`) where there are no POSIX message queues.
///
/// For more information, see [`mq_overview(7)`](https://man7.org/linux/man-pages/man7/mq_overview.7.html).
pub fn list(dir: Option<&Path>) -> Result<Vec<Entry>> {
    if !cfg!(target_os = "linux") {
        return Err(Error::new(Errno::ENOSYS, "mq_open"));
    }
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => mount_point().ok_or(Error::new(Errno::ENOENT, "opendir"))?,
    };
    let io = |syscall: &'static str| {
        move |e: std::io::Error| {
            Error::new(
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                syscall,
            )
        }
    };
    let mut entries = Vec::new();
    for dirent in std::fs::read_dir(&dir).map_err(io("opendir"))? {
        let dirent = dirent.map_err(io("readdir"))?;
        let name = format!("/{}", dirent.file_name().to_string_lossy());
        let path = dirent.path();
        // stat, unlike open, leaves a registration alone.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // unlinked meanwhile
        };
        use std::os::unix::fs::MetadataExt;
        let mine = registrations()
            .iter()
            .find(|r| r.inode == (meta.dev(), meta.ino()))
            .map(|r| (r.notify, r.signo));
        if let Some((notify, signo)) = mine {
            entries.push(Entry {
                name,
                bytes: None,
                notify: Some(notify),
                signo,
                notify_pid: std::process::id() as i32,
                uid: meta.uid(),
                gid: meta.gid(),
                mode: meta.mode() & 0o777,
                attributes: None,
            });
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // unlinked meanwhile
        };
        let Some(fields) = parse_status(&text) else {
            continue;
        };
        let attributes = [Access::Read, Access::Write].iter().find_map(|&access| {
            let q = MessageQueue::open(
                &name,
                &OpenOptions {
                    access,
                    ..Default::default()
                },
            )
            .ok()?;
            q.attributes().ok()
        });
        entries.push(Entry {
            name,
            bytes: Some(fields.0),
            notify: (fields.3 != 0).then_some(fields.1),
            signo: fields.2,
            notify_pid: fields.3,
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o777,
            attributes,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Parses a queue file's text, `QSIZE:129 NOTIFY:2 SIGNO:0 NOTIFY_PID:8260`, into
/// (qsize, notify, signo, notify_pid).
fn parse_status(text: &str) -> Option<(u64, i32, i32, i32)> {
    let mut qsize = None;
    let mut notify = None;
    let mut signo = None;
    let mut pid = None;
    for field in text.split_whitespace() {
        let (key, value) = field.split_once(':')?;
        match key {
            "QSIZE" => qsize = value.parse().ok(),
            "NOTIFY" => notify = value.parse().ok(),
            "SIGNO" => signo = value.parse().ok(),
            "NOTIFY_PID" => pid = value.parse().ok(),
            _ => {}
        }
    }
    Some((qsize?, notify?, signo?, pid?))
}

/// The calls themselves, on Linux.
#[cfg(target_os = "linux")]
mod sys {
    use std::ffi::CStr;
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};

    use super::{Access, Attributes, Notify, OpenOptions};
    use crate::error::{check, Errno, Error, Result};
    use crate::sys::libc;

    #[allow(clippy::unnecessary_cast)] // mq_attr's fields are c_long: i64 on 64-bit targets only
    fn to_attributes(a: &libc::mq_attr) -> Attributes {
        Attributes {
            nonblocking: a.mq_flags & libc::O_NONBLOCK as libc::c_long != 0,
            max_messages: a.mq_maxmsg as i64,
            message_size: a.mq_msgsize as i64,
            messages: a.mq_curmsgs as i64,
        }
    }

    fn zeroed_attr() -> libc::mq_attr {
        // SAFETY: mq_attr is plain integers (and padding), for which all-zero is valid.
        unsafe { std::mem::zeroed() }
    }

    #[allow(clippy::useless_conversion)] // i64 to c_long, which is i64 on 64-bit targets only
    pub(super) fn open(name: &CStr, options: &OpenOptions) -> Result<OwnedFd> {
        let mut flags = match options.access {
            Access::Read => libc::O_RDONLY,
            Access::Write => libc::O_WRONLY,
            Access::ReadWrite => libc::O_RDWR,
        } | libc::O_CLOEXEC;
        if options.create || options.exclusive {
            flags |= libc::O_CREAT;
        }
        if options.exclusive {
            flags |= libc::O_EXCL;
        }
        if options.nonblocking {
            flags |= libc::O_NONBLOCK;
        }
        let mut attr = zeroed_attr();
        let custom = options.max_messages.is_some() || options.message_size.is_some();
        if custom {
            let l = super::limits();
            attr.mq_maxmsg = options
                .max_messages
                .or(l.msg_default)
                .unwrap_or(10)
                .try_into()
                .map_err(|_| Error::new(Errno::EINVAL, "mq_open"))?;
            attr.mq_msgsize = options
                .message_size
                .or(l.msgsize_default)
                .unwrap_or(8192)
                .try_into()
                .map_err(|_| Error::new(Errno::EINVAL, "mq_open"))?;
        }
        let attr_ptr: *const libc::mq_attr = if custom { &attr } else { std::ptr::null() };
        // SAFETY: `name` is NUL-terminated; with O_CREAT mq_open reads a mode (promoted to an
        // unsigned int, as varargs pass mode_t) and an mq_attr pointer that is null or points
        // to `attr`, which lives across the call.
        let fd = unsafe {
            libc::mq_open(
                name.as_ptr(),
                flags,
                (options.mode & 0o777) as libc::c_uint,
                attr_ptr,
            )
        };
        let fd = check(fd, "mq_open")?;
        // SAFETY: mq_open returned a new descriptor (an fd on Linux) that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    pub(super) fn timedsend(
        fd: RawFd,
        data: &[u8],
        priority: u32,
        at: Option<&libc::timespec>,
    ) -> Result<()> {
        let ptr = data.as_ptr().cast::<libc::c_char>();
        let rc = match at {
            // SAFETY: `data` is readable for `data.len()` bytes; `at` is a valid timespec.
            Some(ts) => unsafe { libc::mq_timedsend(fd, ptr, data.len(), priority, ts) },
            // SAFETY: as above.
            None => unsafe { libc::mq_send(fd, ptr, data.len(), priority) },
        };
        let name = if at.is_some() {
            "mq_timedsend"
        } else {
            "mq_send"
        };
        check(rc, name).map(drop)
    }

    pub(super) fn timedreceive(
        fd: RawFd,
        buf: &mut [u8],
        at: Option<&libc::timespec>,
    ) -> Result<(usize, u32)> {
        let mut priority: libc::c_uint = 0;
        let ptr = buf.as_mut_ptr().cast::<libc::c_char>();
        let n = match at {
            // SAFETY: `buf` is writable for `buf.len()` bytes, `priority` for one c_uint;
            // `ts` is a valid timespec.
            Some(ts) => unsafe { libc::mq_timedreceive(fd, ptr, buf.len(), &mut priority, ts) },
            // SAFETY: as above.
            None => unsafe { libc::mq_receive(fd, ptr, buf.len(), &mut priority) },
        };
        let name = if at.is_some() {
            "mq_timedreceive"
        } else {
            "mq_receive"
        };
        let n = check(n, name)?;
        Ok((n as usize, priority))
    }

    pub(super) fn getattr(fd: RawFd) -> Result<Attributes> {
        let mut attr = zeroed_attr();
        // SAFETY: mq_getattr fills the mq_attr `attr` points to.
        check(unsafe { libc::mq_getattr(fd, &mut attr) }, "mq_getattr")?;
        Ok(to_attributes(&attr))
    }

    pub(super) fn set_nonblocking(fd: RawFd, on: bool) -> Result<Attributes> {
        let mut new = zeroed_attr();
        new.mq_flags = if on {
            libc::O_NONBLOCK as libc::c_long
        } else {
            0
        };
        let mut old = zeroed_attr();
        // SAFETY: both pointers are to valid mq_attr values; mq_setattr reads the first and
        // fills the second.
        let rc = unsafe { libc::mq_setattr(fd, &new, &mut old) };
        check(rc, "mq_setattr")?;
        Ok(to_attributes(&old))
    }

    pub(super) fn notify(fd: RawFd, how: Notify) -> Result<()> {
        // SAFETY: sigevent is plain data (integers, a union of an int and a pointer, padding),
        // for which all-zero is valid.
        let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
        let ev_ptr: *const libc::sigevent = match how {
            Notify::Remove => std::ptr::null(),
            Notify::Register => {
                ev.sigev_notify = libc::SIGEV_NONE;
                &ev
            }
            Notify::Signal { signal, value } => {
                ev.sigev_notify = libc::SIGEV_SIGNAL;
                ev.sigev_signo = signal;
                // sival_int shares the union with sival_ptr; on little-endian targets it is
                // the low half of the pointer-sized field, on big-endian the high one.
                let bits = if cfg!(target_endian = "little") || cfg!(target_pointer_width = "32") {
                    value as u32 as usize
                } else {
                    (value as u32 as usize) << 32
                };
                ev.sigev_value = libc::sigval {
                    sival_ptr: bits as *mut libc::c_void,
                };
                &ev
            }
        };
        // SAFETY: `ev_ptr` is null (remove) or points to `ev`, a valid sigevent that lives
        // across the call.
        check(unsafe { libc::mq_notify(fd, ev_ptr) }, "mq_notify").map(drop)
    }

    pub(super) fn unlink(name: &CStr) -> Result<()> {
        // SAFETY: `name` is NUL-terminated.
        check(unsafe { libc::mq_unlink(name.as_ptr()) }, "mq_unlink").map(drop)
    }

    pub(super) fn rlimit_msgqueue() -> Option<u64> {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills the rlimit `rl` points to.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut rl) };
        #[allow(clippy::unnecessary_cast)] // rlim_t is a u32 on some 32-bit targets
        (rc == 0 && rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur as u64)
    }
}

/// Where there are no POSIX message queues (macOS): every call fails with `ENOSYS`.
#[cfg(not(target_os = "linux"))]
mod sys {
    use std::ffi::CStr;
    use std::os::fd::{OwnedFd, RawFd};

    use super::{Attributes, Notify, OpenOptions};
    use crate::error::{Errno, Error, Result};

    fn missing<T>(syscall: &'static str) -> Result<T> {
        Err(Error::new(Errno::ENOSYS, syscall))
    }

    pub(super) fn open(_: &CStr, _: &OpenOptions) -> Result<OwnedFd> {
        missing("mq_open")
    }

    pub(super) fn timedsend(_: RawFd, _: &[u8], _: u32, at: Option<&libc::timespec>) -> Result<()> {
        missing(if at.is_some() {
            "mq_timedsend"
        } else {
            "mq_send"
        })
    }

    pub(super) fn timedreceive(
        _: RawFd,
        _: &mut [u8],
        at: Option<&libc::timespec>,
    ) -> Result<(usize, u32)> {
        missing(if at.is_some() {
            "mq_timedreceive"
        } else {
            "mq_receive"
        })
    }

    pub(super) fn getattr(_: RawFd) -> Result<Attributes> {
        missing("mq_getattr")
    }

    pub(super) fn set_nonblocking(_: RawFd, _: bool) -> Result<Attributes> {
        missing("mq_setattr")
    }

    pub(super) fn notify(_: RawFd, _: Notify) -> Result<()> {
        missing("mq_notify")
    }

    pub(super) fn unlink(_: &CStr) -> Result<()> {
        missing("mq_unlink")
    }

    pub(super) fn rlimit_msgqueue() -> Option<u64> {
        None
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A queue name unique to this test run, unlinked when dropped.
    struct Name(String);
    impl Name {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            Self(format!("/ipckit-test-{}-{n}", std::process::id()))
        }
    }
    impl Drop for Name {
        fn drop(&mut self) {
            let _ = unlink(&self.0);
        }
    }
    fn create(name: &Name, max: i64, size: i64) -> MessageQueue {
        let opts = OpenOptions {
            exclusive: true,
            max_messages: Some(max),
            message_size: Some(size),
            ..Default::default()
        };
        MessageQueue::open(&name.0, &opts).unwrap()
    }

    #[test]
    fn priorities_then_arrival_order() {
        let name = Name::new();
        let q = create(&name, 8, 64);
        for (data, prio) in [
            (&b"a1"[..], 1),
            (b"c5", 5),
            (b"b1", 1),
            (b"d0", 0),
            (b"e5", 5),
        ] {
            q.send(data, prio, Wait::Now).unwrap();
        }
        assert_eq!(q.attributes().unwrap().messages, 5);
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        while let Ok((n, p)) = q.receive(&mut buf, Wait::Now) {
            got.push((String::from_utf8(buf[..n].to_vec()).unwrap(), p));
        }
        let want = [("c5", 5), ("e5", 5), ("a1", 1), ("b1", 1), ("d0", 0)];
        assert_eq!(
            got,
            want.iter()
                .map(|(s, p)| (s.to_string(), *p))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn now_is_eagain_when_empty_or_full_on_a_blocking_descriptor() {
        let name = Name::new();
        let q = create(&name, 2, 16);
        assert!(!q.attributes().unwrap().nonblocking);
        let mut buf = [0u8; 16];
        let e = q.receive(&mut buf, Wait::Now).unwrap_err();
        assert_eq!((e.errno(), e.syscall()), (Errno::EAGAIN, "mq_receive"));
        q.send(b"1", 0, Wait::Now).unwrap();
        q.send(b"2", 0, Wait::Now).unwrap();
        let e = q.send(b"3", 0, Wait::Now).unwrap_err();
        assert_eq!((e.errno(), e.syscall()), (Errno::EAGAIN, "mq_send"));
        assert_eq!(q.attributes().unwrap().messages, 2);
    }

    #[test]
    fn until_times_out_near_the_deadline_blocking_or_not() {
        let name = Name::new();
        let q = create(&name, 2, 16);
        let mut buf = [0u8; 16];
        for nonblocking in [false, true] {
            q.set_nonblocking(nonblocking).unwrap();
            let start = Instant::now();
            let e = q
                .receive(&mut buf, Wait::Until(start + Duration::from_millis(60)))
                .unwrap_err();
            let took = start.elapsed();
            assert_eq!(
                (e.errno(), e.syscall()),
                (Errno::ETIMEDOUT, "mq_timedreceive")
            );
            assert!(took >= Duration::from_millis(59), "{took:?}");
            assert!(took < Duration::from_secs(5), "{took:?}");
        }
        // A deadline already past still takes a message that is there.
        q.send(b"here", 3, Wait::Now).unwrap();
        let (n, p) = q.receive(&mut buf, Wait::Until(Instant::now())).unwrap();
        assert_eq!((&buf[..n], p), (&b"here"[..], 3));
    }

    #[test]
    fn forever_on_a_nonblocking_descriptor_waits_for_a_sender() {
        let name = Name::new();
        let q = create(&name, 2, 16);
        let old = q.set_nonblocking(true).unwrap();
        assert!(!old.nonblocking);
        assert!(q.attributes().unwrap().nonblocking);
        let sender_name = name.0.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let s = MessageQueue::open(
                &sender_name,
                &OpenOptions {
                    access: Access::Write,
                    ..Default::default()
                },
            )
            .unwrap();
            s.send(b"late", 7, Wait::Forever).unwrap();
        });
        let mut buf = [0u8; 16];
        let (n, p) = q.receive(&mut buf, Wait::Forever).unwrap();
        assert_eq!((&buf[..n], p), (&b"late"[..], 7));
        sender.join().unwrap();
    }

    #[test]
    fn short_buffer_is_emsgsize_and_the_message_stays() {
        let name = Name::new();
        let q = create(&name, 2, 64);
        q.send(b"x", 0, Wait::Now).unwrap();
        let mut small = [0u8; 63];
        let e = q.receive(&mut small, Wait::Now).unwrap_err();
        assert_eq!((e.errno(), e.syscall()), (Errno::EMSGSIZE, "mq_receive"));
        assert_eq!(q.attributes().unwrap().messages, 1);
        let e = q.send(&[0u8; 65], 0, Wait::Now).unwrap_err();
        assert_eq!(e.errno(), Errno::EMSGSIZE);
        let e = q.send(b"x", PRIORITY_MAX + 1, Wait::Now).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
        q.send(b"y", PRIORITY_MAX, Wait::Now).unwrap();
    }

    #[test]
    fn open_modes_and_errors() {
        let name = Name::new();
        let missing = MessageQueue::open(&name.0, &OpenOptions::default()).unwrap_err();
        assert_eq!(
            (missing.errno(), missing.syscall()),
            (Errno::ENOENT, "mq_open")
        );
        let q = create(&name, 3, 32);
        let again = MessageQueue::open(
            &name.0,
            &OpenOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(again.errno(), Errno::EEXIST);
        // A second descriptor sees the first one's attributes, whatever it asks for.
        let other = MessageQueue::open(
            &name.0,
            &OpenOptions {
                create: true,
                max_messages: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        let a = other.attributes().unwrap();
        assert_eq!((a.max_messages, a.message_size), (3, 32));
        // Close-on-exec, as every descriptor of this crate.
        let flags = nix::fcntl::fcntl(q.as_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
        // A receive-only descriptor cannot send.
        let ro = MessageQueue::open(
            &name.0,
            &OpenOptions {
                access: Access::Read,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            ro.send(b"x", 0, Wait::Now).unwrap_err().errno(),
            Errno::EBADF
        );
        assert_eq!(q.owner().unwrap().uid, nix::unistd::geteuid().as_raw());
        q.set_mode(0o640).unwrap();
        assert_eq!(other.owner().unwrap().mode, 0o640);
    }

    #[test]
    fn names_follow_mq_overview() {
        for bad in ["", "/", "x", "//x", "/a/b", "/.", "/..", "/a\0b"] {
            assert_eq!(
                check_name(bad, "mq_open").unwrap_err().errno(),
                Errno::EINVAL,
                "{bad:?}"
            );
        }
        let longest = format!("/{}", "n".repeat(NAME_MAX));
        let name = Name(longest.clone());
        MessageQueue::open(
            &name.0,
            &OpenOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .unwrap();
        let too_long = format!("/{}", "n".repeat(NAME_MAX + 1));
        assert_eq!(
            MessageQueue::open(&too_long, &OpenOptions::default())
                .unwrap_err()
                .errno(),
            Errno::ENAMETOOLONG
        );
    }

    #[test]
    fn notify_registers_this_process_once() {
        let name = Name::new();
        let q = create(&name, 2, 16);
        q.notify(Notify::Register).unwrap();
        // Only one registration per queue, even for the same process.
        assert_eq!(
            q.notify(Notify::Register).unwrap_err().errno(),
            Errno::EBUSY
        );
        if let Some(dir) = mount_point() {
            let me = list(Some(&dir))
                .unwrap()
                .into_iter()
                .find(|e| e.name == name.0)
                .unwrap();
            assert_eq!(me.notify_pid, std::process::id() as i32);
            assert_eq!(me.notify, Some(libc::SIGEV_NONE));
            assert_eq!(
                me.attributes, None,
                "not opened: closing would cancel the registration"
            );
            assert_eq!(me.bytes, None);
            // Still registered after the listing.
            assert_eq!(
                q.notify(Notify::Register).unwrap_err().errno(),
                Errno::EBUSY
            );
        }
        q.notify(Notify::Remove).unwrap();
        q.notify(Notify::Signal {
            signal: libc::SIGUSR2,
            value: 5,
        })
        .unwrap();
        assert_eq!(
            registrations()
                .iter()
                .filter(|r| r.signo == libc::SIGUSR2)
                .count(),
            1
        );
        // Closing another descriptor of the queue in this process cancels the registration
        // (mq_close), and the record of it goes too.
        drop(MessageQueue::open(&name.0, &OpenOptions::default()).unwrap());
        let inode = inode_of(q.as_fd()).unwrap();
        assert!(!registrations().iter().any(|r| r.inode == inode));
        q.notify(Notify::Register).unwrap();
        q.notify(Notify::Remove).unwrap();
    }

    #[test]
    fn status_lines_parse() {
        let text = "QSIZE:129        NOTIFY:2     SIGNO:0     NOTIFY_PID:8260  \n";
        assert_eq!(parse_status(text), Some((129, 2, 0, 8260)));
        assert_eq!(parse_status("QSIZE:1"), None);
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/x\\"), "/x\\");
    }

    #[test]
    fn limits_are_read() {
        let l = limits();
        assert!(l.msg_max.unwrap() >= 1);
        assert!(l.msgsize_max.unwrap() >= 128);
        assert!(l.queues_max.is_some());
        assert!(charged_bytes(10, 8192) > 10 * 8192);
    }
}
