//! Making sockets: [`socketpair`] and [`socket`], every one close-on-exec from birth.

use std::os::fd::OwnedFd;

use nix::sys::socket::{self as nix_socket, AddressFamily, SockFlag};

use super::options::Kind;
use crate::error::{sys, Result};
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use {
    super::options::set_nonblocking,
    crate::error::check,
    crate::sys::libc,
    std::os::fd::{AsFd, AsRawFd},
};

/// `socketpair(AF_UNIX, kind | SOCK_CLOEXEC)`: two connected sockets.
///
/// ```
/// let (a, b) = ipckit::socket::socketpair(ipckit::socket::Kind::Stream)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`socketpair(2)`](https://man7.org/linux/man-pages/man2/socketpair.2.html).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn socketpair(kind: Kind) -> Result<(OwnedFd, OwnedFd)> {
    nix_socket::socketpair(
        AddressFamily::Unix,
        kind.sock_type(),
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(sys("socketpair"))
}

/// `socket(AF_UNIX, kind | SOCK_CLOEXEC)`, optionally non-blocking.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let fd = socket(Kind::Seqpacket, true)?;
/// assert_eq!(socket_kind(fd.as_fd())?, Kind::Seqpacket);
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`socket(2)`](https://man7.org/linux/man-pages/man2/socket.2.html).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn socket(kind: Kind, nonblocking: bool) -> Result<OwnedFd> {
    let mut flags = SockFlag::SOCK_CLOEXEC;
    if nonblocking {
        flags |= SockFlag::SOCK_NONBLOCK;
    }
    nix_socket::socket(AddressFamily::Unix, kind.sock_type(), flags, None).map_err(sys("socket"))
}

/// `socketpair(AF_UNIX, kind)` where there is no `SOCK_CLOEXEC` (macOS), then `FD_CLOEXEC`
/// and `SO_NOSIGPIPE` on both ends (see `prepare`). macOS has no `SOCK_SEQPACKET` UNIX
/// sockets: [`Kind::Seqpacket`] fails there with the kernel's error (`EPROTONOSUPPORT`).
///
/// ```
/// let (a, b) = ipckit::socket::socketpair(ipckit::socket::Kind::Stream)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`socketpair(2)`](https://man7.org/linux/man-pages/man2/socketpair.2.html).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn socketpair(kind: Kind) -> Result<(OwnedFd, OwnedFd)> {
    let (a, b) = nix_socket::socketpair(
        AddressFamily::Unix,
        kind.sock_type(),
        None,
        SockFlag::empty(),
    )
    .map_err(sys("socketpair"))?;
    prepare(&a)?;
    prepare(&b)?;
    Ok((a, b))
}

/// `socket(AF_UNIX, kind)` where there is no `SOCK_CLOEXEC` (macOS), then `FD_CLOEXEC`,
/// `SO_NOSIGPIPE` (`prepare`) and, when asked, `O_NONBLOCK`.
///
/// ```
/// use ipckit::socket::*;
/// let fd = socket(Kind::Stream, true)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`socket(2)`](https://man7.org/linux/man-pages/man2/socket.2.html).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn socket(kind: Kind, nonblocking: bool) -> Result<OwnedFd> {
    let fd = nix_socket::socket(
        AddressFamily::Unix,
        kind.sock_type(),
        SockFlag::empty(),
        None,
    )
    .map_err(sys("socket"))?;
    prepare(&fd)?;
    if nonblocking {
        set_nonblocking(fd.as_fd(), true)?;
    }
    Ok(fd)
}

/// What Linux gets from `SOCK_CLOEXEC` and from `MSG_NOSIGNAL` on every send, for a socket
/// just made where neither exists (macOS): `FD_CLOEXEC`, and `SO_NOSIGPIPE` so that writing
/// to a closed peer fails with `EPIPE` instead of raising `SIGPIPE`. A `fork` + `exec` on
/// another thread between the creation and this call could inherit the descriptor.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn prepare(fd: &OwnedFd) -> Result<()> {
    use std::os::fd::AsFd;
    crate::pipe::set_cloexec(fd.as_fd())?;
    let on: libc::c_int = 1;
    // SAFETY: SO_NOSIGPIPE reads one int from `on`, whose size is passed; `fd` is open.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NOSIGPIPE,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check(rc, "setsockopt").map(drop)
}
