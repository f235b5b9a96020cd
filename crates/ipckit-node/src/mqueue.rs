//! POSIX message queues for JavaScript: value conversion over [`ipckit::mqueue`].
//!
//! The queues a thread's JavaScript has open are kept here, each a core
//! [`MessageQueue`] owning its descriptor, by a number the TypeScript layer holds
//! ([`posix_queue_open`], [`posix_queue_close`]; a `FinalizationRegistry` closes what is
//! collected unclosed). Sends and receives that need no wait run on the JavaScript thread
//! through an argument-less fast path (as System V queues do, see `msg.rs`); when one would
//! wait, the TypeScript layer watches the descriptor ([`posix_queue_fd`]) on the JavaScript
//! thread's own event loop (a queue descriptor is a file descriptor on Linux: readable when a
//! message is queued, writable when there is room; see `uv.rs`) and tries again. No thread is
//! parked per wait.

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use ipckit::mqueue::{self, Access, MessageQueue, Notify, OpenOptions, Wait};
use ipckit::Errno;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
use crate::fast::{self, keep_error, Handles, Slab};

/// The largest message priority (`MQ_PRIO_MAX - 1`).
#[napi]
pub const POSIX_QUEUE_PRIORITY_MAX: u32 = mqueue::PRIORITY_MAX;

/// The longest queue name, without its leading slash (`NAME_MAX`).
#[napi]
pub const POSIX_QUEUE_NAME_MAX: u32 = mqueue::NAME_MAX as u32;

/// A wait code, as the TypeScript layer passes it: -2 not at all, -1 forever, else
/// milliseconds.
fn wait_of(code: f64) -> Wait {
    if code <= -2.0 {
        Wait::Now
    } else if code < 0.0 {
        Wait::Forever
    } else {
        Wait::Until(Instant::now() + Duration::from_secs_f64(code / 1000.0))
    }
}

fn closed(syscall: &'static str) -> ipckit::Error {
    ipckit::Error::new(Errno::EBADF, syscall)
}

/// A queue's attributes (`mq_getattr`) with its owner and mode (`fstat`).
#[napi(object)]
pub struct PosixQueueStatJs {
    pub non_blocking: bool,
    pub max_messages: f64,
    pub message_size: f64,
    pub messages: f64,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// What a receive outside the fast path took: its length and priority.
#[napi(object)]
pub struct PosixQueueReceivedJs {
    pub length: u32,
    pub priority: u32,
}

thread_local! {
    /// The queues this thread's JavaScript has open, by number.
    static QUEUES: RefCell<Handles<MessageQueue>> = RefCell::new(Handles::default());
}

/// Runs `f` on queue `id`; `EBADF` (named `syscall`) when it is not open.
fn with_queue<T>(
    id: u32,
    syscall: &'static str,
    f: impl FnOnce(&MessageQueue) -> ipckit::Result<T>,
) -> ipckit::Result<T> {
    QUEUES.with(|q| match q.borrow().get(id) {
        Some(queue) => f(queue),
        None => Err(closed(syscall)),
    })
}

/// `mq_open`; returns the queue's number on this thread. `access`: 0 receive only, 1 send
/// only, 2 both; a negative `maxMessages` or `messageSize` means the system's default.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn posix_queue_open(
    env: &Env,
    name: String,
    access: u32,
    create: bool,
    exclusive: bool,
    mode: u32,
    non_blocking: bool,
    max_messages: f64,
    message_size: f64,
) -> Result<u32> {
    let options = OpenOptions {
        access: match access {
            0 => Access::Read,
            1 => Access::Write,
            _ => Access::ReadWrite,
        },
        create,
        exclusive,
        mode,
        nonblocking: non_blocking,
        max_messages: (max_messages >= 0.0).then_some(max_messages as i64),
        message_size: (message_size >= 0.0).then_some(message_size as i64),
    };
    let queue = MessageQueue::open(&name, &options).or_throw(env)?;
    Ok(QUEUES.with(|q| q.borrow_mut().insert(queue)))
}

/// Closes queue `id` (`mq_close`); does nothing if it is not open. Cancel the waits on it
/// first: a watch refers to the descriptor's number.
#[napi]
pub fn posix_queue_close(id: u32) {
    let queue = QUEUES.with(|q| q.borrow_mut().remove(id));
    drop(queue);
}

/// The descriptor of queue `id`, -1 when it is not open.
#[napi]
pub fn posix_queue_fd(id: u32) -> i32 {
    with_queue(id, "fcntl", |q| Ok(q.as_raw_fd())).unwrap_or(-1)
}

/// `mq_getattr` and `fstat`.
#[napi]
pub fn posix_queue_stat(env: &Env, id: u32) -> Result<PosixQueueStatJs> {
    with_queue(id, "mq_getattr", |q| {
        let a = q.attributes()?;
        let o = q.owner()?;
        Ok(PosixQueueStatJs {
            non_blocking: a.nonblocking,
            max_messages: a.max_messages as f64,
            message_size: a.message_size as f64,
            messages: a.messages as f64,
            uid: o.uid,
            gid: o.gid,
            mode: o.mode,
        })
    })
    .or_throw(env)
}

/// `mq_setattr` of `O_NONBLOCK`; returns whether it was set before.
#[napi]
pub fn posix_queue_set_non_blocking(env: &Env, id: u32, on: bool) -> Result<bool> {
    with_queue(id, "mq_setattr", |q| q.set_nonblocking(on))
        .map(|old| old.nonblocking)
        .or_throw(env)
}

/// `mq_notify`: `kind` 0 removes this process's registration, 1 registers without a
/// notification (`SIGEV_NONE`), 2 registers `signal` with `value` (`SIGEV_SIGNAL`).
#[napi]
pub fn posix_queue_notify(env: &Env, id: u32, kind: u32, signal: i32, value: i32) -> Result<()> {
    let how = match kind {
        0 => Notify::Remove,
        1 => Notify::Register,
        _ => Notify::Signal { signal, value },
    };
    with_queue(id, "mq_notify", |q| q.notify(how)).or_throw(env)
}

/// `fchmod` / `fchown`; what is left out stays.
#[napi]
pub fn posix_queue_update(
    env: &Env,
    id: u32,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<()> {
    with_queue(id, "fchmod", |q| {
        if uid.is_some() || gid.is_some() {
            q.set_owner(uid, gid)?;
        }
        if let Some(mode) = mode {
            q.set_mode(mode)?;
        }
        Ok(())
    })
    .or_throw(env)
}

/// `mq_send` / `mq_timedsend` of `data` outside the fast path (a payload larger than the
/// pool). `wait`: -2 not at all, -1 forever, else milliseconds. With `soft`, a full queue
/// answers false instead of `EAGAIN`.
#[napi]
pub fn posix_queue_send(
    env: &Env,
    id: u32,
    data: &[u8],
    priority: u32,
    wait: f64,
    soft: bool,
) -> Result<bool> {
    match with_queue(id, "mq_send", |q| q.send(data, priority, wait_of(wait))) {
        Ok(()) => Ok(true),
        Err(e) if soft && e.errno() == Errno::EAGAIN => Ok(false),
        Err(e) => Err(crate::error::sys_error(env, e)),
    }
}

/// `mq_receive` / `mq_timedreceive` into `buf` outside the fast path (a message size larger
/// than the pool); `null` for an empty queue with `soft`.
#[napi]
pub fn posix_queue_receive(
    env: &Env,
    id: u32,
    mut buf: BufferSlice<'_>,
    wait: f64,
    soft: bool,
) -> Result<Option<PosixQueueReceivedJs>> {
    match with_queue(id, "mq_receive", |q| q.receive(&mut buf, wait_of(wait))) {
        Ok((length, priority)) => Ok(Some(PosixQueueReceivedJs {
            length: length as u32,
            priority,
        })),
        Err(e) if soft && e.errno() == Errno::EAGAIN => Ok(None),
        Err(e) => Err(crate::error::sys_error(env, e)),
    }
}

/// `mq_receive` with the arguments in this thread's registered slab (see
/// `posixQueueFastRegister`), into the slab at the given offset. Returns the length (the
/// priority is written into the slab); -1 for an empty queue with `POSIX_QUEUE_FAST_SOFT`;
/// -2 after an error, which `posixQueueFastError()` then throws.
#[napi]
pub fn posix_queue_fast_receive() -> i64 {
    fast::with_slab(&SLAB, |slab| {
        let Some(slab) = slab else {
            return keep_error(closed("mq_receive"));
        };
        let Some(args) = fast_args(slab) else {
            return keep_error(ipckit::Error::new(Errno::EINVAL, "mq_receive"));
        };
        let end = args.offset.checked_add(args.size);
        let Some(buf) = end.and_then(|end| slab.get_mut(args.offset..end)) else {
            return keep_error(ipckit::Error::new(Errno::EINVAL, "mq_receive"));
        };
        match with_queue(args.id, "mq_receive", |q| {
            mqueue::receive(q.as_fd(), buf, args.wait)
        }) {
            Ok((len, priority)) => {
                slab[PRIORITY_AT..PRIORITY_AT + 4].copy_from_slice(&priority.to_ne_bytes());
                len as i64
            }
            Err(e) if args.soft && e.errno() == Errno::EAGAIN => -1,
            Err(e) => keep_error(e),
        }
    })
}

/// `mq_send` of the `size` bytes the slab holds at the given offset, with the priority in the
/// slab. Returns 1 when sent; 0 for a full queue with `POSIX_QUEUE_FAST_SOFT`; -2 after an
/// error, which `posixQueueFastError()` then throws.
#[napi]
pub fn posix_queue_fast_send() -> i64 {
    fast::with_slab(&SLAB, |slab| {
        let Some(slab) = slab else {
            return keep_error(closed("mq_send"));
        };
        let Some(args) = fast_args(slab) else {
            return keep_error(ipckit::Error::new(Errno::EINVAL, "mq_send"));
        };
        let end = args.offset.checked_add(args.size);
        let Some(data) = end.and_then(|end| slab.get(args.offset..end)) else {
            return keep_error(ipckit::Error::new(Errno::EINVAL, "mq_send"));
        };
        match with_queue(args.id, "mq_send", |q| {
            mqueue::send(q.as_fd(), data, args.priority, args.wait)
        }) {
            Ok(()) => 1,
            Err(e) if args.soft && e.errno() == Errno::EAGAIN => 0,
            Err(e) => keep_error(e),
        }
    })
}

// The fast path: see `msg.rs` for why an argument-less call. The slab starts with six `i32`
// words: queue number, wait code (-2 now, -1 forever, else milliseconds), flags, offset, size,
// priority (in for a send, out for a receive).

/// Bytes at the start of a fast-path slab that hold the arguments.
#[napi]
pub const POSIX_QUEUE_FAST_ARGS: u32 = 32;
/// Fast-path flag: answer -1 (receive) or 0 (send) instead of `EAGAIN`.
#[napi]
pub const POSIX_QUEUE_FAST_SOFT: u32 = 1;

const PRIORITY_AT: usize = 20;

thread_local! {
    static SLAB: RefCell<Slab> = const { RefCell::new(Slab::EMPTY) };
}

struct FastArgs {
    id: u32,
    wait: Wait,
    soft: bool,
    offset: usize,
    size: usize,
    priority: u32,
}

fn fast_args(slab: &[u8]) -> Option<FastArgs> {
    let word = |i: usize| fast::word(slab, i);
    let offset = usize::try_from(word(3)?).ok()?;
    Some(FastArgs {
        id: word(0)? as u32,
        wait: wait_of(f64::from(word(1)?)),
        soft: word(2)? as u32 & POSIX_QUEUE_FAST_SOFT != 0,
        offset: offset.max(POSIX_QUEUE_FAST_ARGS as usize),
        size: usize::try_from(word(4)?).ok()?,
        priority: word(5)? as u32,
    })
}

/// Registers this thread's fast-path slab; a later call replaces it.
#[napi]
pub fn posix_queue_fast_register(env: &Env, slab: Buffer) -> Result<()> {
    fast::register(env, &SLAB, slab)
}

/// Throws the error kept by the last failed fast call (and forgets it); does nothing if
/// there is none.
#[napi]
pub fn posix_queue_fast_error(env: &Env) -> Result<()> {
    fast::throw_kept(env)
}

/// `mq_unlink`.
#[napi]
pub fn posix_queue_unlink(env: &Env, name: String) -> Result<()> {
    mqueue::unlink(&name).or_throw(env)
}

/// The limits of `/proc/sys/fs/mqueue` and `RLIMIT_MSGQUEUE`, null where unknown.
#[napi(object)]
pub struct PosixQueueLimitsJs {
    pub msg_max: Option<f64>,
    pub msgsize_max: Option<f64>,
    pub queues_max: Option<f64>,
    pub msg_default: Option<f64>,
    pub msgsize_default: Option<f64>,
    pub rlimit_msgqueue: Option<f64>,
}

/// The system's limits, read now.
#[napi]
pub fn posix_queue_limits() -> PosixQueueLimitsJs {
    let l = mqueue::limits();
    let f = |v: Option<i64>| v.map(|v| v as f64);
    PosixQueueLimitsJs {
        msg_max: f(l.msg_max),
        msgsize_max: f(l.msgsize_max),
        queues_max: f(l.queues_max),
        msg_default: f(l.msg_default),
        msgsize_default: f(l.msgsize_default),
        rlimit_msgqueue: mqueue::rlimit_msgqueue().map(|v| v as f64),
    }
}

/// The bytes `RLIMIT_MSGQUEUE` is charged for a queue of these attributes.
#[napi]
pub fn posix_queue_charged_bytes(max_messages: f64, message_size: f64) -> f64 {
    mqueue::charged_bytes(max_messages as i64, message_size as i64) as f64
}

/// A queue as the `mqueue` file system lists it.
#[napi(object)]
pub struct PosixQueueEntryJs {
    pub name: String,
    pub bytes: Option<f64>,
    pub notify: Option<i32>,
    pub signo: i32,
    pub notify_pid: i32,
    pub uid: u32,
    pub gid: u32,
    pub owner: Option<String>,
    pub owner_group: Option<String>,
    pub mode: u32,
    pub messages: Option<f64>,
    pub max_messages: Option<f64>,
    pub message_size: Option<f64>,
}

/// Lists the queues of the `mqueue` file system at `dir` (default: where it is mounted).
#[napi]
pub fn posix_queue_list(env: &Env, dir: Option<String>) -> Result<Vec<PosixQueueEntryJs>> {
    let entries = mqueue::list(dir.as_deref().map(std::path::Path::new)).or_throw(env)?;
    let mut names = ipckit::sysv_list::Names::default();
    Ok(entries
        .into_iter()
        .map(|e| PosixQueueEntryJs {
            name: e.name,
            bytes: e.bytes.map(|b| b as f64),
            notify: e.notify,
            signo: e.signo,
            notify_pid: e.notify_pid,
            uid: e.uid,
            gid: e.gid,
            owner: names.user(e.uid),
            owner_group: names.group(e.gid),
            mode: e.mode,
            messages: e.attributes.map(|a| a.messages as f64),
            max_messages: e.attributes.map(|a| a.max_messages as f64),
            message_size: e.attributes.map(|a| a.message_size as f64),
        })
        .collect())
}

/// Where the `mqueue` file system is mounted, or null.
#[napi]
pub fn posix_queue_mount_point() -> Option<String> {
    mqueue::mount_point().map(|p| p.to_string_lossy().into_owned())
}
