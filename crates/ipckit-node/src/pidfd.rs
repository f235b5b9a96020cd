//! pidfd for JavaScript: value conversion over [`ipckit::pidfd`].
//!
//! The descriptor crosses as a plain number the TypeScript layer owns. Waiting for the exit is
//! the TypeScript layer's: it watches the descriptor on the event loop (`uv.rs`), with no
//! thread per wait, and asks [`pidfd_exit_status`] when it is readable.

use std::os::fd::IntoRawFd;

use ipckit::pidfd::{self, ExitStatus};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;

/// `pidfd_open(pid, 0)`: the caller owns the fd.
#[napi]
pub fn pidfd_open(env: &Env, pid: i32) -> Result<i32> {
    pidfd::open(pid).map(IntoRawFd::into_raw_fd).or_throw(env)
}

/// Checks that `fd` is a pidfd: the pid of its process, null once it is gone.
#[napi]
pub fn pidfd_adopt(env: &Env, fd: i32) -> Result<Option<i32>> {
    crate::uv::with_fd(fd, pidfd::adopt).or_throw(env)
}

/// `pidfd_send_signal(fd, signal, NULL, 0)`.
#[napi]
pub fn pidfd_send_signal(env: &Env, fd: i32, signal: i32) -> Result<()> {
    crate::uv::with_fd(fd, |fd| pidfd::send_signal(fd, signal)).or_throw(env)
}

/// Whether the process has exited (the pidfd is readable), without waiting.
#[napi]
pub fn pidfd_exited(env: &Env, fd: i32) -> Result<bool> {
    crate::uv::with_fd(fd, pidfd::has_exited).or_throw(env)
}

/// How a child ended: an exit code, or a signal number (with whether it dumped core).
#[napi(object)]
pub struct PidfdExitJs {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub core_dumped: bool,
}

/// `waitid(P_PIDFD, WNOWAIT)`: null unless this process's child exited and is not reaped yet.
#[napi]
pub fn pidfd_exit_status(env: &Env, fd: i32) -> Result<Option<PidfdExitJs>> {
    let status = crate::uv::with_fd(fd, pidfd::exit_status).or_throw(env)?;
    Ok(status.map(|s| match s {
        ExitStatus::Exited(code) => PidfdExitJs {
            code: Some(code),
            signal: None,
            core_dumped: false,
        },
        ExitStatus::Signaled {
            signal,
            core_dumped,
        } => PidfdExitJs {
            code: None,
            signal: Some(signal),
            core_dumped,
        },
    }))
}

/// Blocks the calling thread until the process exits or `timeout_ms` passes (null or infinite:
/// no limit); whether it exited.
#[napi]
pub fn pidfd_wait_sync(env: &Env, fd: i32, timeout_ms: Option<f64>) -> Result<bool> {
    let timeout =
        timeout_ms.and_then(|ms| std::time::Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).ok());
    crate::uv::with_fd(fd, |fd| pidfd::wait_exit(fd, timeout)).or_throw(env)
}
