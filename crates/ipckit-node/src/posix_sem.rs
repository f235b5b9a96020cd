//! POSIX named semaphores for JavaScript: value conversion over [`ipckit::posix_sem`].
//!
//! A [`PosixSemaphoreHandle`] holds the semaphore in an `Arc`: `close()` lets go of this
//! handle's reference, and a wait thread keeps its own until it ends, so the C library unmaps
//! the semaphore only when nothing can touch it any more. A wait has no descriptor to poll:
//! it runs on a core wait thread through the [`Reactor`], cancellable.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipckit::posix_sem::{self, OpenOptions, Semaphore};
use ipckit::Errno;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
use crate::reactor::{Outcome, Reactor};

/// The largest value a semaphore holds (`SEM_VALUE_MAX`).
#[napi]
pub const POSIX_SEM_VALUE_MAX: u32 = posix_sem::VALUE_MAX;

/// The longest semaphore name, without its leading slash.
#[napi]
pub const POSIX_SEM_NAME_MAX: u32 = posix_sem::NAME_MAX as u32;

fn deadline(timeout_ms: f64) -> Option<Instant> {
    (timeout_ms >= 0.0).then(|| Instant::now() + Duration::from_secs_f64(timeout_ms / 1000.0))
}

/// A named semaphore opened by this process (`sem_t *`).
#[napi]
pub struct PosixSemaphoreHandle {
    sem: RefCell<Option<Arc<Semaphore>>>,
}

impl PosixSemaphoreHandle {
    fn get(&self, syscall: &'static str) -> ipckit::Result<Arc<Semaphore>> {
        self.sem
            .borrow()
            .clone()
            .ok_or(ipckit::Error::new(Errno::EINVAL, syscall))
    }
}

#[napi]
impl PosixSemaphoreHandle {
    /// `sem_open`; `initial` is used only when the call creates the semaphore.
    #[napi(factory)]
    pub fn open(
        env: &Env,
        name: String,
        create: bool,
        exclusive: bool,
        mode: u32,
        initial: u32,
    ) -> Result<Self> {
        let options = OpenOptions {
            create,
            exclusive,
            mode,
            initial,
        };
        let sem = Semaphore::open(&name, &options).or_throw(env)?;
        Ok(Self {
            sem: RefCell::new(Some(Arc::new(sem))),
        })
    }

    /// `sem_post`.
    #[napi]
    pub fn post(&self, env: &Env) -> Result<()> {
        self.get("sem_post").and_then(|s| s.post()).or_throw(env)
    }

    /// `sem_trywait`: true if it took one.
    #[napi]
    pub fn try_wait(&self, env: &Env) -> Result<bool> {
        self.get("sem_trywait")
            .and_then(|s| s.try_wait())
            .or_throw(env)
    }

    /// `sem_wait` (`timeout_ms` < 0) or `sem_timedwait` on the calling thread, retried after
    /// `EINTR`.
    #[napi]
    pub fn wait_sync(&self, env: &Env, timeout_ms: f64) -> Result<()> {
        let deadline = deadline(timeout_ms);
        self.get("sem_wait")
            .and_then(|s| s.wait_blocking(deadline))
            .or_throw(env)
    }

    /// `sem_getvalue`.
    #[napi]
    pub fn value(&self, env: &Env) -> Result<i32> {
        self.get("sem_getvalue")
            .and_then(|s| s.value())
            .or_throw(env)
    }

    /// Lets go of this handle's reference (`sem_close` once no wait holds one); idempotent.
    #[napi]
    pub fn close(&self) {
        drop(self.sem.borrow_mut().take());
    }
}

/// Starts a wait (`sem_wait`, or `sem_timedwait` with `timeout_ms` >= 0) on a core wait
/// thread; delivered with no value, or `ETIMEDOUT`, or `ECANCELED` when cancelled (then it
/// took nothing).
#[napi]
pub fn posix_sem_wait_start(
    env: &Env,
    reactor: &Reactor,
    wait_id: u32,
    handle: &PosixSemaphoreHandle,
    timeout_ms: f64,
) -> Result<()> {
    let sem = handle.get("sem_wait").or_throw(env)?;
    let deadline = deadline(timeout_ms);
    let syscall = if deadline.is_some() {
        "sem_timedwait"
    } else {
        "sem_wait"
    };
    reactor.start(wait_id, move |canceller| {
        ipckit::wait::interruptible(canceller, syscall, || sem.wait(deadline))
            .map(|()| Outcome::Done)
    });
    Ok(())
}

/// `sem_unlink`.
#[napi]
pub fn posix_sem_unlink(env: &Env, name: String) -> Result<()> {
    posix_sem::unlink(&name).or_throw(env)
}
