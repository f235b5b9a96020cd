//! System V semaphores for JavaScript: value conversion over [`ipckit::sem`].
//!
//! Operations arrive as a flat list of triples `[index, delta, flags, ...]` (flags: 1 =
//! `SEM_UNDO`, 2 = `IPC_NOWAIT`), already validated by the TypeScript layer; waits go through
//! the [`Reactor`].

use std::cell::RefCell;
use std::time::{Duration, Instant};

use ipckit::sem::{OpenOptions, SemOp, SemStat, SemUpdate, SemaphoreSet};
use ipckit::{Errno, Error as CoreError};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
use crate::fast::{self, keep_error, Slab};
use crate::reactor::{Outcome, Reactor};

/// The largest value a semaphore holds (`SEMVMX`).
#[napi]
pub const SEM_VALUE_MAX: u32 = ipckit::sem::SEMVMX as u32;

/// Flag bit of an operation triple: `SEM_UNDO`.
const UNDO: i32 = 1;
/// Flag bit of an operation triple: `IPC_NOWAIT`.
const NOWAIT: i32 = 2;

fn decode(ops: &[i32]) -> ipckit::Result<Vec<SemOp>> {
    if ops.is_empty() || !ops.len().is_multiple_of(3) {
        return Err(CoreError::new(Errno::EINVAL, "semop"));
    }
    ops.chunks_exact(3)
        .map(|t| {
            let index = u16::try_from(t[0]).map_err(|_| CoreError::new(Errno::EFBIG, "semop"))?;
            let delta = i16::try_from(t[1]).map_err(|_| CoreError::new(Errno::ERANGE, "semop"))?;
            Ok(SemOp {
                index,
                delta,
                undo: t[2] & UNDO != 0,
                nowait: t[2] & NOWAIT != 0,
            })
        })
        .collect()
}

/// The deadline `timeout_ms` (fractions kept) from now; `None` for a negative timeout (none)
/// and for one too far away to represent, which is as good as for ever.
fn deadline(timeout_ms: f64) -> Option<Instant> {
    if timeout_ms.is_nan() || timeout_ms < 0.0 {
        return None;
    }
    let timeout = Duration::try_from_secs_f64(timeout_ms / 1000.0).ok()?;
    Instant::now().checked_add(timeout)
}

/// A set opened by [`sem_open`]: its id and its number of semaphores.
#[napi(object)]
pub struct SemOpened {
    pub id: i32,
    pub count: u32,
}

/// `semget` with the race-free creation protocol; `initial` (one value per semaphore) is
/// used only by the process that creates the set.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn sem_open(
    env: &Env,
    key: i32,
    count: u32,
    create: bool,
    exclusive: bool,
    mode: u32,
    initial: Option<Vec<u32>>,
    init_timeout_ms: f64,
) -> Result<SemOpened> {
    let options = OpenOptions {
        count,
        create,
        exclusive,
        mode,
        // Too long to represent (Infinity) waits for ever.
        init_timeout: Duration::try_from_secs_f64(init_timeout_ms.max(0.0) / 1000.0)
            .unwrap_or(Duration::MAX),
    };
    let initial: Option<Vec<u16>> = initial.map(|v| v.into_iter().map(|x| x as u16).collect());
    let set = SemaphoreSet::open(key, options, initial.as_deref()).or_throw(env)?;
    let count = set.stat().or_throw(env)?.count;
    Ok(SemOpened {
        id: set.id(),
        count,
    })
}

/// Applies `ops` on the calling thread. With `try_only`, every operation gets `IPC_NOWAIT`
/// and a would-block returns `false` (the fast path of the async form). Otherwise it blocks
/// (retrying after signals) until done, or until `timeout_ms` (>= 0) passes (`EAGAIN`).
#[napi]
pub fn sem_op(env: &Env, id: i32, ops: Vec<i32>, timeout_ms: f64, try_only: bool) -> Result<bool> {
    let ops = decode(&ops).or_throw(env)?;
    let set = SemaphoreSet::from_id(id);
    if try_only {
        return set.try_op(&ops).or_throw(env);
    }
    set.op_wait(&ops, deadline(timeout_ms), None)
        .map(|()| true)
        .or_throw(env)
}

/// Starts a blocking `semop`/`semtimedop` in the line of waits with the same operations on
/// this set (one thread for them all); `timeout_ms` < 0 means none. Throws `EAGAIN` when no
/// thread can be had.
/// The deadline counts from this call; after a signal the call resumes with what remains.
#[napi]
pub fn sem_op_start(
    env: &Env,
    reactor: &Reactor,
    wait_id: u32,
    id: i32,
    ops: Vec<i32>,
    timeout_ms: f64,
) -> Result<()> {
    let ops = decode(&ops).or_throw(env)?;
    let deadline = deadline(timeout_ms);
    reactor
        .line(wait_id, |deliver| {
            SemaphoreSet::from_id(id)
                .op_later(&ops, deadline, move |r| deliver(r.map(|()| Outcome::Done)))
        })
        .or_throw(env)
}

/// `semctl(GETVAL)`.
#[napi]
pub fn sem_get(env: &Env, id: i32, index: u32) -> Result<u32> {
    SemaphoreSet::from_id(id)
        .get(index as u16)
        .map(u32::from)
        .or_throw(env)
}

/// `semctl(GETALL)`.
#[napi]
pub fn sem_get_all(env: &Env, id: i32) -> Result<Vec<u32>> {
    SemaphoreSet::from_id(id)
        .get_all()
        .map(|v| v.into_iter().map(u32::from).collect())
        .or_throw(env)
}

/// `semctl(SETVAL)`; values above 65535 are passed as 65535 so that the kernel answers `ERANGE`.
#[napi]
pub fn sem_set(env: &Env, id: i32, index: u32, value: u32) -> Result<()> {
    SemaphoreSet::from_id(id)
        .set(index as u16, value.min(u32::from(u16::MAX)) as u16)
        .or_throw(env)
}

/// `semctl(SETALL)`.
#[napi]
pub fn sem_set_all(env: &Env, id: i32, values: Vec<u32>) -> Result<()> {
    let values: Vec<u16> = values
        .into_iter()
        .map(|v| v.min(u32::from(u16::MAX)) as u16)
        .collect();
    SemaphoreSet::from_id(id).set_all(&values).or_throw(env)
}

/// `semctl(GETNCNT)`.
#[napi]
pub fn sem_waiting_for_increase(env: &Env, id: i32, index: u32) -> Result<u32> {
    SemaphoreSet::from_id(id)
        .waiting_for_increase(index as u16)
        .or_throw(env)
}

/// `semctl(GETZCNT)`.
#[napi]
pub fn sem_waiting_for_zero(env: &Env, id: i32, index: u32) -> Result<u32> {
    SemaphoreSet::from_id(id)
        .waiting_for_zero(index as u16)
        .or_throw(env)
}

/// `semctl(GETPID)`.
#[napi]
pub fn sem_last_pid(env: &Env, id: i32, index: u32) -> Result<i32> {
    SemaphoreSet::from_id(id)
        .last_pid(index as u16)
        .or_throw(env)
}

/// A set's state (`semctl(IPC_STAT)`); times in seconds since the epoch, 0 for never.
#[napi(object)]
pub struct SemStatJs {
    pub count: u32,
    pub last_op_time: f64,
    pub change_time: f64,
    /// Key, owner, creator and mode.
    pub perm: crate::perm::PermJs,
}

impl From<SemStat> for SemStatJs {
    fn from(s: SemStat) -> Self {
        Self {
            perm: (&s.perm).into(),
            count: s.count,
            last_op_time: s.last_op_time as f64,
            change_time: s.change_time as f64,
        }
    }
}

/// `semctl(IPC_STAT)`.
#[napi]
pub fn sem_stat(env: &Env, id: i32) -> Result<SemStatJs> {
    SemaphoreSet::from_id(id)
        .stat()
        .map(Into::into)
        .or_throw(env)
}

/// `semctl(IPC_SET)`; a missing value keeps the current one.
#[napi]
pub fn sem_update(
    env: &Env,
    id: i32,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<()> {
    SemaphoreSet::from_id(id)
        .update(SemUpdate { mode, uid, gid })
        .or_throw(env)
}

/// `semctl(IPC_RMID)`.
#[napi]
pub fn sem_remove(env: &Env, id: i32) -> Result<()> {
    SemaphoreSet::from_id(id).remove().or_throw(env)
}

// The fast path of single operations (`Semaphore.acquire`/`release`, `Mutex` unlock, and any
// `SemaphoreSet.op` of one operation without a timeout), as messages have one (see
// `msgFastRegister` in msg.rs): a napi-rs function with arguments pays a fixed cost per call
// for its argument borrow scope, several times a `semop`. The TypeScript layer registers one
// small private buffer per thread (`semFastRegister`), writes the operation into it as four
// `i32`s (set id, index, delta, flags) and calls the argument-less `semFastOp`, which answers
// with a number; an error is kept and thrown by the next `semFastError()`.

/// Bytes of a semaphore fast-path slab: four `i32`s (set id, index, delta, flags).
#[napi]
pub const SEM_FAST_BYTES: u32 = 16;
/// Fast-path flag: answer 0 instead of failing with `EAGAIN` when the operation would wait
/// (with `IPC_NOWAIT`, flag 2).
#[napi]
pub const SEM_FAST_SOFT: u32 = 4;

thread_local! {
    static SLAB: RefCell<Slab> = const { RefCell::new(Slab::EMPTY) };
}

/// Registers this thread's fast-path slab (see `semFastOp`); a later call replaces it. When
/// the environment shuts down, the slab is let go without a Node-API call.
#[napi]
pub fn sem_fast_register(env: &Env, slab: Buffer) -> Result<()> {
    fast::register(env, &SLAB, slab)
}

/// One `semop` of the operation in the registered slab. Returns 1 when applied; 0 when it
/// would wait and the flags hold `IPC_NOWAIT` and `SEM_FAST_SOFT`; -2 after an error, which
/// `semFastError()` then throws. Without `IPC_NOWAIT` it blocks (retrying after signals).
#[napi]
pub fn sem_fast_op() -> i32 {
    let words = fast::with_slab(&SLAB, |slab| {
        let word = |i: usize| fast::word(slab.as_deref()?, i);
        Some([word(0)?, word(1)?, word(2)?, word(3)?])
    });
    let Some([id, index, delta, flags]) = words else {
        return keep_error(CoreError::new(Errno::EINVAL, "semop"));
    };
    let (Ok(index), Ok(delta)) = (u16::try_from(index), i16::try_from(delta)) else {
        return keep_error(CoreError::new(Errno::ERANGE, "semop"));
    };
    let op = SemOp {
        index,
        delta,
        undo: flags & UNDO != 0,
        nowait: flags & NOWAIT != 0,
    };
    let set = SemaphoreSet::from_id(id);
    let result = if op.nowait && flags & SEM_FAST_SOFT as i32 != 0 {
        set.try_op(&[op])
    } else {
        set.op_wait(&[op], None, None).map(|()| true)
    };
    match result {
        Ok(done) => i32::from(done),
        Err(e) => keep_error(e),
    }
}

/// Throws the error kept by the last failed `semFastOp` (and forgets it); does nothing if
/// there is none.
#[napi]
pub fn sem_fast_error(env: &Env) -> Result<()> {
    fast::throw_kept(env)
}
