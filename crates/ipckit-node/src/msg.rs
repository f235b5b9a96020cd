//! System V message queues for JavaScript: value conversion over [`ipckit::msg`].
//!
//! The synchronous receive writes into a buffer the caller keeps (type header, then payload),
//! so a message costs no allocation here; waits go through the [`Reactor`].

use std::cell::RefCell;

use ipckit::msg::{self, MessageQueue, MsgStat, MsgUpdate, OpenOptions, ReceiveFlags};
use ipckit::Errno;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
use crate::fast::{self, keep_error, Slab};
use crate::reactor::{Outcome, Reactor};

/// Bytes of the `long mtype` header in front of a `struct msgbuf` payload.
#[napi]
pub const MSG_HEADER: u32 = msg::HEADER as u32;

/// A message type from JavaScript: a number (a safe integer, checked by the TypeScript layer)
/// or a `bigint` (exact, up to `LONG_MAX`).
fn mtype_of(value: Either<i64, BigInt>, syscall: &'static str) -> ipckit::Result<i64> {
    match value {
        Either::A(n) => Ok(n),
        Either::B(big) => match big.get_i64() {
            (n, true) => Ok(n),
            _ => Err(ipckit::Error::new(Errno::EINVAL, syscall)),
        },
    }
}

/// The largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE: i64 = (1 << 53) - 1;

/// `msgget`: the id of the queue of `key`.
#[napi]
pub fn msg_open(env: &Env, key: i32, create: bool, exclusive: bool, mode: u32) -> Result<i32> {
    let options = OpenOptions {
        create,
        exclusive,
        mode,
    };
    MessageQueue::open(key, options)
        .map(|q| q.id())
        .or_throw(env)
}

/// `msgsnd` on the calling thread. With `nowait`, a full queue throws `EAGAIN`, unless
/// `full_is_false` asks for `false` instead (the fast path of the async send).
#[napi]
pub fn msg_send(
    env: &Env,
    id: i32,
    mtype: Either<i64, BigInt>,
    data: &[u8],
    nowait: bool,
    full_is_false: bool,
) -> Result<bool> {
    let mtype = mtype_of(mtype, "msgsnd").or_throw(env)?;
    match MessageQueue::from_id(id).send(mtype, data, nowait) {
        Ok(()) => Ok(true),
        Err(e) if full_is_false && e.errno() == Errno::EAGAIN => Ok(false),
        Err(e) => Err(crate::error::sys_error(env, e)),
    }
}

/// `msgrcv` on the calling thread into `buf` (header + payload room). Returns the payload
/// length; the type is in the header. With `nowait` and `empty_is_null`, an empty queue
/// returns -1 instead of throwing `ENOMSG` (the fast path of the async receive).
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn msg_receive(
    env: &Env,
    id: i32,
    mut buf: BufferSlice<'_>,
    mtype: Either<i64, BigInt>,
    except: bool,
    truncate: bool,
    nowait: bool,
    empty_is_null: bool,
) -> Result<i64> {
    let mtype = mtype_of(mtype, "msgrcv").or_throw(env)?;
    let flags = ReceiveFlags {
        nowait,
        except,
        truncate,
    };
    let queue = MessageQueue::from_id(id);
    match queue.receive(&mut buf, mtype, flags) {
        Ok(got) => Ok(got.len as i64),
        Err(e) if empty_is_null && e.errno() == Errno::ENOMSG => Ok(-1),
        Err(e) => Err(crate::error::sys_error(env, e)),
    }
}

/// Starts a blocking `msgrcv` in the queue's line of waits (one thread per queue and set of
/// options, see [`ipckit::wait`]); the message arrives through the reactor's dispatch as
/// (type, payload). `max_size` < 0 means the system's msgmax. Throws `EAGAIN` when no thread
/// can be had. The type arrives as a JavaScript number, exact up to
/// `Number.MAX_SAFE_INTEGER`; a larger one is rounded there, so the payload then comes after
/// the exact type (8 bytes, native-endian), and the TypeScript layer reads it from there.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn msg_receive_start(
    env: &Env,
    reactor: &Reactor,
    wait_id: u32,
    id: i32,
    mtype: Either<i64, BigInt>,
    except: bool,
    truncate: bool,
    max_size: i64,
) -> Result<()> {
    let mtype = mtype_of(mtype, "msgrcv").or_throw(env)?;
    let flags = ReceiveFlags {
        nowait: false,
        except,
        truncate,
    };
    let max_size = usize::try_from(max_size).ok();
    reactor
        .line(wait_id, |deliver| {
            MessageQueue::from_id(id).receive_later(mtype, flags, max_size, move |r| {
                deliver(r.map(|(mtype, data)| {
                    if mtype <= MAX_SAFE {
                        return Outcome::Message(mtype, data);
                    }
                    let mut exact = Vec::with_capacity(msg::HEADER + data.len());
                    exact.extend_from_slice(&mtype.to_ne_bytes());
                    exact.extend_from_slice(&data);
                    Outcome::Message(mtype, exact)
                }))
            })
        })
        .or_throw(env)
}

/// Starts a blocking `msgsnd` (the queue was full) in the queue's line of sends, which keeps
/// their order; `data` is copied first. Throws `EAGAIN` when no thread can be had.
#[napi]
pub fn msg_send_start(
    env: &Env,
    reactor: &Reactor,
    wait_id: u32,
    id: i32,
    mtype: Either<i64, BigInt>,
    data: &[u8],
) -> Result<()> {
    let mtype = mtype_of(mtype, "msgsnd").or_throw(env)?;
    let msgbuf = msg::encode(mtype, data);
    reactor
        .line(wait_id, |deliver| {
            MessageQueue::from_id(id)
                .send_later(msgbuf, move |r| deliver(r.map(|()| Outcome::Done)))
        })
        .or_throw(env)
}

/// A queue's state (`msgctl(IPC_STAT)`); times in seconds since the epoch, 0 for never.
#[napi(object)]
pub struct MsgStatJs {
    pub messages: f64,
    pub bytes: f64,
    pub max_bytes: f64,
    pub last_send_pid: i32,
    pub last_receive_pid: i32,
    pub last_send_time: f64,
    pub last_receive_time: f64,
    pub change_time: f64,
    /// Key, owner, creator and mode.
    pub perm: crate::perm::PermJs,
}

impl From<MsgStat> for MsgStatJs {
    fn from(s: MsgStat) -> Self {
        Self {
            perm: (&s.perm).into(),
            messages: s.messages as f64,
            bytes: s.bytes as f64,
            max_bytes: s.max_bytes as f64,
            last_send_pid: s.last_send_pid,
            last_receive_pid: s.last_receive_pid,
            last_send_time: s.last_send_time as f64,
            last_receive_time: s.last_receive_time as f64,
            change_time: s.change_time as f64,
        }
    }
}

/// `msgctl(IPC_STAT)`.
#[napi]
pub fn msg_stat(env: &Env, id: i32) -> Result<MsgStatJs> {
    MessageQueue::from_id(id)
        .stat()
        .map(Into::into)
        .or_throw(env)
}

/// `msgctl(IPC_SET)`; a negative or missing value keeps the current one.
#[napi]
pub fn msg_update(
    env: &Env,
    id: i32,
    max_bytes: Option<f64>,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Result<()> {
    let update = MsgUpdate {
        max_bytes: max_bytes.map(|v| v as u64),
        mode,
        uid,
        gid,
    };
    MessageQueue::from_id(id).update(update).or_throw(env)
}

/// `msgctl(IPC_RMID)`.
#[napi]
pub fn msg_remove(env: &Env, id: i32) -> Result<()> {
    MessageQueue::from_id(id).remove().or_throw(env)
}

/// The system's current `msgmax` (read from /proc on each call).
#[napi]
pub fn msg_max() -> u32 {
    ipckit::limits::msgmax() as u32
}

// The fast path of sends and receives that need no wait.
//
// A napi-rs function with arguments pays a fixed cost per call for its argument borrow
// scope (an `Arc<Mutex<..>>` allocation, thread-local bookkeeping): on these machines more
// than the `msgrcv` itself. A function with no arguments skips it. So the TypeScript layer
// registers one private buffer per thread (`msgFastRegister`), writes the arguments of each
// call into its first bytes, and calls the argument-less `msgFastReceive` / `msgFastSend`,
// which read them, run the call on a message buffer inside the same slab, and answer with a
// number. An error is kept and thrown by the next `msgFastError()`, through the one error
// path every other call uses.

/// Bytes at the start of a fast-path slab that hold the arguments: six `i32`s
/// (id, flags, type low, type high, message offset, payload size).
#[napi]
pub const MSG_FAST_ARGS: u32 = 32;
/// Fast-path flag: fail with `EAGAIN`/`ENOMSG` instead of blocking (`IPC_NOWAIT`).
#[napi]
pub const MSG_FAST_NOWAIT: u32 = 1;
/// Fast-path flag: `MSG_EXCEPT`.
#[napi]
pub const MSG_FAST_EXCEPT: u32 = 2;
/// Fast-path flag: `MSG_NOERROR`.
#[napi]
pub const MSG_FAST_TRUNCATE: u32 = 4;
/// Fast-path flag: answer -1 for an empty queue (receive) or 0 for a full one (send)
/// instead of an error.
#[napi]
pub const MSG_FAST_SOFT: u32 = 8;

thread_local! {
    static SLAB: RefCell<Slab> = const { RefCell::new(Slab::EMPTY) };
}

struct FastArgs {
    id: i32,
    flags: u32,
    mtype: i64,
    offset: usize,
    size: usize,
}

fn fast_args(slab: &[u8]) -> Option<FastArgs> {
    let word = |i: usize| fast::word(slab, i);
    let low = word(2)? as u32 as i64;
    let high = word(3)? as i64;
    Some(FastArgs {
        id: word(0)?,
        flags: word(1)? as u32,
        mtype: (high << 32) | low,
        offset: usize::try_from(word(4)?).ok()?,
        size: usize::try_from(word(5)?).ok()?,
    })
}

/// Registers this thread's fast-path slab (see `msgFastReceive`); a later call replaces it.
/// When the environment shuts down, the slab is let go without a Node-API call (another
/// environment may later run on this thread and register its own).
#[napi]
pub fn msg_fast_register(env: &Env, slab: Buffer) -> Result<()> {
    fast::register(env, &SLAB, slab)
}

/// `msgrcv` with the arguments in the registered slab, into the slab at the given offset
/// (type header, then up to `size` payload bytes). Returns the payload length; -1 for an
/// empty queue with `MSG_FAST_SOFT` and `MSG_FAST_NOWAIT`; -2 after an error, which
/// `msgFastError()` then throws. A blocking receive is retried after `EINTR`.
#[napi]
pub fn msg_fast_receive() -> i64 {
    fast::with_slab(&SLAB, |slab| {
        let Some(slab) = slab else {
            return keep_error(ipckit::Error::new(Errno::EINVAL, "msgrcv"));
        };
        let Some(args) = fast_args(slab) else {
            return keep_error(ipckit::Error::new(Errno::EINVAL, "msgrcv"));
        };
        let end = args.offset.checked_add(msg::HEADER + args.size);
        let Some(buf) =
            end.and_then(|end| slab.get_mut(args.offset.max(MSG_FAST_ARGS as usize)..end))
        else {
            return keep_error(ipckit::Error::new(Errno::EINVAL, "msgrcv"));
        };
        let flags = ReceiveFlags {
            nowait: args.flags & MSG_FAST_NOWAIT != 0,
            except: args.flags & MSG_FAST_EXCEPT != 0,
            truncate: args.flags & MSG_FAST_TRUNCATE != 0,
        };
        let queue = MessageQueue::from_id(args.id);
        match queue.receive(buf, args.mtype, flags) {
            Ok(got) => got.len as i64,
            Err(e)
                if flags.nowait
                    && args.flags & MSG_FAST_SOFT != 0
                    && e.errno() == Errno::ENOMSG =>
            {
                -1
            }
            Err(e) => keep_error(e),
        }
    })
}

/// `msgsnd` of the message the slab holds at the given offset (type header, then `size`
/// payload bytes). Returns 1 when sent; 0 for a full queue with `MSG_FAST_SOFT` and
/// `MSG_FAST_NOWAIT`; -2 after an error, which `msgFastError()` then throws. A blocking send
/// is retried after `EINTR`.
#[napi]
pub fn msg_fast_send() -> i64 {
    fast::with_slab(&SLAB, |slab| {
        let Some(slab) = slab else {
            return keep_error(ipckit::Error::new(Errno::EINVAL, "msgsnd"));
        };
        let Some(args) = fast_args(slab) else {
            return keep_error(ipckit::Error::new(Errno::EINVAL, "msgsnd"));
        };
        let end = args.offset.checked_add(msg::HEADER + args.size);
        let Some(msgbuf) =
            end.and_then(|end| slab.get(args.offset.max(MSG_FAST_ARGS as usize)..end))
        else {
            return keep_error(ipckit::Error::new(Errno::EINVAL, "msgsnd"));
        };
        let nowait = args.flags & MSG_FAST_NOWAIT != 0;
        let queue = MessageQueue::from_id(args.id);
        match queue.send_encoded(msgbuf, nowait) {
            Ok(()) => 1,
            Err(e) if nowait && args.flags & MSG_FAST_SOFT != 0 && e.errno() == Errno::EAGAIN => 0,
            Err(e) => keep_error(e),
        }
    })
}

/// Throws the error kept by the last failed `msgFastReceive` / `msgFastSend` (and forgets
/// it); does nothing if there is none.
#[napi]
pub fn msg_fast_error(env: &Env) -> Result<()> {
    fast::throw_kept(env)
}
