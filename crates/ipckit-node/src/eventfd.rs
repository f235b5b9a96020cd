//! eventfd for JavaScript: value conversion over [`ipckit::eventfd`].
//!
//! The descriptor crosses as a plain number the TypeScript layer owns. Counts are 64-bit: a
//! read hands back a number when it fits one exactly (up to 2^53 - 1) and a BigInt otherwise,
//! and a write takes either. Async waits are the TypeScript layer's: it watches the descriptor
//! on the event loop (`uv.rs`) and retries the non-blocking call here when it is ready.

use std::os::fd::IntoRawFd;

use ipckit::eventfd::{self, EventFdOptions};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;

/// The largest integer a JavaScript number holds exactly.
const MAX_SAFE: u64 = (1 << 53) - 1;

/// `eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK [| EFD_SEMAPHORE])`: the caller owns the fd.
#[napi]
pub fn eventfd_create(env: &Env, initial: u32, semaphore: bool) -> Result<i32> {
    eventfd::eventfd(initial, EventFdOptions { semaphore })
        .map(IntoRawFd::into_raw_fd)
        .or_throw(env)
}

/// Checks that `fd` is an eventfd and makes it non-blocking: whether it is in semaphore mode,
/// where the kernel says.
#[napi]
pub fn eventfd_adopt(env: &Env, fd: i32) -> Result<Option<bool>> {
    crate::uv::with_fd(fd, eventfd::adopt)
        .map(|a| a.semaphore)
        .or_throw(env)
}

/// The error a call that may not wait throws when it would have to (`EAGAIN`).
fn would_block(env: &Env, syscall: &'static str) -> Error {
    crate::error::sys_error(env, ipckit::Error::new(ipckit::Errno::EAGAIN, syscall))
}

/// Takes the count without waiting: null while it is 0 (or, with `must`, throws `EAGAIN`).
#[napi]
pub fn eventfd_read(env: &Env, fd: i32, must: bool) -> Result<Option<Either<f64, BigInt>>> {
    let value = crate::uv::with_fd(fd, eventfd::read).or_throw(env)?;
    if value.is_none() && must {
        return Err(would_block(env, "read"));
    }
    Ok(value.map(|v| {
        if v <= MAX_SAFE {
            Either::A(v as f64)
        } else {
            Either::B(BigInt::from(v))
        }
    }))
}

/// Adds to the count without waiting: false when it would pass the maximum (or, with `must`,
/// throws `EAGAIN`).
#[napi]
pub fn eventfd_write(env: &Env, fd: i32, value: Either<f64, BigInt>, must: bool) -> Result<bool> {
    let value = match value {
        Either::A(n) => n as u64,
        Either::B(b) => {
            let (negative, v, lossless) = b.get_u64();
            if negative || !lossless {
                return Err(Error::new(Status::InvalidArg, "count out of range"));
            }
            v
        }
    };
    let written = crate::uv::with_fd(fd, |fd| eventfd::write(fd, value)).or_throw(env)?;
    if !written && must {
        return Err(would_block(env, "write"));
    }
    Ok(written)
}

/// Blocks the calling thread until `fd` is readable (or `writable`); for the `...Sync` forms.
#[napi]
pub fn eventfd_wait_sync(env: &Env, fd: i32, writable: bool) -> Result<()> {
    crate::uv::with_fd(fd, |fd| ipckit::socket::wait_ready(fd, writable)).or_throw(env)
}
