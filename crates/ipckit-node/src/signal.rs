//! Signals for JavaScript: value conversion over [`ipckit::signal`].
//!
//! A delivered signal travels as the 24-byte record of [`ipckit::signal::SignalInfo::encode`],
//! written into a caller's buffer by `tryNext`; when none is waiting, the TypeScript layer
//! waits for the watch's pipe ([`SignalWatch::fd`]) on the JavaScript thread's own event loop
//! (see `uv.rs`) and tries again. The TypeScript layer decodes the record.

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use ipckit::signal::{self, Watch};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;

/// Bytes of one encoded delivery.
#[napi]
pub const SIGNAL_RECORD_LEN: u32 = signal::ENCODED_LEN as u32;

/// A signal's name, number, default action and description.
#[napi(object)]
pub struct SignalDescriptionJs {
    pub name: String,
    pub number: i32,
    pub default_action: String,
    pub description: String,
    /// Other names of the signal ([`signal::aliases`]).
    pub aliases: Vec<String>,
}

impl From<signal::Description> for SignalDescriptionJs {
    fn from(d: signal::Description) -> Self {
        Self {
            aliases: signal::aliases(d.number)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            name: d.name,
            number: d.number,
            default_action: d.default_action.as_str().to_owned(),
            description: d.description.to_owned(),
        }
    }
}

/// The number of a signal name, `null` if unknown.
#[napi]
pub fn signal_number(name: String) -> Option<i32> {
    signal::number(&name)
}

/// The name of a signal number, `null` if it has none.
#[napi]
pub fn signal_name(number: i32) -> Option<String> {
    signal::name(number)
}

/// `[SIGRTMIN, SIGRTMAX, wake signal]` of this platform.
#[napi]
pub fn signal_limits() -> Vec<i32> {
    vec![
        signal::rtmin(),
        signal::rtmax(),
        ipckit::wait::wake_signal(),
        signal::mask_signal().unwrap_or(0),
    ]
}

/// Whether watches may follow the signal and ignore/restore may change it.
#[napi]
pub fn signal_allowed(number: i32) -> bool {
    signal::is_allowed(number)
}

/// signal(7) facts about one signal, `null` if it has no name.
#[napi]
pub fn signal_describe(number: i32) -> Option<SignalDescriptionJs> {
    signal::describe(number).map(Into::into)
}

/// Every standard and real-time signal.
#[napi]
pub fn signal_list() -> Vec<SignalDescriptionJs> {
    signal::list().into_iter().map(Into::into).collect()
}

/// `kill(2)`.
#[napi]
pub fn signal_kill(env: &Env, pid: i32, number: i32) -> Result<()> {
    signal::kill(pid, number).or_throw(env)
}

/// `sigqueue(3)`.
#[napi]
pub fn signal_queue(env: &Env, pid: i32, number: i32, value: i32) -> Result<()> {
    signal::sigqueue(pid, number, value).or_throw(env)
}

/// `'default' | 'ignore' | 'handler'`.
#[napi]
pub fn signal_disposition(env: &Env, number: i32) -> Result<String> {
    signal::disposition(number)
        .map(|d| d.as_str().to_owned())
        .or_throw(env)
}

/// `SIG_IGN`.
#[napi]
pub fn signal_ignore(env: &Env, number: i32) -> Result<()> {
    signal::ignore(number).or_throw(env)
}

/// `SIG_DFL`.
#[napi]
pub fn signal_set_default(env: &Env, number: i32) -> Result<()> {
    signal::set_default(number).or_throw(env)
}

/// Reinstalls the watch handler of a signal that someone replaced; true if it had to.
#[napi]
pub fn signal_reclaim(env: &Env, number: i32, chain: bool) -> Result<bool> {
    signal::reclaim(number, chain).or_throw(env)
}

/// A watch of some signals (see [`ipckit::signal::Watch`]).
///
/// `close()` lets go of the watch at once, so its pipe is closed then (or when a wait thread
/// still holding it ends), not when the garbage collector finalizes this object.
#[napi]
pub struct SignalWatch {
    inner: RefCell<Option<Arc<Watch>>>,
}

impl SignalWatch {
    fn watch(&self) -> Option<Arc<Watch>> {
        self.inner.borrow().clone()
    }
}

#[napi]
impl SignalWatch {
    /// Follows `signals`; `no_chain` lists those whose replaced handler is not called.
    #[napi(constructor)]
    pub fn new(env: &Env, signals: Vec<i32>, no_chain: Vec<i32>, ordered: bool) -> Result<Self> {
        Watch::with_options(&signals, |s| !no_chain.contains(&s), ordered)
            .map(|w| Self {
                inner: RefCell::new(Some(Arc::new(w))),
            })
            .or_throw(env)
    }

    /// Writes the next delivery into `buf` and returns true, or false if none is waiting.
    #[napi]
    pub fn try_next(&self, env: &Env, mut buf: BufferSlice<'_>) -> Result<bool> {
        let Some(watch) = self.watch() else {
            return Err(ipckit::Error::new(ipckit::Errno::EBADF, "read")).or_throw(env);
        };
        match watch.try_next().or_throw(env)? {
            Some(info) => {
                let bytes = info.encode();
                let Some(dest) = buf.get_mut(..bytes.len()) else {
                    return Err(Error::new(Status::InvalidArg, "buffer too small"));
                };
                dest.copy_from_slice(&bytes);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Whether real-time deliveries are recorded in kernel order (see `Watch::ordered`).
    #[napi(getter)]
    pub fn ordered(&self) -> bool {
        self.watch().is_some_and(|w| w.ordered())
    }

    /// The read end of the watch's pipe, readable while a delivery is recorded: the
    /// JavaScript side waits for it on its own event loop. -1 once closed.
    #[napi(getter)]
    pub fn fd(&self) -> i32 {
        self.watch().map_or(-1, |w| w.as_fd().as_raw_fd())
    }

    /// Deliveries lost to a full pipe.
    #[napi(getter)]
    pub fn dropped(&self) -> f64 {
        self.watch().map_or(0.0, |w| w.dropped() as f64)
    }

    /// Stops following; the previous dispositions come back. Idempotent.
    #[napi]
    pub fn close(&self) {
        if let Some(watch) = self.inner.borrow_mut().take() {
            watch.close();
        }
    }
}
