//! Blocking waits that can be cancelled, on threads this crate owns.
//!
//! System V waits (`msgrcv`, `msgsnd` on a full queue, `semop`) and futex waits have no file
//! descriptor to poll, so an asynchronous caller needs a thread that blocks in the call, and a
//! way to stop that thread. Both live here:
//!
//! - [`spawn`] runs a job on a pool of threads owned by this crate (not the libuv threadpool,
//!   which a long wait would starve). Idle threads are reused and exit after a while.
//! - [`interruptible`] runs a blocking call so that [`Canceller::cancel`] interrupts it: the
//!   canceller sends the waiting thread a private signal ([`wake_signal`]) with
//!   `pthread_kill`, whose do-nothing handler is installed without `SA_RESTART`, so the call
//!   returns `EINTR`; the waiter sees the cancel flag and returns [`Error::cancelled`]. A kick
//!   that lands between the flag check and the system call is lost, so a kicker thread repeats
//!   it every millisecond until the waiter has left the call.
//!
//! A wait that completes at the same moment as its cancellation keeps its result: the caller
//! gets the message it took rather than a cancellation, so nothing is lost.
//!
//! ```
//! use ipckit::wait::{interruptible, spawn, Canceller};
//! use std::sync::mpsc;
//!
//! let canceller = Canceller::new();
//! let (tx, rx) = mpsc::channel();
//! let c = canceller.clone();
//! spawn(move || {
//!     // pause() blocks until a signal arrives; cancellation interrupts it.
//!     // SAFETY: pause has no preconditions.
//!     let r = interruptible(&c, "pause", || ipckit::error::check(unsafe { libc::pause() }, "pause"));
//!     tx.send(r).unwrap();
//! });
//! canceller.cancel();
//! assert!(rx.recv().unwrap().unwrap_err().is_cancelled());
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, OnceLock, Weak};
use std::time::Duration;

use crate::error::{Errno, Error, Result};

/// The signal used to interrupt a waiting thread: a real-time signal on Linux (`SIGRTMAX - 6`),
/// which this crate reserves; `SIGURG` elsewhere (ignored by default, rarely used).
pub fn wake_signal() -> i32 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        libc::SIGRTMAX() - 6
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        libc::SIGURG
    }
}

extern "C" fn on_wake_signal(_: libc::c_int) {
    // Nothing to do: the signal exists only to make a blocking call return EINTR.
}

fn install_wake_handler() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; every field we
        // rely on is set below before use.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_wake_signal as *const () as libc::sighandler_t;
        // No SA_RESTART: the point of the signal is to interrupt the call.
        action.sa_flags = 0;
        // SAFETY: sa_mask is a valid sigset_t owned by `action`.
        unsafe { libc::sigfillset(&mut action.sa_mask) };
        // SAFETY: `action` is fully initialised; the handler is async-signal-safe (it does
        // nothing); the old action is not needed.
        let rc = unsafe { libc::sigaction(wake_signal(), &action, std::ptr::null_mut()) };
        debug_assert_eq!(rc, 0, "sigaction of the wake signal failed");
    });
}

/// Leaves only the wake signal deliverable to the calling thread, so that process-directed
/// signals (SIGINT, SIGCHLD, ...) go to Node's own threads and never interrupt a wait here.
fn mask_all_but_wake_signal() {
    // SAFETY: `set` is a local sigset_t initialised by sigfillset before any other use, and
    // pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigdelset(&mut set, wake_signal());
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

#[derive(Default)]
struct CancelState {
    cancelled: bool,
    /// The thread blocked in (or about to enter) the call, while it is there.
    waiting: Option<libc::pthread_t>,
}

// SAFETY: `pthread_t` is an opaque thread id; on musl and macOS it is a pointer type (so not
// `Send` by default), but it is only ever passed back to `pthread_kill`, never dereferenced, and
// is read and written only under the `Mutex` that holds this state.
unsafe impl Send for CancelState {}

#[derive(Default)]
struct CancelInner {
    state: Mutex<CancelState>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CancelInner {
    /// Interrupts the waiting thread, if there is one; returns whether there was.
    fn kick(&self) -> bool {
        let state = lock(&self.state);
        match state.waiting {
            Some(thread) => {
                // SAFETY: `thread` is registered only while it runs `interruptible`, and it
                // unregisters under this same lock before it leaves, so the id names a live
                // thread for as long as we hold the lock.
                unsafe { libc::pthread_kill(thread, wake_signal()) };
                true
            }
            None => false,
        }
    }
}

/// Cancels a wait run by [`interruptible`]; cheap to clone, shared between the waiter and
/// whoever may cancel it.
///
/// ```
/// let c = ipckit::wait::Canceller::new();
/// assert!(!c.is_cancelled());
/// c.cancel();
/// assert!(c.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct Canceller {
    inner: Arc<CancelInner>,
}

impl Canceller {
    /// A canceller that has not been cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the wait to stop. Returns at once; the wait ends within about a millisecond,
    /// with [`Error::cancelled`] unless it completed first. Cancelling twice is harmless.
    pub fn cancel(&self) {
        {
            let mut state = lock(&self.inner.state);
            if state.cancelled {
                return;
            }
            state.cancelled = true;
        }
        if self.inner.kick() {
            kicker().watch(Arc::downgrade(&self.inner));
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        lock(&self.inner.state).cancelled
    }
}

/// Runs a blocking call so that `canceller` can interrupt it.
///
/// `call` is retried after `EINTR` (a signal that was not a cancellation) and not called at
/// all once the wait is cancelled; a cancelled wait returns [`Error::cancelled`] naming
/// `syscall`. The call's own result wins over a cancellation that arrives too late to stop it.
pub fn interruptible<T>(
    canceller: &Canceller,
    syscall: &'static str,
    mut call: impl FnMut() -> Result<T>,
) -> Result<T> {
    install_wake_handler();
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    loop {
        {
            let mut state = lock(&canceller.inner.state);
            if state.cancelled {
                return Err(Error::cancelled(syscall));
            }
            state.waiting = Some(me);
        }
        let result = call();
        lock(&canceller.inner.state).waiting = None;
        match result {
            Err(e) if e.errno() == Errno::EINTR => continue,
            other => return other,
        }
    }
}

/// Repeats kicks for cancelled waits whose thread is still inside the call, so that a kick
/// lost in the window between the flag check and the system call is sent again.
struct Kicker {
    watched: Mutex<Vec<Weak<CancelInner>>>,
    wake: Condvar,
}

fn kicker() -> &'static Kicker {
    static KICKER: OnceLock<&'static Kicker> = OnceLock::new();
    KICKER.get_or_init(|| {
        let kicker: &'static Kicker = Box::leak(Box::new(Kicker {
            watched: Mutex::new(Vec::new()),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("ipckit-kicker".into())
            .spawn(move || kicker.run())
            .expect("spawn the ipckit kicker thread");
        kicker
    })
}

impl Kicker {
    fn watch(&self, inner: Weak<CancelInner>) {
        lock(&self.watched).push(inner);
        self.wake.notify_one();
    }

    fn run(&self) {
        mask_all_but_wake_signal();
        let mut watched = lock(&self.watched);
        loop {
            while watched.is_empty() {
                watched = self.wake.wait(watched).unwrap_or_else(|p| p.into_inner());
            }
            drop(watched);
            std::thread::sleep(Duration::from_millis(1));
            watched = lock(&self.watched);
            watched.retain(|w| w.upgrade().is_some_and(|inner| inner.kick()));
        }
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long an idle pool thread waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(20);

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    idle: usize,
    threads: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState::default()),
        work: Condvar::new(),
    })
}

/// Runs `job` on a thread owned by this crate, starting one if none is idle.
///
/// Every job gets a thread of its own while it runs, so a job may block for as long as it
/// likes without delaying others. The threads block every signal but [`wake_signal`].
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel();
/// ipckit::wait::spawn(move || tx.send(42).unwrap());
/// assert_eq!(rx.recv().unwrap(), 42);
/// ```
pub fn spawn(job: impl FnOnce() + Send + 'static) {
    let pool = pool();
    let mut state = lock(&pool.state);
    state.jobs.push_back(Box::new(job));
    if state.idle >= state.jobs.len() {
        pool.work.notify_one();
        return;
    }
    state.threads += 1;
    drop(state);
    let spawned = std::thread::Builder::new()
        .name("ipckit-wait".into())
        .stack_size(256 * 1024)
        .spawn(move || pool_thread(pool));
    if spawned.is_err() {
        // No thread: the job stays queued for the next idle thread, as under a thread limit.
        lock(&pool.state).threads -= 1;
    }
}

fn pool_thread(pool: &'static Pool) {
    mask_all_but_wake_signal();
    install_wake_handler();
    let mut state = lock(&pool.state);
    loop {
        if let Some(job) = state.jobs.pop_front() {
            drop(state);
            job();
            state = lock(&pool.state);
            continue;
        }
        state.idle += 1;
        let (next, timeout) = pool
            .work
            .wait_timeout(state, IDLE_EXIT)
            .unwrap_or_else(|p| p.into_inner());
        state = next;
        state.idle -= 1;
        if timeout.timed_out() && state.jobs.is_empty() {
            state.threads -= 1;
            return;
        }
    }
}

/// The number of threads the pool holds now (busy or idle); for tests and diagnostics.
pub fn pool_threads() -> usize {
    lock(&pool().state).threads
}

/// Serialises the tests that count or fill the pool's threads.
#[cfg(test)]
pub(crate) static POOL_TESTS: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::check;
    use std::sync::mpsc;

    fn pause() -> Result<i32> {
        // SAFETY: pause has no preconditions.
        check(unsafe { libc::pause() }, "pause")
    }

    #[test]
    fn cancel_interrupts_a_blocked_call_promptly() {
        let _serial = lock(&POOL_TESTS);
        let canceller = Canceller::new();
        let (tx, rx) = mpsc::channel();
        let (tid_tx, tid_rx) = mpsc::channel();
        let c = canceller.clone();
        spawn(move || {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            tid_tx.send(crate::testing::gettid()).unwrap();
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            tid_tx.send(0).unwrap();
            tx.send(interruptible(&c, "pause", pause)).unwrap()
        });
        let _tid = tid_rx.recv().unwrap();
        // Cancelled once it sleeps in pause() (pause(2), or ppoll(2) where there is no pause),
        // which never returns by itself: only the cancellation can end it.
        #[cfg(all(
            any(target_os = "linux", target_os = "android"),
            target_arch = "x86_64"
        ))]
        crate::testing::wait_until_in_syscall(_tid, libc::SYS_pause);
        #[cfg(all(
            any(target_os = "linux", target_os = "android"),
            not(target_arch = "x86_64")
        ))]
        crate::testing::wait_until_in_syscall(_tid, libc::SYS_ppoll);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        std::thread::sleep(Duration::from_millis(20));
        canceller.cancel();
        let r = rx
            .recv_timeout(crate::testing::PATIENCE)
            .expect("the cancelled waiter ended");
        assert!(r.unwrap_err().is_cancelled());
    }

    #[test]
    fn cancel_before_the_call_skips_it() {
        let canceller = Canceller::new();
        canceller.cancel();
        let mut called = false;
        let r = interruptible(&canceller, "x", || {
            called = true;
            Ok(())
        });
        assert!(r.unwrap_err().is_cancelled());
        assert!(!called);
    }

    #[test]
    fn result_wins_over_late_cancel() {
        let canceller = Canceller::new();
        let c = canceller.clone();
        let r = interruptible(&canceller, "x", || {
            c.cancel();
            Ok(7)
        });
        assert_eq!(r.unwrap(), 7);
    }

    #[test]
    fn many_cancels_all_end() {
        let _serial = lock(&POOL_TESTS);
        // Repeated kicks cover the race window: every one of many waits ends.
        let (tx, rx) = mpsc::channel();
        let cancellers: Vec<Canceller> = (0..64).map(|_| Canceller::new()).collect();
        for c in &cancellers {
            let c = c.clone();
            let tx = tx.clone();
            spawn(move || tx.send(interruptible(&c, "pause", pause)).unwrap());
        }
        for c in &cancellers {
            c.cancel();
        }
        for _ in 0..64 {
            let r = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("waiter ended");
            assert!(r.unwrap_err().is_cancelled());
        }
    }

    #[test]
    fn pool_reuses_idle_threads() {
        let _serial = lock(&POOL_TESTS);
        let before = pool_threads();
        let (tx, rx) = mpsc::channel();
        for _ in 0..8 {
            let tx = tx.clone();
            spawn(move || tx.send(()).unwrap());
            rx.recv().unwrap();
            // Let the thread get back to idle before the next job.
            std::thread::sleep(Duration::from_millis(5));
        }
        // Sequential jobs reuse one idle thread: without reuse there would be 8 more.
        assert!(
            pool_threads() <= before.max(1),
            "{before} -> {}",
            pool_threads()
        );
    }
}
