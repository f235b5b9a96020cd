//! POSIX named semaphores: `sem_open`, `sem_wait`/`sem_timedwait`/`sem_trywait`, `sem_post`,
//! `sem_getvalue`, `sem_close`, `sem_unlink`.
//!
//! These are the C library's own calls, so a [`Semaphore`] is the very semaphore that C
//! programs and Python's `posix_ipc` open by the same name (glibc keeps it as a 32-byte
//! `sem_t` mapped from the file `/dev/shm/sem.NAME`, musl from `/dev/shm/NAME`; macOS in the
//! kernel). A semaphore is a counter: [`Semaphore::post`] adds one, a wait takes one, waiting
//! while it is zero. It lives until [`unlink`].
//!
//! What they lack, compared with System V semaphores: there is no undo. A process that dies
//! between a wait and its post keeps the count forever; for a lock that must survive a crash,
//! use a System V semaphore with `SEM_UNDO` (ipckit's `Mutex`, [`crate::sem`]).
//!
//! ```
//! use ipckit::posix_sem::{self, OpenOptions, Semaphore};
//!
//! let name = format!("/ipckit-doc-sem-{}", std::process::id());
//! let sem = Semaphore::open(&name, &OpenOptions { create: true, initial: 1, ..Default::default() })?;
//! assert!(sem.try_wait()?);       // took the one
//! assert!(!sem.try_wait()?);      // none left
//! sem.post()?;
//! # #[cfg(target_os = "linux")]
//! assert_eq!(sem.value()?, 1);
//! posix_sem::unlink(&name)?;
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! For more information, see [`sem_overview(7)`](https://man7.org/linux/man-pages/man7/sem_overview.7.html).

use std::ffi::CString;
use std::ptr::NonNull;
use std::time::Instant;

use crate::error::{check, Errno, Error, Result};
use crate::wait::{Lines, Operation, Served, Ticket};

/// The longest semaphore name, without its leading slash: `NAME_MAX` less the 4 bytes of the
/// `sem.` prefix glibc gives the file (`sem_overview(7)`).
pub const NAME_MAX: usize = 251;

/// The largest value a semaphore holds (`SEM_VALUE_MAX`); a post beyond it fails with
/// `EOVERFLOW`.
#[cfg(not(target_vendor = "apple"))]
pub const VALUE_MAX: u32 = libc::c_int::MAX as u32;
/// The largest value a semaphore holds (`SEM_VALUE_MAX` of Apple's `<sys/param.h>`).
#[cfg(target_vendor = "apple")]
pub const VALUE_MAX: u32 = 32767;

/// Checks a semaphore name as `sem_overview(7)` defines it: one leading slash, then 1 to
/// [`NAME_MAX`] bytes, none of them a slash or NUL. Fails with `EINVAL` (`ENAMETOOLONG` for a
/// name too long), naming `syscall`.
///
/// ```
/// use ipckit::posix_sem::check_name;
/// assert!(check_name("/lock", "sem_open").is_ok());
/// assert_eq!(check_name("lock", "sem_open").unwrap_err().code(), "EINVAL");
/// assert_eq!(check_name(&format!("/{}", "x".repeat(252)), "sem_open").unwrap_err().code(), "ENAMETOOLONG");
/// ```
pub fn check_name(name: &str, syscall: &'static str) -> Result<CString> {
    let invalid = || Error::new(Errno::EINVAL, syscall);
    let rest = name.strip_prefix('/').ok_or_else(invalid)?;
    if rest.is_empty() || rest.contains(['/', '\0']) {
        return Err(invalid());
    }
    if rest.len() > NAME_MAX {
        return Err(Error::new(Errno::ENAMETOOLONG, syscall));
    }
    CString::new(name).map_err(|_| invalid())
}

/// How [`Semaphore::open`] finds or creates a semaphore.
///
/// ```
/// let o = ipckit::posix_sem::OpenOptions { create: true, initial: 3, ..Default::default() };
/// assert_eq!(o.mode, 0o600);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// Create the semaphore if it does not exist (`O_CREAT`).
    pub create: bool,
    /// Fail with `EEXIST` if it exists (`O_CREAT | O_EXCL`); implies `create`.
    pub exclusive: bool,
    /// Permission bits of a created semaphore; the process's umask clears some, as for a file.
    pub mode: u32,
    /// The value of a created semaphore (an existing one keeps its value), at most
    /// [`VALUE_MAX`].
    pub initial: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            create: false,
            exclusive: false,
            mode: 0o600,
            initial: 0,
        }
    }
}

/// A named semaphore opened by this process, closed (`sem_close`) when dropped.
///
/// It may be shared between threads (the C library's semaphore calls are thread-safe); keep it
/// alive, for instance in an `Arc`, for as long as a thread may wait on it: closing unmaps it.
#[derive(Debug)]
pub struct Semaphore {
    sem: NonNull<libc::sem_t>,
}

// SAFETY: a sem_t is made for use by several threads (and processes) at once; the pointer is
// only ever passed to the C library's semaphore calls, and unmapped once, by Drop.
unsafe impl Send for Semaphore {}
// SAFETY: as above: every method takes &self and calls thread-safe sem_* functions.
unsafe impl Sync for Semaphore {}

impl Semaphore {
    /// Opens or creates the semaphore `name` (`sem_open`).
    ///
    /// An existing semaphore file that cannot hold a semaphore (not a regular file, or shorter
    /// than a `sem_t`: a foreign file under the name, which the C library would map and crash
    /// on) is refused with `EINVAL` before the C library maps it.
    ///
    /// Errors: `EINVAL` (a bad name, a value above [`VALUE_MAX`], not a semaphore),
    /// `ENAMETOOLONG`, `ENOENT` (none, no `create`), `EEXIST` (`exclusive`), `EACCES`, `EMFILE`,
    /// `ENFILE`, `ENOMEM`.
    ///
    /// For more information, see [`sem_open(3)`](https://man7.org/linux/man-pages/man3/sem_open.3.html).
    #[doc(alias = "sem_open")]
    pub fn open(name: &str, options: &OpenOptions) -> Result<Self> {
        let cname = check_name(name, "sem_open")?;
        if options.initial > VALUE_MAX {
            return Err(Error::new(Errno::EINVAL, "sem_open"));
        }
        let mut flags = 0;
        if options.create || options.exclusive {
            flags |= libc::O_CREAT;
        }
        if options.exclusive {
            flags |= libc::O_EXCL;
        } else {
            sys::check_existing(name)?;
        }
        // SAFETY: `cname` is NUL-terminated; with O_CREAT sem_open reads a mode and a value,
        // both passed as unsigned ints, as varargs promote mode_t and take the value.
        let sem = unsafe {
            libc::sem_open(
                cname.as_ptr(),
                flags,
                (options.mode & 0o777) as libc::c_uint,
                options.initial as libc::c_uint,
            )
        };
        if sem == libc::SEM_FAILED {
            return Err(Error::last("sem_open"));
        }
        let sem = NonNull::new(sem).ok_or(Error::new(Errno::ENOMEM, "sem_open"))?;
        Ok(Self { sem })
    }

    /// Adds one (`sem_post`), waking one waiter. Fails with `EOVERFLOW` at [`VALUE_MAX`].
    ///
    /// ```
    /// use ipckit::posix_sem::{self, OpenOptions, Semaphore};
    /// let name = format!("/ipckit-doc-post-{}", std::process::id());
    /// let sem = Semaphore::open(&name, &OpenOptions { exclusive: true, ..Default::default() })?;
    /// sem.post()?;
    /// assert!(sem.try_wait()?);
    /// posix_sem::unlink(&name)?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`sem_post(3)`](https://man7.org/linux/man-pages/man3/sem_post.3.html).
    #[doc(alias = "sem_post")]
    pub fn post(&self) -> Result<()> {
        // SAFETY: `sem` is a semaphore sem_open returned and Drop has not closed.
        check(unsafe { libc::sem_post(self.as_ptr()) }, "sem_post").map(drop)
    }

    /// Takes one if the value is above zero (`sem_trywait`): true if it did.
    ///
    /// ```
    /// use ipckit::posix_sem::{self, OpenOptions, Semaphore};
    /// let name = format!("/ipckit-doc-trywait-{}", std::process::id());
    /// let sem = Semaphore::open(&name, &OpenOptions { exclusive: true, initial: 1, ..Default::default() })?;
    /// assert_eq!((sem.try_wait()?, sem.try_wait()?), (true, false));
    /// posix_sem::unlink(&name)?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`sem_wait(3)`](https://man7.org/linux/man-pages/man3/sem_wait.3.html).
    #[doc(alias = "sem_trywait")]
    pub fn try_wait(&self) -> Result<bool> {
        loop {
            // SAFETY: as in `post`.
            let rc = unsafe { libc::sem_trywait(self.as_ptr()) };
            match check(rc, "sem_trywait") {
                Ok(_) => return Ok(true),
                Err(e) if e.errno() == Errno::EAGAIN => return Ok(false),
                Err(e) if e.errno() == Errno::EINTR => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until it can take one, then takes it (`sem_wait`; `sem_timedwait` with a
    /// `deadline`, then `ETIMEDOUT`). One call: `EINTR` (a signal handler ran) is returned, not
    /// retried, so that a cancellable waiter ([`crate::wait::interruptible`]) can look at its
    /// flag; [`wait_blocking`](Self::wait_blocking) retries.
    ///
    /// ```
    /// use ipckit::posix_sem::{self, OpenOptions, Semaphore};
    /// let name = format!("/ipckit-doc-semwait-{}", std::process::id());
    /// let sem = Semaphore::open(&name, &OpenOptions { exclusive: true, initial: 1, ..Default::default() })?;
    /// sem.wait(None)?; // takes the one at once
    /// posix_sem::unlink(&name)?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`sem_wait(3)`](https://man7.org/linux/man-pages/man3/sem_wait.3.html).
    #[doc(alias = "sem_wait")]
    #[doc(alias = "sem_timedwait")]
    pub fn wait(&self, deadline: Option<Instant>) -> Result<()> {
        match deadline {
            // SAFETY: as in `post`.
            None => check(unsafe { libc::sem_wait(self.as_ptr()) }, "sem_wait").map(drop),
            Some(deadline) => sys::timed_wait(self, deadline),
        }
    }

    /// [`wait`](Self::wait), retried after `EINTR` (re-armed from the same deadline).
    ///
    /// ```
    /// use ipckit::posix_sem::{self, OpenOptions, Semaphore};
    /// use std::time::{Duration, Instant};
    /// let name = format!("/ipckit-doc-wait-{}", std::process::id());
    /// let sem = Semaphore::open(&name, &OpenOptions { exclusive: true, ..Default::default() })?;
    /// let e = sem.wait_blocking(Some(Instant::now() + Duration::from_millis(10))).unwrap_err();
    /// assert_eq!(e.code(), "ETIMEDOUT");
    /// posix_sem::unlink(&name)?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn wait_blocking(&self, deadline: Option<Instant>) -> Result<()> {
        crate::interrupt::retry_eintr(|| self.wait(deadline))
    }

    /// Waits (as [`wait`](Self::wait)) on one of this crate's threads and tells `deliver`:
    /// the asynchronous wait. Waits of this process on one semaphore stand in one line served
    /// in order by one thread (see [`crate::wait`]), each with its own `deadline`
    /// (`ETIMEDOUT`, as `sem_timedwait` says it); the [`Ticket`] cancels one (nothing taken,
    /// unless it completed first). `EAGAIN` (`pthread_create`) at once when no thread can be
    /// had.
    ///
    /// ```
    /// use ipckit::posix_sem::{self, OpenOptions, Semaphore};
    /// let name = format!("/ipckit-doc-later-{}", std::process::id());
    /// let sem = std::sync::Arc::new(Semaphore::open(&name, &OpenOptions { exclusive: true, ..Default::default() })?);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// sem.wait_later(None, move |r| tx.send(r).unwrap())?;
    /// sem.post()?;
    /// rx.recv().unwrap()?;
    /// posix_sem::unlink(&name)?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn wait_later(
        self: &std::sync::Arc<Self>,
        deadline: Option<Instant>,
        deliver: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<Ticket> {
        static LINES: Lines<usize, LineWait> = Lines::new();
        let syscall = if deadline.is_some() {
            "sem_timedwait"
        } else {
            "sem_wait"
        };
        LINES.submit(
            self.as_ptr() as usize,
            || LineWait,
            syscall,
            self.clone(),
            deadline,
            deliver,
        )
    }

    /// The value (`sem_getvalue`). `ENOSYS` where the C library does not keep one (macOS).
    ///
    /// ```
    /// # #[cfg(target_os = "linux")] {
    /// use ipckit::posix_sem::{self, OpenOptions, Semaphore};
    /// let name = format!("/ipckit-doc-value-{}", std::process::id());
    /// let sem = Semaphore::open(&name, &OpenOptions { exclusive: true, initial: 4, ..Default::default() })?;
    /// assert_eq!(sem.value()?, 4);
    /// posix_sem::unlink(&name)?;
    /// # }
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`sem_getvalue(3)`](https://man7.org/linux/man-pages/man3/sem_getvalue.3.html).
    #[doc(alias = "sem_getvalue")]
    pub fn value(&self) -> Result<i32> {
        sys::value(self)
    }

    fn as_ptr(&self) -> *mut libc::sem_t {
        self.sem.as_ptr()
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        // SAFETY: `sem` came from sem_open and is closed once, here; no method can run after.
        unsafe { libc::sem_close(self.sem.as_ptr()) };
    }
}

/// Removes the semaphore `name` (`sem_unlink`): the name is free at once; processes that have
/// it open keep using it until they close it.
///
/// ```
/// assert_eq!(ipckit::posix_sem::unlink("/ipckit-no-such-sem").unwrap_err().code(), "ENOENT");
/// ```
///
/// For more information, see [`sem_unlink(3)`](https://man7.org/linux/man-pages/man3/sem_unlink.3.html).
#[doc(alias = "sem_unlink")]
pub fn unlink(name: &str) -> Result<()> {
    let cname = check_name(name, "sem_unlink")?;
    // SAFETY: `cname` is NUL-terminated.
    check(unsafe { libc::sem_unlink(cname.as_ptr()) }, "sem_unlink").map(drop)
}

/// The file that holds the semaphore `name` for the C library of this build (`None` where
/// semaphores are kernel objects, as on macOS): `/dev/shm/sem.NAME` (glibc) or
/// `/dev/shm/NAME` (musl).
///
/// ```
/// # #[cfg(all(target_os = "linux", target_env = "gnu"))]
/// assert_eq!(ipckit::posix_sem::file_of("/lock").unwrap(), std::path::Path::new("/dev/shm/sem.lock"));
/// ```
pub fn file_of(name: &str) -> Option<std::path::PathBuf> {
    let rest = name.strip_prefix('/')?;
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        Some(format!("/dev/shm/sem.{rest}").into())
    } else if cfg!(target_os = "linux") {
        Some(format!("/dev/shm/{rest}").into())
    } else {
        None
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    use std::time::{Duration, Instant};

    use super::Semaphore;
    use crate::error::{check, Errno, Error, Result};

    /// Refuses a file under the name that the C library could map but not use as a semaphore
    /// (it maps `sizeof(sem_t)` bytes without checking the size: touching a page past the end
    /// of a short file raises SIGBUS).
    pub(super) fn check_existing(name: &str) -> Result<()> {
        let Some(path) = super::file_of(name) else {
            return Ok(());
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path);
        let Ok(file) = file else {
            // Missing (sem_open creates it or answers ENOENT), or not ours to read (sem_open
            // answers EACCES; O_NOFOLLOW refused a link: sem_open refuses it too).
            return Ok(());
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::new(Errno::from_raw(e.raw_os_error().unwrap_or(0)), "fstat"))?;
        let ft = meta.file_type();
        if !ft.is_file() || ft.is_fifo() || meta.len() < std::mem::size_of::<libc::sem_t>() as u64 {
            return Err(Error::new(Errno::EINVAL, "sem_open"));
        }
        Ok(())
    }

    pub(super) fn timed_wait(sem: &Semaphore, deadline: Instant) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // The time 0 for a deadline that has passed: an immediate answer.
        let at = if left.is_zero() {
            Duration::ZERO
        } else {
            now.saturating_add(left)
        };
        let ts = libc::timespec {
            tv_sec: at.as_secs().min(i64::MAX as u64) as _,
            tv_nsec: at.subsec_nanos() as _,
        };
        // SAFETY: `sem` is open (the borrow keeps it so); `ts` is a valid timespec.
        let rc = unsafe { libc::sem_timedwait(sem.as_ptr(), &ts) };
        check(rc, "sem_timedwait").map(drop)
    }

    pub(super) fn value(sem: &Semaphore) -> Result<i32> {
        let mut value: libc::c_int = 0;
        // SAFETY: `sem` is open; sem_getvalue writes one int to `value`.
        let rc = unsafe { libc::sem_getvalue(sem.as_ptr(), &mut value) };
        check(rc, "sem_getvalue")?;
        Ok(value)
    }
}

/// macOS: named semaphores are kernel objects (nothing to check), with no `sem_timedwait`
/// (a timed wait polls `sem_trywait`, sleeping 1 to 10 ms between tries) and no
/// `sem_getvalue` (`ENOSYS`).
#[cfg(not(target_os = "linux"))]
mod sys {
    use std::time::{Duration, Instant};

    use super::Semaphore;
    use crate::error::{Errno, Error, Result};

    pub(super) fn check_existing(_: &str) -> Result<()> {
        Ok(())
    }

    pub(super) fn timed_wait(sem: &Semaphore, deadline: Instant) -> Result<()> {
        let mut pause = Duration::from_millis(1);
        loop {
            if sem.try_wait()? {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::new(Errno::ETIMEDOUT, "sem_timedwait"));
            }
            // A cancellation interrupts the sleep (EINTR) as it would interrupt sem_wait.
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: pause.min(left).as_nanos() as _,
            };
            // SAFETY: `ts` is a valid timespec; the remainder pointer may be null.
            if unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) } != 0 {
                return Err(Error::last("sem_timedwait"));
            }
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    pub(super) fn value(_: &Semaphore) -> Result<i32> {
        Err(Error::new(Errno::ENOSYS, "sem_getvalue"))
    }
}

/// The waits of one semaphore of this process (see [`Semaphore::wait_later`]). Each wait holds
/// the semaphore (the line does not, so a line left behind keeps nothing mapped).
struct LineWait;

impl Operation for LineWait {
    type Input = std::sync::Arc<Semaphore>;
    type Output = ();

    fn run(
        &mut self,
        sem: &std::sync::Arc<Semaphore>,
        deadline: Option<Instant>,
    ) -> Result<Served<()>> {
        match sem.wait(deadline) {
            Ok(()) => Ok(Served::One(())),
            Err(e) if e.errno() == Errno::ETIMEDOUT => Ok(Served::TimedOut),
            Err(e) => Err(e),
        }
    }

    fn timed_out(&self) -> Result<()> {
        Err(Error::new(Errno::ETIMEDOUT, "sem_timedwait"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A semaphore name unique to this test run, unlinked when dropped.
    struct Name(String);
    impl Name {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            Self(format!("/ipckit-test-sem-{}-{n}", std::process::id()))
        }
    }
    impl Drop for Name {
        fn drop(&mut self) {
            let _ = unlink(&self.0);
        }
    }
    fn create(name: &Name, initial: u32) -> Semaphore {
        let opts = OpenOptions {
            exclusive: true,
            initial,
            ..Default::default()
        };
        Semaphore::open(&name.0, &opts).unwrap()
    }

    #[test]
    #[cfg_attr(not(target_os = "linux"), ignore = "sem_getvalue is ENOSYS on macOS")]
    fn counts_and_two_handles_share_it() {
        let name = Name::new();
        let a = create(&name, 2);
        let b = Semaphore::open(&name.0, &OpenOptions::default()).unwrap();
        assert!(a.try_wait().unwrap());
        assert_eq!(b.value().unwrap(), 1);
        b.post().unwrap();
        b.post().unwrap();
        assert_eq!(a.value().unwrap(), 3);
        // Closing one handle leaves the other working (the C library counts its opens).
        drop(b);
        assert!(a.try_wait().unwrap());
        assert_eq!(a.value().unwrap(), 2);
        // An existing semaphore keeps its value whatever `initial` says.
        let c = Semaphore::open(
            &name.0,
            &OpenOptions {
                create: true,
                initial: 9,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.value().unwrap(), 2);
    }

    #[test]
    fn open_errors() {
        let name = Name::new();
        let missing = Semaphore::open(&name.0, &OpenOptions::default()).unwrap_err();
        assert_eq!(
            (missing.errno(), missing.syscall()),
            (Errno::ENOENT, "sem_open")
        );
        let _s = create(&name, 0);
        let again = Semaphore::open(
            &name.0,
            &OpenOptions {
                exclusive: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(again.errno(), Errno::EEXIST);
        for bad in ["", "/", "x", "/a/b", "/a\0b"] {
            assert_eq!(
                check_name(bad, "sem_open").unwrap_err().errno(),
                Errno::EINVAL,
                "{bad:?}"
            );
        }
        let too_big = OpenOptions {
            create: true,
            initial: VALUE_MAX + 1,
            ..Default::default()
        };
        assert_eq!(
            Semaphore::open(&name.0, &too_big).unwrap_err().errno(),
            Errno::EINVAL
        );
        let longest = Name(format!("/{}", "s".repeat(NAME_MAX)));
        create(&longest, 0);
        let too_long = format!("/{}", "s".repeat(NAME_MAX + 1));
        assert_eq!(
            Semaphore::open(&too_long, &OpenOptions::default())
                .unwrap_err()
                .errno(),
            Errno::ENAMETOOLONG
        );
    }

    #[test]
    fn timed_wait_times_out_and_a_post_wakes_it() {
        let name = Name::new();
        let sem = Arc::new(create(&name, 0));
        let start = Instant::now();
        let e = sem
            .wait_blocking(Some(start + Duration::from_millis(50)))
            .unwrap_err();
        assert_eq!(
            (e.errno(), e.syscall()),
            (Errno::ETIMEDOUT, "sem_timedwait")
        );
        assert!(start.elapsed() >= Duration::from_millis(49));
        let poster = sem.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            poster.post().unwrap();
        });
        sem.wait_blocking(Some(Instant::now() + Duration::from_secs(10)))
            .unwrap();
        t.join().unwrap();
        assert!(!sem.try_wait().unwrap());
    }

    #[test]
    fn cancelled_wait_takes_nothing() {
        use crate::wait::{interruptible, spawn, Canceller};
        let _serial = crate::wait::POOL_TESTS.lock();
        let name = Name::new();
        let sem = Arc::new(create(&name, 0));
        let canceller = Canceller::new();
        let (c, s) = (canceller.clone(), sem.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        spawn(move || {
            tx.send(interruptible(&c, "sem_wait", || s.wait(None)))
                .unwrap();
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        canceller.cancel();
        let r = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(r.unwrap_err().is_cancelled());
        sem.post().unwrap();
        assert!(sem.try_wait().unwrap(), "the post is still there");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn overflow_is_eoverflow() {
        let name = Name::new();
        let sem = create(&name, VALUE_MAX);
        assert_eq!(sem.post().unwrap_err().errno(), Errno::EOVERFLOW);
        assert_eq!(sem.value().unwrap(), VALUE_MAX as i32);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_foreign_short_file_is_refused_not_mapped() {
        let name = Name::new();
        let path = file_of(&name.0).unwrap();
        std::fs::write(&path, b"").unwrap();
        for create in [false, true] {
            let e = Semaphore::open(
                &name.0,
                &OpenOptions {
                    create,
                    ..Default::default()
                },
            )
            .unwrap_err();
            assert_eq!((e.errno(), e.syscall()), (Errno::EINVAL, "sem_open"));
        }
        std::fs::remove_file(&path).unwrap();
    }
}
