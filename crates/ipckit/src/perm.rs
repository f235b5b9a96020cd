//! `struct ipc_perm`, shared by System V message queues, semaphore sets and shared memory: the
//! key it records (a field whose name differs between C libraries) and the owner and mode
//! changes that `IPC_SET` makes.
//!
//! ```ignore
//! let key = perm::key(&ds.msg_perm);
//! perm::set_owner(&mut ds.msg_perm, Some(0o640), None, None);
//! ```
//!
//! For more information, see [`sysvipc(7)`](https://man7.org/linux/man-pages/man7/sysvipc.7.html).

use crate::key::Key;

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
