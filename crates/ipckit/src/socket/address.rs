//! Socket addresses: a filesystem path or an abstract name ([`Address`]), to and from nix's
//! `UnixAddr`, and the addresses a socket has ([`local_address`], [`peer_address`]).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::socket::{self as nix_socket, UnixAddr};

#[cfg(not(any(target_os = "linux", target_os = "android")))]
use crate::error::Errno;
use crate::error::{sys, Error, Result};

/// A UNIX socket address: `Address::Abstract(b"my-app".to_vec())`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// A socket file in the file system: `Address::Path(b"/tmp/app.sock".to_vec())`.
    Path(Vec<u8>),
    /// A name in the abstract namespace (Linux), without the leading NUL:
    /// `Address::Abstract(b"my-app".to_vec())`.
    /// Where there is no abstract namespace (macOS), using one fails with `ENOSYS` naming the
    /// call (`bind`, `connect`, `sendmsg`).
    Abstract(Vec<u8>),
}

impl Address {
    pub(super) fn to_unix_addr(&self, syscall: &'static str) -> Result<UnixAddr> {
        match self {
            Address::Path(p) => UnixAddr::new(Path::new(std::ffi::OsStr::from_bytes(p))),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Address::Abstract(name) => UnixAddr::new_abstract(name),
            // No abstract namespace elsewhere (macOS).
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Address::Abstract(_) => Err(Errno::ENOSYS),
        }
        .map_err(|e| Error::new(e, syscall))
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn from_unix_addr(addr: &UnixAddr) -> Option<Self> {
        if let Some(name) = addr.as_abstract() {
            Some(Address::Abstract(name.to_vec()))
        } else {
            addr.path()
                .map(|p| Address::Path(p.as_os_str().as_bytes().to_vec()))
        }
    }
}

impl Address {
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(super) fn from_unix_addr(addr: &UnixAddr) -> Option<Self> {
        addr.path()
            .map(|p| Address::Path(p.as_os_str().as_bytes().to_vec()))
    }
}

/// The socket's own address (`getsockname`); `None` when unbound.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (a, _b) = socketpair(Kind::Datagram)?;
/// assert_eq!(local_address(a.as_fd())?, None);
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn local_address(fd: BorrowedFd<'_>) -> Result<Option<Address>> {
    let addr: UnixAddr = nix_socket::getsockname(fd.as_raw_fd()).map_err(sys("getsockname"))?;
    Ok(Address::from_unix_addr(&addr))
}

/// The connected peer's address (`getpeername`); `None` when it is unbound.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (a, _b) = socketpair(Kind::Seqpacket)?;
/// assert_eq!(peer_address(a.as_fd())?, None);
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn peer_address(fd: BorrowedFd<'_>) -> Result<Option<Address>> {
    let addr: UnixAddr = nix_socket::getpeername(fd.as_raw_fd()).map_err(sys("getpeername"))?;
    Ok(Address::from_unix_addr(&addr))
}
