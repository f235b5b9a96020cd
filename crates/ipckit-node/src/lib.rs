//! Node-API binding of the `ipckit` core (napi-rs v3).
//!
//! Thin by design: it converts JavaScript values to Rust and back, turns core errors into
//! Node-style system errors ([`error`]), and runs blocking waits on the core's own threads,
//! reporting back through one threadsafe function per JavaScript environment ([`reactor`]).
//! It holds no IPC logic; the public API, with its validation, lives in the TypeScript layer.
//!
//! `unsafe` is denied here but in [`uv`] (libuv and raw Node-API: fd readiness on the
//! JavaScript thread's event loop) and one external-ArrayBuffer call in [`shm`].

#![deny(unsafe_code)]

mod channel;
mod error;
mod eventfd;
mod fast;
mod key;
mod memfd;
mod mqueue;
mod msg;
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
