//! System V shared memory for JavaScript: value conversion over [`ipckit::shm`], and the
//! mapping object that POSIX shared memory and memfds use as well.
//!
//! An attachment is a [`ShmMapping`] holding an `Arc<Mapping>` of the core; the mapping is
//! unmapped (`shmdt`, or `munmap` for a file mapping) when the last clone goes, whoever holds it: this object, a futex wait in
//! progress, or the external `ArrayBuffer` made by [`ShmMapping::array_buffer`], whose
//! finalizer owns one clone. So neither `release()`, nor garbage collection, nor
//! [`shm_detach_buffer`] can leave JavaScript pointing at unmapped memory.
//!
//! The external ArrayBuffer itself is made in `uv.rs` ([`crate::uv::external_array_buffer`]),
//! the binding's one module with `unsafe`: napi-rs has no safe constructor over memory it
//! does not own.

use std::sync::Arc;

use ipckit::shm::{Mapping, OpenOptions, SharedMemory, ShmStat, ShmUpdate, WaitResult};
use ipckit::Errno;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
use crate::reactor::{Outcome, Reactor};

/// `shmget`: the id of the segment of `key`.
#[napi]
pub fn shm_open(
    env: &Env,
    key: i32,
    size: f64,
    create: bool,
    exclusive: bool,
    mode: u32,
) -> Result<i32> {
    let options = OpenOptions {
        size: size as usize,
        create,
        exclusive,
        mode,
    };
    SharedMemory::open(key, options)
        .map(|s| s.id())
        .or_throw(env)
}

/// A segment's state (`shmctl(IPC_STAT)`); times in seconds since the epoch, 0 for never.
#[napi(object)]
pub struct ShmStatJs {
    pub size: f64,
    pub attachments: f64,
    pub creator_pid: i32,
    pub last_pid: i32,
    pub attach_time: f64,
    pub detach_time: f64,
    pub change_time: f64,
    pub removed: bool,
    /// Key, owner, creator and mode.
    pub perm: crate::perm::PermJs,
}

impl From<ShmStat> for ShmStatJs {
    fn from(s: ShmStat) -> Self {
        Self {
            perm: (&s.perm).into(),
            size: s.size as f64,
            attachments: s.attachments as f64,
            creator_pid: s.creator_pid,
            last_pid: s.last_pid,
            attach_time: s.attach_time as f64,
            detach_time: s.detach_time as f64,
            change_time: s.change_time as f64,
            removed: s.removed,
        }
    }
}

/// `shmctl(IPC_STAT)`.
#[napi]
pub fn shm_stat(env: &Env, id: i32) -> Result<ShmStatJs> {
    SharedMemory::from_id(id)
        .stat()
        .map(Into::into)
        .or_throw(env)
}

/// `shmctl(IPC_SET)`; a missing value keeps the current one.
#[napi]
pub fn shm_update(
    env: &Env,
    id: i32,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<()> {
    SharedMemory::from_id(id)
        .update(ShmUpdate { mode, uid, gid })
        .or_throw(env)
}

/// `shmctl(IPC_RMID)`.
#[napi]
pub fn shm_remove(env: &Env, id: i32) -> Result<()> {
    SharedMemory::from_id(id).remove().or_throw(env)
}

/// `shmat`: a new attachment of segment `id`.
#[napi]
pub fn shm_attach(env: &Env, id: i32, readonly: bool) -> Result<ShmMapping> {
    let mapping = SharedMemory::from_id(id).attach(readonly).or_throw(env)?;
    Ok(ShmMapping::new(mapping))
}

/// Whether this runtime accepts external ArrayBuffers (Node.js does; Electron >= 21 does not).
/// napi-rs's safe `ArrayBuffer::from_data` hands the engine a `Vec`'s own memory where it
/// may, and copies it where it may not, so comparing the addresses tells which happened.
#[napi]
pub fn shm_zero_copy_probe(env: &Env) -> Result<bool> {
    let probe = vec![0u8; 1];
    let address = probe.as_ptr();
    let buffer = ArrayBuffer::from_data(env, probe)?;
    Ok(std::ptr::eq(buffer.as_ptr(), address))
}

/// Neuters `buffer` (`napi_detach_arraybuffer`): every typed array over it gets length 0.
/// Its finalizer, which releases the mapping, runs once the engine lets go of the memory.
#[napi]
pub fn shm_detach_buffer(buffer: ArrayBuffer<'_>) -> Result<()> {
    if buffer.is_detached()? {
        return Ok(());
    }
    buffer.detach()
}

/// One attachment (`shmat`) of a segment, detached when the last user lets it go.
#[napi]
pub struct ShmMapping {
    inner: Option<Arc<Mapping>>,
    /// The hold of the zero-copy ArrayBuffer (see [`ShmMapping::array_buffer`]) on the mapping,
    /// shared with the buffer's finalizer so that [`ShmMapping::detach_buffer`] can let it go
    /// at once instead of when the engine frees the buffer.
    buffer_hold: Option<BufferHold>,
    /// The hold of the last range buffer ([`ShmMapping::range_buffer`]) and where it starts, so
    /// that [`ShmMapping::detach_range_buffer`] lets the mapping go at once too.
    range_hold: Option<(usize, BufferHold)>,
}

/// A mapping clone kept for an ArrayBuffer: emptied by its finalizer, or earlier by an explicit
/// detach that made the buffer unusable.
type BufferHold = Arc<std::sync::Mutex<Option<Arc<Mapping>>>>;

fn let_go(hold: &BufferHold) {
    let taken = hold.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(taken);
}

fn released(env: &Env) -> Error {
    crate::error::sys_error(env, ipckit::Error::new(Errno::EINVAL, "shmat"))
}

/// What a futex wait ended with, as the number the TypeScript layer maps to a string:
/// 0 `'ok'`, 1 `'not-equal'`, 2 `'timed-out'`.
fn wait_code(r: WaitResult) -> u32 {
    match r {
        WaitResult::Ok => 0,
        WaitResult::NotEqual => 1,
        WaitResult::TimedOut => 2,
    }
}

fn timeout(ms: Option<f64>) -> Option<std::time::Duration> {
    // Too long to represent is as good as for ever.
    ms.and_then(|ms| std::time::Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).ok())
}

/// An external `ArrayBuffer` over `len` bytes at `offset` of the mapping `hold` holds; the
/// buffer's finalizer lets go of it. `ENOTSUP` if the runtime copied instead.
fn external_buffer<'env>(
    env: &'env Env,
    hold: BufferHold,
    offset: usize,
    len: usize,
) -> Result<ArrayBuffer<'env>> {
    let mapping = {
        let guard = hold.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(m) if offset.checked_add(len).is_some_and(|end| end <= m.len()) => m.clone(),
            _ => return Err(released(env)),
        }
    };
    let ptr = mapping.as_ptr().wrapping_add(offset);
    let buffer = crate::uv::external_array_buffer(env, &mapping, offset, len, hold, let_go)?;
    if !std::ptr::eq(buffer.as_ptr(), ptr) {
        return Err(crate::error::sys_error(
            env,
            ipckit::Error::new(Errno::ENOTSUP, "napi_create_external_arraybuffer"),
        ));
    }
    Ok(buffer)
}

impl ShmMapping {
    /// The core mapping, unless released (for the channel's binding).
    pub(crate) fn shared(&self) -> Option<&Arc<Mapping>> {
        self.inner.as_ref()
    }

    /// The JavaScript object of a core mapping: a System V attachment, or a file mapping of
    /// POSIX shared memory or a memfd (`posix_shm.rs`, `memfd.rs`), which share every method
    /// below, zero-copy buffers and futex waits included.
    pub(crate) fn new(mapping: Mapping) -> Self {
        Self {
            inner: Some(Arc::new(mapping)),
            buffer_hold: None,
            range_hold: None,
        }
    }
}

#[napi]
impl ShmMapping {
    fn mapping(&self, env: &Env) -> Result<&Arc<Mapping>> {
        self.inner.as_ref().ok_or_else(|| released(env))
    }

    /// Length in bytes (the segment's size).
    #[napi(getter)]
    pub fn length(&self) -> f64 {
        self.inner.as_ref().map_or(0.0, |m| m.len() as f64)
    }

    /// Whether the attachment is read-only (`SHM_RDONLY`).
    #[napi(getter)]
    pub fn readonly(&self) -> bool {
        self.inner.as_ref().is_some_and(|m| m.is_readonly())
    }

    /// Copies `target.length` bytes from `offset` into `target` (a Buffer).
    #[napi]
    pub fn read(&self, env: &Env, offset: f64, mut target: BufferSlice<'_>) -> Result<()> {
        self.mapping(env)?
            .read(offset as usize, &mut target)
            .or_throw(env)
    }

    /// Copies `data` into the segment at `offset`.
    #[napi]
    pub fn write(&self, env: &Env, offset: f64, data: &[u8]) -> Result<()> {
        self.mapping(env)?
            .write(offset as usize, data)
            .or_throw(env)
    }

    /// Atomically loads the 32-bit word at `offset`.
    #[napi]
    pub fn load(&self, env: &Env, offset: f64) -> Result<u32> {
        self.mapping(env)?.load_u32(offset as usize).or_throw(env)
    }

    /// Futex wait on the calling thread; `timeout_ms` null or infinite waits for ever.
    #[napi]
    pub fn wait_sync(
        &self,
        env: &Env,
        offset: f64,
        expected: u32,
        timeout_ms: Option<f64>,
    ) -> Result<u32> {
        self.mapping(env)?
            .wait(offset as usize, expected, timeout(timeout_ms), None)
            .map(wait_code)
            .or_throw(env)
    }

    /// Starts a futex wait in the line of waits on this word for this value (one thread and one
    /// kernel waiter for them all); its result code arrives through the reactor's dispatch as
    /// the number. The wait holds the mapping, so releasing this object meanwhile is harmless.
    /// Throws `EAGAIN` when no thread can be had.
    #[napi]
    pub fn wait_start(
        &self,
        env: &Env,
        reactor: &Reactor,
        wait_id: u32,
        offset: f64,
        expected: u32,
        timeout_ms: Option<f64>,
    ) -> Result<()> {
        let mapping = self.mapping(env)?.clone();
        let timeout = timeout(timeout_ms);
        reactor
            .line(wait_id, |deliver| {
                mapping.wait_later(offset as usize, expected, timeout, move |r| {
                    deliver(r.map(|r| Outcome::Message(i64::from(wait_code(r)), Vec::new())))
                })
            })
            .or_throw(env)
    }

    /// Futex wake of up to `count` waiters; returns how many were woken.
    #[napi]
    pub fn notify(&self, env: &Env, offset: f64, count: u32) -> Result<u32> {
        self.mapping(env)?
            .wake(offset as usize, count)
            .or_throw(env)
    }

    /// A zero-copy `ArrayBuffer` over the whole attachment, which keeps the mapping alive
    /// until the engine frees it. Call it at most once per attachment (one ArrayBuffer per
    /// address), and only where `shm_zero_copy_probe` said true; fails with `ENOTSUP` if the
    /// runtime copied the memory anyway.
    #[napi]
    pub fn array_buffer<'env>(&mut self, env: &'env Env) -> Result<ArrayBuffer<'env>> {
        let mapping = self.mapping(env)?.clone();
        let len = mapping.len();
        let hold: BufferHold = Arc::new(std::sync::Mutex::new(Some(mapping)));
        self.buffer_hold = Some(hold.clone());
        external_buffer(env, hold, 0, len)
    }

    /// A zero-copy `ArrayBuffer` over `length` bytes at `offset` (a message in a channel's
    /// ring), holding the mapping until the engine frees it or it is detached
    /// ([`shm_detach_buffer`]), after which no JavaScript value reaches those bytes. Never
    /// at offset 0, where [`array_buffer`](Self::array_buffer)'s buffer starts (one
    /// ArrayBuffer per address); `EINVAL` for a range outside the mapping, `ENOTSUP` where
    /// the runtime copies.
    #[napi]
    pub fn range_buffer<'env>(
        &mut self,
        env: &'env Env,
        offset: f64,
        length: f64,
    ) -> Result<ArrayBuffer<'env>> {
        let mapping = self.mapping(env)?.clone();
        let (offset, length) = (offset as usize, length as usize);
        let inside = offset
            .checked_add(length)
            .is_some_and(|end| end <= mapping.len());
        if offset == 0 || !inside || mapping.is_readonly() {
            return Err(crate::error::sys_error(
                env,
                ipckit::Error::new(Errno::EINVAL, "napi_create_external_arraybuffer"),
            ));
        }
        let hold: BufferHold = Arc::new(std::sync::Mutex::new(Some(mapping)));
        let buffer = external_buffer(env, hold.clone(), offset, length)?;
        self.range_hold = Some((buffer.as_ptr() as usize, hold));
        Ok(buffer)
    }

    /// Neuters `buffer`, the last buffer of [`range_buffer`](Self::range_buffer), and lets go
    /// of its hold on the mapping at once; `EINVAL` for any other buffer.
    #[napi]
    pub fn detach_range_buffer(&mut self, env: &Env, buffer: ArrayBuffer<'_>) -> Result<()> {
        if buffer.is_detached()? {
            return Ok(());
        }
        let ours = self
            .range_hold
            .as_ref()
            .is_some_and(|(at, _)| *at == buffer.as_ptr() as usize);
        if !ours {
            return Err(crate::error::sys_error(
                env,
                ipckit::Error::new(Errno::EINVAL, "napi_detach_arraybuffer"),
            ));
        }
        buffer.detach()?;
        if let Some((_, hold)) = self.range_hold.take() {
            let_go(&hold);
        }
        Ok(())
    }

    /// Neuters `buffer`, this attachment's zero-copy ArrayBuffer (`napi_detach_arraybuffer`):
    /// every typed array over it gets length 0, and since no JavaScript value can reach the
    /// memory through it any more, the buffer's hold on the mapping goes at once, so that the
    /// attachment ends now (`shmdt`, with [`release`](Self::release)) unless a wait still holds
    /// it, rather than when the engine frees the buffer. A buffer already detached by someone
    /// else (moved away by a transfer) keeps its hold until the engine frees it.
    #[napi]
    pub fn detach_buffer(&mut self, env: &Env, buffer: ArrayBuffer<'_>) -> Result<()> {
        if buffer.is_detached()? {
            return Ok(());
        }
        let ours = self
            .inner
            .as_ref()
            .is_some_and(|m| std::ptr::eq(buffer.as_ptr(), m.as_ptr()));
        if !ours {
            return Err(crate::error::sys_error(
                env,
                ipckit::Error::new(Errno::EINVAL, "napi_detach_arraybuffer"),
            ));
        }
        buffer.detach()?;
        if let Some(hold) = self.buffer_hold.take() {
            let_go(&hold);
        }
        Ok(())
    }

    /// Drops this object's hold on the mapping (the attachment ends once buffers and waits
    /// that hold it are gone too). Idempotent.
    #[napi]
    pub fn release(&mut self) {
        self.inner = None;
    }
}
