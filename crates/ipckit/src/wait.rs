//! Blocking waits that can be cancelled, on threads this crate owns.
//!
//! System V waits (`msgrcv`, `msgsnd` on a full queue, `semop`) and futex waits have no file
//! descriptor to poll, so an asynchronous caller needs a thread that blocks in the call, and a
//! way to stop that thread. Both live here:
//!
//! - A [`Line`] serves the waits on one object, in arrival order, on one thread: 1,000 pending
//!   receives of one queue (with the same options), 1,000 lockers of one semaphore, 1,000
//!   waiters of one futex word take one thread, not 1,000. The thread blocks in the call for
//!   the first wait in line; when it returns, the result goes to that wait and the next one is
//!   served at once, with no hand-off. Each wait keeps its own deadline (the call is made with
//!   the earliest) and can be cancelled on its own: a wait behind the first is just taken out
//!   of the line; the first is interrupted. When the object is removed (`EIDRM`), every wait
//!   in line gets that error. Lines are found by key ([`Lines`]), and a line's thread goes
//!   back to the pool after [`LINGER`] without waits.
//! - [`spawn`] runs a job on a pool of threads owned by this crate (not the libuv threadpool,
//!   which a long wait would starve). Idle threads are reused and exit after a while. When the
//!   system refuses a thread (`ulimit -u`, a container's pids limit), the job is refused
//!   with `EAGAIN` instead of waiting for a thread that may never come.
//! - [`interruptible`] runs a blocking call so that [`Canceller::cancel`] interrupts it.
//!
//! Interrupting a thread: it is sent a private signal ([`wake_signal`]) with `pthread_kill`,
//! whose do-nothing handler is installed without `SA_RESTART`, so the call returns `EINTR`. A
//! signal that lands between the check of the flag and the system call is lost, so a kicker
//! thread repeats it every millisecond until the thread has left the call. The kicker is
//! started with the first wait thread, and a wait that cannot have it fails with `EAGAIN`.
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
//! })?;
//! canceller.cancel();
//! assert!(rx.recv().unwrap().unwrap_err().is_cancelled());
//! # Ok::<(), ipckit::Error>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::error::{Errno, Error, Result};
use crate::sys::libc;
pub use crate::sys::wake_signal;
pub(crate) use crate::sys::{install_wake_handler, mask_all_but_wake_signal};

/// A thread id that may be sent the wake signal.
#[derive(Clone, Copy)]
struct ThreadId(libc::pthread_t);

// SAFETY: `pthread_t` is an opaque thread id; on musl and macOS it is a pointer type (so not
// `Send` by default), but it is only ever passed back to `pthread_kill`, never dereferenced,
// and is read and written only under the `Mutex` of the state that holds it.
unsafe impl Send for ThreadId {}

impl ThreadId {
    fn current() -> Self {
        // SAFETY: pthread_self has no preconditions.
        Self(unsafe { libc::pthread_self() })
    }

    /// Sends the wake signal.
    ///
    /// # Safety
    /// The thread must be alive: callers hold the lock under which the thread unregisters
    /// itself before it leaves the call.
    unsafe fn kick(self) {
        // SAFETY: per the contract, `self.0` names a live thread.
        unsafe { libc::pthread_kill(self.0, wake_signal()) };
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The error of a wait that could not get a thread: `EAGAIN`, as `pthread_create` reports a
/// thread limit (`ulimit -u`, a cgroup's `pids.max`).
fn no_thread() -> Error {
    Error::new(Errno::EAGAIN, "pthread_create")
}

// ---------------------------------------------------------------------------------------------
// The kicker: repeats wake signals until the thread they are for has left its call.

/// Something the kicker repeats a wake signal for; `kick_again` answers whether it still
/// needs one.
trait Kickable: Send + Sync {
    fn kick_again(&self) -> bool;
}

struct Kicker {
    watched: Mutex<Vec<Weak<dyn Kickable>>>,
    wake: Condvar,
}

/// The kicker, started on first use; `EAGAIN` if the system refuses its thread.
fn kicker() -> Result<&'static Kicker> {
    static KICKER: OnceLock<&'static Kicker> = OnceLock::new();
    static START: Mutex<()> = Mutex::new(());
    if let Some(k) = KICKER.get() {
        return Ok(k);
    }
    let _one = lock(&START);
    if let Some(k) = KICKER.get() {
        return Ok(k);
    }
    let kicker: &'static Kicker = Box::leak(Box::new(Kicker {
        watched: Mutex::new(Vec::new()),
        wake: Condvar::new(),
    }));
    std::thread::Builder::new()
        .name("ipckit-kicker".into())
        .stack_size(64 * 1024)
        .spawn(move || kicker.run())
        .map_err(|_| no_thread())?;
    // Set only once its thread runs: a failed start is tried again by the next wait.
    let _ = KICKER.set(kicker);
    Ok(kicker)
}

impl Kicker {
    fn watch(&self, target: Weak<dyn Kickable>) {
        lock(&self.watched).push(target);
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
            let targets: Vec<Weak<dyn Kickable>> = std::mem::take(&mut *lock(&self.watched));
            let still: Vec<Weak<dyn Kickable>> = targets
                .into_iter()
                .filter(|w| w.upgrade().is_some_and(|t| t.kick_again()))
                .collect();
            watched = lock(&self.watched);
            watched.extend(still);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Canceller and interruptible: one blocking call on a thread of the caller's choice.

#[derive(Default)]
struct CancelState {
    cancelled: bool,
    /// The thread blocked in (or about to enter) the call, while it is there.
    waiting: Option<ThreadId>,
}

#[derive(Default)]
struct CancelInner {
    state: Mutex<CancelState>,
}

impl Kickable for CancelInner {
    /// Interrupts the waiting thread, if there is one; returns whether there was.
    fn kick_again(&self) -> bool {
        let state = lock(&self.state);
        match state.waiting {
            Some(thread) => {
                // SAFETY: `thread` is registered only while it runs `interruptible`, and it
                // unregisters under this same lock before it leaves.
                unsafe { thread.kick() };
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
        if self.inner.kick_again() {
            // A thread inside `interruptible` made sure the kicker runs.
            if let Ok(k) = kicker() {
                let weak: Weak<dyn Kickable> = Arc::downgrade(&self.inner) as Weak<dyn Kickable>;
                k.watch(weak);
            }
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
/// Fails with `EAGAIN` (`pthread_create`) if the kicker thread cannot be started.
pub fn interruptible<T>(
    canceller: &Canceller,
    syscall: &'static str,
    mut call: impl FnMut() -> Result<T>,
) -> Result<T> {
    install_wake_handler();
    kicker()?;
    let me = ThreadId::current();
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

// ---------------------------------------------------------------------------------------------
// Lines: the waits on one object, served in order by one thread.

/// How long a line's thread stays with its line after the last wait, for the next one (a
/// loop of receives), before it goes back to the pool.
pub const LINGER: Duration = Duration::from_millis(500);

/// What one call of a line's [`Operation`] came to.
#[derive(Debug)]
pub enum Served<T> {
    /// Done, for the wait it ran for (the first in line).
    One(T),
    /// Done for every wait in line, each getting the same result (a futex word that
    /// changed: every waiter of that value wakes).
    All(T),
    /// The deadline it was given passed.
    TimedOut,
}

/// The blocking call that the waits of one line take turns on.
///
/// ```
/// use ipckit::wait::{Operation, Served};
/// use std::time::Instant;
///
/// /// Sleeps the given milliseconds, up to the deadline.
/// struct Nap;
/// impl Operation for Nap {
///     type Input = u64;
///     type Output = u64;
///     fn run(&mut self, ms: &u64, deadline: Option<Instant>) -> ipckit::Result<Served<u64>> {
///         let until = Instant::now() + std::time::Duration::from_millis(*ms);
///         if deadline.is_some_and(|d| d < until) {
///             std::thread::sleep(deadline.unwrap().saturating_duration_since(Instant::now()));
///             return Ok(Served::TimedOut);
///         }
///         std::thread::sleep(until.saturating_duration_since(Instant::now()));
///         Ok(Served::One(*ms))
///     }
///     fn timed_out(&self) -> ipckit::Result<u64> {
///         Err(ipckit::Error::new(ipckit::Errno::ETIMEDOUT, "nap"))
///     }
/// }
/// ```
pub trait Operation: Send + 'static {
    /// What each wait brings to the call (a message to send); `()` where waits are alike.
    type Input: Send + 'static;
    /// What a wait gets.
    type Output: Send + Clone + 'static;

    /// Makes the call once for `input` (the first wait's), blocking at most until `deadline`
    /// (none: no limit). An `EINTR` error is returned as it is: the line then looks at
    /// cancellations and deadlines and calls again.
    fn run(
        &mut self,
        input: &Self::Input,
        deadline: Option<Instant>,
    ) -> Result<Served<Self::Output>>;

    /// What a wait whose own deadline passed gets.
    fn timed_out(&self) -> Result<Self::Output>;

    /// The line's thread leaves it (no wait for [`LINGER`]): let go of what only helps while
    /// waits keep coming (a receive buffer).
    fn idle(&mut self) {}

    /// How long the line's thread stays after the last wait, for the next one: [`LINGER`],
    /// unless the next wait of a loop would come to another line anyway (then zero: the
    /// thread goes back to the pool at once, where that line's [`spawn`] finds it idle).
    fn linger(&self) -> Duration {
        LINGER
    }
}

type Deliver<T> = Box<dyn FnOnce(Result<T>) + Send>;

struct Waiter<Op: Operation> {
    id: u64,
    input: Op::Input,
    deadline: Option<Instant>,
    deliver: Deliver<Op::Output>,
}

struct LineState<Op: Operation> {
    /// Waits not being served, in arrival order.
    queue: VecDeque<Waiter<Op>>,
    /// The wait whose call is in progress: its id, its deadline, whether it was cancelled.
    current: Option<(u64, Option<Instant>, bool)>,
    /// The operation (taken by the thread while it calls).
    op: Option<Op>,
    /// The thread while it is inside the call (or about to enter it).
    calling: Option<ThreadId>,
    /// The deadline the call in progress was given.
    call_deadline: Option<Instant>,
    /// A kick was asked for the call in progress.
    kick: bool,
    /// A thread serves this line (calling or lingering).
    has_thread: bool,
    /// The lingering thread was asked to go back to the pool, for a job that could not get a
    /// thread of its own (see [`spawn`]).
    evicted: bool,
    next_id: u64,
}

struct LineInner<Op: Operation> {
    state: Mutex<LineState<Op>>,
    work: Condvar,
    syscall: &'static str,
}

impl<Op: Operation> Kickable for LineInner<Op> {
    fn kick_again(&self) -> bool {
        let state = lock(&self.state);
        match (state.kick, state.calling) {
            (true, Some(thread)) => {
                // SAFETY: `calling` is set only while the thread is inside the call and is
                // cleared under this lock before it leaves.
                unsafe { thread.kick() };
                true
            }
            _ => false,
        }
    }
}

/// The waits on one object, served in order by one thread (see the module notes).
///
/// ```
/// use ipckit::wait::{Line, Operation, Served};
/// use std::sync::mpsc;
/// use std::time::Instant;
///
/// struct Double;
/// impl Operation for Double {
///     type Input = u32;
///     type Output = u32;
///     fn run(&mut self, x: &u32, _: Option<Instant>) -> ipckit::Result<Served<u32>> {
///         Ok(Served::One(x * 2))
///     }
///     fn timed_out(&self) -> ipckit::Result<u32> { unreachable!() }
/// }
///
/// let line = Line::new(Double, "double");
/// let (tx, rx) = mpsc::channel();
/// for x in 1..=3 {
///     let tx = tx.clone();
///     line.submit(x, None, move |r| tx.send(r.unwrap()).unwrap())?;
/// }
/// assert_eq!((0..3).map(|_| rx.recv().unwrap()).collect::<Vec<_>>(), [2, 4, 6]);
/// # Ok::<(), ipckit::Error>(())
/// ```
pub struct Line<Op: Operation> {
    inner: Arc<LineInner<Op>>,
}

impl<Op: Operation> Clone for Line<Op> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// A wait submitted to a [`Line`], to cancel it.
pub struct Ticket {
    cancel: Box<dyn Fn() + Send + Sync>,
}

impl Ticket {
    /// Cancels the wait: a wait still in line ends at once with [`Error::cancelled`]; the one
    /// being served is interrupted and ends so, unless its call completed first (then it gets
    /// its result: nothing taken is lost). Cancelling twice, or after the end, does nothing.
    pub fn cancel(&self) {
        (self.cancel)()
    }
}

impl<Op: Operation> Line<Op> {
    /// A line for `op`; `syscall` names the call in the errors of cancelled waits.
    pub fn new(op: Op, syscall: &'static str) -> Self {
        let line = Self {
            inner: Arc::new(LineInner {
                state: Mutex::new(LineState {
                    queue: VecDeque::new(),
                    current: None,
                    op: Some(op),
                    calling: None,
                    call_deadline: None,
                    kick: false,
                    has_thread: false,
                    evicted: false,
                    next_id: 0,
                }),
                work: Condvar::new(),
                syscall,
            }),
        };
        let evict: Weak<dyn Evict> = Arc::downgrade(&line.inner) as Weak<dyn Evict>;
        let mut all = lock(&LINES_ALIVE);
        all.retain(|w| w.strong_count() > 0);
        all.push(evict);
        line
    }

    /// Adds a wait with `input` and an optional `deadline`; `deliver` gets its result, once,
    /// on the line's thread (or on the thread that cancels it). Fails with `EAGAIN` when the
    /// line needs a thread and the system refuses one (nothing is delivered then).
    pub fn submit(
        &self,
        input: Op::Input,
        deadline: Option<Instant>,
        deliver: impl FnOnce(Result<Op::Output>) + Send + 'static,
    ) -> Result<Ticket> {
        let inner = &self.inner;
        let mut state = lock(&inner.state);
        let id = state.next_id;
        state.next_id += 1;
        state.queue.push_back(Waiter {
            id,
            input,
            deadline,
            deliver: Box::new(deliver),
        });
        if !state.has_thread {
            state.has_thread = true;
            state.evicted = false;
            let line = self.clone();
            if let Err(e) = spawn(move || line.serve()) {
                state.has_thread = false;
                state.queue.pop_back();
                return Err(e);
            }
        } else if state.calling.is_some()
            && deadline.is_some_and(|d| state.call_deadline.map_or(true, |c| d < c))
        {
            // The call in progress would outlast this wait's deadline: make it start over.
            Self::kick(inner, &mut state);
        } else if state.calling.is_none() {
            // Lingering on the condvar (calling, the thread takes the wait when it returns).
            inner.work.notify_one();
        }
        drop(state);
        let weak = Arc::downgrade(inner);
        Ok(Ticket {
            cancel: Box::new(move || {
                if let Some(inner) = weak.upgrade() {
                    Line { inner }.cancel(id);
                }
            }),
        })
    }

    /// Waits in line now (being served or queued); for tests and diagnostics.
    pub fn len(&self) -> usize {
        let state = lock(&self.inner.state);
        state.queue.len() + usize::from(state.current.is_some())
    }

    /// Whether no wait is in line.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn kick(inner: &Arc<LineInner<Op>>, state: &mut LineState<Op>) {
        state.kick = true;
        if let Some(thread) = state.calling {
            // SAFETY: `calling` names the thread while it is inside the call; we hold the lock
            // under which it clears it.
            unsafe { thread.kick() };
            if let Ok(k) = kicker() {
                let weak: Weak<dyn Kickable> = Arc::downgrade(inner) as Weak<dyn Kickable>;
                k.watch(weak);
            }
        }
    }

    fn cancel(&self, id: u64) {
        let inner = &self.inner;
        let mut state = lock(&inner.state);
        if let Some(at) = state.queue.iter().position(|w| w.id == id) {
            let waiter = state.queue.remove(at);
            drop(state);
            if let Some(w) = waiter {
                (w.deliver)(Err(Error::cancelled(inner.syscall)));
            }
            return;
        }
        match state.current {
            Some((current, _, ref mut cancelled)) if current == id && !*cancelled => {
                *cancelled = true;
                Self::kick(inner, &mut state);
            }
            _ => {}
        }
    }

    /// The thread leaves the line (it stayed empty for [`LINGER`]).
    fn retire(&self, mut state: MutexGuard<'_, LineState<Op>>) {
        if let Some(op) = state.op.as_mut() {
            op.idle();
        }
        // Counted as on its way back before the line lets go of it, so that the next wait's
        // `spawn` (this line's, or another's) waits for it rather than starting a thread.
        announce_return();
        state.has_thread = false;
    }

    /// The thread's loop: serves the line until it has been empty for [`LINGER`] (or its
    /// operation's [`linger`](Operation::linger)).
    fn serve(self) {
        let inner = &*self.inner;
        let mut state = lock(&inner.state);
        loop {
            // Waits whose own deadline passed, wherever they are in line.
            let now = Instant::now();
            let due = |w: &Waiter<Op>| w.deadline.is_some_and(|d| d <= now);
            let expired: Vec<Waiter<Op>> = if state.queue.iter().any(due) {
                let (gone, kept): (VecDeque<_>, VecDeque<_>) =
                    std::mem::take(&mut state.queue).into_iter().partition(due);
                state.queue = kept;
                gone.into_iter().collect()
            } else {
                Vec::new()
            };
            if !expired.is_empty() {
                let answers: Vec<Result<Op::Output>> = {
                    let op = state.op.as_ref();
                    expired
                        .iter()
                        .map(|_| match op {
                            Some(op) => op.timed_out(),
                            None => Err(Error::new(Errno::ETIMEDOUT, inner.syscall)),
                        })
                        .collect()
                };
                drop(state);
                for (w, answer) in expired.into_iter().zip(answers) {
                    (w.deliver)(answer);
                }
                state = lock(&inner.state);
                continue;
            }
            let Some(waiter) = state.queue.pop_front() else {
                // Nothing to serve: linger for the next wait (a loop of receives).
                let linger = state.op.as_ref().map_or(LINGER, |op| op.linger());
                if linger.is_zero() {
                    return self.retire(state);
                }
                let (next, timeout) = inner
                    .work
                    .wait_timeout(state, linger)
                    .unwrap_or_else(|p| p.into_inner());
                state = next;
                if state.evicted {
                    return;
                }
                if timeout.timed_out() && state.queue.is_empty() {
                    return self.retire(state);
                }
                continue;
            };
            let deadline = state
                .queue
                .iter()
                .filter_map(|w| w.deadline)
                .chain(waiter.deadline)
                .min();
            state.current = Some((waiter.id, waiter.deadline, false));
            state.kick = false;
            state.calling = Some(ThreadId::current());
            state.call_deadline = deadline;
            let Some(mut op) = state.op.take() else {
                // Cannot happen: only this thread takes the operation.
                state.calling = None;
                state.current = None;
                drop(state);
                (waiter.deliver)(Err(Error::new(Errno::EINVAL, inner.syscall)));
                state = lock(&inner.state);
                continue;
            };
            drop(state);
            let result = op.run(&waiter.input, deadline);
            state = lock(&inner.state);
            state.op = Some(op);
            state.calling = None;
            let cancelled = state.current.take().is_some_and(|(_, _, c)| c);
            state.kick = false;
            match result {
                Err(e) if e.errno() == Errno::EINTR => {
                    if cancelled {
                        drop(state);
                        (waiter.deliver)(Err(Error::cancelled(inner.syscall)));
                        state = lock(&inner.state);
                    } else {
                        // Interrupted for another reason (a new, earlier deadline): again.
                        state.queue.push_front(waiter);
                    }
                }
                Ok(Served::TimedOut) => {
                    if waiter.deadline.is_some_and(|d| d <= Instant::now()) {
                        let answer = match state.op.as_ref() {
                            Some(op) => op.timed_out(),
                            None => Err(Error::new(Errno::ETIMEDOUT, inner.syscall)),
                        };
                        drop(state);
                        (waiter.deliver)(answer);
                        state = lock(&inner.state);
                    } else if cancelled {
                        drop(state);
                        (waiter.deliver)(Err(Error::cancelled(inner.syscall)));
                        state = lock(&inner.state);
                    } else {
                        // Another wait's deadline: it expires at the top of the loop.
                        state.queue.push_front(waiter);
                    }
                }
                Ok(Served::All(value)) => {
                    let rest: Vec<Waiter<Op>> = state.queue.drain(..).collect();
                    drop(state);
                    for w in rest {
                        (w.deliver)(Ok(value.clone()));
                    }
                    (waiter.deliver)(Ok(value));
                    state = lock(&inner.state);
                }
                Ok(Served::One(value)) => {
                    drop(state);
                    (waiter.deliver)(Ok(value));
                    state = lock(&inner.state);
                }
                Err(e) if e.errno() == Errno::EIDRM => {
                    // The object is gone: every wait in line learns it, as each would have
                    // in its own call (a later call would see EINVAL: the id no longer is).
                    let rest: Vec<Waiter<Op>> = state.queue.drain(..).collect();
                    drop(state);
                    for w in rest {
                        (w.deliver)(Err(e));
                    }
                    (waiter.deliver)(Err(e));
                    state = lock(&inner.state);
                }
                Err(e) => {
                    drop(state);
                    (waiter.deliver)(Err(e));
                    state = lock(&inner.state);
                }
            }
        }
    }
}

/// A line whose thread may be asked to leave it while it lingers.
trait Evict: Send + Sync {
    /// Sends the lingering thread back to the pool (returns whether it will go): the line
    /// then has no thread, and its next wait gets one as any new line does.
    fn evict(&self) -> bool;
}

/// Every line alive, for [`spawn`] to find a lingering thread when the system refuses a new
/// one.
static LINES_ALIVE: Mutex<Vec<Weak<dyn Evict>>> = Mutex::new(Vec::new());

impl<Op: Operation> Evict for LineInner<Op> {
    fn evict(&self) -> bool {
        // try_lock: the caller may hold this very lock (a wait submitted to this line asks for
        // a thread), and a line busy right now is no lingering one anyway.
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        let lingering = state.has_thread && state.queue.is_empty() && state.current.is_none();
        if !lingering || state.evicted {
            return false;
        }
        state.evicted = true;
        state.has_thread = false;
        self.work.notify_one();
        true
    }
}

/// Asks one lingering line thread to go back to the pool; whether one will.
fn evict_one() -> bool {
    let lines: Vec<Weak<dyn Evict>> = lock(&LINES_ALIVE).clone();
    lines
        .iter()
        .any(|line| line.upgrade().is_some_and(|l| l.evict()))
}

/// Lines by key, so that waits on one object share one: the waits of a primitive keep one
/// `Lines` (a `static`), keyed by what makes two waits alike (the queue id and the receive
/// options, say). A line stays in the map while it has a thread.
///
/// ```
/// use ipckit::wait::{Lines, Operation, Served};
/// use std::time::Instant;
/// struct Echo;
/// impl Operation for Echo {
///     type Input = ();
///     type Output = ();
///     fn run(&mut self, _: &(), _: Option<Instant>) -> ipckit::Result<Served<()>> { Ok(Served::One(())) }
///     fn timed_out(&self) -> ipckit::Result<()> { Ok(()) }
/// }
/// static LINES: Lines<u32, Echo> = Lines::new();
/// let (tx, rx) = std::sync::mpsc::channel();
/// LINES.submit(7, || Echo, "echo", (), None, move |r| tx.send(r).unwrap())?;
/// assert!(rx.recv().unwrap().is_ok());
/// # Ok::<(), ipckit::Error>(())
/// ```
pub struct Lines<K, Op: Operation> {
    map: Mutex<Option<HashMap<K, Line<Op>>>>,
}

impl<K: Hash + Eq + Clone + Send + 'static, Op: Operation> Lines<K, Op> {
    /// No lines yet.
    pub const fn new() -> Self {
        Self {
            map: Mutex::new(None),
        }
    }

    /// Submits a wait to the line of `key`, making the line (with `make()`) if it has none.
    /// See [`Line::submit`].
    pub fn submit(
        &self,
        key: K,
        make: impl FnOnce() -> Op,
        syscall: &'static str,
        input: Op::Input,
        deadline: Option<Instant>,
        deliver: impl FnOnce(Result<Op::Output>) + Send + 'static,
    ) -> Result<Ticket> {
        let line = {
            let mut map = lock(&self.map);
            let map = map.get_or_insert_with(HashMap::new);
            // Lines whose thread went back to the pool are dropped as we go.
            if map.len() > 64 {
                map.retain(|_, line| lock(&line.inner.state).has_thread);
            }
            match map.get(&key) {
                Some(line) if lock(&line.inner.state).has_thread => line.clone(),
                _ => {
                    let line = Line::new(make(), syscall);
                    map.insert(key, line.clone());
                    line
                }
            }
        };
        line.submit(input, deadline, deliver)
    }

    /// The number of lines kept; for tests.
    pub fn count(&self) -> usize {
        lock(&self.map).as_ref().map_or(0, HashMap::len)
    }
}

impl<K: Hash + Eq + Clone + Send + 'static, Op: Operation> Default for Lines<K, Op> {
    fn default() -> Self {
        Self::new()
    }
}

// ---------------------------------------------------------------------------------------------
// The pool of threads.

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
    /// Threads whose job said it is about to end ([`announce_return`]): idle in a moment.
    returning: usize,
    threads: usize,
}

thread_local! {
    /// Whether this pool thread's current job called [`announce_return`].
    static RETURNING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Says, from a job on a thread of the crate's pool, that the job is about to end: a job
/// `spawn`ed meanwhile is left for this thread instead of starting another. The job must then
/// end without blocking (a line thread calls it as it retires).
fn announce_return() {
    if RETURNING.with(|r| r.replace(true)) {
        return;
    }
    lock(&pool().state).returning += 1;
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
/// likes without delaying others. The threads block every signal but [`wake_signal`]. Fails
/// with `EAGAIN` (`pthread_create`) when no thread is idle and the system refuses a new one
/// (the job is then dropped, never queued behind waits that may never end).
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel();
/// ipckit::wait::spawn(move || tx.send(42).unwrap())?;
/// assert_eq!(rx.recv().unwrap(), 42);
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn spawn(job: impl FnOnce() + Send + 'static) -> Result<()> {
    spawn_on(pool(), job)
}

/// [`spawn`] on `pool` (the crate's one, or a test's own).
fn spawn_on(pool: &'static Pool, job: impl FnOnce() + Send + 'static) -> Result<()> {
    kicker()?;
    let job: Job = Box::new(job);
    let id = (&*job as *const (dyn FnOnce() + Send)).cast::<()>() as usize;
    let mut state = lock(&pool.state);
    state.jobs.push_back(job);
    if state.idle + state.returning >= state.jobs.len() {
        pool.work.notify_one();
        return Ok(());
    }
    let spawned = std::thread::Builder::new()
        .name("ipckit-wait".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            mask_all_but_wake_signal();
            install_wake_handler();
            pool_thread(pool)
        });
    if spawned.is_ok() {
        state.threads += 1;
        return Ok(());
    }
    // No new thread: a line thread that only lingers can take the job instead (it comes back
    // to the pool and finds the job queued). Lines take their own lock and then the pool's,
    // so the pool's is not held meanwhile.
    drop(state);
    if evict_one() {
        pool.work.notify_one();
        return Ok(());
    }
    let mut state = lock(&pool.state);
    let mine = |j: &Job| (&**j as *const (dyn FnOnce() + Send)).cast::<()>() as usize == id;
    match state.jobs.iter().position(mine) {
        Some(at) => {
            // Never queued behind waits that may never end: refused, and dropped.
            state.jobs.remove(at);
            Err(no_thread())
        }
        // A thread that became idle meanwhile took it.
        None => Ok(()),
    }
}

fn pool_thread(pool: &'static Pool) {
    let mut state = lock(&pool.state);
    loop {
        if let Some(job) = state.jobs.pop_front() {
            drop(state);
            job();
            #[cfg(test)]
            tests::slow_return();
            state = lock(&pool.state);
            if RETURNING.with(|r| r.replace(false)) {
                state.returning -= 1;
            }
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
    use std::sync::atomic::{AtomicU32, Ordering};
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
        })
        .unwrap();
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
            spawn(move || tx.send(interruptible(&c, "pause", pause)).unwrap()).unwrap();
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
        // A pool of its own: the crate's one serves the tests running beside this one.
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            state: Mutex::new(PoolState::default()),
            work: Condvar::new(),
        }));
        let (tx, rx) = mpsc::channel();
        let mut ran_on = Vec::new();
        for _ in 0..8 {
            let tx = tx.clone();
            spawn_on(pool, move || tx.send(std::thread::current().id()).unwrap()).unwrap();
            ran_on.push(rx.recv().unwrap());
            // The thread back to idle before the next job (however long a busy machine takes).
            let start = Instant::now();
            while lock(&pool.state).idle < 1 {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "no thread went idle"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Sequential jobs reuse the one idle thread: without reuse there would be 8.
        assert_eq!(lock(&pool.state).threads, 1);
        assert!(ran_on.iter().all(|id| *id == ran_on[0]), "{ran_on:?}");
    }

    /// Blocks (in `pause`) until kicked; `remaining` counts the results it may still give
    /// at once (then it blocks). Counts its calls.
    struct Gate {
        calls: Arc<AtomicU32>,
        ready: Arc<AtomicU32>,
    }

    impl Operation for Gate {
        type Input = u32;
        type Output = u32;
        fn run(&mut self, input: &u32, deadline: Option<Instant>) -> Result<Served<u32>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            loop {
                if self
                    .ready
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1))
                    .is_ok()
                {
                    return Ok(Served::One(*input));
                }
                if deadline.is_some_and(|d| d <= Instant::now()) {
                    return Ok(Served::TimedOut);
                }
                // A short sleep stands in for a blocking call: EINTR when kicked.
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 2_000_000,
                };
                // SAFETY: a valid timespec; the remainder is not wanted.
                let rc = unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
                if rc != 0 {
                    return Err(Error::last("nanosleep"));
                }
            }
        }
        fn timed_out(&self) -> Result<u32> {
            Err(Error::new(Errno::EAGAIN, "gate"))
        }
    }

    fn gate() -> (Line<Gate>, Arc<AtomicU32>, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let ready = Arc::new(AtomicU32::new(0));
        let line = Line::new(
            Gate {
                calls: calls.clone(),
                ready: ready.clone(),
            },
            "gate",
        );
        (line, calls, ready)
    }

    #[test]
    fn a_line_serves_its_waits_in_order_on_one_thread() {
        let _serial = lock(&POOL_TESTS);
        let (line, _, ready) = gate();
        let (tx, rx) = mpsc::channel();
        let threads_before = pool_threads();
        for i in 0..200 {
            let tx = tx.clone();
            line.submit(i, None, move |r| tx.send(r.unwrap()).unwrap())
                .unwrap();
        }
        assert!(
            pool_threads() <= threads_before + 1,
            "one thread for the line"
        );
        ready.store(200, Ordering::SeqCst);
        let got: Vec<u32> = (0..200)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn each_wait_keeps_its_own_deadline_and_can_be_cancelled_anywhere_in_line() {
        let _serial = lock(&POOL_TESTS);
        let (line, _, ready) = gate();
        let (tx, rx) = mpsc::channel::<(u32, Result<u32>)>();
        let send = |tag: u32| {
            let tx = tx.clone();
            move |r| tx.send((tag, r)).unwrap()
        };
        let started = Instant::now();
        // First in line: no deadline. Second: 50 ms. Third: cancelled while queued.
        let first = line.submit(1, None, send(1)).unwrap();
        line.submit(2, Some(started + Duration::from_millis(50)), send(2))
            .unwrap();
        let third = line.submit(3, None, send(3)).unwrap();
        third.cancel();
        let (tag, r) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(tag, 3);
        assert!(r.unwrap_err().is_cancelled());
        let (tag, r) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(
            tag, 2,
            "the second wait times out behind a first with no deadline"
        );
        assert_eq!(r.unwrap_err().errno(), Errno::EAGAIN);
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(4));
        // The first, being served, is interrupted by its cancel.
        first.cancel();
        let (tag, r) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(tag, 1);
        assert!(r.unwrap_err().is_cancelled());
        // A later wait is served normally.
        line.submit(4, None, send(4)).unwrap();
        ready.store(1, Ordering::SeqCst);
        let (tag, r) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!((tag, r.unwrap()), (4, 4));
        assert!(line.is_empty());
    }

    #[test]
    fn a_result_that_races_a_cancel_is_delivered() {
        let _serial = lock(&POOL_TESTS);
        let (line, calls, ready) = gate();
        let (tx, rx) = mpsc::channel();
        let ticket = line.submit(9, None, move |r| tx.send(r).unwrap()).unwrap();
        while calls.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The call completes and is cancelled in the same instant: either answer is right,
        // but a completed call must never be reported cancelled... here the result is set
        // first, so the wait gets it unless the cancel interrupted the sleep before the
        // next check.
        ready.store(1, Ordering::SeqCst);
        ticket.cancel();
        match rx.recv_timeout(Duration::from_secs(5)).unwrap() {
            Ok(v) => assert_eq!(v, 9),
            Err(e) => {
                assert!(e.is_cancelled());
                // Then nothing was taken: the ready token is still there.
                assert_eq!(ready.load(Ordering::SeqCst), 1);
            }
        }
    }

    /// An operation served at once, whose thread goes back to the pool as soon as its line is
    /// empty (as futex waits' lines do).
    struct Quick;

    impl Operation for Quick {
        type Input = u32;
        type Output = u32;
        fn run(&mut self, input: &u32, _: Option<Instant>) -> Result<Served<u32>> {
            Ok(Served::One(*input))
        }
        fn timed_out(&self) -> Result<u32> {
            Err(Error::new(Errno::ETIMEDOUT, "quick"))
        }
        fn linger(&self) -> Duration {
            Duration::ZERO
        }
    }

    /// Microseconds a pool thread sleeps between the end of a job and its return to the pool
    /// (0: none), to hold open the window in which a retiring line thread is neither the
    /// line's nor idle.
    static SLOW_RETURN_US: AtomicU32 = AtomicU32::new(0);

    pub(super) fn slow_return() {
        let us = SLOW_RETURN_US.load(Ordering::SeqCst);
        if us > 0 {
            std::thread::sleep(Duration::from_micros(u64::from(us)));
        }
    }

    #[test]
    fn a_line_that_gives_its_thread_back_at_once_reuses_it_for_the_next_wait() {
        let _serial = lock(&POOL_TESTS);
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                SLOW_RETURN_US.store(0, Ordering::SeqCst);
            }
        }
        let _reset = Reset;
        let line = Line::new(Quick, "quick");
        let (tx, rx) = mpsc::channel();
        // One wait first, so that a thread exists (and is back in the pool) before counting.
        let first = tx.clone();
        line.submit(0, None, move |r| first.send(r.unwrap()).unwrap())
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 0);
        let threads_before = pool_threads();
        // Each wait is submitted as soon as the previous one is answered: while the line's
        // thread is on its way back to the pool (held there 2 ms), which must not make the
        // pool start another. Before the fix, every wait here started a thread.
        SLOW_RETURN_US.store(2000, Ordering::SeqCst);
        for i in 1..200u32 {
            let tx = tx.clone();
            line.submit(i, None, move |r| tx.send(r.unwrap()).unwrap())
                .unwrap();
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), i);
        }
        assert_eq!(
            pool_threads(),
            threads_before,
            "200 waits one after another on one line: no thread more than the one it had"
        );
    }

    #[test]
    fn lines_by_key_share_a_thread_per_key() {
        static LINES: Lines<u32, Gate> = Lines::new();
        let _serial = lock(&POOL_TESTS);
        let calls = Arc::new(AtomicU32::new(0));
        let ready = Arc::new(AtomicU32::new(0));
        let (tx, rx) = mpsc::channel();
        for i in 0..100u32 {
            let tx = tx.clone();
            let (c, r) = (calls.clone(), ready.clone());
            LINES
                .submit(
                    i % 2,
                    move || Gate { calls: c, ready: r },
                    "gate",
                    i,
                    None,
                    move |r| tx.send(r.unwrap()).unwrap(),
                )
                .unwrap();
        }
        assert_eq!(LINES.count(), 2);
        ready.store(100, Ordering::SeqCst);
        let mut got: Vec<u32> = (0..100)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }
}
