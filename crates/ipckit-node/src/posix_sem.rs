//! POSIX named semaphores for JavaScript: value conversion over [`ipckit::posix_sem`].
//!
//! The semaphores a thread's JavaScript has open are kept here by number, each in an `Arc`:
//! [`posix_sem_close`] lets go of the table's reference, and a wait thread keeps its own until
//! it ends, so the C library unmaps the semaphore only when nothing can touch it any more.
//! Operations that need no wait go through an argument-less fast path; a wait has no
//! descriptor to poll, so it runs on a core wait thread through the [`Reactor`], cancellable.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipckit::posix_sem::{self, OpenOptions, Semaphore};
use ipckit::Errno;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
use crate::fast::{self, keep_error, Handles, Slab};
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

thread_local! {
    /// The semaphores this thread's JavaScript has open, by number. A wait thread holds its
    /// own reference, so closing one while a wait runs unmaps nothing under it.
    static SEMAPHORES: RefCell<Handles<Arc<Semaphore>>> = RefCell::new(Handles::default());
}

fn get(id: u32, syscall: &'static str) -> ipckit::Result<Arc<Semaphore>> {
    SEMAPHORES.with(|s| {
        s.borrow()
            .get(id)
            .cloned()
            .ok_or(ipckit::Error::new(Errno::EINVAL, syscall))
    })
}

/// `sem_open`; returns the semaphore's number on this thread. `initial` is used only when the
/// call creates the semaphore.
#[napi]
pub fn posix_sem_open(
    env: &Env,
    name: String,
    create: bool,
    exclusive: bool,
    mode: u32,
    initial: u32,
) -> Result<u32> {
    let options = OpenOptions {
        create,
        exclusive,
        mode,
        initial,
    };
    let sem = Semaphore::open(&name, &options).or_throw(env)?;
    Ok(SEMAPHORES.with(|s| s.borrow_mut().insert(Arc::new(sem))))
}

/// Lets go of this thread's reference to semaphore `id` (`sem_close` once no wait holds one);
/// does nothing if it is not open.
#[napi]
pub fn posix_sem_close(id: u32) {
    let sem = SEMAPHORES.with(|s| s.borrow_mut().remove(id));
    drop(sem);
}

// The fast path (see `msg.rs` for why an argument-less call): the slab holds three `i32`
// words, the semaphore's number, the operation, and a timeout in milliseconds (-1: none).

/// Bytes of the fast-path slab.
#[napi]
pub const POSIX_SEM_FAST_BYTES: u32 = 16;
/// Fast-path operation: `sem_trywait`; answers 1 (taken) or 0.
#[napi]
pub const POSIX_SEM_TRY_WAIT: u32 = 0;
/// Fast-path operation: `sem_post`; answers 1.
#[napi]
pub const POSIX_SEM_POST: u32 = 1;
/// Fast-path operation: `sem_getvalue`; answers the value.
#[napi]
pub const POSIX_SEM_VALUE: u32 = 2;
/// Fast-path operation: `sem_wait` (or `sem_timedwait`) on the calling thread, retried after
/// `EINTR`; answers 1.
#[napi]
pub const POSIX_SEM_WAIT: u32 = 3;

thread_local! {
    static SLAB: RefCell<Slab> = const { RefCell::new(Slab::EMPTY) };
}

/// Registers this thread's fast-path slab; a later call replaces it.
#[napi]
pub fn posix_sem_fast_register(env: &Env, slab: Buffer) -> Result<()> {
    fast::register(env, &SLAB, slab)
}

/// Runs the operation the slab describes; -2 after an error, which `posixSemFastError()`
/// then throws.
#[napi]
pub fn posix_sem_fast() -> i64 {
    let args = fast::with_slab(&SLAB, |slab| {
        let slab = slab?;
        Some((
            fast::word(slab, 0)?,
            fast::word(slab, 1)?,
            fast::word(slab, 2)?,
        ))
    });
    let Some((id, op, timeout)) = args else {
        return keep_error(ipckit::Error::new(Errno::EINVAL, "sem_post"));
    };
    let op = op as u32;
    let syscall = match op {
        POSIX_SEM_TRY_WAIT => "sem_trywait",
        POSIX_SEM_POST => "sem_post",
        POSIX_SEM_VALUE => "sem_getvalue",
        _ if timeout >= 0 => "sem_timedwait",
        _ => "sem_wait",
    };
    let result = SEMAPHORES.with(|s| match s.borrow().get(id as u32) {
        None => Err(ipckit::Error::new(Errno::EINVAL, syscall)),
        Some(sem) => match op {
            POSIX_SEM_TRY_WAIT => sem.try_wait().map(i64::from),
            POSIX_SEM_POST => sem.post().map(|()| 1),
            POSIX_SEM_VALUE => sem.value().map(i64::from),
            _ => sem.wait_blocking(deadline(f64::from(timeout))).map(|()| 1),
        },
    });
    result.unwrap_or_else(keep_error)
}

/// Throws the error kept by the last failed `posixSemFast()` (and forgets it); does nothing
/// if there is none.
#[napi]
pub fn posix_sem_fast_error(env: &Env) -> Result<()> {
    fast::throw_kept(env)
}

/// Starts a wait (`sem_wait`, or `sem_timedwait` with `timeout_ms` >= 0) on semaphore `id`,
/// in the line of this semaphore's waits (one thread for them all); delivered with no value,
/// or `ETIMEDOUT`, or `ECANCELED` when cancelled (then it took nothing). Throws `EAGAIN` when
/// no thread can be had.
#[napi]
pub fn posix_sem_wait_start(
    env: &Env,
    reactor: &Reactor,
    wait_id: u32,
    id: u32,
    timeout_ms: f64,
) -> Result<()> {
    let sem = get(id, "sem_wait").or_throw(env)?;
    let deadline = deadline(timeout_ms);
    reactor
        .line(wait_id, |deliver| {
            sem.wait_later(deadline, move |r| deliver(r.map(|()| Outcome::Done)))
        })
        .or_throw(env)
}

/// `sem_unlink`.
#[napi]
pub fn posix_sem_unlink(env: &Env, name: String) -> Result<()> {
    posix_sem::unlink(&name).or_throw(env)
}
