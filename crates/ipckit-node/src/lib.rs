//! Node-API binding of the `ipckit` core (napi-rs v3).
//!
//! Thin by design: it converts JavaScript values to Rust and back, turns core errors into
//! Node-style system errors ([`error`]), and runs blocking waits on the core's own threads,
//! reporting back through one threadsafe function per JavaScript environment ([`reactor`]).
//! It holds no IPC logic; the public API, with its validation, lives in the TypeScript layer.

mod error;
mod fast;
mod key;
mod msg;
mod pipe;
mod reactor;
mod sem;
mod shm;
mod signal;
mod socket;
mod stop;
mod sysv_list;
