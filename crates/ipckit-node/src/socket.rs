//! UNIX sockets for JavaScript: value conversion over [`ipckit::socket`].
//!
//! Descriptors cross to JavaScript as plain numbers, which the TypeScript layer owns (and
//! closes with [`socket_close`]). Non-blocking operations run on the JavaScript thread; when
//! they would block, [`socket_wait_start`] waits for readiness on the core's epoll thread
//! through the [`Reactor`], and the TypeScript layer retries.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};

use ipckit::poller::Interest;
use ipckit::socket::{self, Address, BindOptions, Credentials, Kind, Received};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
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

/// A socket address as JavaScript sees it: `path` or `abstract` (the name without its NUL).
#[napi(object)]
pub struct SocketAddressJs {
    pub path: Option<String>,
    pub abstract_name: Option<String>,
}

fn address_js(a: Option<Address>) -> Option<SocketAddressJs> {
    a.map(|a| match a {
        Address::Path(p) => SocketAddressJs {
            path: Some(String::from_utf8_lossy(&p).into_owned()),
            abstract_name: None,
        },
        Address::Abstract(n) => SocketAddressJs {
            path: None,
            abstract_name: Some(String::from_utf8_lossy(&n).into_owned()),
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
    socket::bind(fd, &address(name, is_abstract), options).or_throw(env)
}

/// `connect`.
#[napi]
pub fn socket_connect(env: &Env, fd: i32, name: &[u8], is_abstract: bool) -> Result<()> {
    socket::connect(fd, &address(name, is_abstract)).or_throw(env)
}

/// `listen`.
#[napi]
pub fn socket_listen(env: &Env, fd: i32, backlog: i32) -> Result<()> {
    socket::listen(fd, backlog).or_throw(env)
}

/// `accept4` on a non-blocking listener: the new fd, or null when none is pending.
#[napi]
pub fn socket_accept(env: &Env, fd: i32) -> Result<Option<i32>> {
    socket::accept(fd).map(|s| s.map(raw)).or_throw(env)
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
    let to = to.map(|name| address(name, to_abstract));
    match socket::send(fd, data, &fds, to.as_ref(), nowait) {
        Ok(Some(n)) => Ok(n as i64),
        Ok(None) if throw_eagain => Err(crate::error::sys_error(
            env,
            ipckit::Error::new(ipckit::Errno::EAGAIN, "sendmsg"),
        )),
        Ok(None) => Ok(-1),
        Err(e) => Err(crate::error::sys_error(env, e)),
    }
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
    match socket::receive(fd, nowait) {
        Ok(Some(r)) => Ok(Some(r.into())),
        Ok(None) if throw_eagain => Err(crate::error::sys_error(
            env,
            ipckit::Error::new(ipckit::Errno::EAGAIN, "recvmsg"),
        )),
        Ok(None) => Ok(None),
        Err(e) => Err(crate::error::sys_error(env, e)),
    }
}

/// A received message whose payload was copied into the caller's buffer
/// ([`socket_receive_into`]): everything of [`ReceivedJs`] but the data.
#[napi(object)]
pub struct ReceivedMetaJs {
    /// Payload bytes at the start of the buffer.
    pub len: u32,
    pub fds: Vec<i32>,
    pub from: Option<SocketAddressJs>,
    pub credentials: Option<CredentialsJs>,
    pub end: bool,
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
    let to = to.map(|name| address(name, to_abstract));
    match socket::send(fd, data, &[], to.as_ref(), nowait) {
        Ok(Some(n)) => Ok(n as i64),
        Ok(None) if throw_eagain => Err(crate::error::sys_error(
            env,
            ipckit::Error::new(ipckit::Errno::EAGAIN, "sendmsg"),
        )),
        Ok(None) => Ok(-1),
        Err(e) => Err(crate::error::sys_error(env, e)),
    }
}

/// Bytes at the end of a [`socket_receive_into`] buffer that receive the sender's address.
#[napi]
pub const SOCKET_ADDRESS_ROOM: u32 = 128;
/// [`socket_receive_into`]'s answer for a message is `length + address code * this`.
#[napi]
pub const SOCKET_ADDRESS_CODE: u32 = 0x2_0000;

/// [`socket_receive`] without building objects (a `Buffer` made from Rust memory, or an
/// object's properties, cost several times the `recvmsg` itself): a message whose payload
/// fits in `buf` less its last [`SOCKET_ADDRESS_ROOM`] bytes is copied there. With no
/// descriptors nor credentials (and not the end of a stream) the answer is a number:
/// `length + code * SOCKET_ADDRESS_CODE`, where `code` is 0 for no sender address, else
/// `1 + 2 * name length + (1 if abstract)` with the name in the last
/// [`SOCKET_ADDRESS_ROOM`] bytes of `buf`; -1 when none is queued (`socket_receive`'s null).
/// Another message answers with a [`ReceivedMetaJs`] (payload in `buf`), or whole, as
/// `socket_receive` gives it, when it is larger. `buf` must be at most
/// `SOCKET_ADDRESS_CODE` bytes.
///
/// ```js
/// const r = native.socketReceiveInto(fd, scratch, true, false)
/// if (typeof r === 'number' && r >= 0) console.log(scratch.subarray(0, r % SOCKET_ADDRESS_CODE))
/// ```
#[napi(ts_return_type = "number | ReceivedMetaJs | ReceivedJs")]
pub fn socket_receive_into(
    env: &Env,
    fd: i32,
    mut buf: BufferSlice<'_>,
    nowait: bool,
    throw_eagain: bool,
) -> Result<Either3<i64, ReceivedMetaJs, ReceivedJs>> {
    let room = SOCKET_ADDRESS_ROOM as usize;
    if buf.len() < room || buf.len() > SOCKET_ADDRESS_CODE as usize {
        return Err(Error::new(Status::InvalidArg, "buffer size out of range"));
    }
    let address_at = buf.len() - room;
    match socket::receive(fd, nowait) {
        Ok(Some(r)) if r.data.len() <= address_at => {
            let len = r.data.len();
            buf[..len].copy_from_slice(&r.data);
            if r.fds.is_empty() && r.credentials.is_none() && !r.end {
                let code = match &r.from {
                    None => 0,
                    Some(Address::Path(name)) | Some(Address::Abstract(name)) => {
                        buf[address_at..address_at + name.len()].copy_from_slice(name);
                        1 + 2 * name.len()
                            + usize::from(matches!(r.from, Some(Address::Abstract(_))))
                    }
                };
                return Ok(Either3::A(
                    (len + code * SOCKET_ADDRESS_CODE as usize) as i64,
                ));
            }
            Ok(Either3::B(ReceivedMetaJs {
                len: len as u32,
                fds: r.fds.into_iter().map(IntoRawFd::into_raw_fd).collect(),
                from: address_js(r.from),
                credentials: r.credentials.map(Into::into),
                end: r.end,
            }))
        }
        Ok(Some(r)) => Ok(Either3::C(r.into())),
        Ok(None) if throw_eagain => Err(crate::error::sys_error(
            env,
            ipckit::Error::new(ipckit::Errno::EAGAIN, "recvmsg"),
        )),
        Ok(None) => Ok(Either3::A(-1)),
        Err(e) => Err(crate::error::sys_error(env, e)),
    }
}

/// Waits for `fd` to be readable (or `writable`) on the core's epoll thread; delivered
/// through the reactor with no value.
#[napi]
pub fn socket_wait_start(
    env: &Env,
    reactor: &Reactor,
    wait_id: u32,
    fd: i32,
    writable: bool,
) -> Result<()> {
    let interest = if writable {
        Interest::Write
    } else {
        Interest::Read
    };
    reactor.watch(wait_id, fd, interest).or_throw(env)
}

/// A blocking `sendmsg` to an address on a wait thread: an unconnected datagram socket
/// cannot poll for room at its destination, so it waits in the kernel. `data` is copied, and
/// the thread sends through its own duplicate of `fd`, so closing `fd` meanwhile is safe.
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
    let own = socket::duplicate(fd).or_throw(env)?;
    reactor.start(wait_id, move |canceller| {
        ipckit::wait::interruptible(canceller, "sendmsg", || {
            match socket::send(own.as_raw_fd(), &data, &fds, Some(&to), false) {
                // A non-blocking fd (from elsewhere) answers at once: pause, then try again.
                Ok(None) => {
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    Err(ipckit::Error::new(ipckit::Errno::EINTR, "sendmsg"))
                }
                other => other.map(drop),
            }
        })
        .map(|()| Outcome::Done)
    });
    Ok(())
}

/// Blocks until `fd` is readable (or `writable`); for the `...Sync` forms.
#[napi]
pub fn socket_wait_sync(env: &Env, fd: i32, writable: bool) -> Result<()> {
    socket::wait_ready(fd, writable).or_throw(env)
}

/// The socket's type: `'stream'`, `'dgram'` or `'seqpacket'` (throws `ENOTSOCK`, `EBADF`,
/// `EAFNOSUPPORT` for anything that is not a UNIX socket).
#[napi]
pub fn socket_kind(env: &Env, fd: i32) -> Result<String> {
    socket::socket_kind(fd)
        .map(|k| kind_name(k).to_owned())
        .or_throw(env)
}

/// `SO_PEERCRED`.
#[napi]
pub fn socket_peer_credentials(env: &Env, fd: i32) -> Result<CredentialsJs> {
    socket::peer_credentials(fd).map(Into::into).or_throw(env)
}

/// `SO_PASSCRED`.
#[napi]
pub fn socket_set_pass_credentials(env: &Env, fd: i32, on: bool) -> Result<()> {
    socket::set_pass_credentials(fd, on).or_throw(env)
}

/// `getsockname`.
#[napi]
pub fn socket_local_address(env: &Env, fd: i32) -> Result<Option<SocketAddressJs>> {
    socket::local_address(fd).map(address_js).or_throw(env)
}

/// `getpeername`.
#[napi]
pub fn socket_peer_address(env: &Env, fd: i32) -> Result<Option<SocketAddressJs>> {
    socket::peer_address(fd).map(address_js).or_throw(env)
}

/// Sets or clears `O_NONBLOCK`.
#[napi]
pub fn socket_set_nonblocking(env: &Env, fd: i32, on: bool) -> Result<()> {
    socket::set_nonblocking(fd, on).or_throw(env)
}

/// `close`.
#[napi]
pub fn socket_close(env: &Env, fd: i32) -> Result<()> {
    socket::close(fd).or_throw(env)
}

/// Readiness watches registered now (for tests).
#[napi]
pub fn poller_watches() -> u32 {
    ipckit::poller::watches() as u32
}
