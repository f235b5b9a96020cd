//! Ordered delivery of real-time signals (Linux).
//!
//! Real-time signals queue in the kernel and are handed out in send order, but to whichever
//! thread of the process does not block them: with a handler running on two threads at once,
//! the two records may be written swapped. To keep the kernel's order, a real-time signal
//! that an ordered watch follows is *confined*: blocked in every thread of the process but
//! this crate's poller thread (the receiver, [`crate::poller`]), so that every delivery runs
//! the handler there, one after the other. `signalfd` is still not used, and
//! the handler still chains to the one it replaced.
//!
//! Threads that already exist cannot be told to change their mask by a call, so each one is
//! sent a private signal ([`mask_signal`], `SIGRTMAX - 7`) whose handler edits the mask that
//! `sigreturn` puts back when it returns (as glibc's `setxid` broadcast reaches every thread).
//! Threads created later inherit the mask of the thread that creates them.
//!
//! What `/proc/self/task/*/status` shows of a thread's mask (`SigBlk`) is only its mask of
//! the moment, not the one it goes back to: the C library blocks every signal inside
//! `pthread_create` (and the new thread starts so, until it takes its creator's saved mask);
//! a signal handler runs with its own mask. Such a thread looks as if it blocked the signal
//! already, yet takes it a moment later (and a thread it is creating would too). So no
//! thread is trusted on its looks:
//!
//! - The mask handler applies a *state*, not a change: every confined signal is blocked in the
//!   mask its thread returns to, and a signal that this crate blocked there (the thread's entry
//!   in `TABLE`) and that is no longer confined is unblocked. It runs whenever the thread
//!   lets it: a thread that blocks everything for a moment gets it, queued in its own
//!   queue, the instant it unblocks, before any process-wide signal (the kernel takes a
//!   thread's own signals first). Only the handler sees whether a thread blocked a signal on
//!   its own before (then it is left blocked when the confinement ends).
//! - Every thread but the receiver and the caller is sent the mask signal once per change (not
//!   again while one is still queued to it), and the change is complete when each thread has
//!   run the handler since, or is *settled*: it blocks the mask signal and the confined one and
//!   has slept without running for a while (the handler then runs when it wakes up and
//!   unblocks), or is one of this crate's own waiting threads (they block every signal but
//!   [`wake_signal`] for good). A thread that blocks everything and runs, or sleeps only
//!   for a moment (glibc's `pthread_create` never sleeps with every signal blocked; musl's
//!   may wait for its thread-list lock), may be about to start a thread with its old mask:
//!   that one is waited for; so is a thread the C library has blocked its own signals in (32
//!   and 33, which no application mask holds). Passes repeat until one finds nothing more to
//!   wait for, so the threads started meanwhile are handled too.
//! - The mask handler may run nested in another handler whose mask lets it in (the kernel hands
//!   out a thread's lower-numbered signal first): it then edits that handler's mask, and the
//!   other handler's return puts the thread's old mask back. So a thread counts only if it has
//!   applied the change *and* blocks the signal at each look (its entry is read before its
//!   status); one found unblocked again is sent the mask signal again and counts only after a
//!   later run; and a change is complete after two looks in a row, a moment apart, that find
//!   nothing to wait for.
//! - The watch's own handler runs with the mask signal blocked, so a delivery that a thread
//!   took just before it was blocked is recorded before that thread answers; the watch is
//!   given its records only once the confinement is complete, so every record it gets was
//!   written by the receiver, in the kernel's order.
//! - A delivery handled on another thread once a signal is confined (a thread that unblocked
//!   it again on its own, or one that escaped in a way not foreseen here) is counted (`ESCAPES`), which turns [`Watch::ordered`](super::Watch::ordered) false; that thread gets the signal blocked.
//!
//! When the last ordered watch of the signal ends, every thread that this crate blocked it in
//! (its entry says so), and every thread started during the confinement that blocks it
//! (inherited from a confined thread), gets it unblocked the same way.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::action::current_action;
use super::table::MAX_SIGNAL;
use crate::error::{check, Errno, Error, Result};
pub(crate) use crate::sys::mask_signo as mask_signal;
use crate::sys::{libc, wake_signal};

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
/// confined (see [`Watch::ordered`](super::Watch::ordered)).
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
    let others = !(wake | bit(libc::SIGKILL) | bit(libc::SIGSTOP) | bit(32) | bit(33) | bit(34));
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
        // Threads that ended since the last pass give their entries back: where threads start
        // and end all along, more than MAX_THREADS of them may pass by before the change is
        // complete (a busy machine, one CPU), though far fewer live at once.
        sweep(&tids);
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
                } else if !applied && (st.blocked & mask_bit == 0 || !asleep.settled(tid, &st)) {
                    waiting = true;
                }
                continue;
            }
            let inherited = !before.contains(&tid) && st.blocked & bit != 0 && !ours_waiting(&st);
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
