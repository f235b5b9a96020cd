//! Safe Rust wrappers for classic Linux inter-process communication, the core of the `ipckit`
//! npm package (which adds the Node.js binding on top; this crate knows nothing of JavaScript).
//!
//! One module per facility, named as its man pages name it:
//! - System V IPC: [`msg`] (message queues), [`sem`] (semaphore sets), [`shm`] (shared memory
//!   and futex wait/wake on its words), [`key`] (`ftok`), [`sysv_list`] (`ipcs`/`ipcrm` over
//!   `/proc/sysvipc`), [`limits`] (`/proc/sys/kernel`);
//! - file descriptors: [`pipe`] (pipes, FIFOs), [`socket`] (socket pairs, UNIX stream, datagram
//!   and seqpacket sockets, descriptor passing, credentials);
//! - beyond System V: [`mqueue`] (POSIX message queues), [`posix_sem`] (POSIX named
//!   semaphores), [`posix_shm`] (POSIX shared memory), [`memfd`] (anonymous shared files and
//!   their seals), [`eventfd`] (counters to wake other processes and threads), [`pidfd`]
//!   (signal and await a process without the pid-reuse race), and [`mmap`], the shared
//!   [`Mapping`](mmap::Mapping) of System V segments, POSIX objects and memfds;
//! - [`channel`]: message channels over a shared-memory ring (the layout of
//!   `include/ipckit/channel.h`), woken through eventfds or futex words;
//! - [`signal`] (kill, sigqueue, the signal table, watches that chain to the handler they
//!   replace);
//! - the machinery of waiting: [`wait`] (cancellable blocking calls on threads this crate
//!   owns), [`poller`] (one epoll/kqueue thread for fd readiness) and [`interrupt`] (blocking
//!   calls on a caller's thread that its owner can still stop);
//! - and [`error`], the one funnel from a failed call to a typed [`Error`].
//!
//! ```
//! use ipckit::msg::{MessageQueue, OpenOptions};
//! let q = MessageQueue::open(ipckit::IPC_PRIVATE, OpenOptions::default())?;
//! q.send(1, b"hi", false)?;
//! assert_eq!(q.stat()?.messages, 1);
//! q.remove()?;
//! # Ok::<(), ipckit::Error>(())
//! ```

pub mod channel;
pub mod error;
pub mod eventfd;
pub mod interrupt;
pub mod key;
pub mod limits;
pub mod memfd;
pub mod mmap;
pub mod mqueue;
pub mod msg;
pub mod perm;
pub mod pidfd;
pub mod pipe;
pub mod poller;
pub mod posix_sem;
pub mod posix_shm;
pub mod sem;
pub mod shm;
pub mod signal;
pub mod socket;
mod sys;
pub mod sysv_list;
#[cfg(test)]
mod testing;
pub mod wait;

pub use error::{Errno, Error, Result};
pub use key::{ftok, Key, IPC_PRIVATE};
