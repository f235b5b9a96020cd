//! Receiving: [`receive_into`] a caller's buffer (what does not fit lands in the overflow
//! area), [`receive`] into a new message, and [`wait_ready`] for a blocking caller.

use std::cell::RefCell;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{MsgFlags, SockaddrLike, UnixAddr};

use super::address::Address;
use super::ancillary::{credentials_room, take_control, Control, Credentials, CMSG};
use super::options::{socket_kind, Kind};
use super::overflow;
use crate::error::{check, Errno, Error, Result};
use crate::sys::libc;

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

/// Size of the per-thread buffer [`receive`] copies payloads out of.
pub(super) const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
}

/// Bytes queued for reading (`FIONREAD`): the next datagram's size on a datagram socket, all
/// queued bytes on a stream or seqpacket socket.
fn queued_bytes(fd: BorrowedFd<'_>) -> Result<usize> {
    let mut n: libc::c_int = 0;
    check(
        // SAFETY: FIONREAD writes one int to the pointer, which points at `n`.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) },
        "ioctl",
    )?;
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
/// (`MSG_DONTWAIT`), `Ok(None)` when nothing is queued; without it, a receive that blocks is
/// retried after `EINTR` (through [`retry_eintr`](crate::interrupt::retry_eintr), so a
/// stopping host still ends it), and a non-blocking descriptor with nothing queued fails with
/// `EAGAIN`.
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
/// use std::os::fd::AsFd;
/// let (a, b) = socketpair(Kind::Seqpacket)?;
/// send(a.as_fd(), b"hello world", &[], None, true)?;
/// let mut buf = [0u8; 5];
/// let got = receive_into(b.as_fd(), &mut buf, true, true)?.expect("a message is queued");
/// assert_eq!((got.len, &buf, &got.rest[..]), (11, b"hello", &b" world"[..]));
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`recvmsg(2)`](https://man7.org/linux/man-pages/man2/recvmsg.2.html).
pub fn receive_into(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    nowait: bool,
    accept_fds: bool,
) -> Result<Option<ReceivedInto>> {
    if nowait {
        receive_once(fd, buf, true, accept_fds)
    } else {
        crate::interrupt::retry_eintr(|| receive_once(fd, buf, false, accept_fds))
    }
}

/// One [`receive_into`]: `EINTR` returned, not retried.
fn receive_once(
    fd: BorrowedFd<'_>,
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
/// (`MSG_DONTWAIT`), `Ok(None)` when nothing is queued; without it, `EINTR` is retried as
/// there. No message is ever cut.
///
/// On a stream socket it returns what is queued now (at least one byte, or an empty `data`
/// at end of stream).
///
/// ```
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (a, b) = socketpair(Kind::Datagram)?;
/// assert!(receive(b.as_fd(), true)?.is_none());
/// send(a.as_fd(), b"", &[], None, true)?;
/// let empty = receive(b.as_fd(), true)?.unwrap();
/// assert!(empty.data.is_empty() && !empty.end);
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`recvmsg(2)`](https://man7.org/linux/man-pages/man2/recvmsg.2.html).
pub fn receive(fd: BorrowedFd<'_>, nowait: bool) -> Result<Option<Received>> {
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
fn at_end(fd: BorrowedFd<'_>) -> Result<bool> {
    if socket_kind(fd)? == Kind::Datagram {
        return Ok(false);
    }
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
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
fn at_end(fd: BorrowedFd<'_>) -> Result<bool> {
    if socket_kind(fd)? == Kind::Datagram {
        return Ok(false);
    }
    Ok(queued_bytes(fd)? == 0)
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
    fd: BorrowedFd<'_>,
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
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut hdr, flags.bits()) };
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

/// Blocks the calling thread until `fd` is readable (or writable), retrying `EINTR`.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::socket::*;
/// use std::os::fd::AsFd;
/// let (a, b) = socketpair(Kind::Seqpacket)?;
/// send(a.as_fd(), b"x", &[], None, true)?;
/// wait_ready(b.as_fd(), false)?; // returns at once: a message is queued
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html).
pub fn wait_ready(fd: BorrowedFd<'_>, writable: bool) -> Result<()> {
    let events = if writable {
        libc::POLLOUT
    } else {
        libc::POLLIN
    };
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
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
