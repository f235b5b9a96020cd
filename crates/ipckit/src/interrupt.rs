//! Blocking calls on the caller's own thread that its owner can still stop.
//!
//! A synchronous wait (`msgrcv`, `semop`, a futex wait, a blocking `recvmsg` or `open` of a
//! FIFO) blocks the thread that called it until the kernel answers, and signals that would
//! interrupt it are retried ([`retry_eintr`]), so nothing can make
//! the thread give up. That is right for a program's main thread, but a host that runs code on
//! threads it wants to stop (Node.js terminates Worker threads, and `process.exit()` waits for
//! them) needs a way in.
//!
//! A thread that calls [`install`] gives one: while it is inside a blocking call made through
//! `retry_eintr`, a ticker thread sends it the private wake signal
//! ([`wake_signal`]) every [`TICK`], so the call returns `EINTR`;
//! the thread then asks the `should_stop` it installed, and a `true` ends the call with
//! [`Error::cancelled`] instead of retrying it. Nothing is taken by a call that was
//! interrupted (the kernel makes none of these calls half-way). Threads that did not install
//! anything pay one thread-local read per blocking call; an installed thread pays two
//! uncontended lock operations, and no system call unless the ticker was idle.
//!
//! ```
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::sync::Arc;
//! let stop = Arc::new(AtomicBool::new(false));
//! let flag = stop.clone();
//! let waiter = std::thread::spawn(move || {
//!     ipckit::interrupt::install(move || flag.load(Ordering::SeqCst));
//!     // SAFETY: pause has no preconditions.
//!     let r = ipckit::interrupt::retry_eintr(|| ipckit::error::check(unsafe { libc::pause() }, "pause"));
//!     ipckit::interrupt::uninstall();
//!     r
//! });
//! stop.store(true, Ordering::SeqCst);
//! assert!(waiter.join().unwrap().unwrap_err().is_cancelled());
//! ```

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use crate::error::{Errno, Error, Result};
use crate::sys::{install_wake_handler, libc, mask_all_but_wake_signal, wake_signal};

/// How often a thread blocked in a call is interrupted to ask whether it should stop: the
/// longest a stop waits.
pub const TICK: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An installed thread, as the ticker sees it.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// The thread, while it is inside a blocking call (nested calls count once).
    waiting: Option<libc::pthread_t>,
    depth: usize,
}

// SAFETY: `pthread_t` is an opaque thread id (a pointer type on musl and macOS, so not `Send`
// by default); it is only passed back to `pthread_kill`, never dereferenced, and is read and
// written only under the `Mutex` that holds this state.
unsafe impl Send for SlotState {}

impl Slot {
    /// Sends the wake signal to the thread if it is inside a call; whether it was.
    fn kick(&self) -> bool {
        let state = lock(&self.state);
        match state.waiting {
            Some(thread) => {
                // SAFETY: `waiting` is set only by the thread itself while it runs a call,
                // and cleared under this lock before it leaves it, so the id names a live
                // thread while we hold the lock.
                unsafe { libc::pthread_kill(thread, wake_signal()) };
                true
            }
            None => false,
        }
    }

    fn enter(&self) {
        let mut state = lock(&self.state);
        if state.depth == 0 {
            // SAFETY: pthread_self has no preconditions.
            state.waiting = Some(unsafe { libc::pthread_self() });
        }
        state.depth += 1;
    }

    fn leave(&self) {
        let mut state = lock(&self.state);
        state.depth -= 1;
        if state.depth == 0 {
            state.waiting = None;
        }
    }
}

/// What [`install`] leaves in the thread.
struct Installed {
    slot: Arc<Slot>,
    should_stop: Box<dyn Fn() -> bool>,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Installed>>> = const { RefCell::new(None) };
}

/// Makes the blocking calls this thread makes through
/// [`retry_eintr`] stoppable: while the thread is inside one, it is
/// interrupted every [`TICK`] and asks `should_stop`; `true` ends the call with
/// [`Error::cancelled`]. The wake signal is unblocked in this thread (a host may have blocked
/// every signal in it). Installing again replaces `should_stop`.
///
/// `should_stop` runs on this thread, between two attempts of the call.
///
/// ```
/// ipckit::interrupt::install(|| false);
/// assert!(ipckit::interrupt::is_installed());
/// ipckit::interrupt::uninstall();
/// ```
pub fn install(should_stop: impl Fn() -> bool + 'static) {
    install_wake_handler();
    // SAFETY: `set` is a local sigset_t initialised by sigemptyset before any other use, and
    // pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, wake_signal());
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    let slot = Arc::new(Slot::default());
    {
        let mut state = ticker_state();
        // Threads that ended (or uninstalled) leave dead entries; drop them here too, since an
        // idle ticker does not.
        state.slots.retain(|w| w.strong_count() > 0);
        state.slots.push(Arc::downgrade(&slot));
    }
    let installed = Installed {
        slot,
        should_stop: Box::new(should_stop),
    };
    CURRENT.with(|c| *c.borrow_mut() = Some(Rc::new(installed)));
}

/// Undoes [`install`] for this thread: its blocking calls are retried after signals again.
///
/// ```
/// ipckit::interrupt::uninstall(); // nothing installed: nothing to do
/// ```
pub fn uninstall() {
    CURRENT.with(|c| c.borrow_mut().take());
}

/// Whether [`install`] was called on this thread (and not undone).
///
/// ```
/// assert!(!ipckit::interrupt::is_installed());
/// ```
pub fn is_installed() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// For waits that poll rather than block (a sleep between checks): whether this thread's
/// installed stop check says to stop; `false` where none is installed.
pub(crate) fn stop_requested() -> bool {
    let installed = CURRENT.with(|c| c.borrow().clone());
    installed.is_some_and(|i| (i.should_stop)())
}

/// Calls `f` until it fails with something other than `EINTR`.
///
/// System V waits (`msgrcv`, `msgsnd`, `semop`) are never restarted after a signal handler,
/// even one installed with `SA_RESTART`, and Node.js has such handlers; so a blocking call that
/// is not meant to be cancelled retries here. On a thread that installed a stop check
/// ([`install`]), the call is interrupted regularly to ask it, and ends with
/// [`Error::cancelled`] when it says so.
///
/// ```
/// let n = ipckit::interrupt::retry_eintr(|| Ok::<_, ipckit::Error>(7))?;
/// assert_eq!(n, 7);
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn retry_eintr<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let Some(installed) = CURRENT.with(|c| c.borrow().clone()) else {
        loop {
            match f() {
                Err(e) if e.errno() == Errno::EINTR => continue,
                other => return other,
            }
        }
    };
    loop {
        installed.slot.enter();
        wake_ticker();
        let result = f();
        installed.slot.leave();
        match result {
            Err(e) if e.errno() == Errno::EINTR => {
                if (installed.should_stop)() {
                    return Err(Error::cancelled(e.syscall()));
                }
            }
            other => return other,
        }
    }
}

/// The ticker: kicks every installed thread that is inside a call, every [`TICK`], for as long
/// as one is; idle (no wake-ups at all) otherwise.
struct Ticker {
    state: Mutex<TickerState>,
    wake: Condvar,
    /// `TickerState::idle`, readable without the lock.
    idle: AtomicBool,
    /// Whether the thread runs (it is started on first need; `false` while it could not be).
    running: AtomicBool,
}

#[derive(Default)]
struct TickerState {
    slots: Vec<Weak<Slot>>,
    idle: bool,
}

fn ticker() -> &'static Ticker {
    static TICKER: OnceLock<Ticker> = OnceLock::new();
    TICKER.get_or_init(|| Ticker {
        state: Mutex::new(TickerState {
            slots: Vec::new(),
            idle: true,
        }),
        wake: Condvar::new(),
        idle: AtomicBool::new(true),
        running: AtomicBool::new(false),
    })
}

fn ticker_state() -> MutexGuard<'static, TickerState> {
    lock(&ticker().state)
}

/// Called by a thread that just entered a call: makes sure the ticker runs and ticks.
fn wake_ticker() {
    let t = ticker();
    // SeqCst pairs with the ticker's store before its last scan: either it sees this thread's
    // slot as waiting, or this sees it idle and wakes it.
    if !t.idle.load(Ordering::SeqCst) {
        return;
    }
    if !t.running.load(Ordering::SeqCst) {
        start_ticker(t);
    }
    let mut state = lock(&t.state);
    if state.idle {
        state.idle = false;
        t.idle.store(false, Ordering::SeqCst);
        t.wake.notify_one();
    }
}

/// Starts the ticker thread, once; under a thread limit it is tried again at the next call
/// (meanwhile the calls cannot be stopped, as without `install`).
fn start_ticker(t: &'static Ticker) {
    let _starting = lock(&t.state);
    if t.running.load(Ordering::SeqCst) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("ipckit-ticker".into())
        .stack_size(64 * 1024)
        .spawn(move || t.run());
    if spawned.is_ok() {
        t.running.store(true, Ordering::SeqCst);
    }
}

impl Ticker {
    fn run(&self) {
        mask_all_but_wake_signal();
        let mut state = lock(&self.state);
        loop {
            while state.idle {
                state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            drop(state);
            std::thread::sleep(TICK);
            state = lock(&self.state);
            state.slots.retain(|w| w.strong_count() > 0);
            let slots: Vec<Arc<Slot>> = state.slots.iter().filter_map(Weak::upgrade).collect();
            let mut any = false;
            for slot in &slots {
                any |= slot.kick();
            }
            if !any {
                // Idle, then look once more: a thread that entered a call after the scan and
                // before the store saw the ticker busy and did not wake it.
                self.idle.store(true, Ordering::SeqCst);
                if slots.iter().any(|s| lock(&s.state).waiting.is_some()) {
                    self.idle.store(false, Ordering::SeqCst);
                } else {
                    state.idle = true;
                }
            }
        }
    }
}

/// Threads the ticker knows (installed, not yet ended); for tests and diagnostics.
pub fn installed_threads() -> usize {
    ticker_state()
        .slots
        .iter()
        .filter(|w| w.strong_count() > 0)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::check;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    fn pause() -> Result<i32> {
        // SAFETY: pause has no preconditions.
        check(unsafe { libc::pause() }, "pause")
    }

    #[test]
    fn an_installed_thread_stops_when_asked_and_not_before() {
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (stop.clone(), asked.clone());
        let waiter = std::thread::spawn(move || {
            install(move || {
                count.fetch_add(1, Ordering::SeqCst);
                flag.load(Ordering::SeqCst)
            });
            let r = crate::interrupt::retry_eintr(pause);
            uninstall();
            r
        });
        // Interrupted every tick, asked each time, and still waiting.
        let start = Instant::now();
        while asked.load(Ordering::SeqCst) < 2 {
            assert!(start.elapsed() < Duration::from_secs(20), "never asked");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!waiter.is_finished());
        stop.store(true, Ordering::SeqCst);
        let r = waiter.join().unwrap();
        assert_eq!(r.unwrap_err(), Error::cancelled("pause"));
    }

    #[test]
    fn a_result_is_returned_as_it_is() {
        install(|| true);
        let mut calls = 0;
        let r = crate::interrupt::retry_eintr(|| {
            calls += 1;
            Ok(calls)
        });
        uninstall();
        assert_eq!(r.unwrap(), 1);
        assert!(!is_installed());
    }
}
