//! Safe Rust wrappers for classic Linux inter-process communication, the core of the `ipckit`
//! npm package (which adds the Node.js binding on top; this crate knows nothing of JavaScript).
//!
//! One module per facility, named as its man pages name it:
//! [`msg`] (System V message queues), [`key`] (`ftok`), [`limits`] (`/proc/sys/kernel`),
//! [`wait`] (cancellable blocking waits on threads this crate owns), and [`error`], the one
//! funnel from a failed call to a typed [`Error`].
//!
//! ```
//! use ipckit::msg::{MessageQueue, OpenOptions};
//! let q = MessageQueue::open(ipckit::IPC_PRIVATE, OpenOptions::default())?;
//! q.send(1, b"hi", false)?;
//! assert_eq!(q.stat()?.messages, 1);
//! q.remove()?;
//! # Ok::<(), ipckit::Error>(())
//! ```

pub mod error;
pub mod key;
pub mod limits;
pub mod msg;
pub mod pipe;
pub mod poller;
pub mod sem;
pub mod shm;
pub mod signal;
pub mod socket;
pub mod sysv_list;
pub mod wait;

pub use error::{Errno, Error, Result};
pub use key::{ftok, Key, IPC_PRIVATE};
