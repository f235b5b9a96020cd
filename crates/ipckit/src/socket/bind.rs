//! Binding a socket to an address: the socket file's mode (set through a child that has the
//! umask wanted, so no other thread's files are affected), and the replacement of a stale
//! socket file that no server holds any more.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::socket::{self as nix_socket, SockaddrLike, UnixAddr};

use super::address::Address;
use super::create::socket;
use super::options::Kind;
use crate::error::{check, sys, Errno, Error, Result};
use crate::sys::libc;

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
/// `bind_with_mode`: a `chmod` of the path after the bind would follow a symlink that anyone
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
/// use std::os::fd::AsFd;
/// let dir = std::env::temp_dir().join(format!("ipckit-doc-bind-{}", std::process::id()));
/// let path = dir.with_extension("sock");
/// let fd = socket(Kind::Datagram, false)?;
/// let options = BindOptions { mode: Some(0o600), replace_stale: true };
/// bind(fd.as_fd(), &Address::Path(path.to_str().unwrap().into()), options)?;
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`bind(2)`](https://man7.org/linux/man-pages/man2/bind.2.html).
pub fn bind(fd: BorrowedFd<'_>, address: &Address, options: BindOptions) -> Result<()> {
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
fn bind_with_mode(fd: BorrowedFd<'_>, addr: &UnixAddr, mode: Option<u32>) -> Result<()> {
    let Some(mode) = mode else {
        return nix_socket::bind(fd.as_raw_fd(), addr).map_err(sys("bind"));
    };
    let mode = mode & 0o777;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        check(
            // SAFETY: fchmod only reads its integer arguments.
            unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) },
            "fchmod",
        )?;
        if current_umask().is_some_and(|umask| umask & mode == 0) {
            return nix_socket::bind(fd.as_raw_fd(), addr).map_err(sys("bind"));
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
fn bind_in_child(fd: BorrowedFd<'_>, addr: &UnixAddr, umask: u32) -> Result<()> {
    const STACK: usize = 64 * 1024;
    let mut stack: Vec<u8> = Vec::new();
    stack
        .try_reserve_exact(STACK)
        .map_err(|_| Error::new(Errno::ENOMEM, "clone"))?;
    stack.resize(STACK, 0);
    let job = BindJob {
        fd: fd.as_raw_fd(),
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
    let pid = match spawned {
        Ok(pid) => pid,
        // These clone flags refused (a seccomp filter, an emulator): the same in a forked child.
        Err(e) if matches!(e.errno(), Errno::EINVAL | Errno::ENOSYS | Errno::EPERM) => {
            drop(stack);
            return bind_in_forked_child(fd, addr, umask);
        }
        Err(e) => return Err(e),
    };
    let mut status: libc::c_int = 0;
    crate::interrupt::retry_eintr(|| {
        check(
            // SAFETY: waitpid writes one int to `status`.
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

/// The calling thread's `errno` (async-signal-safe: a thread-local read).
fn errno_now() -> libc::c_int {
    // SAFETY: the errno location is the calling thread's, valid while it runs.
    unsafe {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            *libc::__errno_location()
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            *libc::__error()
        }
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
fn bind_in_child(fd: BorrowedFd<'_>, addr: &UnixAddr, umask: u32) -> Result<()> {
    bind_in_forked_child(fd, addr, umask)
}

/// [`bind_in_child`] by `fork`: where there is no `clone` (macOS), and on Linux where
/// `clone(CLONE_VM | CLONE_VFORK)` is refused (a seccomp filter; qemu-user, which answers
/// `EINVAL`). The child makes only async-signal-safe calls (umask, bind, _exit) over the
/// memory that fork copied; the socket it binds is the same open socket as the parent's.
fn bind_in_forked_child(fd: BorrowedFd<'_>, addr: &UnixAddr, umask: u32) -> Result<()> {
    let job = BindJob {
        fd: fd.as_raw_fd(),
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
                errno_now()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    /// The fallback where `clone(CLONE_VM | CLONE_VFORK)` is refused (qemu-user, seccomp):
    /// the forked child binds this process's socket under its own umask, and this process's
    /// umask is untouched.
    #[test]
    fn a_forked_child_binds_the_shared_socket_under_its_own_umask() {
        let dir = std::env::temp_dir().join(format!("ipckit-fork-bind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let sock = socket(Kind::Datagram, true).unwrap();
        let addr = UnixAddr::new(&path).unwrap();
        bind_in_forked_child(sock.as_fd(), &addr, 0o037).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o740);
        // Bound in this process too: the same open socket.
        let bound: UnixAddr = nix_socket::getsockname(sock.as_raw_fd()).unwrap();
        assert_eq!(bound.path(), Some(path.as_path()));
        // The child's umask stayed the child's.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert_ne!(current_umask(), Some(0o037));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
