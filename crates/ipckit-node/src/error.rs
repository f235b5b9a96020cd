//! Core errors as Node.js system errors: `code` (`'EACCES'`), `errno` (negative, as Node's
//! `fs` reports it), `syscall`, and the message `EACCES: permission denied, msgget`.
//!
//! Synchronous calls throw such an error object; asynchronous completions carry the same
//! fields as a [`SysErrorInfo`]. The TypeScript layer turns both into an `IpcError`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// The fields of a system error, as an asynchronous completion carries them.
#[napi(object)]
pub struct SysErrorInfo {
    /// Symbolic errno name, e.g. `EIDRM`.
    pub code: String,
    /// Negative errno, as Node.js reports it.
    pub errno: i32,
    /// The failed system call, e.g. `msgrcv`.
    pub syscall: String,
    /// `EIDRM: identifier removed, msgrcv`.
    pub message: String,
}

impl From<&ipckit::Error> for SysErrorInfo {
    fn from(e: &ipckit::Error) -> Self {
        Self {
            code: e.code(),
            errno: -e.raw_errno(),
            syscall: e.syscall().to_owned(),
            message: e.to_string(),
        }
    }
}

/// Builds the JavaScript error object for `e`, to be thrown by a synchronous call.
pub(crate) fn sys_error(env: &Env, e: ipckit::Error) -> Error {
    info_error(env, SysErrorInfo::from(&e))
}

/// Builds the JavaScript error object of a system error's fields.
pub(crate) fn info_error(env: &Env, info: SysErrorInfo) -> Error {
    let fallback = info.message.clone();
    let build = || -> Result<Error> {
        let mut obj = env.create_error(Error::new(Status::GenericFailure, info.message))?;
        obj.set_named_property("code", info.code)?;
        obj.set_named_property("errno", info.errno)?;
        obj.set_named_property("syscall", info.syscall)?;
        Ok(Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|_| Error::new(Status::GenericFailure, fallback))
}

/// `map_err` shorthand: `call().or_throw(env)?`.
pub(crate) trait OrThrow<T> {
    fn or_throw(self, env: &Env) -> Result<T>;
}

impl<T> OrThrow<T> for ipckit::Result<T> {
    fn or_throw(self, env: &Env) -> Result<T> {
        self.map_err(|e| sys_error(env, e))
    }
}
