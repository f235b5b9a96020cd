//! UNIX domain sockets: socket pairs, datagram and seqpacket sockets, descriptor passing
//! (`SCM_RIGHTS`) and credentials (`SO_PEERCRED`, `SCM_CREDENTIALS`).
//!
//! Every descriptor this module creates has `CLOEXEC` (`SOCK_CLOEXEC`, `MSG_CMSG_CLOEXEC`).
//! New sockets are [`OwnedFd`]s; the functions that act on an existing socket take its raw fd,
//! because the Node.js binding hands descriptors to JavaScript, which owns them from then on.
//! A raw fd passed here must stay open for the duration of the call; a wrong number only makes
//! the call fail (`EBADF`, `ENOTSOCK`) or act on that other descriptor, never touch memory.
//!
//! ```
//! # #[cfg(any(target_os = "linux", target_os = "android"))] {
//! use ipckit::socket::{receive, send, socketpair, Kind};
//! use std::os::fd::AsRawFd;
//! let (a, b) = socketpair(Kind::Seqpacket)?;
//! send(a.as_raw_fd(), b"hello", &[], None, true)?;
//! let msg = receive(b.as_raw_fd(), true)?.expect("a message is queued");
//! assert_eq!(msg.data, b"hello");
//! # }
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! For more information, see [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html).
//!
//! The parts, as nix lays out its `sys::socket`: `address.rs` (addresses), `bind.rs` (binding,
//! with the socket file's mode), `ancillary.rs` (descriptors and credentials that come with a
//! message), `options.rs` (the socket's type, options and descriptor flags), `receive.rs`
//! (receiving) and `overflow.rs` (the receive overflow area); socket creation, `connect`,
//! `listen`, `accept` and `send` are here.

mod address;
mod ancillary;
mod bind;
mod create;
mod options;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod overflow;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[path = "overflow_none.rs"]
mod overflow;
mod receive;
#[cfg(test)]
mod tests;

use std::io::IoSlice;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

#[cfg(any(target_os = "linux", target_os = "android"))]
use nix::sys::socket::SockFlag;
use nix::sys::socket::{self as nix_socket, Backlog, ControlMessage, MsgFlags};

pub use address::{local_address, peer_address, Address};
pub use ancillary::Credentials;
pub use bind::{bind, BindOptions};
pub use create::{socket, socketpair};
pub use options::{
    close, duplicate, peer_credentials, set_nonblocking, set_pass_credentials, socket_kind, Kind,
};
pub use receive::{receive, receive_into, wait_ready, Received, ReceivedInto};

use crate::error::{sys, Errno, Error, Result};
use options::with_fd;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use {create::prepare, std::os::fd::AsRawFd};

/// `connect`: sets the peer of a datagram socket, or connects a stream or seqpacket socket.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let name = Address::Abstract(format!("ipckit-doc-connect-{}", std::process::id()).into());
/// let server = socket(Kind::Datagram, false)?;
/// bind(server.as_raw_fd(), &name, BindOptions::default())?;
/// let client = socket(Kind::Datagram, false)?;
/// connect(client.as_raw_fd(), &name)?;
/// send(client.as_raw_fd(), b"hi", &[], None, true)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`connect(2)`](https://man7.org/linux/man-pages/man2/connect.2.html).
pub fn connect(fd: RawFd, address: &Address) -> Result<()> {
    let addr = address.to_unix_addr("connect")?;
    nix_socket::connect(fd, &addr).map_err(sys("connect"))
}

/// `listen` with `backlog` pending connections at most.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let name = Address::Abstract(format!("ipckit-doc-listen-{}", std::process::id()).into());
/// let server = socket(Kind::Seqpacket, true)?;
/// bind(server.as_raw_fd(), &name, BindOptions::default())?;
/// listen(server.as_raw_fd(), 16)?;
/// assert!(accept(server.as_raw_fd())?.is_none());
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`listen(2)`](https://man7.org/linux/man-pages/man2/listen.2.html).
pub fn listen(fd: RawFd, backlog: i32) -> Result<()> {
    let backlog = Backlog::new(backlog).map_err(sys("listen"))?;
    with_fd(fd, |b| nix_socket::listen(&b, backlog))?.map_err(sys("listen"))
}

/// `accept4(SOCK_CLOEXEC)` on a non-blocking listening socket: `None` when no connection is
/// pending.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let name = Address::Abstract(format!("ipckit-doc-accept-{}", std::process::id()).into());
/// let server = socket(Kind::Seqpacket, true)?;
/// bind(server.as_raw_fd(), &name, BindOptions::default())?;
/// listen(server.as_raw_fd(), 16)?;
/// let client = socket(Kind::Seqpacket, false)?;
/// connect(client.as_raw_fd(), &name)?;
/// let conn = accept(server.as_raw_fd())?.expect("a pending connection");
/// assert_eq!(peer_credentials(conn.as_raw_fd())?.pid, std::process::id() as i32);
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`accept4(2)`](https://man7.org/linux/man-pages/man2/accept4.2.html).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn accept(fd: RawFd) -> Result<Option<OwnedFd>> {
    match nix_socket::accept4(fd, SockFlag::SOCK_CLOEXEC) {
        // SAFETY: accept4 just returned this fd, so nothing else owns it.
        Ok(new) => Ok(Some(unsafe { OwnedFd::from_raw_fd(new) })),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(Error::new(e, "accept4")),
    }
}

/// `accept` where there is no `accept4` (macOS), on a non-blocking listening socket: `None`
/// when no connection is pending. The new socket gets `FD_CLOEXEC` and `SO_NOSIGPIPE`
/// (`prepare`) and is made blocking, as Linux's `accept4` returns it (macOS passes the
/// listener's `O_NONBLOCK` on).
///
/// ```no_run
/// let conn = ipckit::socket::accept(3)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`accept(2)`](https://man7.org/linux/man-pages/man2/accept.2.html).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn accept(fd: RawFd) -> Result<Option<OwnedFd>> {
    match nix_socket::accept(fd) {
        Ok(new) => {
            // SAFETY: accept just returned this fd, so nothing else owns it.
            let new = unsafe { OwnedFd::from_raw_fd(new) };
            prepare(&new)?;
            set_nonblocking(new.as_raw_fd(), false)?;
            Ok(Some(new))
        }
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(Error::new(e, "accept")),
    }
}

/// `sendmsg`: one message, with descriptors (`SCM_RIGHTS`) and to an address for an
/// unconnected datagram socket. With `nowait` (`MSG_DONTWAIT`), `Ok(None)` when the send
/// would block. Never raises `SIGPIPE` (`MSG_NOSIGNAL`).
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let (a, b) = socketpair(Kind::Datagram)?;
/// send(a.as_raw_fd(), b"with an fd", &[b.as_raw_fd()], None, true)?;
/// assert_eq!(receive(b.as_raw_fd(), true)?.unwrap().fds.len(), 1);
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`sendmsg(2)`](https://man7.org/linux/man-pages/man2/sendmsg.2.html).
pub fn send(
    fd: RawFd,
    data: &[u8],
    fds: &[RawFd],
    to: Option<&Address>,
    nowait: bool,
) -> Result<Option<usize>> {
    let iov = [IoSlice::new(data)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let mut flags = MsgFlags::MSG_NOSIGNAL;
    // No MSG_NOSIGNAL in nix for macOS: the sockets made here have SO_NOSIGPIPE instead.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let mut flags = MsgFlags::empty();
    if nowait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    let to = to.map(|a| a.to_unix_addr("sendmsg")).transpose()?;
    match nix_socket::sendmsg(fd, &iov, cmsgs, flags, to.as_ref()) {
        Ok(n) => Ok(Some(n)),
        Err(Errno::EAGAIN) if nowait => Ok(None),
        Err(e) => Err(Error::new(e, "sendmsg")),
    }
}
