//! Pipes and FIFOs for JavaScript: value conversion over [`ipckit::pipe`].
//!
//! Descriptors cross to JavaScript as plain numbers that the TypeScript layer then owns (it
//! wraps them in streams and closes them). Paths come as the bytes of a Buffer, so that any
//! Linux file name works, UTF-8 or not. A FIFO open that has to wait runs on the core's wait
//! threads through the [`Reactor`]; its descriptor arrives as the completion's number.

use std::ffi::OsStr;
use std::os::fd::IntoRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ipckit::pipe::{self, FifoEnd};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
use crate::reactor::{Outcome, Reactor};

fn path_of(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

fn end_of(write: bool) -> FifoEnd {
    if write {
        FifoEnd::Write
    } else {
        FifoEnd::Read
    }
}

/// `pipe2(O_CLOEXEC)`: `[readFd, writeFd]`, both blocking; the caller owns them.
#[napi]
pub fn pipe_create(env: &Env) -> Result<Vec<i32>> {
    let (r, w) = pipe::pipe().or_throw(env)?;
    Ok(vec![r.into_raw_fd(), w.into_raw_fd()])
}

/// `mkfifo(path, mode)`.
#[napi]
pub fn fifo_make(env: &Env, path: &[u8], mode: u32) -> Result<()> {
    pipe::mkfifo(path_of(path), mode).or_throw(env)
}

/// Opens a FIFO end if no wait is needed: the descriptor, or -1 when it would wait.
#[napi]
pub fn fifo_open_now(env: &Env, path: &[u8], write: bool) -> Result<i32> {
    let fd = pipe::open_fifo_now(path_of(path), end_of(write)).or_throw(env)?;
    Ok(fd.map_or(-1, IntoRawFd::into_raw_fd))
}

/// Opens a FIFO end on the calling thread, blocking until the peer opens it.
#[napi]
pub fn fifo_open_sync(env: &Env, path: &[u8], write: bool) -> Result<i32> {
    let fd = pipe::open_fifo_blocking(path_of(path), end_of(write)).or_throw(env)?;
    Ok(fd.into_raw_fd())
}

/// Starts a blocking open of a FIFO end on a pool thread (an open waits for the other end,
/// which no fd can be polled for); the descriptor arrives through the reactor's dispatch as
/// its number. Throws `EAGAIN` when no thread can be had.
#[napi]
pub fn fifo_open_start(
    env: &Env,
    reactor: &Reactor,
    wait_id: u32,
    path: &[u8],
    write: bool,
) -> Result<()> {
    let path: PathBuf = path_of(path).to_owned();
    let end = end_of(write);
    reactor
        .start(wait_id, move |canceller| {
            pipe::open_fifo(&path, end, canceller)
                .map(|fd| Outcome::Message(i64::from(fd.into_raw_fd()), Vec::new()))
        })
        .or_throw(env)
}
