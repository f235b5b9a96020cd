//! Socket options and descriptor flags: the socket's type ([`Kind`], [`socket_kind`]), peer
//! credentials (`SO_PEERCRED`), `SO_PASSCRED`, `O_NONBLOCK`, duplicates and `close`.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use nix::sys::socket::{self as nix_socket, sockopt, SockType};

use super::ancillary::Credentials;
use crate::error::{check, sys, Errno, Error, Result};
use crate::sys::libc;

/// The socket type: `socketpair(Kind::Seqpacket)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `SOCK_STREAM`: a byte stream.
    Stream,
    /// `SOCK_DGRAM`: datagrams, boundaries kept, connectionless.
    Datagram,
    /// `SOCK_SEQPACKET`: connected, ordered, boundaries kept.
    Seqpacket,
}

impl Kind {
    pub(super) fn sock_type(self) -> SockType {
        match self {
            Kind::Stream => SockType::Stream,
            Kind::Datagram => SockType::Datagram,
            Kind::Seqpacket => SockType::SeqPacket,
        }
    }
}

/// The type of a UNIX socket (`SO_DOMAIN`, `SO_TYPE`); `ENOTSOCK` for another descriptor,
/// `EAFNOSUPPORT` for a socket that is not `AF_UNIX`.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (a, _b) = socketpair(Kind::Stream)?;
/// assert_eq!(socket_kind(a.as_fd())?, Kind::Stream);
/// assert_eq!(socket_kind(std::io::stdin().as_fd()).map_err(|e| e.code()).err().as_deref().map(|c| c == "ENOTSOCK" || c == "EBADF"), Some(true));
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn socket_kind(fd: BorrowedFd<'_>) -> Result<Kind> {
    {
        let ty = nix_socket::getsockopt(&fd, sockopt::SockType).map_err(sys("getsockopt"))?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let mut domain: libc::c_int = 0;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: SO_DOMAIN writes one int to `domain`, whose size `len` gives.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_DOMAIN,
                (&mut domain as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        #[cfg(any(target_os = "linux", target_os = "android"))]
        check(rc, "getsockopt")?;
        // No SO_DOMAIN elsewhere (macOS): the family of the socket's own address.
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let domain = socket_domain(fd)?;
        if domain != libc::AF_UNIX {
            return Err(Error::new(Errno::EAFNOSUPPORT, "getsockopt"));
        }
        match ty {
            SockType::Stream => Ok(Kind::Stream),
            SockType::Datagram => Ok(Kind::Datagram),
            SockType::SeqPacket => Ok(Kind::Seqpacket),
            _ => Err(Error::new(Errno::EPROTOTYPE, "getsockopt")),
        }
    }
}

/// The address family of a socket from `getsockname`, where there is no `SO_DOMAIN` (macOS,
/// which reports `AF_UNIX` for an unbound UNIX socket too).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn socket_domain(fd: BorrowedFd<'_>) -> Result<libc::c_int> {
    // SAFETY: an all-zero sockaddr_storage is a valid value of it.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes to `addr`, which has that many.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    check(rc, "getsockname")?;
    Ok(libc::c_int::from(addr.ss_family))
}

/// The credentials of the connected peer (`SO_PEERCRED`), as of when it connected (or made
/// the pair).
///
/// Fails with `ENOTCONN` when the socket has no peer whose credentials the kernel kept: an
/// unconnected socket, and any datagram socket not made by `socketpair` (`connect` on a
/// datagram socket records no credentials). The kernel then answers pid 0 and uid and gid
/// `(uid_t)-1`, which are no one's.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (a, _b) = socketpair(Kind::Stream)?;
/// assert_eq!(peer_credentials(a.as_fd())?.pid, std::process::id() as i32);
/// let lone = socket(Kind::Datagram, false)?;
/// assert_eq!(peer_credentials(lone.as_fd()).unwrap_err().code(), "ENOTCONN");
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer_credentials(fd: BorrowedFd<'_>) -> Result<Credentials> {
    let c = nix_socket::getsockopt(&fd, sockopt::PeerCredentials).map_err(sys("getsockopt"))?;
    if c.pid() == 0 && c.uid() == u32::MAX && c.gid() == u32::MAX {
        return Err(Error::new(Errno::ENOTCONN, "getsockopt"));
    }
    Ok(Credentials {
        pid: c.pid(),
        uid: c.uid(),
        gid: c.gid(),
    })
}

/// The credentials of the connected peer where there is no `SO_PEERCRED` (macOS): uid and
/// gid from `getpeereid`, the pid from `LOCAL_PEERPID`, as of when it connected.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (a, _b) = socketpair(Kind::Stream)?;
/// assert_eq!(peer_credentials(a.as_fd())?.pid, std::process::id() as i32);
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see
/// [`getpeereid(3)`](https://man.freebsd.org/cgi/man.cgi?query=getpeereid).
#[cfg(target_vendor = "apple")]
pub fn peer_credentials(fd: BorrowedFd<'_>) -> Result<Credentials> {
    let (uid, gid) = nix::unistd::getpeereid(fd).map_err(sys("getpeereid"))?;
    let pid = nix_socket::getsockopt(&fd, sockopt::LocalPeerPid).map_err(sys("getsockopt"))?;
    Ok(Credentials {
        pid,
        uid: uid.as_raw(),
        gid: gid.as_raw(),
    })
}

/// Turns `SO_PASSCRED` on or off: with it, each received message carries its sender's
/// credentials ([`Received::credentials`](super::Received::credentials)).
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (a, b) = socketpair(Kind::Datagram)?;
/// set_pass_credentials(b.as_fd(), true)?;
/// send(a.as_fd(), b"who?", &[], None, true)?;
/// let cred = receive(b.as_fd(), true)?.unwrap().credentials.unwrap();
/// assert_eq!(cred.pid, std::process::id() as i32);
/// # Ok::<(), ipckit::Error>(())
/// ```
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn set_pass_credentials(fd: BorrowedFd<'_>, on: bool) -> Result<()> {
    nix_socket::setsockopt(&fd, sockopt::PassCred, &on).map_err(sys("setsockopt"))
}

/// Where there is no `SO_PASSCRED` / `SCM_CREDENTIALS` (macOS): fails with `ENOSYS` (syscall
/// `setsockopt`) after checking the descriptor; [`peer_credentials`] works there.
///
/// ```
/// # #[cfg(target_os = "macos")] {
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (_a, b) = socketpair(Kind::Datagram)?;
/// assert_eq!(set_pass_credentials(b.as_fd(), true).unwrap_err().code(), "ENOSYS");
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn set_pass_credentials(fd: BorrowedFd<'_>, _on: bool) -> Result<()> {
    socket_kind(fd)?;
    Err(Error::new(Errno::ENOSYS, "setsockopt"))
}

/// Closes `fd`, reporting what `close` answers (dropping an [`OwnedFd`] closes it too, but
/// ignores the answer).
///
/// ```
/// use ipckit::socket::*;
/// let (a, _b) = socketpair(Kind::Datagram)?;
/// close(a)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`close(2)`](https://man7.org/linux/man-pages/man2/close.2.html).
pub fn close(fd: OwnedFd) -> Result<()> {
    // SAFETY: `fd` is ours and given up here: into_raw_fd leaves nothing else to close it.
    check(unsafe { libc::close(fd.into_raw_fd()) }, "close").map(drop)
}

/// A new descriptor for the same socket (`fcntl(F_DUPFD_CLOEXEC)`), for a wait thread that
/// must not depend on the caller keeping its number open.
///
/// ```
/// use std::os::fd::{AsFd, AsRawFd};
/// let (a, _b) = ipckit::socket::socketpair(ipckit::socket::Kind::Datagram)?;
/// let copy = ipckit::socket::duplicate(a.as_fd())?;
/// assert_ne!(copy.as_raw_fd(), a.as_raw_fd());
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html).
pub fn duplicate(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer and creates a new descriptor.
    let new = check(
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) },
        "fcntl",
    )?;
    // SAFETY: fcntl just created `new`, so nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Sets or clears `O_NONBLOCK`.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (a, _b) = socketpair(Kind::Seqpacket)?;
/// set_nonblocking(a.as_fd(), true)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> Result<()> {
    // SAFETY: fcntl(F_GETFL) takes no pointer.
    let flags = check(
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) },
        "fcntl",
    )?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    check(
        // SAFETY: fcntl(F_SETFL) takes an integer flag set.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new) },
        "fcntl",
    )
    .map(drop)
}
