//! [`Watch`]: receives the signals it follows, each delivery once, with sender and payload,
//! from its own pipe that the handler writes to; and the bookkeeping of watches outside the
//! handler.

use super::action::{current_action, is_allowed};
use super::handler::{install, our_handler, release_slot, uninstall, MAX_WATCHES, SLOTS};
use super::info::{Record, SignalInfo, RECORD};
use super::registry::{escapes, registry};

use crate::error::{check, Errno, Error, Result};
use crate::sys::{libc, rtmax, rtmin};
use crate::wait::{interruptible, Canceller};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The error past [`MAX_WATCHES`]; its text names the number.
const TOO_MANY_WATCHES: Error = Error::limit(
    Errno::EMFILE,
    "watch",
    "too many signal watches (ipckit allows 128 at once in a process)",
);

const _: () = assert!(MAX_WATCHES == 128, "update TOO_MANY_WATCHES");

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
        let (read, write) = crate::pipe::nonblocking_pipe()?;
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
    /// could not be changed (one that blocks [`mask_signal`](super::mask_signal) but not the signal and sleeps so,
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

impl Drop for Watch {
    fn drop(&mut self) {
        self.close();
    }
}
