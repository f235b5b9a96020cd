//! System V semaphores: `semget`, `semop`, `semtimedop`, `semctl`.
//!
//! A [`SemaphoreSet`] is a handle on a kernel array of counters identified by its id; the set
//! lives until [`SemaphoreSet::remove`] (IPC_RMID), whatever happens to the processes using it.
//!
//! The kernel leaves a new set uninitialised (all zeros, `sem_otime == 0`). Creators that
//! follow the classic protocol (Stevens; ipckit, careful C programs) make the set with
//! `IPC_CREAT | IPC_EXCL`, give it its values, then perform a `semop` so that `sem_otime`
//! becomes non-zero, and their openers wait for that. But most creators never perform that
//! `semop`: `ipcmk -S`, Python's `sysv_ipc`, Perl's `IPC::Semaphore`, C that only calls
//! `SETVAL`. Their sets keep `sem_otime == 0` until first used, and an opener that waits for it
//! would wait forever. So [`SemaphoreSet::open`] reads what the kernel shows and takes an
//! existing set as ready when
//!
//! 1. `sem_otime != 0`: a creator that follows the protocol has finished (or the set is in
//!    use); or
//! 2. every semaphore was given a value: a non-zero value, or a pid recorded by `GETPID`
//!    (`SETVAL`, `SETALL` and `semop` record their caller). That is a creator that sets values
//!    and never marks the set, done; or a protocol creator between its `SETALL` and its mark,
//!    whose values are in place; or
//! 3. nothing changed it for over a second (`sem_ctime`, which creation, `SETVAL`, `SETALL` and
//!    `IPC_SET` update, is two whole seconds back): no creator is half-way through, as
//!    creators initialise right after `semget`. Sets of `ipcmk -S` and of `semget` alone.
//!
//! Otherwise the set is young and some semaphore untouched: a creator may be between its
//! `semget` and its first value. The opener checks again, sleeping 0.1 ms then longer, for up
//! to [`OpenOptions::init_timeout`] (5 ms by default), since an `open` must not block its
//! caller for long. Then:
//!
//! 4. if an ipckit creator is initialising the set (it holds the set's sign, below), `open`
//!    fails with `ETIMEDOUT` (try again): ipckit never hands out a set its creator has not
//!    initialised;
//! 5. otherwise the set is taken as the kernel has it: an untouched set cannot be told from one
//!    `ipcmk -S` made an instant ago.
//!
//! ipckit's own creator makes this work. From before its `semget` until its set is marked it
//! holds a sign (on Linux: a socket bound to an abstract name made of the IPC namespace and
//! the key, gone with its process); and it gives all values *and* marks the set with one
//! `semop` that adds each initial value (`IPC_NOWAIT`, no undo), so its set goes from untouched
//! straight to rule 1, never half initialised. A set with more non-zero initial values than
//! one `semop` may carry (`SEMOPM`, 500 on current Linux) is initialised with `SETALL` and then
//! marked, the classic way (`SETALL` is atomic, so rule 2 still never sees half a set). Where
//! the sign cannot be seen (macOS; processes that share an IPC namespace but not a network
//! namespace), an opener that takes an ipckit creator's set early loses nothing: the initial
//! values are added to what it did rather than written over it. A C creator that stalls
//! between its `semget` and its `SETVAL` longer than an opener's `init_timeout` is the case no
//! rule can catch: raise `init_timeout` for such creators.
//!
//! ```
//! use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
//!
//! let opts = OpenOptions { count: 2, create: true, ..Default::default() };
//! let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, opts, Some(&[1, 0])).unwrap();
//! set.op(&[SemOp::new(0, -1), SemOp::new(1, 1)], None).unwrap();
//! assert_eq!(set.get_all().unwrap(), vec![0, 1]);
//! set.remove().unwrap();
//! ```

use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use crate::error::{check, Errno, Error, Result};
use crate::interrupt::retry_eintr;
use crate::key::{Key, IPC_PRIVATE};
use crate::perm::Perm;
use crate::sys::libc;
use crate::wait::{interruptible, Canceller, Lines, Operation, Served, Ticket};

/// The largest value a semaphore holds (`SEMVMX`, 32767 on Linux): a `semop` or `SETVAL`
/// beyond it fails with `ERANGE`.
pub const SEMVMX: u16 = 32767;

#[cfg(not(target_vendor = "apple"))]
use libc::semtimedop;

/// macOS has no `semtimedop`: a timed wait there tries the operations with `IPC_NOWAIT` and
/// sleeps between tries (1 ms, doubling up to 10 ms) until they succeed or `timeout` passes
/// (`EAGAIN`, as `semtimedop` reports it). A signal ends the sleep with `EINTR`, so a wait can
/// still be cancelled. Unlike a kernel wait, such a waiter is not counted by `GETNCNT` /
/// `GETZCNT` and has no place in the kernel's queue. Built for macOS (not run there yet), and
/// compiled for tests everywhere, so that its tests run on Linux too.
///
/// # Safety
/// As for `semop`: `sops` points to `nsops` valid `sembuf` values and `timeout` to a valid
/// relative timespec, both for the whole call.
#[cfg(any(target_vendor = "apple", test))]
#[allow(clippy::unnecessary_cast)] // time_t and c_long are i64 on 64-bit targets only
unsafe fn semtimedop_polling(
    semid: libc::c_int,
    sops: *mut libc::sembuf,
    nsops: libc::size_t,
    timeout: *const libc::timespec,
) -> libc::c_int {
    // SAFETY: the caller's contract: `sops` holds `nsops` sembufs, `timeout` one timespec.
    let (ops, timeout) = unsafe { (std::slice::from_raw_parts(sops, nsops), *timeout) };
    let mut nowait: Vec<libc::sembuf> = ops
        .iter()
        .map(|op| libc::sembuf {
            sem_flg: op.sem_flg | libc::IPC_NOWAIT as libc::c_short,
            ..*op
        })
        .collect();
    let total = Duration::new(timeout.tv_sec.max(0) as u64, timeout.tv_nsec.max(0) as u32);
    let deadline = Instant::now() + total;
    let mut pause = Duration::from_millis(1);
    loop {
        // SAFETY: `nowait` holds `nsops` valid sembufs that outlive the call.
        let rc = unsafe { libc::semop(semid, nowait.as_mut_ptr(), nowait.len()) };
        if rc == 0 || Errno::last() != Errno::EAGAIN {
            return rc;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Errno::EAGAIN.set();
            return -1;
        }
        let nap = left.min(pause);
        let ts = libc::timespec {
            tv_sec: nap.as_secs() as libc::time_t,
            tv_nsec: nap.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `ts` is a valid timespec; the remainder pointer may be null.
        if unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) } == -1 {
            return -1; // EINTR: the caller retries with the time left, or was cancelled.
        }
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

#[cfg(target_vendor = "apple")]
use semtimedop_polling as semtimedop;

#[cfg(test)]
mod polling_tests {
    use super::*;

    fn timed(id: i32, op: i16, timeout: Duration) -> Result<()> {
        let mut sops = [libc::sembuf {
            sem_num: 0,
            sem_op: op,
            sem_flg: 0,
        }];
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        // SAFETY: one valid sembuf and a valid timespec, both outliving the call.
        let rc = unsafe { semtimedop_polling(id, sops.as_mut_ptr(), 1, &ts) };
        check(rc, "semtimedop").map(drop)
    }

    #[test]
    fn polling_timed_op_times_out_succeeds_and_can_be_cancelled() {
        let set = SemaphoreSet::open(IPC_PRIVATE, OpenOptions::default(), Some(&[0])).unwrap();
        let id = set.id();
        let started = Instant::now();
        let e = timed(id, -1, Duration::from_millis(30)).unwrap_err();
        assert_eq!(e.errno(), Errno::EAGAIN);
        assert!(started.elapsed() >= Duration::from_millis(29));
        // Another thread posts while the caller polls: the op completes before its deadline.
        let poster = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            SemaphoreSet::from_id(id).op(&[SemOp::new(0, 1)], None)
        });
        timed(id, -1, Duration::from_secs(5)).unwrap();
        poster.join().unwrap().unwrap();
        assert_eq!(set.get(0).unwrap(), 0);
        // A cancelled polling wait ends promptly and takes nothing.
        let canceller = Canceller::new();
        let c = canceller.clone();
        let waiter = std::thread::spawn(move || {
            interruptible(&c, "semtimedop", || timed(id, -1, Duration::from_secs(5)))
        });
        std::thread::sleep(Duration::from_millis(20));
        let cancelled_at = Instant::now();
        canceller.cancel();
        assert!(waiter.join().unwrap().unwrap_err().is_cancelled());
        assert!(cancelled_at.elapsed() < Duration::from_secs(1));
        set.op(&[SemOp::new(0, 1)], None).unwrap();
        assert_eq!(set.get(0).unwrap(), 1);
        set.remove().unwrap();
    }
}

/// The sign an ipckit creator shows while it initialises a set it makes by key: a datagram
/// socket bound to an abstract name made of the IPC namespace and the key, from before its
/// `semget` until its set is marked. An opener that finds a young, untouched set looks for it
/// (a `connect`, which sends nothing): held, the set is an ipckit creator's that is not
/// initialised yet, and is never handed out; not held, the set is taken as the kernel has it.
/// The socket goes with the creator's process, so a creator that dies leaves no sign behind.
///
/// Abstract names belong to a network namespace: processes that share an IPC namespace but
/// not a network one (and macOS, which has no abstract names) do without the sign, and fall
/// back on `init_timeout` alone. A program that squats the name only makes openers of that key
/// answer `ETIMEDOUT` for a set younger than two seconds, and ipckit creators of it do without.
mod init_marker {
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::OnceLock;
    use std::time::Duration;

    use crate::key::{Key, IPC_PRIVATE};
    use crate::socket::{bind, connect, socket, Address, BindOptions, Kind};
    use crate::Errno;

    fn name(key: Key) -> Address {
        static NAMESPACE: OnceLock<String> = OnceLock::new();
        let ns = NAMESPACE.get_or_init(|| {
            std::fs::read_link("/proc/self/ns/ipc")
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        Address::Abstract(format!("ipckit/sem-init/{ns}/{:08x}", key as u32).into_bytes())
    }

    /// Takes the sign for `key`, waiting up to about 5 ms while another holds it (another
    /// creator of the same key, or an opener's look); `None` where there is none to take.
    pub(super) fn hold(key: Key) -> Option<OwnedFd> {
        if key == IPC_PRIVATE {
            return None;
        }
        let fd = socket(Kind::Datagram, false).ok()?;
        let name = name(key);
        for _ in 0..50 {
            match bind(fd.as_fd(), &name, BindOptions::default()) {
                Ok(()) => return Some(fd),
                Err(e) if e.errno() == Errno::EADDRINUSE => {
                    std::thread::sleep(Duration::from_micros(100));
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Whether an ipckit creator holds the sign for `key` now.
    pub(super) fn held(key: Key) -> bool {
        if key == IPC_PRIVATE {
            return false;
        }
        socket(Kind::Datagram, false)
            .and_then(|fd| connect(fd.as_fd(), &name(key)))
            .is_ok()
    }
}

/// The default [`OpenOptions::init_timeout`]: long enough for a creator that runs to finish
/// its next call, short enough not to stall an event loop.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_millis(5);

/// How [`SemaphoreSet::open`] finds or creates the set.
///
/// ```
/// let opts = ipckit::sem::OpenOptions { count: 3, create: true, ..Default::default() };
/// assert_eq!(opts.mode, 0o600);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// Number of semaphores. Required (>= 1) to create; when opening an existing set, 0 accepts
    /// any size and a larger number than the set has fails with `EINVAL`.
    pub count: u32,
    /// Create the set if the key has none (`IPC_CREAT`).
    pub create: bool,
    /// Fail with `EEXIST` if the key already has a set (`IPC_CREAT | IPC_EXCL`).
    pub exclusive: bool,
    /// Permission bits of a created set.
    pub mode: u32,
    /// How long an opener waits for a young set that has a semaphore nothing has touched yet
    /// (a creator may be between its `semget` and its initialisation) before taking it as
    /// the kernel has it; see the [module](self) docs. Default 5 ms. The wait blocks the
    /// calling thread.
    pub init_timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            count: 1,
            create: false,
            exclusive: false,
            mode: 0o600,
            init_timeout: DEFAULT_INIT_TIMEOUT,
        }
    }
}

/// One operation of a [`SemaphoreSet::op`] call (a `struct sembuf`).
///
/// ```
/// let op = ipckit::sem::SemOp::new(0, -1);
/// assert!(op.undo && !op.nowait);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SemOp {
    /// Index of the semaphore in the set (`sem_num`).
    pub index: u16,
    /// `> 0` adds, `< 0` waits until the value can be lowered by `|delta|`, `0` waits until
    /// the value is zero (`sem_op`).
    pub delta: i16,
    /// Undo the operation when the process exits (`SEM_UNDO`).
    pub undo: bool,
    /// Fail with `EAGAIN` instead of waiting (`IPC_NOWAIT`).
    pub nowait: bool,
}

/// The `sembuf`s of a call, on the stack for a single operation (the common case: a lock or
/// a counter), so that it allocates nothing.
enum RawOps {
    One([libc::sembuf; 1]),
    Many(Vec<libc::sembuf>),
}

impl RawOps {
    fn new(ops: &[SemOp], force_nowait: bool) -> Self {
        match ops {
            [op] => Self::One([op.raw(force_nowait)]),
            _ => Self::Many(ops.iter().map(|o| o.raw(force_nowait)).collect()),
        }
    }

    fn as_mut(&mut self) -> &mut [libc::sembuf] {
        match self {
            Self::One(one) => one,
            Self::Many(many) => many,
        }
    }
}

impl SemOp {
    /// An operation with `SEM_UNDO` and without `IPC_NOWAIT`.
    pub const fn new(index: u16, delta: i16) -> Self {
        Self {
            index,
            delta,
            undo: true,
            nowait: false,
        }
    }

    fn raw(&self, force_nowait: bool) -> libc::sembuf {
        let mut flags = 0;
        if self.undo {
            flags |= libc::SEM_UNDO;
        }
        if self.nowait || force_nowait {
            flags |= libc::IPC_NOWAIT;
        }
        libc::sembuf {
            sem_num: self.index,
            sem_op: self.delta,
            sem_flg: flags as libc::c_short,
        }
    }
}

/// A set's state, from `semctl(IPC_STAT)`.
///
/// ```
/// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
/// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
/// let st = set.stat().unwrap();
/// assert_eq!((st.count, st.perm.mode), (1, 0o600));
/// assert_ne!(st.last_op_time, 0);
/// set.remove().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemStat {
    /// The key, owner, creator and permission bits (`struct ipc_perm`).
    pub perm: Perm,
    /// Number of semaphores (`sem_nsems`).
    pub count: u32,
    /// Seconds since the epoch of the last `semop`, 0 if none (`sem_otime`).
    pub last_op_time: i64,
    /// Seconds since the epoch of the last change (creation, `SETVAL`/`SETALL`, `IPC_SET`).
    pub change_time: i64,
}

/// Changes for [`SemaphoreSet::update`] (`semctl(IPC_SET)`); `None` keeps the current value.
///
/// ```
/// let u = ipckit::sem::SemUpdate { mode: Some(0o660), ..Default::default() };
/// assert_eq!(u.uid, None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SemUpdate {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner user id.
    pub uid: Option<u32>,
    /// New owner group id.
    pub gid: Option<u32>,
}

/// A handle on a System V semaphore set. It is a plain id: copying it copies the handle, and
/// dropping it leaves the set in the kernel (see [`remove`](Self::remove)).
///
/// ```
/// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
/// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
/// let again = SemaphoreSet::from_id(set.id());
/// assert_eq!(again.get(0).unwrap(), 1);
/// set.remove().unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemaphoreSet {
    id: i32,
}

fn semget(key: Key, nsems: u32, flags: libc::c_int) -> Result<i32> {
    let nsems = libc::c_int::try_from(nsems).map_err(|_| Error::new(Errno::EINVAL, "semget"))?;
    // SAFETY: semget takes no pointers.
    check(unsafe { libc::semget(key, nsems, flags) }, "semget")
}

impl SemaphoreSet {
    /// Finds or creates the set of `key` (`semget`), race-free (see the [module](self) docs).
    ///
    /// A set this call creates gets `initial` (one value per semaphore, zeros if `None`);
    /// a set that exists is never re-initialised: `initial` is ignored, and the call takes the
    /// set once the rules of the [module](self) docs say it is ready, waiting at most
    /// `options.init_timeout` for a young set that has untouched semaphores.
    /// [`IPC_PRIVATE`] always creates a new set.
    ///
    /// Errors: `ENOENT` (no set and no `create`), `EEXIST` (`exclusive` and one exists),
    /// `EINVAL` (`count` 0 or above `SEMMSL` on creation, larger than an existing set, or
    /// `initial` of another length), `ERANGE` (a value above [`SEMVMX`]), `EACCES`, `ENOSPC`,
    /// `ETIMEDOUT` (another ipckit process is still initialising the set: try again).
    ///
    /// For more information, see [`semget(2)`](https://man7.org/linux/man-pages/man2/semget.2.html).
    #[doc(alias = "semget")]
    pub fn open(key: Key, options: OpenOptions, initial: Option<&[u16]>) -> Result<Self> {
        if let Some(values) = initial {
            if values.len() != options.count as usize {
                return Err(Error::new(Errno::EINVAL, "semget"));
            }
        }
        let mode = (options.mode & 0o777) as libc::c_int;
        if !(options.create || options.exclusive || key == IPC_PRIVATE) {
            let set = Self::from_id(semget(key, options.count, 0)?);
            set.wait_initialized(options.init_timeout)?;
            return Ok(set);
        }
        loop {
            // Held from before the set exists until it is marked (see `init_marker`).
            let marker = init_marker::hold(key);
            match semget(key, options.count, mode | libc::IPC_CREAT | libc::IPC_EXCL) {
                Ok(id) => {
                    let set = Self::from_id(id);
                    if let Err(e) = set.initialize(initial) {
                        let _ = set.remove();
                        return Err(e);
                    }
                    drop(marker);
                    return Ok(set);
                }
                Err(e) if e.errno() == Errno::EEXIST && !options.exclusive => drop(marker),
                Err(e) => return Err(e),
            }
            // Someone else created it: open theirs and wait for their initialisation.
            match semget(key, options.count, 0) {
                Ok(id) => {
                    let set = Self::from_id(id);
                    set.wait_initialized(options.init_timeout)?;
                    return Ok(set);
                }
                // Removed in between: try to create it again.
                Err(e) if e.errno() == Errno::ENOENT => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The creator's half of the protocol: one `semop` that adds every initial value and so
    /// also makes `sem_otime` non-zero (see the [module](self) docs). When the set has more
    /// non-zero values than one `semop` may carry (`E2BIG`), `SETALL` and then a mark.
    fn initialize(&self, initial: Option<&[u16]>) -> Result<()> {
        let values = initial.unwrap_or(&[]);
        let adds: Vec<SemOp> = (0u16..)
            .zip(values)
            .filter(|&(_, &v)| v != 0)
            .map(|(index, &v)| {
                Ok(SemOp {
                    index,
                    // SEMVMX (32767) is the largest value: every valid one fits an i16.
                    delta: i16::try_from(v).map_err(|_| Error::new(Errno::ERANGE, "semop"))?,
                    undo: false,
                    nowait: true,
                })
            })
            .collect::<Result<_>>()?;
        if adds.is_empty() {
            return self.mark();
        }
        match retry_eintr(|| self.op(&adds, None)) {
            Err(e) if e.errno() == Errno::E2BIG => {
                self.set_all(values)?;
                self.mark()
            }
            other => other,
        }
    }

    /// A `semop` that changes no value, so that `sem_otime` becomes non-zero: wait-for-zero
    /// on semaphore 0 while it is 0, take one and give it back while it is not (an opener
    /// that took the set early may change it in between: try again, a bounded number of
    /// times, so that a peer flipping the value cannot keep the creator here).
    fn mark(&self) -> Result<()> {
        const fn nowait(delta: i16) -> SemOp {
            SemOp {
                index: 0,
                delta,
                undo: false,
                nowait: true,
            }
        }
        let mut last = Error::new(Errno::EAGAIN, "semop");
        for _ in 0..100 {
            for ops in [&[nowait(0)][..], &[nowait(-1), nowait(1)][..]] {
                match retry_eintr(|| self.op(ops, None)) {
                    Err(e) if e.errno() == Errno::EAGAIN => last = e,
                    other => return other,
                }
            }
        }
        Err(last)
    }

    /// Whether an existing set is ready to be used, by rules 1 to 3 of the [module](self)
    /// docs.
    fn looks_initialized(&self, ds: &libc::semid_ds) -> Result<bool> {
        if ds.sem_otime != 0 {
            return Ok(true);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        #[allow(clippy::unnecessary_cast)] // time_t is i64 on the targets we build for
        if now - (ds.sem_ctime as i64) >= 2 {
            return Ok(true);
        }
        let values = self.get_all()?;
        for (index, &value) in (0u16..).zip(&values) {
            if value == 0 && self.last_pid(index)? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The opener's half: see the [module](self) docs. Waits up to `timeout` for a set that
    /// does not look initialised yet, then takes it as it is, unless an ipckit creator holds
    /// the set's [`init_marker`] (it is still initialising): then `ETIMEDOUT`.
    fn wait_initialized(&self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(100);
        loop {
            let ds = self.raw_stat()?;
            if self.looks_initialized(&ds)? {
                return Ok(());
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                // The marker first, then the set again: a creator marks its set before it
                // lets go of the marker.
                let creating = init_marker::held(crate::perm::key(&ds.sem_perm));
                if creating && !self.looks_initialized(&self.raw_stat()?)? {
                    return Err(Error::new(Errno::ETIMEDOUT, "semget"));
                }
                return Ok(());
            }
            if crate::interrupt::stop_requested() {
                return Err(Error::cancelled("semget"));
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }

    /// A handle on the set with identifier `id`, as `ipcs` shows it. No system call is made;
    /// use [`stat`](Self::stat) to check that it exists.
    ///
    /// ```
    /// let set = ipckit::sem::SemaphoreSet::from_id(0x7fff_fff0);
    /// assert!(set.stat().is_err());
    /// ```
    pub const fn from_id(id: i32) -> Self {
        Self { id }
    }

    /// The set identifier, as `ipcs -s` shows it.
    ///
    /// ```
    /// assert_eq!(ipckit::sem::SemaphoreSet::from_id(7).id(), 7);
    /// ```
    pub const fn id(&self) -> i32 {
        self.id
    }

    /// Applies `ops` atomically, all or none (`semop`, or `semtimedop` with a `timeout`).
    ///
    /// One system call: `EINTR` is returned, not retried. Fails with `EAGAIN` when an
    /// operation with `nowait` would block or the timeout expires, `EIDRM` when the set is
    /// removed while waiting, `ERANGE` when a value would exceed [`SEMVMX`], `EFBIG` for an
    /// index beyond the set, `E2BIG` for more operations than `SEMOPM`.
    ///
    /// For more information, see [`semop(2)`](https://man7.org/linux/man-pages/man2/semop.2.html).
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
    /// let e = set.op(&[SemOp::new(0, -2)], Some(std::time::Duration::ZERO)).unwrap_err();
    /// assert_eq!(e.code(), "EAGAIN");
    /// set.op(&[SemOp::new(0, -1)], None).unwrap();
    /// set.remove().unwrap();
    /// ```
    #[doc(alias = "semop")]
    #[doc(alias = "semtimedop")]
    pub fn op(&self, ops: &[SemOp], timeout: Option<Duration>) -> Result<()> {
        let mut sops = RawOps::new(ops, false);
        self.raw_op(sops.as_mut(), timeout)
    }

    fn raw_op(&self, sops: &mut [libc::sembuf], timeout: Option<Duration>) -> Result<()> {
        match timeout {
            None => {
                // SAFETY: `sops` points to `sops.len()` valid sembuf values that the kernel
                // reads (and may write back sem_flg bits of) during the call.
                let rc = unsafe { libc::semop(self.id, sops.as_mut_ptr(), sops.len()) };
                check(rc, "semop").map(drop)
            }
            Some(t) => {
                let ts = libc::timespec {
                    tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: t.subsec_nanos() as libc::c_long,
                };
                // SAFETY: as for semop; `ts` is a valid timespec that outlives the call.
                let rc = unsafe { semtimedop(self.id, sops.as_mut_ptr(), sops.len(), &ts) };
                check(rc, "semtimedop").map(drop)
            }
        }
    }

    /// Applies `ops` atomically, waiting until they can be applied, `deadline` passes
    /// (`EAGAIN`), or `canceller` cancels the wait ([`Error::cancelled`]; nothing was applied).
    ///
    /// After a signal (`EINTR`) the call is made again with the time that remains, never
    /// with the full timeout. Without a canceller, it suits a blocking synchronous caller.
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// use std::time::{Duration, Instant};
    ///
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), None).unwrap();
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// let e = set.op_wait(&[SemOp::new(0, -1)], Some(deadline), None).unwrap_err();
    /// assert_eq!(e.code(), "EAGAIN");
    /// set.remove().unwrap();
    /// ```
    pub fn op_wait(
        &self,
        ops: &[SemOp],
        deadline: Option<Instant>,
        canceller: Option<&Canceller>,
    ) -> Result<()> {
        let mut sops = RawOps::new(ops, false);
        let syscall = if deadline.is_some() {
            "semtimedop"
        } else {
            "semop"
        };
        let attempt = || {
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            self.raw_op(sops.as_mut(), remaining)
        };
        match canceller {
            Some(c) => interruptible(c, syscall, attempt),
            None => retry_eintr(attempt),
        }
    }

    /// Applies `ops` on one of this crate's threads, waiting until they can be applied or
    /// `deadline` passes (`EAGAIN`, as `semtimedop` reports it), and tells `deliver`: the
    /// asynchronous operation. Waits of this process with the same operations on this set
    /// (1,000 lockers of one mutex) stand in one line served in order by one thread (see
    /// [`crate::wait`]), each with its own deadline; the [`Ticket`] cancels one (nothing
    /// applied, unless it completed first). `EAGAIN` (`pthread_create`) at once when no
    /// thread can be had.
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), None)?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// set.op_later(&[SemOp::new(0, -1)], None, move |r| tx.send(r).unwrap())?;
    /// set.op(&[SemOp::new(0, 1)], None)?;
    /// rx.recv().unwrap()?;
    /// assert_eq!(set.get(0)?, 0);
    /// set.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn op_later(
        &self,
        ops: &[SemOp],
        deadline: Option<Instant>,
        deliver: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<Ticket> {
        static LINES: Lines<(i32, Vec<SemOp>), LineOp> = Lines::new();
        let set = *self;
        let list = ops.to_vec();
        LINES.submit(
            (self.id, list.clone()),
            move || LineOp {
                set,
                sops: RawOps::new(&list, false),
            },
            if deadline.is_some() {
                "semtimedop"
            } else {
                "semop"
            },
            (),
            deadline,
            deliver,
        )
    }

    /// Tries `ops` once without waiting (every operation gets `IPC_NOWAIT`): `Ok(false)` when
    /// they would block, so that a caller can then start a wait.
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
    /// assert!(set.try_op(&[SemOp::new(0, -1)]).unwrap());
    /// assert!(!set.try_op(&[SemOp::new(0, -1)]).unwrap());
    /// set.remove().unwrap();
    /// ```
    pub fn try_op(&self, ops: &[SemOp]) -> Result<bool> {
        let mut sops = RawOps::new(ops, true);
        match retry_eintr(|| self.raw_op(sops.as_mut(), None)) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Errno::EAGAIN => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn ctl_int(&self, index: u16, cmd: libc::c_int) -> Result<i32> {
        // SAFETY: GETVAL, GETPID, GETNCNT and GETZCNT ignore the fourth argument.
        let rc = unsafe { libc::semctl(self.id, libc::c_int::from(index), cmd) };
        check(rc, "semctl")
    }

    /// The value of semaphore `index` (`semctl(GETVAL)`).
    ///
    /// For more information, see [`semctl(2)`](https://man7.org/linux/man-pages/man2/semctl.2.html).
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
    /// assert_eq!(set.get(0).unwrap(), 1);
    /// set.remove().unwrap();
    /// ```
    #[doc(alias = "GETVAL")]
    pub fn get(&self, index: u16) -> Result<u16> {
        self.ctl_int(index, libc::GETVAL).map(|v| v as u16)
    }

    /// Sets semaphore `index` to `value` (`semctl(SETVAL)`), clearing its undo entries in
    /// every process and waking waiters. `ERANGE` above [`SEMVMX`].
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
    /// set.set(0, 5).unwrap();
    /// assert_eq!(set.get(0).unwrap(), 5);
    /// set.remove().unwrap();
    /// ```
    #[doc(alias = "SETVAL")]
    pub fn set(&self, index: u16, value: u16) -> Result<()> {
        // SAFETY: SETVAL reads `union semun.val`, an int, which is what we pass.
        let rc = unsafe {
            libc::semctl(
                self.id,
                libc::c_int::from(index),
                libc::SETVAL,
                libc::c_int::from(value),
            )
        };
        check(rc, "semctl").map(drop)
    }

    /// The values of all semaphores (`semctl(GETALL)`).
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
    /// assert_eq!(set.get_all().unwrap(), vec![1]);
    /// set.remove().unwrap();
    /// ```
    #[doc(alias = "GETALL")]
    pub fn get_all(&self) -> Result<Vec<u16>> {
        let count = self.raw_stat()?.sem_nsems as usize;
        let mut values = vec![0u16; count];
        // SAFETY: GETALL writes `sem_nsems` unsigned shorts through `union semun.array`;
        // `values` holds exactly that many (a set's size never changes).
        let rc = unsafe { libc::semctl(self.id, 0, libc::GETALL, values.as_mut_ptr()) };
        check(rc, "semctl")?;
        Ok(values)
    }

    /// Sets all semaphores (`semctl(SETALL)`); `values` must have one value per semaphore
    /// (`EINVAL` otherwise). `ERANGE` for a value above [`SEMVMX`].
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
    /// set.set_all(&[4]).unwrap();
    /// assert_eq!(set.get_all().unwrap(), vec![4]);
    /// set.remove().unwrap();
    /// ```
    #[doc(alias = "SETALL")]
    pub fn set_all(&self, values: &[u16]) -> Result<()> {
        let count = self.raw_stat()?.sem_nsems as usize;
        if values.len() != count {
            return Err(Error::new(Errno::EINVAL, "semctl"));
        }
        // SAFETY: SETALL reads `sem_nsems` unsigned shorts through `union semun.array`, and
        // `values` holds exactly that many; the kernel does not write through the pointer.
        let rc = unsafe { libc::semctl(self.id, 0, libc::SETALL, values.as_ptr()) };
        check(rc, "semctl").map(drop)
    }

    /// Processes waiting for semaphore `index` to increase (`semctl(GETNCNT)`).
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
    /// assert_eq!(set.waiting_for_increase(0).unwrap(), 0);
    /// set.remove().unwrap();
    /// ```
    #[doc(alias = "GETNCNT")]
    pub fn waiting_for_increase(&self, index: u16) -> Result<u32> {
        self.ctl_int(index, libc::GETNCNT).map(|v| v as u32)
    }

    /// Processes waiting for semaphore `index` to become zero (`semctl(GETZCNT)`).
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
    /// assert_eq!(set.waiting_for_zero(0).unwrap(), 0);
    /// set.remove().unwrap();
    /// ```
    #[doc(alias = "GETZCNT")]
    pub fn waiting_for_zero(&self, index: u16) -> Result<u32> {
        self.ctl_int(index, libc::GETZCNT).map(|v| v as u32)
    }

    /// Pid of the last process that operated on semaphore `index`, 0 if none
    /// (`semctl(GETPID)`).
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
    /// // The creator's initialising semop counts as an operation.
    /// assert_eq!(set.last_pid(0).unwrap(), std::process::id() as i32);
    /// set.remove().unwrap();
    /// ```
    #[doc(alias = "GETPID")]
    pub fn last_pid(&self, index: u16) -> Result<i32> {
        self.ctl_int(index, libc::GETPID)
    }

    fn raw_stat(&self) -> Result<libc::semid_ds> {
        let mut ds = MaybeUninit::<libc::semid_ds>::uninit();
        // SAFETY: IPC_STAT fills the whole semid_ds that `union semun.buf` points to.
        let rc = unsafe { libc::semctl(self.id, 0, libc::IPC_STAT, ds.as_mut_ptr()) };
        check(rc, "semctl")?;
        // SAFETY: semctl succeeded, so the kernel initialised `ds`.
        Ok(unsafe { ds.assume_init() })
    }

    /// The set's state (`semctl(IPC_STAT)`).
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
    /// assert_eq!(set.stat().unwrap().count, 1);
    /// set.remove().unwrap();
    /// ```
    #[doc(alias = "IPC_STAT")]
    #[allow(clippy::unnecessary_cast)] // field types differ between C libraries
    pub fn stat(&self) -> Result<SemStat> {
        let ds = self.raw_stat()?;
        Ok(SemStat {
            perm: Perm::of(&ds.sem_perm),
            count: ds.sem_nsems as u32,
            last_op_time: ds.sem_otime as i64,
            change_time: ds.sem_ctime as i64,
        })
    }

    /// Changes owner or mode (`semctl(IPC_SET)`), keeping what `update` leaves out.
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemOp, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), Some(&[1])).unwrap();
    /// set.update(ipckit::sem::SemUpdate { mode: Some(0o640), ..Default::default() }).unwrap();
    /// assert_eq!(set.stat().unwrap().perm.mode, 0o640);
    /// set.remove().unwrap();
    /// ```
    #[doc(alias = "IPC_SET")]
    pub fn update(&self, update: SemUpdate) -> Result<()> {
        let mut ds = self.raw_stat()?;
        crate::perm::set_owner(&mut ds.sem_perm, update.mode, update.uid, update.gid);
        // SAFETY: `ds` is a valid semid_ds; IPC_SET reads it through `union semun.buf`.
        let rc = unsafe { libc::semctl(self.id, 0, libc::IPC_SET, &mut ds as *mut libc::semid_ds) };
        check(rc, "semctl").map(drop)
    }

    /// Removes the set (`semctl(IPC_RMID)`): waiting processes fail with `EIDRM`.
    ///
    /// ```
    /// use ipckit::sem::{OpenOptions, SemaphoreSet};
    /// let set = SemaphoreSet::open(ipckit::IPC_PRIVATE, OpenOptions::default(), None).unwrap();
    /// set.remove().unwrap();
    /// assert_eq!(set.get(0).unwrap_err().code(), "EINVAL");
    /// ```
    #[doc(alias = "IPC_RMID")]
    pub fn remove(&self) -> Result<()> {
        // SAFETY: IPC_RMID ignores the fourth argument.
        let rc = unsafe { libc::semctl(self.id, 0, libc::IPC_RMID) };
        check(rc, "semctl").map(drop)
    }
}

/// The waits of one set with one list of operations (see [`SemaphoreSet::op_later`]).
struct LineOp {
    set: SemaphoreSet,
    sops: RawOps,
}

impl Operation for LineOp {
    type Input = ();
    type Output = ();

    fn run(&mut self, _: &(), deadline: Option<Instant>) -> Result<Served<()>> {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match self.set.raw_op(self.sops.as_mut(), remaining) {
            Ok(()) => Ok(Served::One(())),
            Err(e)
                if e.errno() == Errno::EAGAIN && deadline.is_some_and(|d| d <= Instant::now()) =>
            {
                Ok(Served::TimedOut)
            }
            Err(e) => Err(e),
        }
    }

    fn timed_out(&self) -> Result<()> {
        Err(Error::new(Errno::EAGAIN, "semtimedop"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Temp(SemaphoreSet);
    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = self.0.remove();
        }
    }
    fn private(initial: &[u16]) -> Temp {
        let opts = OpenOptions {
            count: initial.len() as u32,
            create: true,
            ..Default::default()
        };
        Temp(SemaphoreSet::open(IPC_PRIVATE, opts, Some(initial)).unwrap())
    }
    const fn nowait(index: u16, delta: i16) -> SemOp {
        SemOp {
            index,
            delta,
            undo: false,
            nowait: true,
        }
    }

    #[test]
    fn creation_initialises_and_marks_otime() {
        let s = private(&[3, 0, 7]);
        assert_eq!(s.0.get_all().unwrap(), vec![3, 0, 7]);
        let st = s.0.stat().unwrap();
        assert_eq!((st.count, st.perm.mode, st.perm.key), (3, 0o600, 0));
        assert_ne!(st.last_op_time, 0);
    }

    #[test]
    fn atomic_multi_op_is_all_or_nothing() {
        let s = private(&[1, 0]);
        let e = s.0.op(&[nowait(0, -1), nowait(1, -1)], None).unwrap_err();
        assert_eq!(e.errno(), Errno::EAGAIN);
        assert_eq!(s.0.get_all().unwrap(), vec![1, 0]);
        s.0.op(&[nowait(0, -1), nowait(1, 2)], None).unwrap();
        assert_eq!(s.0.get_all().unwrap(), vec![0, 2]);
    }

    #[test]
    fn timeout_is_eagain_from_semtimedop() {
        let s = private(&[0]);
        let start = Instant::now();
        let deadline = start + Duration::from_millis(30);
        let e =
            s.0.op_wait(&[SemOp::new(0, -1)], Some(deadline), None)
                .unwrap_err();
        assert_eq!((e.errno(), e.syscall()), (Errno::EAGAIN, "semtimedop"));
        assert!(start.elapsed() >= Duration::from_millis(25));
        assert_eq!(s.0.get(0).unwrap(), 0);
    }

    #[test]
    fn signals_rearm_the_remaining_time_not_the_full_timeout() {
        use std::os::unix::thread::JoinHandleExt;
        let s = private(&[0]);
        let set = s.0;
        let start = Instant::now();
        let waiter = std::thread::spawn(move || {
            // A canceller that is never cancelled: EINTR from a stray signal is retried.
            let c = Canceller::new();
            let deadline = Instant::now() + Duration::from_millis(150);
            set.op_wait(&[SemOp::new(0, -1)], Some(deadline), Some(&c))
        });
        let thread = waiter.as_pthread_t();
        // Interrupt the wait every 20 ms: a restart with the full timeout would never end.
        while !waiter.is_finished() && start.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(20));
            if !waiter.is_finished() {
                // SAFETY: the thread is joinable (not joined yet), so its id is valid; the
                // wake signal's handler does nothing but interrupt the call.
                unsafe { libc::pthread_kill(thread, crate::wait::wake_signal()) };
            }
        }
        let e = waiter.join().unwrap().unwrap_err();
        assert_eq!((e.errno(), e.syscall()), (Errno::EAGAIN, "semtimedop"));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(145), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(s.0.get(0).unwrap(), 0);
    }

    #[test]
    fn ranges_and_sizes_fail_in_the_kernel() {
        let s = private(&[SEMVMX]);
        assert_eq!(
            s.0.op(&[nowait(0, 1)], None).unwrap_err().errno(),
            Errno::ERANGE
        );
        assert_eq!(s.0.set(0, SEMVMX + 1).unwrap_err().errno(), Errno::ERANGE);
        assert_eq!(
            s.0.op(&[nowait(5, 1)], None).unwrap_err().errno(),
            Errno::EFBIG
        );
        assert_eq!(s.0.set_all(&[1, 2]).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(s.0.get(0).unwrap(), SEMVMX);
    }

    #[test]
    fn try_op_reports_would_block() {
        let s = private(&[0]);
        assert!(!s.0.try_op(&[SemOp::new(0, -1)]).unwrap());
        s.0.set(0, 2).unwrap();
        assert!(s.0.try_op(&[SemOp::new(0, -2)]).unwrap());
        assert_eq!(s.0.get(0).unwrap(), 0);
    }

    #[test]
    fn open_existing_never_reinitialises() {
        let key = 0x1bd0_0000 | (std::process::id() as i32 & 0xffff);
        let _ = SemaphoreSet::open(
            key,
            OpenOptions {
                count: 0,
                ..Default::default()
            },
            None,
        )
        .map(|s| s.remove());
        let opts = OpenOptions {
            count: 1,
            create: true,
            ..Default::default()
        };
        let first = Temp(SemaphoreSet::open(key, opts, Some(&[4])).unwrap());
        first.0.set(0, 9).unwrap();
        let second = SemaphoreSet::open(key, opts, Some(&[4])).unwrap();
        assert_eq!(second.id(), first.0.id());
        assert_eq!(second.get(0).unwrap(), 9);
        let exclusive = OpenOptions {
            exclusive: true,
            ..opts
        };
        let e = SemaphoreSet::open(key, exclusive, Some(&[4])).unwrap_err();
        assert_eq!(e.errno(), Errno::EEXIST);
        let bigger = OpenOptions { count: 2, ..opts };
        let e = SemaphoreSet::open(key, bigger, None).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
    }

    /// A set made with `semget` alone, as a foreign creator makes it: untouched, `sem_otime` 0.
    fn raw_set(count: i32) -> Temp {
        // SAFETY: semget takes no pointers.
        let id = unsafe { libc::semget(IPC_PRIVATE, count, 0o600 | libc::IPC_CREAT) };
        Temp(SemaphoreSet::from_id(check(id, "semget").unwrap()))
    }

    /// `SemaphoreSet::open` of an existing set, through its key (a private set has key 0, so
    /// these tests open by id the way `open` does after its `semget`).
    fn open_existing(set: SemaphoreSet, timeout: Duration) -> (Duration, Result<()>) {
        let start = Instant::now();
        let r = set.wait_initialized(timeout);
        (start.elapsed(), r)
    }

    #[test]
    fn foreign_sets_set_with_setval_open_at_once() {
        // As sysv_ipc, Perl and most C programs leave a set: SETVAL, never a semop.
        let s = raw_set(1);
        s.0.set(0, 2).unwrap();
        assert_eq!(s.0.stat().unwrap().last_op_time, 0);
        let (took, r) = open_existing(s.0, Duration::from_secs(10));
        r.unwrap();
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert_eq!(s.0.get(0).unwrap(), 2);
    }

    #[test]
    fn an_untouched_young_set_is_taken_after_init_timeout() {
        // ipcmk -S, or a creator between semget and its first value: wait, then take it.
        let s = raw_set(2);
        let (took, r) = open_existing(s.0, Duration::from_millis(30));
        r.unwrap();
        assert!(took >= Duration::from_millis(29), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        let (took, r) = open_existing(s.0, Duration::ZERO);
        r.unwrap();
        assert!(took < Duration::from_millis(29), "{took:?}");
    }

    #[test]
    fn an_untouched_set_older_than_a_second_opens_at_once() {
        let s = raw_set(2);
        std::thread::sleep(Duration::from_millis(2100));
        let (took, r) = open_existing(s.0, Duration::from_secs(10));
        r.unwrap();
        assert!(took < Duration::from_secs(1), "{took:?}");
    }

    #[test]
    fn an_opener_waits_while_a_creator_sets_values_or_marks() {
        // A creator that sets one value, then (20 ms later) the other: the opener waits for
        // the second.
        let s = raw_set(2);
        s.0.set(0, 1).unwrap();
        let set = s.0;
        let creator = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            set.set(1, 0).unwrap();
        });
        let (took, r) = open_existing(s.0, Duration::from_secs(10));
        r.unwrap();
        creator.join().unwrap();
        assert!(took >= Duration::from_millis(15), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        // A creator whose first call is the marking semop.
        let s = raw_set(1);
        let set = s.0;
        let creator = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            set.op(&[nowait(0, 0)], None).unwrap();
        });
        let (took, r) = open_existing(s.0, Duration::from_secs(10));
        r.unwrap();
        creator.join().unwrap();
        assert!(took >= Duration::from_millis(15), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_ne!(s.0.stat().unwrap().last_op_time, 0);
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "the creator's sign is an abstract socket name (Linux)"
    )]
    fn a_set_an_ipckit_creator_is_initialising_is_never_handed_out() {
        let key = 0x1be1_0000 | (std::process::id() as i32 & 0xffff);
        // SAFETY: semget takes no pointers.
        let id = unsafe { libc::semget(key, 1, 0o600 | libc::IPC_CREAT | libc::IPC_EXCL) };
        let s = Temp(SemaphoreSet::from_id(check(id, "semget").unwrap()));
        // As an ipckit creator between its semget and its mark.
        let sign = init_marker::hold(key).expect("the sign");
        assert!(init_marker::held(key));
        let (took, r) = open_existing(s.0, Duration::from_millis(30));
        assert_eq!(r.unwrap_err().errno(), Errno::ETIMEDOUT);
        assert!(took >= Duration::from_millis(29), "{took:?}");
        // A second creator of the key waits for the sign, then does without it.
        assert!(init_marker::hold(key).is_none());
        // Once it is marked, the set opens, sign or not.
        s.0.initialize(Some(&[2])).unwrap();
        open_existing(s.0, Duration::ZERO).1.unwrap();
        drop(sign);
        assert!(!init_marker::held(key));
        // Untouched and without the sign (a foreign creator): taken as it is.
        let raw = raw_set(1);
        open_existing(raw.0, Duration::ZERO).1.unwrap();
    }

    #[test]
    fn initialising_adds_to_what_an_early_opener_did() {
        let s = raw_set(3);
        // An opener that took the set before its creator initialised it released twice.
        s.0.op(&[nowait(0, 2)], None).unwrap();
        s.0.initialize(Some(&[3, 0, 7])).unwrap();
        assert_eq!(s.0.get_all().unwrap(), vec![5, 0, 7]);
        assert_ne!(s.0.stat().unwrap().last_op_time, 0);
        // All zeros: the mark changes nothing, whatever semaphore 0 holds.
        let s = raw_set(2);
        s.0.initialize(Some(&[0, 0])).unwrap();
        assert_eq!(s.0.get_all().unwrap(), vec![0, 0]);
        assert_ne!(s.0.stat().unwrap().last_op_time, 0);
        let s = raw_set(1);
        s.0.op(&[nowait(0, 4)], None).unwrap();
        s.0.mark().unwrap();
        assert_eq!(s.0.get(0).unwrap(), 4);
    }

    #[test]
    fn more_values_than_one_semop_carries_are_set_with_setall() {
        let opm = std::fs::read_to_string("/proc/sys/kernel/sem")
            .ok()
            .and_then(|l| l.split_whitespace().nth(2)?.parse::<usize>().ok())
            .unwrap_or(32);
        let count = opm + 3;
        let s = raw_set(count as i32);
        let values: Vec<u16> = (0..count).map(|i| (i % 7 + 1) as u16).collect();
        s.0.initialize(Some(&values)).unwrap();
        assert_eq!(s.0.get_all().unwrap(), values);
        assert_ne!(s.0.stat().unwrap().last_op_time, 0);
    }

    #[test]
    fn cancelled_wait_changes_nothing() {
        use crate::wait::spawn;
        let _serial = crate::wait::POOL_TESTS.lock();
        let s = private(&[0, 5]);
        let set = s.0;
        let canceller = Canceller::new();
        let c = canceller.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        spawn(move || {
            let ops = [SemOp::new(1, -1), SemOp::new(0, -1)];
            tx.send(set.op_wait(&ops, None, Some(&c))).unwrap();
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(10));
        canceller.cancel();
        let r = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(r.unwrap_err().is_cancelled());
        assert_eq!(s.0.get_all().unwrap(), vec![0, 5]);
        assert_eq!(s.0.waiting_for_increase(0).unwrap(), 0);
    }

    #[test]
    fn removal_wakes_waiter_with_eidrm() {
        let temp = private(&[0]);
        let s = temp.0;
        let waiter = std::thread::spawn(move || s.op_wait(&[SemOp::new(0, -1)], None, None));
        // Removed once the kernel counts the waiter (before, its semop would find no set).
        crate::testing::wait_until("the waiter sleeps in semop", || {
            s.waiting_for_increase(0).unwrap() == 1
        });
        s.remove().unwrap();
        assert_eq!(waiter.join().unwrap().unwrap_err().errno(), Errno::EIDRM);
    }

    #[test]
    fn counts_pid_stat_update() {
        let s = private(&[0]);
        s.0.op(&[nowait(0, 1)], None).unwrap();
        // SAFETY: getpid has no preconditions.
        assert_eq!(s.0.last_pid(0).unwrap(), unsafe { libc::getpid() });
        assert_eq!(s.0.waiting_for_zero(0).unwrap(), 0);
        s.0.update(SemUpdate {
            mode: Some(0o640),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.0.stat().unwrap().perm.mode, 0o640);
    }
}
