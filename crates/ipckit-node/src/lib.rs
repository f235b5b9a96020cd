//! Node-API binding of the `ipckit` core (napi-rs v3).
//!
//! Thin by design: it converts JavaScript values to Rust and back, turns core errors into
//! Node-style system errors ([`error`]), and runs blocking waits on the core's own threads,
//! reporting back through one threadsafe function per JavaScript environment ([`reactor`]).
//! It holds no IPC logic; the public API, with its validation, lives in the TypeScript layer.
//!
//! `unsafe` is denied here but in [`uv`], the binding's one edge to C: libuv and raw
//! Node-API (fd readiness on the JavaScript thread's event loop, payload buffers, the
//! external ArrayBuffer of shared memory), and the descriptor numbers JavaScript holds, which
//! become `BorrowedFd`s and `OwnedFd`s there for the core.

#![deny(unsafe_code)]
// A test build (`cargo test --workspace`) registers no function with Node, so every export
// would be reported unused there.
#![cfg_attr(test, allow(dead_code))]

mod channel;
mod error;
mod eventfd;
mod fast;
mod key;
mod memfd;
mod mqueue;
mod msg;
mod owned;
mod perm;
mod pidfd;
mod pipe;
mod posix_sem;
mod posix_shm;
mod reactor;
mod sem;
mod shm;
mod signal;
mod socket;
mod stop;
mod sysv_list;
#[allow(unsafe_code)]
mod uv;
