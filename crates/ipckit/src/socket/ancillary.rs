//! Ancillary data: the descriptors (`SCM_RIGHTS`) and credentials (`SCM_CREDENTIALS`) that
//! come with a message, parsed in one place from the control data the kernel wrote, every
//! descriptor owned from the moment it is read, and truncation (`MSG_CTRUNC`) reported.

use std::cell::RefCell;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::sys::libc;

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

/// Room for the most descriptors one message may carry (`SCM_MAX_FD`) and credentials.
pub(super) const SCM_MAX_FD: usize = 253;

#[cfg(any(target_os = "linux", target_os = "android"))]
thread_local! {
    pub(super) static CMSG: RefCell<Vec<u8>> = RefCell::new(nix::cmsg_space!([RawFd; SCM_MAX_FD], libc::ucred));
}

/// Room for a credentials message alone: what a receive that takes no descriptors gives the
/// kernel, so that it installs none, or the few that fit (then closed at once).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn credentials_room() -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::ucred>() as u32) as usize }
}

/// Where there are no credentials (macOS): no control buffer at all, so the kernel installs
/// no descriptor (`MSG_CTRUNC` tells that some were sent).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn credentials_room() -> usize {
    0
}

// No SCM_CREDENTIALS elsewhere (macOS): room for the descriptors only.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
thread_local! {
    pub(super) static CMSG: RefCell<Vec<u8>> = RefCell::new(nix::cmsg_space!([RawFd; SCM_MAX_FD]));
}

/// What came in the control data of one `recvmsg`.
pub(super) struct Control {
    /// Descriptors the kernel installed for us (`SCM_RIGHTS`), owned from here on.
    pub(super) fds: Vec<OwnedFd>,
    /// The sender's credentials (`SCM_CREDENTIALS`).
    pub(super) credentials: Option<Credentials>,
    /// `MSG_CTRUNC`: the kernel had more control data than room for it, or could not install
    /// every descriptor (`EMFILE`).
    pub(super) truncated: bool,
}

/// Descriptors and credentials out of the control data the kernel just wrote for `hdr`,
/// truncated or not.
///
/// # Safety
/// `hdr` must come from a `recvmsg` that succeeded, its control buffer still alive and
/// unchanged.
pub(super) unsafe fn take_control(hdr: &libc::msghdr) -> Control {
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
