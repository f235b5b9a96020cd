//! File-descriptor readiness on one `epoll` thread owned by this crate.
//!
//! Message sockets (and any other fd) wait for readiness here instead of on a thread of their
//! own: [`watch`] registers an fd one-shot (`EPOLLONESHOT`) for reading or writing, and the
//! poller thread calls the given callback once the fd is ready. An idle watch costs one entry
//! in the kernel's epoll set and nothing else, so thousands of idle sockets cost no thread and
//! no CPU. [`cancel`] removes a watch synchronously (after it returns, the poller no longer
//! refers to the fd, which may then be closed) and calls its callback with
//! [`Error::cancelled`].
//!
//! Readiness is a hint: the caller retries its non-blocking operation and watches again if
//! it still would block.
//!
//! ```
//! use ipckit::poller::{watch, Interest};
//! use std::os::fd::AsFd;
//! let (a, b) = ipckit::socket::socketpair(ipckit::socket::Kind::Datagram)?;
//! let (tx, rx) = std::sync::mpsc::channel();
//! watch(b.as_fd(), Interest::Read, move |r| tx.send(r).unwrap())?;
//! ipckit::socket::send(a.as_fd(), b"hi", &[], None, true)?;
//! assert!(rx.recv().unwrap().is_ok());
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! On macOS the same poller runs on `kqueue`: each interest is a one-shot `EVFILT_READ` or
//! `EVFILT_WRITE` filter, and end of file or an error (`EV_EOF`, `EV_ERROR`) wakes every
//! watch of the fd, as `EPOLLHUP` / `EPOLLERR` do; only the three calls below differ (built
//! for macOS here, never run).
//!
//! For more information, see [`epoll(7)`](https://man7.org/linux/man-pages/man7/epoll.7.html),
//! [`kqueue(2)`](https://man.freebsd.org/cgi/man.cgi?query=kqueue).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::error::{check, Error, Result};
use crate::interrupt::retry_eintr;
use crate::sys::libc;

/// What a watch waits for: `Interest::Read` for a receive or an accept, `Interest::Write`
/// for a send that found the buffer full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Readable (`EPOLLIN`): data, a connection to accept, end of file or an error.
    Read,
    /// Writable (`EPOLLOUT`): room in the send buffer, or an error.
    Write,
}

impl Interest {
    fn events(self) -> u32 {
        match self {
            Interest::Read => libc::EPOLLIN as u32,
            Interest::Write => libc::EPOLLOUT as u32,
        }
    }

    fn fired_by(self, events: u32) -> bool {
        let always = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
        events & (self.events() | always) != 0
    }
}

/// Identifies a watch, for [`cancel`]; [`watch`] returns it.
pub type WatchId = u64;

type Callback = Box<dyn FnOnce(Result<()>) + Send + 'static>;

struct Waiter {
    id: WatchId,
    interest: Interest,
    callback: Callback,
}

#[derive(Default)]
struct State {
    fds: HashMap<RawFd, Vec<Waiter>>,
    by_id: HashMap<WatchId, RawFd>,
    next_id: WatchId,
}

struct Poller {
    epoll: OwnedFd,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` on a new thread that blocks every signal from its first instruction (a thread
/// inherits its creator's mask, and the poller thread leaves real-time signals open: a thread
/// it started would otherwise take confined signals too, out of order).
fn spawn_without_signals(f: impl FnOnce() + Send + 'static) {
    // SAFETY: `all` is initialised by sigfillset and `old` written by pthread_sigmask before
    // either is read; the calling thread's mask is put back as it was.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let spawned = std::thread::Builder::new().spawn(f);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        // As std::thread::spawn: without a thread the waiters could never be told.
        spawned.expect("spawn a thread to wake the waiters of a closed fd");
    }
}

/// The poller thread's id once it runs (0 before).
#[cfg(any(target_os = "linux", target_os = "android"))]
static THREAD_ID: AtomicI32 = AtomicI32::new(0);

/// The poller thread's id (starting the thread if it does not run yet): the thread that
/// takes real-time signals confined for ordered signal watches (see [`crate::signal`]).
///
/// ```
/// let tid = ipckit::poller::thread_id()?;
/// assert!(tid > 0);
/// # Ok::<(), ipckit::Error>(())
/// ```
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn thread_id() -> Result<i32> {
    poller()?;
    loop {
        match THREAD_ID.load(Ordering::SeqCst) {
            0 => std::thread::yield_now(),
            tid => return Ok(tid),
        }
    }
}

fn poller() -> Result<&'static Poller> {
    static POLLER: OnceLock<std::result::Result<&'static Poller, Error>> = OnceLock::new();
    *POLLER.get_or_init(|| {
        #[cfg(target_vendor = "apple")]
        let fd = kqueue()?;
        #[cfg(not(target_vendor = "apple"))]
        // SAFETY: epoll_create1 has no memory preconditions.
        let fd = check(
            unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
            "epoll_create1",
        )?;
        // SAFETY: epoll_create1 just returned this fd, so nothing else owns it.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let poller: &'static Poller = Box::leak(Box::new(Poller {
            epoll,
            state: Mutex::new(State::default()),
        }));
        std::thread::Builder::new()
            .name("ipckit-poller".into())
            .stack_size(256 * 1024)
            .spawn(move || poller.run())
            .map_err(|_| Error::new(crate::Errno::EAGAIN, "pthread_create"))?;
        Ok(poller)
    })
}

/// A kqueue with `FD_CLOEXEC` (macOS, where kqueues are not inherited by `fork` either).
#[cfg(target_vendor = "apple")]
fn kqueue() -> Result<RawFd> {
    // SAFETY: kqueue takes no arguments.
    let fd = check(unsafe { libc::kqueue() }, "kqueue")?;
    // SAFETY: kqueue just returned this fd and nothing else uses it yet.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    if let Err(e) = crate::pipe::set_cloexec(borrowed) {
        // SAFETY: the fd is ours and not used after this.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    Ok(fd)
}

#[cfg(target_vendor = "apple")]
impl Poller {
    /// `epoll_ctl` in kqueue terms: one `EV_ADD | EV_ONESHOT` or `EV_DELETE` change per filter
    /// (`EVFILT_READ` for `EPOLLIN`, `EVFILT_WRITE` for `EPOLLOUT`), with `EV_RECEIPT` so that
    /// each change reports its own error; deleting a filter that is not there is not one.
    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32) -> Result<()> {
        let change = |filter: i16, bit: libc::c_int| libc::kevent {
            ident: fd as libc::uintptr_t,
            filter,
            flags: libc::EV_RECEIPT
                | if op != libc::EPOLL_CTL_DEL && events & bit as u32 != 0 {
                    libc::EV_ADD | libc::EV_ONESHOT
                } else {
                    libc::EV_DELETE
                },
            fflags: 0,
            data: 0,
            udata: std::ptr::null_mut(),
        };
        let changes = [
            change(libc::EVFILT_READ, libc::EPOLLIN),
            change(libc::EVFILT_WRITE, libc::EPOLLOUT),
        ];
        let mut receipts = changes;
        // SAFETY: `changes` and `receipts` hold 2 kevents each, as the counts say; the kqueue
        // fd is owned by `self`; a null timeout is allowed.
        let n = check(
            unsafe {
                libc::kevent(
                    self.epoll.as_raw_fd(),
                    changes.as_ptr(),
                    2,
                    receipts.as_mut_ptr(),
                    2,
                    std::ptr::null(),
                )
            },
            "kevent",
        )?;
        for r in &receipts[..n as usize] {
            let errno = r.data as i32;
            if r.flags & libc::EV_ERROR != 0 && errno != 0 && errno != libc::ENOENT {
                return Err(Error::new(crate::Errno::from_raw(errno), "kevent"));
            }
        }
        Ok(())
    }

    /// `epoll_wait` in kqueue terms: waits for ready filters and reports each as an
    /// [`libc::epoll_event`] of its fd.
    fn wait(&self, raw: &mut [libc::kevent], events: &mut [libc::epoll_event]) -> Result<i32> {
        let len = raw.len().min(events.len()) as libc::c_int;
        // SAFETY: `raw` is writable for `len` kevents; no changes are passed; the kqueue fd is
        // owned by `self`; a null timeout waits without limit.
        let n = check(
            unsafe {
                libc::kevent(
                    self.epoll.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    raw.as_mut_ptr(),
                    len,
                    std::ptr::null(),
                )
            },
            "kevent",
        )?;
        for (k, e) in raw.iter().zip(events.iter_mut()).take(n as usize) {
            let mut bits = match k.filter {
                libc::EVFILT_READ => libc::EPOLLIN,
                libc::EVFILT_WRITE => libc::EPOLLOUT,
                _ => 0,
            };
            if k.flags & libc::EV_EOF != 0 {
                bits |= libc::EPOLLHUP;
            }
            if k.flags & libc::EV_ERROR != 0 {
                bits |= libc::EPOLLERR;
            }
            *e = libc::epoll_event {
                events: bits as u32,
                u64: k.ident as u64,
            };
        }
        Ok(n)
    }
}

impl Poller {
    #[cfg(not(target_vendor = "apple"))]
    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32) -> Result<()> {
        let mut event = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        check(
            // SAFETY: `event` is a valid epoll_event that the call only reads; the epoll fd is
            // owned by `self`.
            unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut event) },
            "epoll_ctl",
        )
        .map(drop)
    }

    /// Re-arms `fd` for the interests of its remaining waiters, or removes it when none remain.
    fn rearm(&self, state: &mut State, fd: RawFd) {
        let interests = state
            .fds
            .get(&fd)
            .map(|w| w.iter().fold(0, |acc, w| acc | w.interest.events()))
            .unwrap_or(0);
        if interests == 0 {
            state.fds.remove(&fd);
            // EBADF/ENOENT only mean the kernel already forgot the fd.
            let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0);
        } else if self
            .ctl(
                libc::EPOLL_CTL_MOD,
                fd,
                interests | libc::EPOLLONESHOT as u32,
            )
            .is_err()
        {
            // The fd is gone: wake everyone, their retry reports the real error.
            let waiters = state.fds.remove(&fd).unwrap_or_default();
            for w in &waiters {
                state.by_id.remove(&w.id);
            }
            let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0);
            spawn_without_signals(move || waiters.into_iter().for_each(|w| (w.callback)(Ok(()))));
        }
    }

    fn run(&self) {
        // Leave standard process-directed signals to Node's threads. Real-time ones (but this
        // crate's private two) stay open: a real-time signal confined for an ordered signal
        // watch is taken on this thread, which then finds the watch's pipe ready at once.
        // SAFETY: `set` is initialised by sigfillset before pthread_sigmask reads it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut set);
            #[cfg(any(target_os = "linux", target_os = "android"))]
            for signo in crate::sys::rtmin()..=crate::sys::rtmax() {
                if signo != crate::sys::wake_signal() && Some(signo) != crate::sys::mask_signal() {
                    libc::sigdelset(&mut set, signo);
                }
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: gettid has no preconditions and cannot fail.
        THREAD_ID.store(
            unsafe { libc::syscall(libc::SYS_gettid) } as i32,
            Ordering::SeqCst,
        );
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
        #[cfg(target_vendor = "apple")]
        // SAFETY: an all-zero kevent is a valid value of it (a null udata).
        let mut raw = vec![unsafe { std::mem::zeroed::<libc::kevent>() }; 64];
        loop {
            #[cfg(target_vendor = "apple")]
            let n = retry_eintr(|| self.wait(&mut raw, &mut events));
            #[cfg(not(target_vendor = "apple"))]
            let n = retry_eintr(|| {
                check(
                    // SAFETY: `events` is writable for the length we pass.
                    unsafe {
                        libc::epoll_wait(
                            self.epoll.as_raw_fd(),
                            events.as_mut_ptr(),
                            events.len() as libc::c_int,
                            -1,
                        )
                    },
                    "epoll_wait",
                )
            });
            let Ok(n) = n else { continue };
            let mut fired = Vec::new();
            {
                let mut state = lock(&self.state);
                for event in &events[..n as usize] {
                    let fd = event.u64 as RawFd;
                    let ready = event.events;
                    let Some(waiters) = state.fds.get_mut(&fd) else {
                        continue;
                    };
                    let (now, later): (Vec<Waiter>, Vec<Waiter>) =
                        waiters.drain(..).partition(|w| w.interest.fired_by(ready));
                    *waiters = later;
                    for w in &now {
                        state.by_id.remove(&w.id);
                    }
                    fired.extend(now);
                    self.rearm(&mut state, fd);
                }
            }
            for w in fired {
                (w.callback)(Ok(()));
            }
        }
    }
}

/// Calls `on_ready(Ok(()))` on the poller thread once `fd` is ready for `interest` (or has
/// an error or hang-up pending), or `on_ready(Err(cancelled))` from [`cancel`].
///
/// The fd must stay open until the callback ran or [`cancel`] returned. Fails with the
/// `epoll_ctl` error for an fd epoll refuses (`EBADF`, `EPERM` for a regular file).
///
/// ```
/// use ipckit::poller::{watch, Interest};
/// use std::os::fd::AsFd;
/// let (a, _b) = ipckit::socket::socketpair(ipckit::socket::Kind::Stream)?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// // An empty socket buffer is writable at once.
/// watch(a.as_fd(), Interest::Write, move |r| tx.send(r.is_ok()).unwrap())?;
/// assert!(rx.recv().unwrap());
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`epoll_ctl(2)`](https://man7.org/linux/man-pages/man2/epoll_ctl.2.html).
pub fn watch(
    fd: BorrowedFd<'_>,
    interest: Interest,
    on_ready: impl FnOnce(Result<()>) + Send + 'static,
) -> Result<WatchId> {
    let fd = fd.as_raw_fd();
    let poller = poller()?;
    let mut state = lock(&poller.state);
    let existing = state.fds.get(&fd);
    let events = existing
        .map(|w| w.iter().fold(0, |acc, w| acc | w.interest.events()))
        .unwrap_or(0)
        | interest.events()
        | libc::EPOLLONESHOT as u32;
    if existing.is_some() {
        match poller.ctl(libc::EPOLL_CTL_MOD, fd.as_raw_fd(), events) {
            Err(e) if e.errno() == crate::Errno::ENOENT => {
                // The fd number was closed (the kernel forgot it) and reused.
                poller.ctl(libc::EPOLL_CTL_ADD, fd.as_raw_fd(), events)?
            }
            other => other?,
        }
    } else {
        match poller.ctl(libc::EPOLL_CTL_ADD, fd.as_raw_fd(), events) {
            Err(e) if e.errno() == crate::Errno::EEXIST => {
                // A stale registration of a closed and reused fd number.
                poller.ctl(libc::EPOLL_CTL_MOD, fd.as_raw_fd(), events)?
            }
            other => other?,
        }
    }
    state.next_id += 1;
    let id = state.next_id;
    state.fds.entry(fd.as_raw_fd()).or_default().push(Waiter {
        id,
        interest,
        callback: Box::new(on_ready),
    });
    state.by_id.insert(id, fd.as_raw_fd());
    Ok(id)
}

/// Cancels watch `id`: returns `true` and calls its callback with [`Error::cancelled`] if it
/// had not fired, `false` if it had (its callback ran or is running). Either way the poller
/// no longer refers to the fd for this watch when this returns.
///
/// ```
/// use ipckit::poller::{cancel, watch, Interest};
/// use std::os::fd::AsFd;
/// let (_a, b) = ipckit::socket::socketpair(ipckit::socket::Kind::Datagram)?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let id = watch(b.as_fd(), Interest::Read, move |r| tx.send(r).unwrap())?;
/// assert!(cancel(id));
/// assert!(rx.recv().unwrap().unwrap_err().is_cancelled());
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn cancel(id: WatchId) -> bool {
    let Ok(poller) = poller() else { return false };
    let waiter = {
        let mut state = lock(&poller.state);
        let Some(fd) = state.by_id.remove(&id) else {
            return false;
        };
        let waiters = state.fds.get_mut(&fd);
        let waiter = waiters.and_then(|ws| {
            let at = ws.iter().position(|w| w.id == id)?;
            Some(ws.remove(at))
        });
        poller.rearm(&mut state, fd);
        waiter
    };
    match waiter {
        Some(w) => {
            (w.callback)(Err(Error::cancelled("epoll_wait")));
            true
        }
        None => false,
    }
}

/// Watches registered and not yet fired; for tests and diagnostics.
///
/// ```
/// let pending_now: usize = ipckit::poller::watches();
/// ```
pub fn watches() -> usize {
    poller().map(|p| lock(&p.state).by_id.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::{self, Kind};
    use std::os::fd::AsFd;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn read_and_write_watches_on_one_fd() {
        let (a, b) = socket::socketpair(Kind::Datagram).unwrap();
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        watch(b.as_fd(), Interest::Read, move |r| {
            tx.send(("read", r)).unwrap()
        })
        .unwrap();
        watch(b.as_fd(), Interest::Write, move |r| {
            tx2.send(("write", r)).unwrap()
        })
        .unwrap();
        let (what, r) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(what, "write");
        assert!(r.is_ok());
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        socket::send(a.as_fd(), b"x", &[], None, true).unwrap();
        let (what, r) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(what, "read");
        assert!(r.is_ok());
    }

    #[test]
    fn cancel_calls_back_once() {
        // Datagram: every target has it (macOS has no SOCK_SEQPACKET UNIX sockets).
        let (_a, b) = socket::socketpair(Kind::Datagram).unwrap();
        let (tx, rx) = mpsc::channel();
        let id = watch(b.as_fd(), Interest::Read, move |r| tx.send(r).unwrap()).unwrap();
        assert!(cancel(id));
        assert!(rx.recv().unwrap().unwrap_err().is_cancelled());
        assert!(!cancel(id));
    }

    /// A descriptor epoll cannot watch (a regular file) is refused with the kernel's answer.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn an_unpollable_fd_is_refused() {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let e = watch(file.as_fd(), Interest::Read, |_| {}).unwrap_err();
        assert_eq!((e.code().as_str(), e.syscall()), ("EPERM", "epoll_ctl"));
    }
}
