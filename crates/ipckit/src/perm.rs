//! `struct ipc_perm`, shared by System V message queues, semaphore sets and shared memory:
//! [`Perm`], what their `stat` reports of it (the key, a field whose name differs between C
//! libraries, the owner, the creator and the permission bits), and the owner and mode changes
//! that `IPC_SET` makes, written once for the three.
//!
//! ```
//! use ipckit::msg::{MessageQueue, OpenOptions};
//! let q = MessageQueue::open(ipckit::IPC_PRIVATE, OpenOptions::default())?;
//! let perm: ipckit::perm::Perm = q.stat()?.perm;
//! assert_eq!((perm.key, perm.mode, perm.uid), (0, 0o600, perm.cuid));
//! q.remove()?;
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! For more information, see [`sysvipc(7)`](https://man7.org/linux/man-pages/man7/sysvipc.7.html).

use crate::key::Key;

/// The key, owner, creator and permission bits of a System V object (`struct ipc_perm`), as
/// its `stat` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    /// The key the object was created with (0 for a private object, and for a shared memory
    /// segment that was removed while attached).
    pub key: Key,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Creator user id.
    pub cuid: u32,
    /// Creator group id.
    pub cgid: u32,
    /// Permission bits (`0o777` of the mode; the kernel keeps flags such as `SHM_DEST` above).
    pub mode: u32,
}

impl Perm {
    /// What `perm` says, the mode cut to its permission bits.
    // The field types of ipc_perm differ between C libraries; the casts are no-ops on some.
    #[allow(clippy::unnecessary_cast)]
    pub(crate) fn of(perm: &libc::ipc_perm) -> Self {
        Self {
            key: key(perm),
            uid: perm.uid as u32,
            gid: perm.gid as u32,
            cuid: perm.cuid as u32,
            cgid: perm.cgid as u32,
            mode: perm.mode as u32 & 0o777,
        }
    }
}

/// The key of a System V object (glibc's `__key`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn key(perm: &libc::ipc_perm) -> Key {
    perm.__key
}

/// The key of a System V object (musl's `__ipc_perm_key`).
#[cfg(all(target_os = "linux", not(target_env = "gnu")))]
#[allow(deprecated)] // musl before 1.2 names the field __ipc_perm_key
pub(crate) fn key(perm: &libc::ipc_perm) -> Key {
    perm.__ipc_perm_key
}

/// The key of a System V object (Apple's `_key`).
#[cfg(target_vendor = "apple")]
pub(crate) fn key(perm: &libc::ipc_perm) -> Key {
    perm._key
}

/// Applies the changes of an `IPC_SET` to `perm`: `None` keeps the current value, and only the
/// permission bits (`0o777`) of `mode` are used.
pub(crate) fn set_owner(
    perm: &mut libc::ipc_perm,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
) {
    if let Some(mode) = mode {
        perm.mode = (mode & 0o777) as _;
    }
    if let Some(uid) = uid {
        perm.uid = uid;
    }
    if let Some(gid) = gid {
        perm.gid = gid;
    }
}
