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

use std::cell::RefCell;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::socket::{
    self as nix_socket, sockopt, AddressFamily, Backlog, ControlMessage, MsgFlags, SockFlag,
    SockType, SockaddrLike, UnixAddr,
};

use crate::error::{check, Errno, Error, Result};

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
    fn sock_type(self) -> SockType {
        match self {
            Kind::Stream => SockType::Stream,
            Kind::Datagram => SockType::Datagram,
            Kind::Seqpacket => SockType::SeqPacket,
        }
    }
}

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
    fn to_unix_addr(&self, syscall: &'static str) -> Result<UnixAddr> {
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
    fn from_unix_addr(addr: &UnixAddr) -> Option<Self> {
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
    fn from_unix_addr(addr: &UnixAddr) -> Option<Self> {
        addr.path()
            .map(|p| Address::Path(p.as_os_str().as_bytes().to_vec()))
    }
}

/// A process's identity, as `SO_PEERCRED` and `SCM_CREDENTIALS` report it:
/// `peer_credentials(fd)?.uid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A received message: `receive(fd, true)?` gives `Some(Received { data, fds, .. })`.
#[derive(Debug)]
pub struct Received {
    /// The payload.
    pub data: Vec<u8>,
    /// Descriptors that came with it (`SCM_RIGHTS`), each with `O_CLOEXEC`.
    pub fds: Vec<OwnedFd>,
    /// The sender's address; `None` for an unbound sender or a connected stream.
    pub from: Option<Address>,
    /// The sender's credentials, when `SO_PASSCRED` is on.
    pub credentials: Option<Credentials>,
    /// Descriptors came and were closed, `fds` is empty: not all of them could be received
    /// (see [`ReceivedInto::fds_dropped`]).
    pub fds_dropped: bool,
    /// End of stream: the peer of a connected stream or seqpacket socket closed (or shut
    /// down) its end, and nothing is left to read. `data` is then empty.
    pub end: bool,
}

fn sys(syscall: &'static str) -> impl Fn(Errno) -> Error {
    move |e| Error::new(e, syscall)
}

/// Borrows a caller's raw fd for one call.
fn with_fd<T>(fd: RawFd, f: impl FnOnce(BorrowedFd<'_>) -> T) -> Result<T> {
    if fd < 0 {
        return Err(Error::new(Errno::EBADF, "fcntl"));
    }
    // SAFETY: the module contract: the caller keeps `fd` open during the call, and the
    // borrow does not outlive `f`. A number that names another descriptor only acts on it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(f(borrowed))
}

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
/// use std::os::fd::AsRawFd;
/// let fd = socket(Kind::Seqpacket, true)?;
/// assert_eq!(socket_kind(fd.as_raw_fd())?, Kind::Seqpacket);
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
        set_nonblocking(fd.as_raw_fd(), true)?;
    }
    Ok(fd)
}

/// What Linux gets from `SOCK_CLOEXEC` and from `MSG_NOSIGNAL` on every send, for a socket
/// just made where neither exists (macOS): `FD_CLOEXEC`, and `SO_NOSIGPIPE` so that writing
/// to a closed peer fails with `EPIPE` instead of raising `SIGPIPE`. A `fork` + `exec` on
/// another thread between the creation and this call could inherit the descriptor.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn prepare(fd: &OwnedFd) -> Result<()> {
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

/// Options of [`bind`]: `BindOptions { mode: Some(0o660), replace_stale: true }`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BindOptions {
    /// Permission bits of the socket file (paths only).
    pub mode: Option<u32>,
    /// When the path holds a socket file that no socket is bound to (a crashed server's
    /// leftover), remove it and bind again. A live socket still fails with `EADDRINUSE`, and
    /// is not disturbed: see [`bind`].
    pub replace_stale: bool,
}

/// `bind`: gives the socket an address; for a path, the socket file is created with exactly
/// `mode`, whatever the process umask, and never changed by path afterwards (see
/// [`bind_with_mode`]: a `chmod` of the path after the bind would follow a symlink that anyone
/// who can write the folder may have put there meanwhile).
///
/// With `replace_stale`, a path taken by a socket file is checked without disturbing whoever
/// may own it: a *datagram* socket is connected to the file, which makes no connection and
/// sends nothing. The kernel answers from the inode: `ECONNREFUSED` when no socket is bound
/// to it (stale: the file is removed and the bind made again), `EPROTOTYPE` when a stream or
/// seqpacket socket is (live), success when a datagram socket is (live). Anything else
/// (`EACCES`, ...) counts as live. A stream or seqpacket probe would be accepted by a live
/// server, which then reads end-of-file from it (socat exits and removes its file). The same
/// answers hold for every network namespace (a path is found by its inode, not in a table)
/// and on macOS. An abstract name is never stale: it is gone with its last socket.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let dir = std::env::temp_dir().join(format!("ipckit-doc-bind-{}", std::process::id()));
/// let path = dir.with_extension("sock");
/// let fd = socket(Kind::Datagram, false)?;
/// let options = BindOptions { mode: Some(0o600), replace_stale: true };
/// bind(fd.as_raw_fd(), &Address::Path(path.to_str().unwrap().into()), options)?;
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`bind(2)`](https://man7.org/linux/man-pages/man2/bind.2.html).
pub fn bind(fd: RawFd, address: &Address, options: BindOptions) -> Result<()> {
    let addr = address.to_unix_addr("bind")?;
    let mode = match address {
        Address::Path(_) => options.mode,
        Address::Abstract(_) => None,
    };
    match bind_with_mode(fd, &addr, mode) {
        Err(e) if e.errno() == Errno::EADDRINUSE && options.replace_stale => {
            let Address::Path(path) = address else {
                return Err(Error::new(Errno::EADDRINUSE, "bind"));
            };
            let path = Path::new(std::ffi::OsStr::from_bytes(path));
            // Only a socket file may be replaced, never a regular file that sits there.
            let is_socket = std::fs::symlink_metadata(path)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()));
            if !is_socket || !is_stale(&addr)? {
                return Err(Error::new(Errno::EADDRINUSE, "bind"));
            }
            std::fs::remove_file(path).map_err(|e| {
                Error::new(
                    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                    "unlink",
                )
            })?;
            bind_with_mode(fd, &addr, mode)?;
        }
        other => other?,
    }
    Ok(())
}

/// `bind` of a socket file that is created with exactly `mode` (when given), in a way that is
/// correct in a multi-threaded process and makes no path lookup after the bind.
///
/// `bind(2)` creates the file with the socket's own inode mode minus the umask (Linux), or
/// with `0o777` minus the umask (macOS). So, on Linux, the socket is `fchmod`ed to `mode`
/// first; when the process umask clears none of `mode`'s bits, that bind is exact. Otherwise
/// the umask must change for the bind, but it belongs to the whole process (every thread of
/// Node's, which may be creating files at that moment), so the bind runs in a child that
/// shares this process's memory and descriptors but has a filesystem context (umask, cwd) of
/// its own: `clone(CLONE_VM | CLONE_VFORK)` without `CLONE_FS`, as `posix_spawn` makes its
/// child ([`bind_in_child`]). The child sets the umask, binds the shared socket, and exits.
///
/// What it replaces, a `chmod` of the path after the bind, follows symlinks: a user who can
/// write the folder swaps the new socket file for a symlink, and a privileged process chmods
/// whatever the link names.
fn bind_with_mode(fd: RawFd, addr: &UnixAddr, mode: Option<u32>) -> Result<()> {
    let Some(mode) = mode else {
        return nix_socket::bind(fd, addr).map_err(sys("bind"));
    };
    let mode = mode & 0o777;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: fchmod only reads its integer arguments.
        check(unsafe { libc::fchmod(fd, mode as libc::mode_t) }, "fchmod")?;
        if current_umask().is_some_and(|umask| umask & mode == 0) {
            return nix_socket::bind(fd, addr).map_err(sys("bind"));
        }
    }
    bind_in_child(fd, addr, !mode & 0o777)
}

/// The process umask, read without changing it (`Umask:` of `/proc/self/status`, Linux 4.7
/// and later); `None` where it cannot be read.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// What the child of [`bind_in_child`] needs, in memory it shares with the parent.
struct BindJob {
    fd: RawFd,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
    umask: libc::mode_t,
}

/// The child's whole life: set its own umask, bind the shared socket, exit with 0 or the
/// errno. Only async-signal-safe calls, on a stack of its own, every signal blocked.
#[cfg(any(target_os = "linux", target_os = "android"))]
extern "C" fn bind_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `BindJob` that `bind_in_child` keeps alive, unmoved, until this
    // child has exited (CLONE_VFORK suspends the parent thread until then).
    let job = unsafe { &*arg.cast::<BindJob>() };
    // SAFETY: umask and bind take integers and a sockaddr of `len` bytes that outlives the
    // call; the errno location is the (suspended) parent thread's, valid meanwhile.
    unsafe {
        libc::umask(job.umask);
        if libc::bind(job.fd, job.addr, job.len) == 0 {
            0
        } else {
            *libc::__errno_location()
        }
    }
}

/// Binds `fd` to `addr` in a child process whose umask is `umask` (see [`bind_with_mode`]):
/// `clone(CLONE_VM | CLONE_VFORK)`, so nothing is copied and this thread waits for it. The
/// child gets its own stack and every signal blocked; no `SIGCHLD` is sent for it, and it is
/// reaped here (`__WALL`), so Node's child-process bookkeeping never sees it.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_in_child(fd: RawFd, addr: &UnixAddr, umask: u32) -> Result<()> {
    const STACK: usize = 64 * 1024;
    let mut stack: Vec<u8> = Vec::new();
    stack
        .try_reserve_exact(STACK)
        .map_err(|_| Error::new(Errno::ENOMEM, "clone"))?;
    stack.resize(STACK, 0);
    let job = BindJob {
        fd,
        addr: addr.as_ptr().cast(),
        len: addr.len(),
        umask: umask as libc::mode_t,
    };
    // SAFETY: the stack top is inside `stack` (one past its last byte, rounded down to the
    // 16-byte alignment the ABI wants); the child only runs while `stack` and `job` live.
    let top = unsafe { stack.as_mut_ptr().add(STACK) };
    let top = ((top as usize) & !15) as *mut libc::c_void;
    let mut all: libc::sigset_t = empty_sigset();
    let mut old: libc::sigset_t = empty_sigset();
    // SAFETY: both sets are valid sigset_t values owned here; sigfillset initialises `all`.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: `bind_child` is an `extern "C"` function that only reads `job` and makes
    // async-signal-safe calls; `top` is the top of a stack of `STACK` bytes owned by this
    // frame; CLONE_VFORK returns only after the child exited, so `job` and `stack` outlive it.
    let pid = unsafe {
        libc::clone(
            bind_child,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK,
            (&job as *const BindJob).cast_mut().cast(),
        )
    };
    let spawned = check(pid, "clone");
    // SAFETY: `old` is the mask pthread_sigmask stored above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    let pid = spawned?;
    let mut status: libc::c_int = 0;
    crate::interrupt::retry_eintr(|| {
        // SAFETY: waitpid writes one int to `status`.
        check(
            unsafe { libc::waitpid(pid, &mut status, libc::__WALL) },
            "waitpid",
        )
    })?;
    drop(stack);
    match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
        (true, 0) => Ok(()),
        (true, errno) => Err(Error::new(Errno::from_raw(errno), "bind")),
        (false, _) => Err(Error::new(Errno::EINTR, "bind")),
    }
}

/// An empty signal set, for `sigfillset`/`pthread_sigmask` to fill.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn empty_sigset() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid (empty) set on every platform we build for.
    unsafe { std::mem::zeroed() }
}

/// Binds `fd` to `addr` in a child process whose umask is `umask` (see [`bind_with_mode`]),
/// where there is no `clone` (macOS): `fork`, then only async-signal-safe calls in the child.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_in_child(fd: RawFd, addr: &UnixAddr, umask: u32) -> Result<()> {
    let job = BindJob {
        fd,
        addr: addr.as_ptr().cast(),
        len: addr.len(),
        umask: umask as libc::mode_t,
    };
    // SAFETY: the child runs only async-signal-safe calls (umask, bind, _exit) over memory
    // that fork copied, then exits without returning into Rust.
    let pid = check(unsafe { libc::fork() }, "fork")?;
    if pid == 0 {
        // SAFETY: as above; `job` is the child's copy.
        unsafe {
            libc::umask(job.umask);
            let code = if libc::bind(job.fd, job.addr, job.len) == 0 {
                0
            } else {
                *libc::__error()
            };
            libc::_exit(code);
        }
    }
    let mut status: libc::c_int = 0;
    crate::interrupt::retry_eintr(|| {
        // SAFETY: waitpid writes one int to `status`.
        check(unsafe { libc::waitpid(pid, &mut status, 0) }, "waitpid")
    })?;
    match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
        (true, 0) => Ok(()),
        (true, errno) => Err(Error::new(Errno::from_raw(errno), "bind")),
        (false, _) => Err(Error::new(Errno::EINTR, "bind")),
    }
}

/// True when no socket is bound to the socket file `addr`: a datagram socket connected to it
/// gets `ECONNREFUSED` (see [`bind`]: this probe makes no connection and sends nothing).
fn is_stale(addr: &UnixAddr) -> Result<bool> {
    let probe = socket(Kind::Datagram, true)?;
    Ok(matches!(
        nix_socket::connect(probe.as_raw_fd(), addr),
        Err(Errno::ECONNREFUSED)
    ))
}

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

/// Room for the most descriptors one message may carry (`SCM_MAX_FD`) and credentials.
const SCM_MAX_FD: usize = 253;

/// Size of the per-thread buffer [`receive`] copies payloads out of.
const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
thread_local! {
    static CMSG: RefCell<Vec<u8>> = RefCell::new(nix::cmsg_space!([RawFd; SCM_MAX_FD], libc::ucred));
}

/// Room for a credentials message alone: what a receive that takes no descriptors gives the
/// kernel, so that it installs none, or the few that fit (then closed at once).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn credentials_room() -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::ucred>() as u32) as usize }
}

/// Where there are no credentials (macOS): no control buffer at all, so the kernel installs
/// no descriptor (`MSG_CTRUNC` tells that some were sent).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn credentials_room() -> usize {
    0
}

// No SCM_CREDENTIALS elsewhere (macOS): room for the descriptors only.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
thread_local! {
    static CMSG: RefCell<Vec<u8>> = RefCell::new(nix::cmsg_space!([RawFd; SCM_MAX_FD]));
}

/// The overflow area: where the part of a message that does not fit in the caller's buffer
/// lands, so that a receive never has to ask a message's size first (an `FIONREAD` costs a
/// system call, and on a seqpacket socket walks every queued message).
///
/// It is a per-thread mapping of `MAX_MESSAGE` bytes of address space that reserves no
/// memory (`MAP_NORESERVE`, not in core dumps): every `recvmsg` gets it as its last buffer,
/// and since no `sendmsg` can carry more than `MAX_MESSAGE` bytes, no message is ever cut.
/// Only the pages a large message was written to become memory; past `OVERFLOW_KEEP` bytes
/// they are given back once the message was copied out.
///
/// The kernel only checks the area's address range; an emulator that checks a buffer page by
/// page (qemu-user before 8.1) pays ~2 ms per receive for it, correct but slow.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod overflow {
    use std::cell::RefCell;

    /// The most bytes one `sendmsg` or `recvmsg` moves on Linux (`MAX_RW_COUNT`, see
    /// `read(2)` and `write(2)`): the kernel caps a call's total buffer length there.
    pub(super) const MAX_MESSAGE: usize = 0x7fff_f000;

    /// Bytes of the area that stay memory after a large message (beyond, pages go back).
    const OVERFLOW_KEEP: usize = 1 << 20;

    /// One thread's overflow area.
    pub(super) struct Area {
        ptr: *mut u8,
    }

    impl Area {
        /// Maps the area, or `None` where the system would charge the whole mapping as
        /// committed memory (`vm.overcommit_memory = 2`), where the process has an
        /// address-space limit (`RLIMIT_AS`: the area would take 2 GiB of it from later
        /// allocations), or where the mapping fails (32-bit): the caller then sizes its
        /// buffer with `FIONREAD` instead.
        fn map() -> Option<Area> {
            if std::fs::read_to_string("/proc/sys/vm/overcommit_memory")
                .is_ok_and(|m| m.trim() == "2")
            {
                return None;
            }
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes one rlimit to the pointer, which points at `limit`.
            let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) };
            if rc != 0 || limit.rlim_cur != libc::RLIM_INFINITY {
                return None;
            }
            // SAFETY: an anonymous private mapping at an address the kernel picks touches no
            // existing memory; the result is checked before use.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    MAX_MESSAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return None;
            }
            // SAFETY: `ptr` is the mapping just made, `MAX_MESSAGE` bytes long. Keeping it
            // out of core dumps is advice; its failure changes nothing.
            unsafe { libc::madvise(ptr, MAX_MESSAGE, libc::MADV_DONTDUMP) };
            Some(Area { ptr: ptr.cast() })
        }

        /// The whole area, writable.
        pub(super) fn bytes(&mut self) -> &mut [u8] {
            // SAFETY: `ptr` is a live read-write mapping of `MAX_MESSAGE` bytes that only
            // this thread's `Area` (borrowed mutably here) hands out.
            unsafe { std::slice::from_raw_parts_mut(self.ptr, MAX_MESSAGE) }
        }

        /// After a message wrote `used` bytes into the area: gives back its pages past
        /// `OVERFLOW_KEEP` (they read as zeros when touched again).
        pub(super) fn release(&mut self, used: usize) {
            if used > OVERFLOW_KEEP {
                // SAFETY: the range lies inside the mapping (`OVERFLOW_KEEP` is page-aligned
                // and `used <= MAX_MESSAGE`), and nothing borrows it now.
                unsafe {
                    libc::madvise(
                        self.ptr.add(OVERFLOW_KEEP).cast(),
                        used - OVERFLOW_KEEP,
                        libc::MADV_DONTNEED,
                    )
                };
            }
        }
    }

    impl Drop for Area {
        fn drop(&mut self) {
            // SAFETY: `ptr` is the mapping `map` made, of that length, unmapped only here.
            unsafe { libc::munmap(self.ptr.cast(), MAX_MESSAGE) };
        }
    }

    /// A thread's area: not made yet, made, or not available (`FIONREAD` sizing instead).
    pub(super) enum State {
        NotYet,
        Mapped(Area),
        Unavailable,
    }

    thread_local! {
        pub(super) static AREA: RefCell<State> = const { RefCell::new(State::NotYet) };
    }

    /// Runs `f` with this thread's area, mapping it on first use; `None` when unavailable.
    pub(super) fn with<R>(f: impl FnOnce(Option<&mut Area>) -> R) -> R {
        AREA.with(|state| {
            let mut state = state.borrow_mut();
            if matches!(*state, State::NotYet) {
                *state = Area::map().map_or(State::Unavailable, State::Mapped);
            }
            match &mut *state {
                State::Mapped(area) => f(Some(area)),
                _ => f(None),
            }
        })
    }

    /// Makes this thread size its buffers with `FIONREAD`, as where the area cannot be mapped.
    #[cfg(test)]
    pub(super) fn disable() {
        AREA.with(|state| *state.borrow_mut() = State::Unavailable);
    }
}

/// Where there is no `MAX_RW_COUNT` to rely on (macOS): never an area, buffers are sized with
/// `FIONREAD`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod overflow {
    /// Never made.
    pub(super) enum Area {}

    impl Area {
        pub(super) fn bytes(&mut self) -> &mut [u8] {
            match *self {}
        }
        pub(super) fn release(&mut self, _used: usize) {
            match *self {}
        }
    }

    pub(super) fn with<R>(f: impl FnOnce(Option<&mut Area>) -> R) -> R {
        f(None)
    }
}

/// Bytes queued for reading (`FIONREAD`): the next datagram's size on a datagram socket, all
/// queued bytes on a stream or seqpacket socket.
fn queued_bytes(fd: RawFd) -> Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer, which points at `n`.
    check(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) }, "ioctl")?;
    Ok(n.max(0) as usize)
}

/// A message taken by [`receive_into`]: the payload is in the caller's buffer (and, past its
/// end, in `rest`), everything else here.
#[derive(Debug)]
pub struct ReceivedInto {
    /// The payload's length. When it is at most the buffer's length, the payload is
    /// `buf[..len]`; otherwise `buf` holds its first `buf.len()` bytes and `rest` the others.
    pub len: usize,
    /// The payload's bytes past the end of the caller's buffer (empty when it fitted).
    pub rest: Vec<u8>,
    /// Descriptors that came with it (`SCM_RIGHTS`), each with `O_CLOEXEC`.
    pub fds: Vec<OwnedFd>,
    /// The sender's address; `None` for an unbound sender or a connected stream.
    pub from: Option<Address>,
    /// The sender's credentials, when `SO_PASSCRED` is on.
    pub credentials: Option<Credentials>,
    /// Descriptors came with the message and were closed here, so `fds` is empty: the caller
    /// did not accept descriptors, or not all of them could be received (`MSG_CTRUNC`: the
    /// receiver's descriptor limit, `RLIMIT_NOFILE`, was reached).
    pub fds_dropped: bool,
    /// End of stream: the peer of a connected stream or seqpacket socket closed (or shut
    /// down) its end, and nothing is left to read. `len` is then 0.
    pub end: bool,
}

/// `recvmsg(MSG_CMSG_CLOEXEC)` of one whole message into `buf`, with its descriptors, sender
/// address and credentials, in one system call: what does not fit in `buf` comes in
/// [`ReceivedInto::rest`], so no message is ever cut, whatever its size. With `nowait`
/// (`MSG_DONTWAIT`), `Ok(None)` when nothing is queued.
///
/// The part past `buf` lands first in a per-thread overflow area (address space the size of
/// the largest possible message, `MAP_NORESERVE`: memory only where a large message wrote).
/// Where that area is not mapped (`vm.overcommit_memory = 2`, an `RLIMIT_AS` limit, macOS),
/// the size is asked first with `FIONREAD`.
///
/// On a stream socket it returns what is queued now (at least one byte, or `len` 0 at end of
/// stream).
///
/// Descriptors are taken only with `accept_fds`: otherwise the kernel is given room for
/// credentials alone, so it installs none or a few, which are closed at once
/// ([`ReceivedInto::fds_dropped`] tells that some came). A peer cannot make a receiver that
/// did not ask for descriptors hold them. With `accept_fds`, when not every descriptor could
/// be installed (`MSG_CTRUNC`, at the descriptor limit), those that were are closed too: a
/// partial set would be taken for the whole.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let (a, b) = socketpair(Kind::Seqpacket)?;
/// send(a.as_raw_fd(), b"hello world", &[], None, true)?;
/// let mut buf = [0u8; 5];
/// let got = receive_into(b.as_raw_fd(), &mut buf, true, true)?.expect("a message is queued");
/// assert_eq!((got.len, &buf, &got.rest[..]), (11, b"hello", &b" world"[..]));
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`recvmsg(2)`](https://man7.org/linux/man-pages/man2/recvmsg.2.html).
pub fn receive_into(
    fd: RawFd,
    buf: &mut [u8],
    nowait: bool,
    accept_fds: bool,
) -> Result<Option<ReceivedInto>> {
    overflow::with(|area| {
        CMSG.with(|cmsg| {
            let mut cmsg = cmsg.borrow_mut();
            let control = if accept_fds {
                &mut cmsg[..]
            } else {
                &mut cmsg[..credentials_room()]
            };
            let mut area = area;
            let mut sized = Vec::new();
            let tail: &mut [u8] = match area.as_deref_mut() {
                Some(area) => area.bytes(),
                None => {
                    if !nowait {
                        wait_ready(fd, false)?;
                    }
                    sized.resize(queued_bytes(fd)?.saturating_sub(buf.len()), 0);
                    &mut sized
                }
            };
            let room = buf.len();
            #[cfg(any(target_os = "linux", target_os = "android"))]
            let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
            // No MSG_CMSG_CLOEXEC elsewhere (macOS): parse_cmsgs sets FD_CLOEXEC on each fd.
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let mut flags = MsgFlags::empty();
            if nowait {
                flags |= MsgFlags::MSG_DONTWAIT;
            }
            let mut iov = [IoSliceMut::new(buf), IoSliceMut::new(tail)];
            let got = recvmsg(fd, &mut iov, control, flags).map(|m| {
                // The kernel reports an empty address (length 0) for an unbound sender or on
                // a connected socket, which UnixAddr's accessors must not look at.
                let from = m
                    .address
                    .as_ref()
                    .filter(|a| {
                        SockaddrLike::len(*a) as usize > std::mem::size_of::<libc::sa_family_t>()
                    })
                    .and_then(Address::from_unix_addr);
                (m.bytes, m.flags, from, m.control)
            });
            let [_, tail] = iov;
            let (len, msg_flags, from, control) = match got {
                Ok(got) => got,
                Err(Errno::EAGAIN) if nowait => return Ok(None),
                Err(e) => return Err(Error::new(e, "recvmsg")),
            };
            let Control {
                fds,
                credentials,
                truncated,
            } = control;
            // Something came besides the payload: a message, never the end of the stream
            // (which carries nothing).
            let came_with_control = !fds.is_empty() || truncated || credentials.is_some();
            let (fds, fds_dropped) = if accept_fds && !truncated {
                (fds, false)
            } else {
                // Closed here, by dropping them.
                (Vec::new(), !fds.is_empty() || truncated)
            };
            if msg_flags.contains(MsgFlags::MSG_TRUNC) {
                // Only without the overflow area: another reader took the message FIONREAD
                // measured, and the next one was larger.
                return Err(Error::new(Errno::EMSGSIZE, "recvmsg"));
            }
            let rest = if len > room {
                let rest = tail[..len - room].to_vec();
                if let Some(area) = area {
                    area.release(len - room);
                }
                rest
            } else {
                Vec::new()
            };
            let end = len == 0 && !came_with_control && at_end(fd)?;
            Ok(Some(ReceivedInto {
                len,
                rest,
                fds,
                from,
                credentials,
                fds_dropped,
                end,
            }))
        })
    })
}

/// `recvmsg(MSG_CMSG_CLOEXEC)`: one whole message with its descriptors, sender address and
/// credentials ([`receive_into`] a per-thread buffer, then copied out). With `nowait`
/// (`MSG_DONTWAIT`), `Ok(None)` when nothing is queued. No message is ever cut.
///
/// On a stream socket it returns what is queued now (at least one byte, or an empty `data`
/// at end of stream).
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let (a, b) = socketpair(Kind::Datagram)?;
/// assert!(receive(b.as_raw_fd(), true)?.is_none());
/// send(a.as_raw_fd(), b"", &[], None, true)?;
/// let empty = receive(b.as_raw_fd(), true)?.unwrap();
/// assert!(empty.data.is_empty() && !empty.end);
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`recvmsg(2)`](https://man7.org/linux/man-pages/man2/recvmsg.2.html).
pub fn receive(fd: RawFd, nowait: bool) -> Result<Option<Received>> {
    SCRATCH_BUF.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let Some(r) = receive_into(fd, &mut scratch, nowait, true)? else {
            return Ok(None);
        };
        let mut data = Vec::with_capacity(r.len);
        data.extend_from_slice(&scratch[..r.len.min(SCRATCH)]);
        data.extend_from_slice(&r.rest);
        Ok(Some(Received {
            data,
            fds: r.fds,
            from: r.from,
            credentials: r.credentials,
            fds_dropped: r.fds_dropped,
            end: r.end,
        }))
    })
}

/// After a read of 0 bytes that carried no control data: true when that was the end of stream
/// of a connected socket (the peer hung up and nothing is queued), false for an empty datagram
/// or seqpacket message.
///
/// The kernel answers 0 bytes both for an empty seqpacket message and at the end, with no flag
/// to tell them apart (`MSG_EOR` is never set, `FIONREAD` counts bytes, `poll` shows the
/// hang-up either way). A read while the peer is still connected is a message. After it hung
/// up, the empty messages it sent after its last non-empty one read as the end, unless they
/// carry control data: with `SO_PASSCRED` every message comes with credentials, which the
/// caller checks first.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn at_end(fd: RawFd) -> Result<bool> {
    if socket_kind(fd)? == Kind::Datagram {
        return Ok(false);
    }
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd, as the count says; timeout 0 never blocks.
    check(unsafe { libc::poll(&mut pfd, 1, 0) }, "poll")?;
    let hung_up = pfd.revents & (libc::POLLRDHUP | libc::POLLHUP) != 0;
    Ok(hung_up && queued_bytes(fd)? == 0)
}

/// After a read of 0 bytes where there is no `POLLRDHUP` and no seqpacket UNIX socket (macOS):
/// on a stream socket a read of 0 bytes is always the end of stream; a datagram may be empty.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn at_end(fd: RawFd) -> Result<bool> {
    if socket_kind(fd)? == Kind::Datagram {
        return Ok(false);
    }
    Ok(queued_bytes(fd)? == 0)
}

/// What came in the control data of one `recvmsg`.
struct Control {
    /// Descriptors the kernel installed for us (`SCM_RIGHTS`), owned from here on.
    fds: Vec<OwnedFd>,
    /// The sender's credentials (`SCM_CREDENTIALS`).
    credentials: Option<Credentials>,
    /// `MSG_CTRUNC`: the kernel had more control data than room for it, or could not install
    /// every descriptor (`EMFILE`).
    truncated: bool,
}

/// One `recvmsg`'s result (see [`recvmsg`]).
struct RawMessage {
    bytes: usize,
    flags: MsgFlags,
    address: Option<UnixAddr>,
    control: Control,
}

/// `recvmsg(2)` into `iov`, with `control` as the control buffer; every descriptor the kernel
/// installed is owned by the result, `MSG_CTRUNC` or not (nix's `cmsgs()` refuses to walk
/// truncated control data, and the descriptors it holds then leaked).
fn recvmsg(
    fd: RawFd,
    iov: &mut [IoSliceMut<'_>],
    control: &mut [u8],
    flags: MsgFlags,
) -> std::result::Result<RawMessage, Errno> {
    // SAFETY: an all-zero sockaddr_un and msghdr are valid values of them.
    let mut name: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_name = (&mut name as *mut libc::sockaddr_un).cast();
    hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // IoSliceMut is guaranteed ABI-compatible with iovec on Unix.
    hdr.msg_iov = iov.as_mut_ptr().cast();
    hdr.msg_iovlen = iov.len() as _;
    if !control.is_empty() {
        hdr.msg_control = control.as_mut_ptr().cast();
        hdr.msg_controllen = control.len() as _;
    }
    // SAFETY: `hdr` points at `name`, the buffers of `iov` and `control`, all writable for the
    // lengths given and alive across the call.
    let n = unsafe { libc::recvmsg(fd, &mut hdr, flags.bits()) };
    let bytes = usize::try_from(n).map_err(|_| Errno::last())?;
    // SAFETY: the kernel wrote `hdr` (its control length is what it filled in), and
    // `control` is still borrowed, unchanged since.
    let control = unsafe { take_control(&hdr) };
    let address = if hdr.msg_namelen == 0 {
        None
    } else {
        // SAFETY: the kernel wrote `msg_namelen` bytes of a sockaddr_un into `name`.
        unsafe {
            UnixAddr::from_raw(
                (&name as *const libc::sockaddr_un).cast(),
                Some(hdr.msg_namelen),
            )
        }
    };
    Ok(RawMessage {
        bytes,
        flags: MsgFlags::from_bits_truncate(hdr.msg_flags),
        address,
        control,
    })
}

/// Descriptors and credentials out of the control data the kernel just wrote for `hdr`,
/// truncated or not.
///
/// # Safety
/// `hdr` must come from a `recvmsg` that succeeded, its control buffer still alive and
/// unchanged.
unsafe fn take_control(hdr: &libc::msghdr) -> Control {
    let mut control = Control {
        fds: Vec::new(),
        credentials: None,
        truncated: hdr.msg_flags & libc::MSG_CTRUNC != 0,
    };
    if hdr.msg_control.is_null() {
        return control;
    }
    // SAFETY: CMSG_FIRSTHDR/NXTHDR stay within `msg_controllen` bytes of `msg_control`, which
    // the kernel filled in; each header they return is whole within them.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is a whole header inside the control data (see above).
        let (level, kind, len) =
            unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type, (*cmsg).cmsg_len) };
        // SAFETY: CMSG_LEN(0) is the header's size, a constant. (`cmsg_len` is a `size_t` on
        // glibc, a `socklen_t` on musl and macOS.)
        #[allow(clippy::unnecessary_cast)]
        let data_len = (len as usize).saturating_sub(unsafe { libc::CMSG_LEN(0) } as usize);
        // SAFETY: the data follows the header, `data_len` bytes of it inside the control data.
        let data = unsafe { libc::CMSG_DATA(cmsg) };
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            let count = data_len / std::mem::size_of::<RawFd>();
            control.fds.reserve(count);
            for i in 0..count {
                // SAFETY: `count` descriptors fit in `data_len`; the data may be unaligned.
                let raw = unsafe { data.cast::<RawFd>().add(i).read_unaligned() };
                // SAFETY: the kernel just installed this fd for us (SCM_RIGHTS), so nothing
                // else owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                // Without MSG_CMSG_CLOEXEC (macOS), as soon as it is ours. It cannot fail on
                // an open descriptor.
                #[cfg(not(any(target_os = "linux", target_os = "android")))]
                let _ = crate::pipe::set_cloexec(std::os::fd::AsFd::as_fd(&fd));
                control.fds.push(fd);
            }
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if level == libc::SOL_SOCKET
            && kind == libc::SCM_CREDENTIALS
            && data_len >= std::mem::size_of::<libc::ucred>()
        {
            // SAFETY: a whole ucred is there (checked); the data may be unaligned.
            let c = unsafe { data.cast::<libc::ucred>().read_unaligned() };
            control.credentials = Some(Credentials {
                pid: c.pid,
                uid: c.uid,
                gid: c.gid,
            });
        }
        // SAFETY: as for CMSG_FIRSTHDR.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
    control
}

/// Blocks the calling thread until `fd` is readable (or writable), retrying `EINTR`.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let (a, b) = socketpair(Kind::Seqpacket)?;
/// send(a.as_raw_fd(), b"x", &[], None, true)?;
/// wait_ready(b.as_raw_fd(), false)?; // returns at once: a message is queued
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html).
pub fn wait_ready(fd: RawFd, writable: bool) -> Result<()> {
    let events = if writable {
        libc::POLLOUT
    } else {
        libc::POLLIN
    };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    crate::interrupt::retry_eintr(|| {
        // SAFETY: `pfd` is one valid pollfd, as the count says.
        check(unsafe { libc::poll(&mut pfd, 1, -1) }, "poll")
    })?;
    if pfd.revents & libc::POLLNVAL != 0 {
        return Err(Error::new(Errno::EBADF, "poll"));
    }
    Ok(())
}

/// The type of a UNIX socket (`SO_DOMAIN`, `SO_TYPE`); `ENOTSOCK` for another descriptor,
/// `EAFNOSUPPORT` for a socket that is not `AF_UNIX`.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let (a, _b) = socketpair(Kind::Stream)?;
/// assert_eq!(socket_kind(a.as_raw_fd())?, Kind::Stream);
/// assert_eq!(socket_kind(0).map_err(|e| e.code()).err().as_deref().map(|c| c == "ENOTSOCK" || c == "EBADF"), Some(true));
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn socket_kind(fd: RawFd) -> Result<Kind> {
    with_fd(fd, |b| {
        let ty = nix_socket::getsockopt(&b, sockopt::SockType).map_err(sys("getsockopt"))?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let mut domain: libc::c_int = 0;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: SO_DOMAIN writes one int to `domain`, whose size `len` gives.
        let rc = unsafe {
            libc::getsockopt(
                b.as_raw_fd(),
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
        let domain = socket_domain(b.as_raw_fd())?;
        if domain != libc::AF_UNIX {
            return Err(Error::new(Errno::EAFNOSUPPORT, "getsockopt"));
        }
        match ty {
            SockType::Stream => Ok(Kind::Stream),
            SockType::Datagram => Ok(Kind::Datagram),
            SockType::SeqPacket => Ok(Kind::Seqpacket),
            _ => Err(Error::new(Errno::EPROTOTYPE, "getsockopt")),
        }
    })?
}

/// The address family of a socket from `getsockname`, where there is no `SO_DOMAIN` (macOS,
/// which reports `AF_UNIX` for an unbound UNIX socket too).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn socket_domain(fd: RawFd) -> Result<libc::c_int> {
    // SAFETY: an all-zero sockaddr_storage is a valid value of it.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes to `addr`, which has that many.
    let rc = unsafe {
        libc::getsockname(
            fd,
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
/// use std::os::fd::AsRawFd;
/// let (a, _b) = socketpair(Kind::Stream)?;
/// assert_eq!(peer_credentials(a.as_raw_fd())?.pid, std::process::id() as i32);
/// let lone = socket(Kind::Datagram, false)?;
/// assert_eq!(peer_credentials(lone.as_raw_fd()).unwrap_err().code(), "ENOTCONN");
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`unix(7)`](https://man7.org/linux/man-pages/man7/unix.7.html).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer_credentials(fd: RawFd) -> Result<Credentials> {
    let c = with_fd(fd, |b| nix_socket::getsockopt(&b, sockopt::PeerCredentials))?
        .map_err(sys("getsockopt"))?;
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
/// use std::os::fd::AsRawFd;
/// let (a, _b) = socketpair(Kind::Stream)?;
/// assert_eq!(peer_credentials(a.as_raw_fd())?.pid, std::process::id() as i32);
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see
/// [`getpeereid(3)`](https://man.freebsd.org/cgi/man.cgi?query=getpeereid).
#[cfg(target_vendor = "apple")]
pub fn peer_credentials(fd: RawFd) -> Result<Credentials> {
    let (uid, gid) = with_fd(fd, |b| nix::unistd::getpeereid(b))?.map_err(sys("getpeereid"))?;
    let pid = with_fd(fd, |b| nix_socket::getsockopt(&b, sockopt::LocalPeerPid))?
        .map_err(sys("getsockopt"))?;
    Ok(Credentials {
        pid,
        uid: uid.as_raw(),
        gid: gid.as_raw(),
    })
}

/// Turns `SO_PASSCRED` on or off: with it, each received message carries its sender's
/// credentials ([`Received::credentials`]).
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let (a, b) = socketpair(Kind::Datagram)?;
/// set_pass_credentials(b.as_raw_fd(), true)?;
/// send(a.as_raw_fd(), b"who?", &[], None, true)?;
/// let cred = receive(b.as_raw_fd(), true)?.unwrap().credentials.unwrap();
/// assert_eq!(cred.pid, std::process::id() as i32);
/// # Ok::<(), ipckit::Error>(())
/// ```
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn set_pass_credentials(fd: RawFd, on: bool) -> Result<()> {
    with_fd(fd, |b| nix_socket::setsockopt(&b, sockopt::PassCred, &on))?.map_err(sys("setsockopt"))
}

/// Where there is no `SO_PASSCRED` / `SCM_CREDENTIALS` (macOS): fails with `ENOSYS` (syscall
/// `setsockopt`) after checking the descriptor; [`peer_credentials`] works there.
///
/// ```
/// # #[cfg(target_os = "macos")] {
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let (_a, b) = socketpair(Kind::Datagram)?;
/// assert_eq!(set_pass_credentials(b.as_raw_fd(), true).unwrap_err().code(), "ENOSYS");
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn set_pass_credentials(fd: RawFd, _on: bool) -> Result<()> {
    socket_kind(fd)?;
    Err(Error::new(Errno::ENOSYS, "setsockopt"))
}

/// The socket's own address (`getsockname`); `None` when unbound.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let (a, _b) = socketpair(Kind::Datagram)?;
/// assert_eq!(local_address(a.as_raw_fd())?, None);
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn local_address(fd: RawFd) -> Result<Option<Address>> {
    let addr: UnixAddr = nix_socket::getsockname(fd).map_err(sys("getsockname"))?;
    Ok(Address::from_unix_addr(&addr))
}

/// The connected peer's address (`getpeername`); `None` when it is unbound.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let (a, _b) = socketpair(Kind::Seqpacket)?;
/// assert_eq!(peer_address(a.as_raw_fd())?, None);
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn peer_address(fd: RawFd) -> Result<Option<Address>> {
    let addr: UnixAddr = nix_socket::getpeername(fd).map_err(sys("getpeername"))?;
    Ok(Address::from_unix_addr(&addr))
}

/// `shutdown(SHUT_RDWR)`-free close of a descriptor the caller owns as a raw number.
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsRawFd;
/// let (a, _b) = socketpair(Kind::Datagram)?;
/// close(std::os::fd::IntoRawFd::into_raw_fd(a))?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`close(2)`](https://man7.org/linux/man-pages/man2/close.2.html).
pub fn close(fd: RawFd) -> Result<()> {
    // SAFETY: close only takes an integer; the caller gives up the descriptor.
    check(unsafe { libc::close(fd) }, "close").map(drop)
}

/// A new descriptor for the same socket (`fcntl(F_DUPFD_CLOEXEC)`), for a wait thread that
/// must not depend on the caller keeping its number open.
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (a, _b) = ipckit::socket::socketpair(ipckit::socket::Kind::Datagram)?;
/// let copy = ipckit::socket::duplicate(a.as_raw_fd())?;
/// assert_ne!(copy.as_raw_fd(), a.as_raw_fd());
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html).
pub fn duplicate(fd: RawFd) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer and creates a new descriptor.
    let new = check(
        unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) },
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
/// use std::os::fd::AsRawFd;
/// let (a, _b) = socketpair(Kind::Seqpacket)?;
/// set_nonblocking(a.as_raw_fd(), true)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn set_nonblocking(fd: RawFd, on: bool) -> Result<()> {
    // SAFETY: fcntl(F_GETFL) takes no pointer.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) }, "fcntl")?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: fcntl(F_SETFL) takes an integer flag set.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, new) }, "fcntl").map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "no SOCK_SEQPACKET UNIX sockets"
    )]
    fn seqpacket_keeps_boundaries_and_passes_fds() {
        let (a, b) = socketpair(Kind::Seqpacket).unwrap();
        let (p, q) = socketpair(Kind::Stream).unwrap();
        send(a.as_raw_fd(), b"one", &[p.as_raw_fd()], None, true).unwrap();
        send(a.as_raw_fd(), b"three", &[], None, true).unwrap();
        let m1 = receive(b.as_raw_fd(), true).unwrap().unwrap();
        assert_eq!(m1.data, b"one");
        assert_eq!(m1.fds.len(), 1);
        // SAFETY: F_GETFD takes no pointer.
        let fl = unsafe { libc::fcntl(m1.fds[0].as_raw_fd(), libc::F_GETFD) };
        assert_eq!(fl & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        send(m1.fds[0].as_raw_fd(), b"via", &[], None, true).unwrap();
        assert_eq!(receive(q.as_raw_fd(), true).unwrap().unwrap().data, b"via");
        assert_eq!(
            receive(b.as_raw_fd(), true).unwrap().unwrap().data,
            b"three"
        );
        assert!(receive(b.as_raw_fd(), true).unwrap().is_none());
        send(a.as_raw_fd(), b"", &[], None, true).unwrap();
        assert!(!receive(b.as_raw_fd(), true).unwrap().unwrap().end);
        drop(a);
        assert!(receive(b.as_raw_fd(), true).unwrap().unwrap().end);
    }

    /// Descriptors sent to a receiver that does not accept them are closed at once: the write
    /// end of a pipe, sent and closed by its sender, leaves its read end at end of file.
    #[test]
    fn unaccepted_descriptors_are_closed() {
        for kind in [Kind::Datagram, Kind::Seqpacket, Kind::Stream] {
            if cfg!(not(any(target_os = "linux", target_os = "android"))) && kind == Kind::Seqpacket
            {
                continue;
            }
            let (a, b) = socketpair(kind).unwrap();
            let (r, w) = nix::unistd::pipe().unwrap();
            set_nonblocking(r.as_raw_fd(), true).unwrap();
            let many = vec![w.as_raw_fd(); SCM_MAX_FD];
            send(a.as_raw_fd(), b"x", &many, None, true).unwrap();
            drop(w);
            let mut buf = [0u8; 8];
            let got = receive_into(b.as_raw_fd(), &mut buf, true, false)
                .unwrap()
                .unwrap();
            assert_eq!((got.len, buf[0], got.fds.len()), (1, b'x', 0), "{kind:?}");
            assert!(got.fds_dropped && !got.end, "{kind:?}");
            let mut byte = [0u8; 1];
            assert_eq!(
                nix::unistd::read(&r, &mut byte),
                Ok(0),
                "{kind:?}: a write end is left"
            );
            // Without descriptors, nothing is reported dropped.
            send(a.as_raw_fd(), b"y", &[], None, true).unwrap();
            let got = receive_into(b.as_raw_fd(), &mut buf, true, false)
                .unwrap()
                .unwrap();
            assert!(!got.fds_dropped, "{kind:?}");
        }
    }

    /// A message of `len` bytes that tells its position in each byte.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
    }

    /// Lets `fd` send messages of `bytes`: `SO_SNDBUFFORCE` (root), else `SO_SNDBUF` (capped
    /// by `wmem_max`); the largest message it can send then.
    fn grow_sndbuf(fd: &OwnedFd, bytes: usize) -> usize {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let forced = nix_socket::setsockopt(fd, sockopt::SndBufForce, &bytes).is_ok();
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let forced = false;
        if !forced {
            nix_socket::setsockopt(fd, sockopt::SndBuf, &bytes).unwrap();
        }
        nix_socket::getsockopt(fd, sockopt::SndBuf).unwrap() - 64
    }

    /// Messages larger than the caller's buffer and than `receive`'s scratch come whole, in
    /// order, with nothing lost before or after them.
    fn large_messages_come_whole(kind: Kind) {
        let (a, b) = socketpair(kind).unwrap();
        let big = pattern(grow_sndbuf(&a, 3 << 20).min(3 << 20), 1);
        assert!(
            big.len() > SCRATCH,
            "the socket can send {} bytes",
            big.len()
        );
        for round in 0..2 {
            send(a.as_raw_fd(), b"before", &[], None, true).unwrap();
            send(a.as_raw_fd(), &big, &[], None, false).unwrap();
            send(a.as_raw_fd(), b"after", &[], None, true).unwrap();
            let mut buf = [0u8; 16];
            let first = receive_into(b.as_raw_fd(), &mut buf, true, true)
                .unwrap()
                .unwrap();
            assert_eq!(
                (first.len, &buf[..6], first.rest.len()),
                (6, &b"before"[..], 0)
            );
            if round == 0 {
                let got = receive_into(b.as_raw_fd(), &mut buf, true, true)
                    .unwrap()
                    .unwrap();
                assert_eq!(got.len, big.len());
                assert_eq!(&buf[..], &big[..16]);
                assert!(got.rest == big[16..], "the rest of the message");
            } else {
                assert!(receive(b.as_raw_fd(), true).unwrap().unwrap().data == big);
            }
            assert_eq!(
                receive(b.as_raw_fd(), true).unwrap().unwrap().data,
                b"after"
            );
            assert!(receive(b.as_raw_fd(), true).unwrap().is_none());
        }
        let mut empty = [0u8; 0];
        send(a.as_raw_fd(), b"xyz", &[], None, true).unwrap();
        let got = receive_into(b.as_raw_fd(), &mut empty, true, true)
            .unwrap()
            .unwrap();
        assert_eq!((got.len, &got.rest[..]), (3, &b"xyz"[..]));
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "no SOCK_SEQPACKET UNIX sockets"
    )]
    fn large_messages_come_whole_seqpacket() {
        large_messages_come_whole(Kind::Seqpacket);
    }

    #[test]
    fn large_messages_come_whole_dgram() {
        large_messages_come_whole(Kind::Datagram);
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn large_messages_come_whole_without_the_overflow_area() {
        overflow::disable();
        large_messages_come_whole(Kind::Seqpacket);
        large_messages_come_whole(Kind::Datagram);
    }

    #[test]
    fn stream_receive_takes_what_is_queued() {
        let (a, b) = socketpair(Kind::Stream).unwrap();
        let big = pattern(100_000, 9);
        send(a.as_raw_fd(), &big, &[], None, true).unwrap();
        let mut got = Vec::new();
        while got.len() < big.len() {
            got.extend(receive(b.as_raw_fd(), true).unwrap().unwrap().data);
        }
        assert!(got == big);
        drop(a);
        assert!(receive(b.as_raw_fd(), true).unwrap().unwrap().end);
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "SCM_CREDENTIALS is Linux-only (ENOSYS elsewhere)"
    )]
    fn credentials_and_kind() {
        let (a, b) = socketpair(Kind::Datagram).unwrap();
        assert_eq!(socket_kind(a.as_raw_fd()).unwrap(), Kind::Datagram);
        let me = peer_credentials(a.as_raw_fd()).unwrap();
        assert_eq!(me.pid, std::process::id() as i32);
        set_pass_credentials(b.as_raw_fd(), true).unwrap();
        send(a.as_raw_fd(), b"", &[], None, true).unwrap();
        let m = receive(b.as_raw_fd(), true).unwrap().unwrap();
        assert!(m.data.is_empty());
        assert!(!m.end);
        assert_eq!(m.credentials, Some(me));
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "abstract names are Linux-only (ENOSYS elsewhere)"
    )]
    fn abstract_bind_and_errors() {
        let name = format!("ipckit-test-{}", std::process::id()).into_bytes();
        let server = socket(Kind::Datagram, false).unwrap();
        bind(
            server.as_raw_fd(),
            &Address::Abstract(name.clone()),
            BindOptions::default(),
        )
        .unwrap();
        let again = socket(Kind::Datagram, false).unwrap();
        let e = bind(
            again.as_raw_fd(),
            &Address::Abstract(name.clone()),
            BindOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.code(), "EADDRINUSE");
        let client = socket(Kind::Datagram, false).unwrap();
        send(
            client.as_raw_fd(),
            b"hi",
            &[],
            Some(&Address::Abstract(name.clone())),
            true,
        )
        .unwrap();
        let m = receive(server.as_raw_fd(), true).unwrap().unwrap();
        assert_eq!(m.from, None);
        let mut named = name.clone();
        named.extend_from_slice(b"-client");
        bind(
            client.as_raw_fd(),
            &Address::Abstract(named.clone()),
            BindOptions::default(),
        )
        .unwrap();
        send(
            client.as_raw_fd(),
            b"hi",
            &[],
            Some(&Address::Abstract(name.clone())),
            true,
        )
        .unwrap();
        let m = receive(server.as_raw_fd(), true).unwrap().unwrap();
        assert_eq!(m.from, Some(Address::Abstract(named)));
        let e = connect(
            client.as_raw_fd(),
            &Address::Path(b"/nonexistent/x".to_vec()),
        )
        .unwrap_err();
        assert_eq!((e.code().as_str(), e.syscall()), ("ENOENT", "connect"));
        assert_eq!(socket_kind(-1).unwrap_err().code(), "EBADF");
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "seqpacket sockets are Linux-only"
    )]
    fn replace_stale_leaves_live_sockets_undisturbed() {
        let dir = std::env::temp_dir().join(format!("ipckit-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| Address::Path(dir.join(name).as_os_str().as_bytes().to_vec());
        let replace = BindOptions {
            mode: None,
            replace_stale: true,
        };
        for kind in [Kind::Seqpacket, Kind::Stream, Kind::Datagram] {
            let at = path(&format!("{kind:?}.sock"));
            let live = socket(kind, true).unwrap();
            bind(live.as_raw_fd(), &at, BindOptions::default()).unwrap();
            if kind != Kind::Datagram {
                listen(live.as_raw_fd(), 8).unwrap();
            }
            let other = socket(kind, true).unwrap();
            let e = bind(other.as_raw_fd(), &at, replace).unwrap_err();
            assert_eq!((e.code().as_str(), e.syscall()), ("EADDRINUSE", "bind"));
            // The probe made no connection and sent nothing.
            if kind == Kind::Datagram {
                assert!(receive(live.as_raw_fd(), true).unwrap().is_none());
            } else {
                assert!(accept(live.as_raw_fd()).unwrap().is_none(), "{kind:?}");
            }
            drop(live);
            // Now stale: replaced.
            bind(other.as_raw_fd(), &at, replace).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
