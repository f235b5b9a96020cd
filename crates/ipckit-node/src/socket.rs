//! UNIX sockets for JavaScript: value conversion over [`ipckit::socket`].
//!
//! Descriptors cross to JavaScript as plain numbers, which the TypeScript layer owns (and
//! closes with [`socket_close`]). Non-blocking operations run on the JavaScript thread; when
//! they would block, the TypeScript layer waits for readiness on the JavaScript thread's own
//! event loop (see `uv.rs`) and retries there. Only a datagram send to a full receiver, which
//! no descriptor can be polled for, waits on a core thread ([`socket_send_start`]).

use std::cell::RefCell;
use std::os::fd::{AsFd, IntoRawFd, OwnedFd};

use ipckit::socket::{self, Address, BindOptions, Credentials, Kind, Received};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
use crate::fast::{self, keep_error, Slab};
use crate::reactor::{Outcome, Reactor};

fn kind_of(kind: &str) -> Kind {
    match kind {
        "stream" => Kind::Stream,
        "dgram" => Kind::Datagram,
        _ => Kind::Seqpacket,
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Stream => "stream",
        Kind::Datagram => "dgram",
        Kind::Seqpacket => "seqpacket",
    }
}

fn address(name: &[u8], is_abstract: bool) -> Address {
    if is_abstract {
        Address::Abstract(name.to_vec())
    } else {
        Address::Path(name.to_vec())
    }
}

/// A socket address as JavaScript sees it: `path` or `abstract` (the name without its NUL),
/// each a string when its bytes are valid UTF-8 and a Buffer of the exact bytes otherwise, so
/// that an address sent back reaches the socket it came from.
#[napi(object)]
pub struct SocketAddressJs {
    pub path: Option<Either<String, Buffer>>,
    pub abstract_name: Option<Either<String, Buffer>>,
}

/// A name as a string when it is valid UTF-8 (it then round-trips), else its bytes.
fn name_js(name: Vec<u8>) -> Either<String, Buffer> {
    match String::from_utf8(name) {
        Ok(text) => Either::A(text),
        Err(e) => Either::B(e.into_bytes().into()),
    }
}

fn address_js(a: Option<Address>) -> Option<SocketAddressJs> {
    a.map(|a| match a {
        Address::Path(p) => SocketAddressJs {
            path: Some(name_js(p)),
            abstract_name: None,
        },
        Address::Abstract(n) => SocketAddressJs {
            path: None,
            abstract_name: Some(name_js(n)),
        },
    })
}

/// A process's identity (`SO_PEERCRED`, `SCM_CREDENTIALS`).
#[napi(object)]
pub struct CredentialsJs {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl From<Credentials> for CredentialsJs {
    fn from(c: Credentials) -> Self {
        Self {
            pid: c.pid,
            uid: c.uid,
            gid: c.gid,
        }
    }
}

/// A received message; `fds` now belong to the caller.
#[napi(object)]
pub struct ReceivedJs {
    pub data: Buffer,
    pub fds: Vec<i32>,
    pub from: Option<SocketAddressJs>,
    pub credentials: Option<CredentialsJs>,
    /// Descriptors came and were closed (not accepted, or not all could be received).
    pub fds_dropped: bool,
    /// End of stream (the peer closed a connected socket).
    pub end: bool,
}

impl From<Received> for ReceivedJs {
    fn from(r: Received) -> Self {
        Self {
            data: r.data.into(),
            fds: r.fds.into_iter().map(IntoRawFd::into_raw_fd).collect(),
            from: address_js(r.from),
            credentials: r.credentials.map(Into::into),
            fds_dropped: r.fds_dropped,
            end: r.end,
        }
    }
}

fn raw(fd: OwnedFd) -> i32 {
    fd.into_raw_fd()
}

/// `socketpair(AF_UNIX, kind | SOCK_CLOEXEC)`: the two fds.
#[napi]
pub fn socket_pair(env: &Env, kind: String) -> Result<Vec<i32>> {
    let (a, b) = socket::socketpair(kind_of(&kind)).or_throw(env)?;
    Ok(vec![raw(a), raw(b)])
}

/// `socket(AF_UNIX, kind | SOCK_CLOEXEC [| SOCK_NONBLOCK])`.
#[napi]
pub fn socket_open(env: &Env, kind: String, nonblocking: bool) -> Result<i32> {
    socket::socket(kind_of(&kind), nonblocking)
        .map(raw)
        .or_throw(env)
}

/// `bind`, with the socket file's `mode` and stale-file replacement.
#[napi]
pub fn socket_bind(
    env: &Env,
    fd: i32,
    name: &[u8],
    is_abstract: bool,
    mode: Option<u32>,
    replace_stale: bool,
) -> Result<()> {
    let options = BindOptions {
        mode,
        replace_stale,
    };
    crate::uv::with_fd(fd, |fd| {
        socket::bind(fd, &address(name, is_abstract), options)
    })
    .or_throw(env)
}

/// `connect`.
#[napi]
pub fn socket_connect(env: &Env, fd: i32, name: &[u8], is_abstract: bool) -> Result<()> {
    crate::uv::with_fd(fd, |fd| socket::connect(fd, &address(name, is_abstract))).or_throw(env)
}

/// `listen`.
#[napi]
pub fn socket_listen(env: &Env, fd: i32, backlog: i32) -> Result<()> {
    crate::uv::with_fd(fd, |fd| socket::listen(fd, backlog)).or_throw(env)
}

/// `accept4` on a non-blocking listener: the new fd, or null when none is pending.
#[napi]
pub fn socket_accept(env: &Env, fd: i32) -> Result<Option<i32>> {
    crate::uv::with_fd(fd, socket::accept)
        .map(|s| s.map(raw))
        .or_throw(env)
}

/// `sendmsg`: the bytes sent (all of a message; maybe fewer on a stream), or -1 when it
/// would block (with `nowait`, unless `throw_eagain` asks for the `EAGAIN` error instead).
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn socket_send(
    env: &Env,
    fd: i32,
    data: &[u8],
    fds: Vec<i32>,
    to: Option<&[u8]>,
    to_abstract: bool,
    nowait: bool,
    throw_eagain: bool,
) -> Result<i64> {
    send(env, fd, data, &fds, to, to_abstract, nowait, throw_eagain)
}

/// `recvmsg`: a message, or null when none is queued (with `nowait`, unless `throw_eagain`
/// asks for the `EAGAIN` error instead).
#[napi]
pub fn socket_receive(
    env: &Env,
    fd: i32,
    nowait: bool,
    throw_eagain: bool,
) -> Result<Option<ReceivedJs>> {
    match crate::uv::with_fd(fd, |fd| socket::receive(fd, nowait)) {
        Ok(Some(r)) => Ok(Some(r.into())),
        Ok(None) if throw_eagain => Err(crate::error::sys_error(
            env,
            ipckit::Error::new(ipckit::Errno::EAGAIN, "recvmsg"),
        )),
        Ok(None) => Ok(None),
        Err(e) => Err(crate::error::sys_error(env, e)),
    }
}

/// [`socket_send`] of a message without descriptors, to `to` or (`None`) on a connected
/// socket: the common cases, without converting an argument they do not use (each costs on
/// every call).
#[napi]
pub fn socket_send_plain(
    env: &Env,
    fd: i32,
    data: &[u8],
    to: Option<&[u8]>,
    to_abstract: bool,
    nowait: bool,
    throw_eagain: bool,
) -> Result<i64> {
    send(env, fd, data, &[], to, to_abstract, nowait, throw_eagain)
}

/// The one send of [`socket_send`] and [`socket_send_plain`].
#[allow(clippy::too_many_arguments)]
fn send(
    env: &Env,
    fd: i32,
    data: &[u8],
    fds: &[i32],
    to: Option<&[u8]>,
    to_abstract: bool,
    nowait: bool,
    throw_eagain: bool,
) -> Result<i64> {
    let to = to.map(|name| address(name, to_abstract));
    let sent = crate::uv::with_fds(fds, "sendmsg", |fds| {
        crate::uv::with_fd(fd, |fd| socket::send(fd, data, fds, to.as_ref(), nowait))
    });
    match sent {
        Ok(Some(n)) => Ok(n as i64),
        Ok(None) if throw_eagain => Err(crate::error::sys_error(
            env,
            ipckit::Error::new(ipckit::Errno::EAGAIN, "sendmsg"),
        )),
        Ok(None) => Ok(-1),
        Err(e) => Err(crate::error::sys_error(env, e)),
    }
}

// The fast path of receives and sends (see `crate::fast`): the TypeScript layer registers one
// pool buffer per thread (`socketFastRegister`), writes a call's arguments into its first
// `SOCKET_FAST_ARGS` bytes, and calls the argument-less `socketFastReceive` /
// `socketFastSend`. A receive lands in the pool itself, where JavaScript hands the payload
// out as a view (no copy, no object made here); the sender's address comes back in the
// argument area.
//
// Argument area, as `i32` words: 0 fd, 1 flags, 2 payload offset in the pool, 3 payload room
// (receive) or length (send), 4 address code (out of a receive, into a send: 0 for none,
// else `1 + 2 * name length + (1 if abstract)`), 5 (out of a receive) 1 when the name is not
// valid UTF-8 (JavaScript then takes its bytes, not a string), then from byte
// `SOCKET_FAST_NAME_AT` the address's name.

/// Bytes at the start of a fast-path pool that hold the arguments and an address.
#[napi]
pub const SOCKET_FAST_ARGS: u32 = 160;
/// Where the address's name starts in the argument area (up to 128 bytes; `sun_path` has 108).
#[napi]
pub const SOCKET_FAST_NAME_AT: u32 = 32;
/// Fast-path flag: answer -1 when nothing is queued (receive) or there is no room (send)
/// instead of failing with `EAGAIN`.
#[napi]
pub const SOCKET_FAST_SOFT: u32 = 1;
/// Fast-path flag of a receive: block in `recvmsg` until a message comes (retrying after
/// `EINTR`), for `receiveSync`. On a non-blocking descriptor the answer is -1 at once when
/// nothing is queued, and the caller waits for readiness itself.
#[napi]
pub const SOCKET_FAST_WAIT: u32 = 2;
/// Fast-path flag of a receive: take descriptors (the socket's `acceptFds`). Without it, the
/// kernel is given no room for them, and any that come are closed at once.
#[napi]
pub const SOCKET_FAST_FDS: u32 = 4;
/// `socketFastReceive`'s answer for a message that does not come as a plain payload in the
/// pool (descriptors, dropped descriptors, credentials, end of stream, or larger than the
/// room): take it with `socketFastTake()`.
#[napi]
pub const SOCKET_FAST_KEPT: i32 = -3;

const NAME_ROOM: usize = (SOCKET_FAST_ARGS - SOCKET_FAST_NAME_AT) as usize;

thread_local! {
    static SLAB: RefCell<Slab> = const { RefCell::new(Slab::EMPTY) };
    static KEPT_MESSAGE: RefCell<Option<Received>> = const { RefCell::new(None) };
}

/// Registers this thread's fast-path pool (see `socketFastReceive`); a later call replaces it.
///
/// ```js
/// native.socketFastRegister(Buffer.allocUnsafeSlow(128 * 1024))
/// ```
#[napi]
pub fn socket_fast_register(env: &Env, pool: Buffer) -> Result<()> {
    fast::register(env, &SLAB, pool)
}

/// The call's arguments: fd, flags, and the payload's place in the pool.
fn fast_args(slab: &[u8]) -> Option<(i32, u32, usize, usize)> {
    let fd = fast::word(slab, 0)?;
    let flags = fast::word(slab, 1)? as u32;
    let offset = usize::try_from(fast::word(slab, 2)?).ok()?;
    let size = usize::try_from(fast::word(slab, 3)?).ok()?;
    let end = offset.checked_add(size)?;
    (offset >= SOCKET_FAST_ARGS as usize && end <= slab.len()).then_some((fd, flags, offset, size))
}

fn address_code(address: &Address) -> (&[u8], i32) {
    match address {
        Address::Path(name) => (name, 1 + 2 * name.len() as i32),
        Address::Abstract(name) => (name, 2 + 2 * name.len() as i32),
    }
}

/// One `recvmsg` into the pool (non-blocking unless `SOCKET_FAST_WAIT`), at the offset and
/// with the room the argument area gives: the payload's length, with the sender's address
/// code in word 4, 1 in word 5 when its name is not valid UTF-8 (else 0), and its name at
/// `SOCKET_FAST_NAME_AT`; -1 when nothing is queued (with
/// `SOCKET_FAST_SOFT`, or `SOCKET_FAST_WAIT` on a non-blocking descriptor);
/// `SOCKET_FAST_KEPT` for a message to take with `socketFastTake()`; -2 after an error,
/// which `socketFastError()` throws (`EAGAIN` when nothing is queued without the flag).
///
/// ```js
/// words.set([fd, SOCKET_FAST_SOFT, offset, pool.length - offset])
/// const len = native.socketFastReceive()
/// if (len >= 0) console.log(pool.subarray(offset, offset + len))
/// ```
#[napi]
pub fn socket_fast_receive() -> i32 {
    fast::with_slab(&SLAB, |slab| {
        let Some(slab) = slab else {
            return keep_error(ipckit::Error::new(ipckit::Errno::EINVAL, "recvmsg"));
        };
        let Some((fd, flags, offset, room)) = fast_args(slab) else {
            return keep_error(ipckit::Error::new(ipckit::Errno::EINVAL, "recvmsg"));
        };
        let (head, pool) = slab.split_at_mut(offset);
        let buf = &mut pool[..room];
        let fds = flags & SOCKET_FAST_FDS != 0;
        let got = if flags & SOCKET_FAST_WAIT != 0 {
            match crate::uv::with_fd(fd, |fd| socket::receive_into(fd, buf, false, fds)) {
                Err(e) if e.errno() == ipckit::Errno::EAGAIN => return -1,
                other => other,
            }
        } else {
            crate::uv::with_fd(fd, |fd| socket::receive_into(fd, buf, true, fds))
        };
        match got {
            Ok(Some(r))
                if r.len <= room
                    && r.fds.is_empty()
                    && r.credentials.is_none()
                    && !r.fds_dropped
                    && !r.end =>
            {
                let mut not_utf8 = 0i32;
                let code = match &r.from {
                    None => 0,
                    Some(address) => {
                        let (name, code) = address_code(address);
                        let at = SOCKET_FAST_NAME_AT as usize;
                        match head.get_mut(at..at + name.len()) {
                            Some(dst) if name.len() <= NAME_ROOM => dst.copy_from_slice(name),
                            _ => {
                                return keep_error(ipckit::Error::new(
                                    ipckit::Errno::ENAMETOOLONG,
                                    "recvmsg",
                                ))
                            }
                        }
                        not_utf8 = i32::from(std::str::from_utf8(name).is_err());
                        code
                    }
                };
                head[16..20].copy_from_slice(&code.to_ne_bytes());
                head[20..24].copy_from_slice(&not_utf8.to_ne_bytes());
                r.len as i32
            }
            Ok(Some(r)) => {
                let mut data = Vec::with_capacity(r.len);
                data.extend_from_slice(&buf[..r.len.min(room)]);
                data.extend_from_slice(&r.rest);
                let message = Received {
                    data,
                    fds: r.fds,
                    from: r.from,
                    credentials: r.credentials,
                    fds_dropped: r.fds_dropped,
                    end: r.end,
                };
                KEPT_MESSAGE.with(|kept| *kept.borrow_mut() = Some(message));
                SOCKET_FAST_KEPT
            }
            Ok(None) if flags & SOCKET_FAST_SOFT != 0 => -1,
            Ok(None) => keep_error(ipckit::Error::new(ipckit::Errno::EAGAIN, "recvmsg")),
            Err(e) => keep_error(e),
        }
    })
}

/// The message the last `socketFastReceive` kept (answer `SOCKET_FAST_KEPT`); its `fds` now
/// belong to the caller. `null` when there is none.
///
/// ```js
/// if (native.socketFastReceive() === SOCKET_FAST_KEPT) console.log(native.socketFastTake())
/// ```
#[napi]
pub fn socket_fast_take() -> Option<ReceivedJs> {
    KEPT_MESSAGE
        .with(|kept| kept.borrow_mut().take())
        .map(Into::into)
}

/// One non-blocking `sendmsg` of the payload the pool holds at the offset and length the
/// argument area gives, without descriptors, to the address in it (code in word 4, name at
/// `SOCKET_FAST_NAME_AT`) or on a connected socket (code 0): the bytes sent; -1 when the
/// socket is full (with `SOCKET_FAST_SOFT`); -2 after an error, which `socketFastError()`
/// throws.
///
/// ```js
/// pool.set(payload, offset)
/// words.set([fd, SOCKET_FAST_SOFT, offset, payload.length, 0])
/// const sent = native.socketFastSend()
/// ```
#[napi]
pub fn socket_fast_send() -> i64 {
    fast::with_slab(&SLAB, |slab| {
        let parsed = slab.as_deref().and_then(|slab| {
            let (fd, flags, offset, len) = fast_args(slab)?;
            let code = usize::try_from(fast::word(slab, 4)?).ok()?;
            let to = match code {
                0 => None,
                code => {
                    let at = SOCKET_FAST_NAME_AT as usize;
                    let name = slab.get(at..at + (code - 1) / 2)?.to_vec();
                    Some(address(&name, (code - 1) % 2 == 1))
                }
            };
            Some((fd, flags, &slab[offset..offset + len], to))
        });
        let Some((fd, flags, data, to)) = parsed else {
            return keep_error(ipckit::Error::new(ipckit::Errno::EINVAL, "sendmsg"));
        };
        match crate::uv::with_fd(fd, |fd| socket::send(fd, data, &[], to.as_ref(), true)) {
            Ok(Some(n)) => n as i64,
            Ok(None) if flags & SOCKET_FAST_SOFT != 0 => -1,
            Ok(None) => keep_error(ipckit::Error::new(ipckit::Errno::EAGAIN, "sendmsg")),
            Err(e) => keep_error(e),
        }
    })
}

/// Throws the error kept by the last failed `socketFastReceive` / `socketFastSend` (and
/// forgets it); does nothing if there is none.
///
/// ```js
/// if (native.socketFastReceive() === -2) native.socketFastError()
/// ```
#[napi]
pub fn socket_fast_error(env: &Env) -> Result<()> {
    fast::throw_kept(env)
}

/// A blocking `sendmsg` to an address on a wait thread: an unconnected datagram socket
/// cannot poll for room at its destination, so it waits in the kernel. `data` is copied, and
/// the thread sends through its own duplicate of `fd`, so closing `fd` meanwhile is safe.
// The wait is the core's `socket::send_cancellable`; the descriptors passed are duplicated
// too, so closing any of them meanwhile is safe as well.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn socket_send_start(
    env: &Env,
    reactor: &Reactor,
    wait_id: u32,
    fd: i32,
    data: &[u8],
    fds: Vec<i32>,
    to: Buffer,
    to_abstract: bool,
) -> Result<()> {
    let data = data.to_vec();
    let to = address(&to, to_abstract);
    let own = crate::uv::with_fd(fd, socket::duplicate).or_throw(env)?;
    let fds = fds
        .iter()
        .map(|&fd| crate::uv::with_fd(fd, socket::duplicate))
        .collect::<ipckit::Result<Vec<OwnedFd>>>()
        .or_throw(env)?;
    reactor
        .start(wait_id, move |canceller| {
            let fds: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
            socket::send_cancellable(own.as_fd(), &data, &fds, &to, canceller)
                .map(|_| Outcome::Done)
        })
        .or_throw(env)
}

/// Blocks until `fd` is readable (or `writable`); for the `...Sync` forms.
#[napi]
pub fn socket_wait_sync(env: &Env, fd: i32, writable: bool) -> Result<()> {
    crate::uv::with_fd(fd, |fd| socket::wait_ready(fd, writable)).or_throw(env)
}

/// The socket's type: `'stream'`, `'dgram'` or `'seqpacket'` (throws `ENOTSOCK`, `EBADF`,
/// `EAFNOSUPPORT` for anything that is not a UNIX socket).
#[napi]
pub fn socket_kind(env: &Env, fd: i32) -> Result<String> {
    crate::uv::with_fd(fd, socket::socket_kind)
        .map(|k| kind_name(k).to_owned())
        .or_throw(env)
}

/// `SO_PEERCRED`.
#[napi]
pub fn socket_peer_credentials(env: &Env, fd: i32) -> Result<CredentialsJs> {
    crate::uv::with_fd(fd, socket::peer_credentials)
        .map(Into::into)
        .or_throw(env)
}

/// `SO_PASSCRED`.
#[napi]
pub fn socket_set_pass_credentials(env: &Env, fd: i32, on: bool) -> Result<()> {
    crate::uv::with_fd(fd, |fd| socket::set_pass_credentials(fd, on)).or_throw(env)
}

/// `getsockname`.
#[napi]
pub fn socket_local_address(env: &Env, fd: i32) -> Result<Option<SocketAddressJs>> {
    crate::uv::with_fd(fd, socket::local_address)
        .map(address_js)
        .or_throw(env)
}

/// `getpeername`.
#[napi]
pub fn socket_peer_address(env: &Env, fd: i32) -> Result<Option<SocketAddressJs>> {
    crate::uv::with_fd(fd, socket::peer_address)
        .map(address_js)
        .or_throw(env)
}

/// Sets or clears `O_NONBLOCK`.
#[napi]
pub fn socket_set_nonblocking(env: &Env, fd: i32, on: bool) -> Result<()> {
    crate::uv::with_fd(fd, |fd| socket::set_nonblocking(fd, on)).or_throw(env)
}

/// A close-on-exec duplicate of `fd` (`F_DUPFD_CLOEXEC`), owned by the caller: waits on a
/// descriptor that a `net.Socket` owns poll this copy, which libuv's own watch of the
/// original does not clash with and Node closing the original does not pull away.
#[napi]
pub fn socket_duplicate(env: &Env, fd: i32) -> Result<i32> {
    crate::uv::with_fd(fd, socket::duplicate)
        .map(std::os::fd::IntoRawFd::into_raw_fd)
        .or_throw(env)
}

/// `close` (and no longer owned by the environment): [`crate::owned::fd_close`].
#[napi]
pub fn socket_close(env: &Env, fd: i32) -> Result<()> {
    crate::owned::fd_close(env, fd)
}
