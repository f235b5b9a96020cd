//! Signals: `kill`, `sigqueue`, `sigaction`, and watching delivered signals with their sender.
//!
//! - [`kill`] and [`sigqueue`] send a signal (the latter with an integer payload).
//! - [`describe`] / [`list`] give every standard and real-time signal with its default action,
//!   as signal(7) tables them; [`disposition()`], [`ignore`] and [`set_default`] read and change
//!   what a signal does to this process.
//! - A [`Watch`] receives each delivered signal with the sender's pid and uid and the
//!   `sigqueue` payload ([`SignalInfo`]).
//!
//! # How a watch works
//!
//! The first watch of a signal installs one `SA_SIGINFO` handler for it, saving the action it
//! replaces. The handler does only async-signal-safe work: for every watch of that signal it
//! `write`s a fixed-size record (signal, `si_code`, pid, uid, value) to the watch's own
//! non-blocking pipe, then chains to the saved handler (unless told not to, see
//! [`Watch::with_chain`]), as the `signal-hook` crate does. `signalfd` is never used: it needs
//! the signal blocked in every thread, and a host such as Node.js has threads we do not own.
//! Readers take records from the pipe ([`Watch::try_next`], or [`Watch::next`] which waits
//! in `poll` and can be cancelled). When the last watch of a signal ends, the saved action is
//! put back, unless someone else has replaced our handler meanwhile (then theirs stays).
//!
//! # Order of real-time signals
//!
//! Real-time signals queue in the kernel and are handed out in order, but in a multi-threaded
//! process to whichever thread does not block them: two deliveries handled at the same moment
//! on two threads could be recorded swapped. A watch is therefore *ordered* by default
//! ([`Watch::ordered`]): while it lives, each real-time signal it follows is blocked in every
//! thread of the process except this crate's poller thread ([`crate::poller`]), where the
//! handler then runs for every delivery, one after the other. Existing threads get their mask
//! changed by a private signal ([`mask_signal`]), threads caught with every signal blocked for
//! a moment (inside `pthread_create`) the instant they unblock, and threads started later
//! inherit it; the last ordered watch of a signal unblocks it again. A
//! thread-directed signal (`pthread_kill`, `tgkill`) sent to another thread meanwhile waits in
//! that thread's queue until then. [`Watch::with_options`] with `ordered: false` leaves every
//! mask alone.
//!
//! ```
//! # #[cfg(any(target_os = "linux", target_os = "android"))] {
//! use ipckit::signal::{self, Watch};
//! let watch = Watch::new(&[libc::SIGUSR2])?;
//! // SAFETY: getpid has no preconditions.
//! signal::sigqueue(unsafe { libc::getpid() }, libc::SIGUSR2, 42)?;
//! let info = watch.next(&ipckit::wait::Canceller::new())?;
//! assert_eq!((info.signo, info.value), (libc::SIGUSR2, Some(42)));
//! # }
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! For more information, see [`signal(7)`](https://man7.org/linux/man-pages/man7/signal.7.html).
//!
//! # Where the parts are
//!
//! - `table.rs`: the signal table ([`describe`], [`list`], [`name`], [`number`], [`aliases`]);
//! - `send.rs`: [`kill`], [`sigqueue`];
//! - `action.rs`: `sigaction` itself, and [`is_allowed`];
//! - `disposition.rs`: [`disposition()`], [`ignore`], [`set_default`];
//! - `info.rs`: [`SignalInfo`] and the record the handler writes;
//! - `handler.rs`: the async-signal-safe handler, its tables and its installation (the file to
//!   audit for signal safety);
//! - `confine.rs`: the thread-mask confinement that keeps real-time signals in order (Linux);
//! - `registry.rs`: the bookkeeping of watches (outside the handler);
//! - `watch.rs`: [`Watch`] and [`reclaim`].

mod action;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod confine;
mod disposition;
mod handler;
mod info;
mod registry;
mod send;
mod table;
#[cfg(test)]
mod tests;
mod watch;

pub use crate::sys::{mask_signal, rtmax, rtmin};
pub use action::is_allowed;
pub use disposition::{disposition, ignore, set_default, Disposition};
pub use handler::MAX_WATCHES;
pub use info::{SignalInfo, ENCODED_LEN};
pub use send::{kill, sigqueue};
pub use table::{aliases, describe, list, name, number, DefaultAction, Description};
pub use watch::{reclaim, Watch};
