//! The key, owner, creator and mode of a System V object (`struct ipc_perm`), as every
//! `IPC_STAT` answer of the binding carries it (`msgStat`, `semStat`, `shmStat`).

use napi_derive::napi;

/// `struct ipc_perm` of an `IPC_STAT` answer ([`ipckit::perm::Perm`]); TypeScript's
/// `ownerStat` spreads it into each `stat()` result.
#[napi(object)]
pub struct PermJs {
    pub key: u32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub mode: u32,
}

impl From<&ipckit::perm::Perm> for PermJs {
    fn from(p: &ipckit::perm::Perm) -> Self {
        Self {
            // A key_t's bits, as JavaScript has always seen them (a negative key wraps).
            key: p.key as u32,
            uid: p.uid,
            gid: p.gid,
            cuid: p.cuid,
            cgid: p.cgid,
            mode: p.mode,
        }
    }
}
