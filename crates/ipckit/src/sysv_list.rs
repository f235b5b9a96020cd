//! Listing and removing System V objects, as `ipcs(1)` and `ipcrm(1)` do: [`ipcs`] parses
//! `/proc/sysvipc/{msg,sem,shm}`, [`remove`] / [`remove_key`] / [`remove_all`] call
//! `msgctl` / `semctl` / `shmctl(IPC_RMID)`, and [`limits`] reads `/proc/sys/kernel`.
//!
//! `/proc/sysvipc` lists every object of the caller's IPC namespace, also those the caller may
//! not read (`IPC_STAT` would fail with `EACCES` on them), which is why it is the source here.
//! Its columns differ between kernel versions, so rows are read by the names in the header line.
//!
//! ```no_run
//! use ipckit::sysv_list::{ipcs, IpcType};
//! for entry in ipcs(Some(IpcType::Msg))? {
//!     println!("{:#010x} {} {:o}", entry.key as u32, entry.id, entry.mode & 0o777);
//! }
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! For more information, see [`ipcs(1)`](https://man7.org/linux/man-pages/man1/ipcs.1.html),
//! [`ipcrm(1)`](https://man7.org/linux/man-pages/man1/ipcrm.1.html) and
//! [`proc_sysvipc(5)`](https://man7.org/linux/man-pages/man5/proc_sysvipc.5.html).

use std::collections::HashMap;
use std::mem::MaybeUninit;

use crate::error::{check, Errno, Error, Result};
use crate::key::{Key, IPC_PRIVATE};
use crate::sys::libc;

/// The kind of a System V object.
///
/// ```
/// use ipckit::sysv_list::IpcType;
/// assert_eq!(IpcType::Sem.as_str(), "sem");
/// assert_eq!("shm".parse::<IpcType>(), Ok(IpcType::Shm));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpcType {
    /// A message queue (`msgget`).
    Msg,
    /// A semaphore set (`semget`).
    Sem,
    /// A shared memory segment (`shmget`).
    Shm,
}

impl IpcType {
    /// The three kinds, in the order `ipcs(1)` prints them.
    pub const ALL: [IpcType; 3] = [IpcType::Msg, IpcType::Shm, IpcType::Sem];

    /// `"msg"`, `"sem"` or `"shm"`: the name of its file in `/proc/sysvipc`.
    pub const fn as_str(self) -> &'static str {
        match self {
            IpcType::Msg => "msg",
            IpcType::Sem => "sem",
            IpcType::Shm => "shm",
        }
    }

    const fn ctl_name(self) -> &'static str {
        match self {
            IpcType::Msg => "msgctl",
            IpcType::Sem => "semctl",
            IpcType::Shm => "shmctl",
        }
    }

    const fn id_column(self) -> &'static str {
        match self {
            IpcType::Msg => "msqid",
            IpcType::Sem => "semid",
            IpcType::Shm => "shmid",
        }
    }
}

impl std::str::FromStr for IpcType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "msg" => Ok(IpcType::Msg),
            "sem" => Ok(IpcType::Sem),
            "shm" => Ok(IpcType::Shm),
            _ => Err(Error::new(Errno::EINVAL, "ipcs")),
        }
    }
}

/// The figures of a message queue (`/proc/sysvipc/msg`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgDetails {
    /// Messages in the queue (`qnum`).
    pub messages: u64,
    /// Payload bytes in the queue (`cbytes`).
    pub bytes: u64,
    /// Process id of the last `msgsnd` (`lspid`), 0 if none.
    pub last_send_pid: i32,
    /// Id of the last `msgrcv` (`lrpid`), 0 if none: a process id, or a thread id after a
    /// receiver that was already blocked in `msgrcv` got the message straight from the sender
    /// (see [`crate::msg::MsgStat::last_receive_pid`]).
    pub last_receive_pid: i32,
    /// Seconds since the epoch of the last `msgsnd` (`stime`), 0 if none.
    pub last_send_time: i64,
    /// Seconds since the epoch of the last `msgrcv` (`rtime`), 0 if none.
    pub last_receive_time: i64,
}

/// The figures of a semaphore set (`/proc/sysvipc/sem`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SemDetails {
    /// Semaphores in the set (`nsems`).
    pub count: u64,
    /// Seconds since the epoch of the last `semop` (`otime`), 0 if none.
    pub last_op_time: i64,
}

/// The figures of a shared memory segment (`/proc/sysvipc/shm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShmDetails {
    /// Size in bytes (`size`).
    pub size: u64,
    /// Current attachments (`nattch`).
    pub attachments: u64,
    /// Pid of the creator (`cpid`).
    pub creator_pid: i32,
    /// Pid of the last `shmat`/`shmdt` (`lpid`), 0 if none.
    pub last_pid: i32,
    /// Seconds since the epoch of the last `shmat` (`atime`), 0 if none.
    pub attach_time: i64,
    /// Seconds since the epoch of the last `shmdt` (`dtime`), 0 if none.
    pub detach_time: i64,
    /// Resident bytes (`rss`; 0 where the kernel does not report it).
    pub rss: u64,
    /// Swapped bytes (`swap`; 0 where the kernel does not report it).
    pub swap: u64,
}

/// What [`IpcsEntry`] holds for its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Details {
    /// A message queue.
    Msg(MsgDetails),
    /// A semaphore set.
    Sem(SemDetails),
    /// A shared memory segment.
    Shm(ShmDetails),
}

/// One System V object, as one row of `/proc/sysvipc/<type>` describes it.
///
/// ```no_run
/// use ipckit::sysv_list::{ipcs, Details};
/// for e in ipcs(None)? {
///     if let Details::Shm(shm) = e.details {
///         println!("segment {} of {} bytes, {} attached", e.id, shm.size, shm.attachments);
///     }
/// }
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpcsEntry {
    /// Its kind.
    pub kind: IpcType,
    /// The key (`IPC_PRIVATE`, 0, for a private object).
    pub key: Key,
    /// The identifier.
    pub id: i32,
    /// The mode word: permission bits, plus `SHM_DEST` (0o1000) and `SHM_LOCKED` (0o2000) for
    /// shared memory.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Creator user id.
    pub cuid: u32,
    /// Creator group id.
    pub cgid: u32,
    /// Seconds since the epoch of creation or of the last `IPC_SET` (`ctime`).
    pub change_time: i64,
    /// The figures of its kind.
    pub details: Details,
}

/// Every System V object of `kind` (all kinds, messages queues first, when `None`), in the
/// order the kernel lists them.
///
/// Errors: `ENOSYS` (syscall `ipcs`) where `/proc/sysvipc/<type>` does not exist (not Linux,
/// or a kernel without System V IPC); the errno of `open`/`read` otherwise; `EINVAL` for a table
/// whose layout is not understood.
///
/// ```no_run
/// let all = ipckit::sysv_list::ipcs(None)?;
/// println!("{} objects", all.len());
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`proc_sysvipc(5)`](https://man7.org/linux/man-pages/man5/proc_sysvipc.5.html).
pub fn ipcs(kind: Option<IpcType>) -> Result<Vec<IpcsEntry>> {
    let kinds: &[IpcType] = match &kind {
        Some(k) => std::slice::from_ref(k),
        None => &IpcType::ALL,
    };
    let mut out = Vec::new();
    for &k in kinds {
        out.extend(parse_table(k, &read_table(k)?)?);
    }
    Ok(out)
}

fn read_table(kind: IpcType) -> Result<String> {
    if !cfg!(target_os = "linux") || !std::path::Path::new("/proc/sysvipc").is_dir() {
        return Err(Error::new(Errno::ENOSYS, "ipcs"));
    }
    std::fs::read_to_string(format!("/proc/sysvipc/{}", kind.as_str())).map_err(|e| {
        match e.raw_os_error() {
            // No table for this kind: the kernel was built without it.
            Some(libc::ENOENT) => Error::new(Errno::ENOSYS, "ipcs"),
            raw => Error::new(Errno::from_raw(raw.unwrap_or(libc::EIO)), "open"),
        }
    })
}

/// Parses the text of `/proc/sysvipc/<kind>` (header line, then one row per object), reading
/// columns by their header names.
///
/// ```
/// use ipckit::sysv_list::{parse_table, Details, IpcType};
/// let text = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n\
///             -359555569          0   644          3     0     0     0     0          0 1795588281\n";
/// let rows = parse_table(IpcType::Sem, text)?;
/// assert_eq!(rows[0].key as u32, 0xea91_9e0f);
/// assert!(matches!(rows[0].details, Details::Sem(s) if s.count == 3));
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn parse_table(kind: IpcType, text: &str) -> Result<Vec<IpcsEntry>> {
    let bad = || Error::new(Errno::EINVAL, "ipcs");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or_else(bad)?.split_whitespace().collect();
    let mut out = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.is_empty() {
            continue;
        }
        if cells.len() < header.len() {
            return Err(bad());
        }
        let row: HashMap<&str, &str> = header.iter().copied().zip(cells).collect();
        // A column every kernel has: missing is an error.
        let num = |name: &str| -> Result<i64> {
            row.get(name)
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(bad)
        };
        // A column some kernels lack: 0 when missing.
        let opt = |name: &str| -> i64 { row.get(name).and_then(|v| v.parse().ok()).unwrap_or(0) };
        let optu = |name: &str| -> u64 { row.get(name).and_then(|v| v.parse().ok()).unwrap_or(0) };
        let mode = row
            .get("perms")
            .and_then(|v| u32::from_str_radix(v, 8).ok())
            .ok_or_else(bad)?;
        let details = match kind {
            IpcType::Msg => Details::Msg(MsgDetails {
                messages: optu("qnum"),
                bytes: optu("cbytes"),
                last_send_pid: opt("lspid") as i32,
                last_receive_pid: opt("lrpid") as i32,
                last_send_time: opt("stime"),
                last_receive_time: opt("rtime"),
            }),
            IpcType::Sem => Details::Sem(SemDetails {
                count: optu("nsems"),
                last_op_time: opt("otime"),
            }),
            IpcType::Shm => Details::Shm(ShmDetails {
                size: optu("size"),
                attachments: optu("nattch"),
                creator_pid: opt("cpid") as i32,
                last_pid: opt("lpid") as i32,
                attach_time: opt("atime"),
                detach_time: opt("dtime"),
                rss: optu("rss"),
                swap: optu("swap"),
            }),
        };
        out.push(IpcsEntry {
            kind,
            key: num("key")? as Key,
            id: num(kind.id_column())? as i32,
            mode,
            uid: num("uid")? as u32,
            gid: num("gid")? as u32,
            cuid: num("cuid")? as u32,
            cgid: num("cgid")? as u32,
            change_time: opt("ctime"),
            details,
        });
    }
    Ok(out)
}

/// Names of users and groups, looked up once each (`getpwuid_r`, `getgrgid_r`).
///
/// ```
/// let mut names = ipckit::sysv_list::Names::default();
/// assert_eq!(names.user(0).as_deref(), Some("root"));
/// ```
#[derive(Debug, Default)]
pub struct Names {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl Names {
    /// The name of user `uid`, `None` when the user database has none.
    pub fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    /// The name of group `gid`, `None` when the group database has none.
    pub fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(gid.into())
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone()
    }

    /// The user id of a user name, `None` when there is no such user.
    pub fn uid_of(name: &str) -> Option<u32> {
        nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    }
}

/// The key of the object `id` of `kind`, from `IPC_STAT`; where the caller may not read it
/// (`EACCES`), from `/proc/sysvipc`, which lists every object. Fails with `EINVAL` when there
/// is no object with that id.
///
/// ```no_run
/// let key = ipckit::sysv_list::key_of(ipckit::sysv_list::IpcType::Msg, 0)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn key_of(kind: IpcType, id: i32) -> Result<Key> {
    match stat_key(kind, id) {
        Err(e) if matches!(e.errno(), Errno::EACCES | Errno::ENOSYS) => ipcs(Some(kind))?
            .into_iter()
            .find(|entry| entry.id == id)
            .map(|entry| entry.key)
            .ok_or(Error::new(Errno::EINVAL, kind.ctl_name())),
        other => other,
    }
}

fn stat_key(kind: IpcType, id: i32) -> Result<Key> {
    match kind {
        IpcType::Msg => {
            let mut ds = MaybeUninit::<libc::msqid_ds>::uninit();
            // SAFETY: IPC_STAT fills the whole msqid_ds that `ds` points to.
            let rc = unsafe { libc::msgctl(id, libc::IPC_STAT, ds.as_mut_ptr()) };
            check(rc, "msgctl")?;
            // SAFETY: msgctl succeeded, so it initialised `ds`.
            Ok(crate::perm::key(&unsafe { ds.assume_init() }.msg_perm))
        }
        // The libc crate has no `semid_ds` for musl: read the key from /proc there.
        #[cfg(not(any(all(target_os = "linux", target_env = "gnu"), target_vendor = "apple")))]
        IpcType::Sem => Err(Error::new(Errno::ENOSYS, "semctl")),
        #[cfg(any(all(target_os = "linux", target_env = "gnu"), target_vendor = "apple"))]
        IpcType::Sem => {
            let mut ds = MaybeUninit::<libc::semid_ds>::uninit();
            // SAFETY: for IPC_STAT the variadic argument is a `struct semid_ds *` (the `buf`
            // member of `union semun`, which has the size of a pointer); semctl fills it.
            let rc = unsafe { libc::semctl(id, 0, libc::IPC_STAT, ds.as_mut_ptr()) };
            check(rc, "semctl")?;
            // SAFETY: semctl succeeded, so it initialised `ds`.
            Ok(crate::perm::key(&unsafe { ds.assume_init() }.sem_perm))
        }
        IpcType::Shm => {
            let mut ds = MaybeUninit::<libc::shmid_ds>::uninit();
            // SAFETY: IPC_STAT fills the whole shmid_ds that `ds` points to.
            let rc = unsafe { libc::shmctl(id, libc::IPC_STAT, ds.as_mut_ptr()) };
            check(rc, "shmctl")?;
            // SAFETY: shmctl succeeded, so it initialised `ds`.
            Ok(crate::perm::key(&unsafe { ds.assume_init() }.shm_perm))
        }
    }
}

fn rmid(kind: IpcType, id: i32) -> Result<()> {
    let rc = match kind {
        // SAFETY: IPC_RMID ignores the buffer argument.
        IpcType::Msg => unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) },
        // SAFETY: IPC_RMID reads no variadic argument.
        IpcType::Sem => unsafe { libc::semctl(id, 0, libc::IPC_RMID) },
        // SAFETY: IPC_RMID ignores the buffer argument.
        IpcType::Shm => unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) },
    };
    check(rc, kind.ctl_name()).map(drop)
}

/// Removes the object `id` of `kind` (`IPC_RMID`). With `expected_key`, first checks that
/// the object with that id still has that key (ids are reused once an object is gone) and
/// fails with `EIDRM` when it does not.
///
/// Errors: `EINVAL` (no object with that id), `EPERM` (neither owner, creator nor
/// privileged), `EIDRM` (the id now belongs to another key). A queue's waiting senders and
/// receivers, and a semaphore set's waiters, fail with `EIDRM`; a shared memory segment goes
/// once its last attachment is gone.
///
/// ```no_run
/// use ipckit::sysv_list::{remove, IpcType};
/// remove(IpcType::Shm, 32769, Some(0x1234))?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`msgctl(2)`](https://man7.org/linux/man-pages/man2/msgctl.2.html),
/// [`semctl(2)`](https://man7.org/linux/man-pages/man2/semctl.2.html),
/// [`shmctl(2)`](https://man7.org/linux/man-pages/man2/shmctl.2.html).
#[doc(alias = "ipcrm")]
pub fn remove(kind: IpcType, id: i32, expected_key: Option<Key>) -> Result<()> {
    if let Some(expected) = expected_key {
        if key_of(kind, id)? != expected {
            return Err(Error::new(Errno::EIDRM, kind.ctl_name()));
        }
    }
    rmid(kind, id)
}

/// Removes the object of `kind` that has `key`, and returns the id it had.
///
/// Errors: `ENOENT` (no object with that key; `msgget`/`semget`/`shmget`), `EINVAL` for
/// `IPC_PRIVATE` (0), which names no object, `EACCES` (the key lookup is refused), `EPERM`.
///
/// ```no_run
/// let id = ipckit::sysv_list::remove_key(ipckit::sysv_list::IpcType::Msg, 0x1234)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn remove_key(kind: IpcType, key: Key) -> Result<i32> {
    let get = match kind {
        IpcType::Msg => "msgget",
        IpcType::Sem => "semget",
        IpcType::Shm => "shmget",
    };
    if key == IPC_PRIVATE {
        return Err(Error::new(Errno::EINVAL, get));
    }
    let id = match kind {
        // SAFETY: the *get calls take no pointers; with flags 0 they only look the key up.
        IpcType::Msg => unsafe { libc::msgget(key, 0) },
        // SAFETY: as above.
        IpcType::Sem => unsafe { libc::semget(key, 0, 0) },
        // SAFETY: as above.
        IpcType::Shm => unsafe { libc::shmget(key, 0, 0) },
    };
    let id = check(id, get)?;
    rmid(kind, id)?;
    Ok(id)
}

/// Removes every object of `kind` (all kinds when `None`) whose owner is `owner` (every object
/// when `None`), each after re-checking its key, and reports each one's result: nothing is
/// skipped silently.
///
/// ```no_run
/// use ipckit::sysv_list::remove_all;
/// for (entry, result) in remove_all(None, Some(1000))? {
///     if let Err(e) = result { eprintln!("{} {}: {e}", entry.kind.as_str(), entry.id) }
/// }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn remove_all(
    kind: Option<IpcType>,
    owner: Option<u32>,
) -> Result<Vec<(IpcsEntry, Result<()>)>> {
    Ok(ipcs(kind)?
        .into_iter()
        .filter(|entry| owner.map_or(true, |uid| entry.uid == uid))
        .map(|entry| {
            let result = remove(entry.kind, entry.id, Some(entry.key));
            (entry, result)
        })
        .collect())
}

/// The System V limits of the running kernel, from `/proc/sys/kernel` (`semvmx` and
/// `shmmin` are compile-time constants of Linux).
///
/// ```no_run
/// let l = ipckit::sysv_list::limits()?;
/// let payload = vec![0u8; 100];
/// assert!(payload.len() as u64 <= l.msgmax);
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, in bytes (`msgmax`).
    pub msgmax: u64,
    /// Default capacity of a queue, in bytes (`msgmnb`).
    pub msgmnb: u64,
    /// Most message queues system wide (`msgmni`).
    pub msgmni: u64,
    /// Largest shared memory segment, in bytes (`shmmax`).
    pub shmmax: u64,
    /// Most shared memory system wide, in pages (`shmall`).
    pub shmall: u64,
    /// Most shared memory segments system wide (`shmmni`).
    pub shmmni: u64,
    /// Smallest shared memory segment, in bytes (`SHMMIN`, 1).
    pub shmmin: u64,
    /// Most semaphores per set (`semmsl`).
    pub semmsl: u64,
    /// Most semaphores system wide (`semmns`).
    pub semmns: u64,
    /// Most operations per `semop` call (`semopm`).
    pub semopm: u64,
    /// Most semaphore sets system wide (`semmni`).
    pub semmni: u64,
    /// Largest semaphore value (`SEMVMX`, 32767).
    pub semvmx: u64,
}

/// Reads the System V limits. Errors: `ENOSYS` (syscall `ipcs`) where `/proc/sys/kernel`
/// does not have them.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// let l = ipckit::sysv_list::limits().unwrap();
/// assert!(l.msgmax > 0 && l.semmsl > 0);
/// # }
/// ```
///
/// For more information, see [`proc_sys_kernel(5)`](https://man7.org/linux/man-pages/man5/proc_sys_kernel.5.html).
pub fn limits() -> Result<Limits> {
    let missing = || Error::new(Errno::ENOSYS, "ipcs");
    let param = |name: &str| crate::limits::kernel_param(name).ok_or_else(missing);
    let sem = std::fs::read_to_string("/proc/sys/kernel/sem").map_err(|_| missing())?;
    let sem: Vec<u64> = sem
        .split_whitespace()
        .map(|v| v.parse().map_err(|_| missing()))
        .collect::<Result<_>>()?;
    let [semmsl, semmns, semopm, semmni] = sem[..] else {
        return Err(missing());
    };
    Ok(Limits {
        msgmax: param("msgmax")?,
        msgmnb: param("msgmnb")?,
        msgmni: param("msgmni")?,
        shmmax: param("shmmax")?,
        shmall: param("shmall")?,
        shmmni: param("shmmni")?,
        shmmin: 1,
        semmsl,
        semmns,
        semopm,
        semmni,
        semvmx: 32767,
    })
}

/// The size of a memory page in bytes (`sysconf(_SC_PAGESIZE)`), the unit of `shmall`; 4096
/// where it cannot be read.
///
/// ```
/// assert!(ipckit::sysv_list::page_size().is_power_of_two());
/// ```
pub fn page_size() -> u64 {
    // SAFETY: sysconf takes no pointers.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{MessageQueue, OpenOptions};

    const MSG: &str = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n 187572179     229420   640          12          2   77    0     0     0     0     0 1795588290          0 1795588281\n";

    #[test]
    fn parses_by_header_names() {
        let rows = parse_table(IpcType::Msg, MSG).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.key, r.id, r.mode), (187572179, 229420, 0o640));
        assert_eq!(r.change_time, 1795588281);
        let Details::Msg(m) = r.details else {
            panic!("not msg")
        };
        assert_eq!((m.messages, m.bytes, m.last_send_pid), (2, 12, 77));
        assert_eq!(m.last_send_time, 1795588290);
    }

    #[test]
    fn reordered_and_missing_optional_columns() {
        let text = "shmid key perms size uid gid cuid cgid\n5 -1 1600 4096 1 2 3 4\n";
        let rows = parse_table(IpcType::Shm, text).unwrap();
        assert_eq!(rows[0].key as u32, 0xffff_ffff);
        assert_eq!(rows[0].mode, 0o1600);
        assert!(matches!(rows[0].details, Details::Shm(s) if s.size == 4096 && s.rss == 0));
        let broken = "shmid key perms\n5 1\n";
        assert_eq!(
            parse_table(IpcType::Shm, broken).unwrap_err().errno(),
            Errno::EINVAL
        );
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "ipcs reads /proc/sysvipc (ENOSYS elsewhere)"
    )]
    fn lists_and_removes_a_queue() {
        let key: Key = 0x7d00_0000 | (std::process::id() as i32 & 0xffff);
        let options = OpenOptions {
            create: true,
            exclusive: true,
            mode: 0o640,
        };
        let q = MessageQueue::open(key, options).unwrap();
        let found = ipcs(Some(IpcType::Msg))
            .unwrap()
            .into_iter()
            .find(|e| e.id == q.id())
            .unwrap();
        assert_eq!((found.key, found.mode & 0o777), (key, 0o640));
        assert_eq!(key_of(IpcType::Msg, q.id()).unwrap(), key);
        let wrong = remove(IpcType::Msg, q.id(), Some(key ^ 1)).unwrap_err();
        assert_eq!(wrong.errno(), Errno::EIDRM);
        assert_eq!(remove_key(IpcType::Msg, key).unwrap(), q.id());
        let again = remove(IpcType::Msg, q.id(), None).unwrap_err();
        assert_eq!((again.errno(), again.syscall()), (Errno::EINVAL, "msgctl"));
        let gone = remove_key(IpcType::Msg, key).unwrap_err();
        assert_eq!((gone.errno(), gone.syscall()), (Errno::ENOENT, "msgget"));
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "limits are read from /proc/sys/kernel (ENOSYS elsewhere)"
    )]
    fn reads_limits() {
        let l = limits().unwrap();
        assert_eq!(l.msgmax, crate::limits::kernel_param("msgmax").unwrap());
        assert!(l.semmni > 0 && l.shmmni > 0);
    }
}
