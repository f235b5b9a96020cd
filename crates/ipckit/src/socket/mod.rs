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
//! use std::os::fd::AsFd;
//! let (a, b) = socketpair(Kind::Seqpacket)?;
//! send(a.as_fd(), b"hello", &[], None, true)?;
//! let msg = receive(b.as_fd(), true)?.expect("a message is queued");
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
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use {create::prepare, std::os::fd::AsFd};

/// `connect`: sets the peer of a datagram socket, or connects a stream or seqpacket socket.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let name = Address::Abstract(format!("ipckit-doc-connect-{}", std::process::id()).into());
/// let server = socket(Kind::Datagram, false)?;
/// bind(server.as_fd(), &name, BindOptions::default())?;
/// let client = socket(Kind::Datagram, false)?;
/// connect(client.as_fd(), &name)?;
/// send(client.as_fd(), b"hi", &[], None, true)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`connect(2)`](https://man7.org/linux/man-pages/man2/connect.2.html).
pub fn connect(fd: BorrowedFd<'_>, address: &Address) -> Result<()> {
    let addr = address.to_unix_addr("connect")?;
    nix_socket::connect(fd.as_raw_fd(), &addr).map_err(sys("connect"))
}

/// `listen` with `backlog` pending connections at most.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let name = Address::Abstract(format!("ipckit-doc-listen-{}", std::process::id()).into());
/// let server = socket(Kind::Seqpacket, true)?;
/// bind(server.as_fd(), &name, BindOptions::default())?;
/// listen(server.as_fd(), 16)?;
/// assert!(accept(server.as_fd())?.is_none());
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`listen(2)`](https://man7.org/linux/man-pages/man2/listen.2.html).
pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> Result<()> {
    let backlog = Backlog::new(backlog).map_err(sys("listen"))?;
    nix_socket::listen(&fd, backlog).map_err(sys("listen"))
}

/// `accept4(SOCK_CLOEXEC)` on a non-blocking listening socket: `None` when no connection is
/// pending.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let name = Address::Abstract(format!("ipckit-doc-accept-{}", std::process::id()).into());
/// let server = socket(Kind::Seqpacket, true)?;
/// bind(server.as_fd(), &name, BindOptions::default())?;
/// listen(server.as_fd(), 16)?;
/// let client = socket(Kind::Seqpacket, false)?;
/// connect(client.as_fd(), &name)?;
/// let conn = accept(server.as_fd())?.expect("a pending connection");
/// assert_eq!(peer_credentials(conn.as_fd())?.pid, std::process::id() as i32);
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`accept4(2)`](https://man7.org/linux/man-pages/man2/accept4.2.html).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn accept(fd: BorrowedFd<'_>) -> Result<Option<OwnedFd>> {
    match nix_socket::accept4(fd.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
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
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let server = socket(Kind::Seqpacket, true)?;
/// let conn = accept(server.as_fd())?; // None: nothing pending
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`accept(2)`](https://man7.org/linux/man-pages/man2/accept.2.html).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn accept(fd: BorrowedFd<'_>) -> Result<Option<OwnedFd>> {
    match nix_socket::accept(fd.as_raw_fd()) {
        Ok(new) => {
            // SAFETY: accept just returned this fd, so nothing else owns it.
            let new = unsafe { OwnedFd::from_raw_fd(new) };
            prepare(&new)?;
            set_nonblocking(new.as_fd(), false)?;
            Ok(Some(new))
        }
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(Error::new(e, "accept")),
    }
}

/// `sendmsg`: one message, with descriptors (`SCM_RIGHTS`) and to an address for an
/// unconnected datagram socket. With `nowait` (`MSG_DONTWAIT`), `Ok(None)` when the send
/// would block; without it, a send that blocks is retried after `EINTR` (through
/// [`retry_eintr`](crate::interrupt::retry_eintr), so a stopping host still ends it), and a
/// non-blocking descriptor fails with `EAGAIN`. Never raises `SIGPIPE` (`MSG_NOSIGNAL`).
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (a, b) = socketpair(Kind::Datagram)?;
/// send(a.as_fd(), b"with an fd", &[b.as_fd()], None, true)?;
/// assert_eq!(receive(b.as_fd(), true)?.unwrap().fds.len(), 1);
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`sendmsg(2)`](https://man7.org/linux/man-pages/man2/sendmsg.2.html).
pub fn send(
    fd: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
    to: Option<&Address>,
    nowait: bool,
) -> Result<Option<usize>> {
    if nowait {
        send_once(fd, data, fds, to, true)
    } else {
        crate::interrupt::retry_eintr(|| send_once(fd, data, fds, to, false))
    }
}

/// A blocking `sendmsg` to `to` that `canceller` stops: for an unconnected datagram socket
/// whose receiver is full, which no descriptor can be polled for (the sender's own buffer
/// says nothing of the receiver's queue), so the wait is the kernel's, on the calling
/// thread (one of this crate's wait threads: [`crate::wait::interruptible`]). Returns the
/// bytes sent; a non-blocking descriptor answers `EAGAIN` at once.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (a, b) = socketpair(Kind::Datagram)?;
/// let to = Address::Abstract(format!("ipckit-doc-{}", std::process::id()).into_bytes());
/// bind(b.as_fd(), &to, BindOptions::default())?;
/// let c = ipckit::wait::Canceller::new();
/// assert_eq!(send_cancellable(a.as_fd(), b"hi", &[], &to, &c)?, 2);
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn send_cancellable(
    fd: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
    to: &Address,
    canceller: &crate::wait::Canceller,
) -> Result<usize> {
    crate::wait::interruptible(canceller, "sendmsg", || {
        // Without MSG_DONTWAIT, EAGAIN comes as an error, not as `None`.
        send_once(fd, data, fds, Some(to), false)
            .and_then(|n| n.ok_or(Error::new(Errno::EAGAIN, "sendmsg")))
    })
}

/// One `sendmsg`: `EINTR` returned, not retried; `Ok(None)` for `EAGAIN` with `nowait` (an
/// error without it).
fn send_once(
    fd: BorrowedFd<'_>,
    data: &[u8],
    fds: &[BorrowedFd<'_>],
    to: Option<&Address>,
    nowait: bool,
) -> Result<Option<usize>> {
    let iov = [IoSlice::new(data)];
    // SAFETY: BorrowedFd is `repr(transparent)` over a RawFd, so the slices have one layout;
    // the descriptors stay open while `fds` borrows them, across the call.
    let raw = unsafe { std::slice::from_raw_parts(fds.as_ptr().cast::<RawFd>(), fds.len()) };
    let rights = [ControlMessage::ScmRights(raw)];
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
    match nix_socket::sendmsg(fd.as_raw_fd(), &iov, cmsgs, flags, to.as_ref()) {
        Ok(n) => Ok(Some(n)),
        Err(Errno::EAGAIN) if nowait => Ok(None),
        Err(e) => Err(Error::new(e, "sendmsg")),
    }
}
