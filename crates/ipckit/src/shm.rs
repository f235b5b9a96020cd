//! System V shared memory: `shmget`, `shmat`, `shmdt`, `shmctl`, and futex wait/notify on a
//! word of a segment.
//!
//! A [`SharedMemory`] is a handle on a kernel segment identified by its id; the segment lives
//! until [`SharedMemory::remove`] (IPC_RMID) *and* the last detach, whatever happens to the
//! processes using it. [`SharedMemory::attach`] maps it (`shmat`) and returns a [`Mapping`],
//! the owner of that attachment: dropping it detaches (`shmdt`). Share a mapping between
//! threads (or with a JavaScript engine) as an `Arc<Mapping>`, so that the memory stays mapped
//! until the last user is gone. [`Mapping`] is [`crate::mmap`]'s, the type POSIX shared memory
//! and memfds map into as well.
//!
//! The bytes of a segment are shared with other processes, which may change them at any time.
//! So a [`Mapping`] never hands out a Rust reference (`&[u8]`) into them: it copies in and out
//! ([`Mapping::read`], [`Mapping::write`]), loads 32-bit words atomically
//! ([`Mapping::load_u32`]), and gives its raw address ([`Mapping::as_ptr`]) to callers that
//! take on the aliasing rules themselves.
//!
//! ```
//! use ipckit::shm::{OpenOptions, SharedMemory};
//!
//! let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 4096, ..Default::default() })?;
//! let map = shm.attach(false)?;
//! map.write(0, b"hello")?;
//! let mut out = [0u8; 5];
//! map.read(0, &mut out)?;
//! assert_eq!(&out, b"hello");
//! assert_eq!(shm.stat()?.attachments, 1);
//! shm.remove()?; // the segment goes away once `map` is dropped
//! # Ok::<(), ipckit::Error>(())
//! ```

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crate::error::{check, Errno, Error, Result};
use crate::key::Key;
pub use crate::mmap::{Mapping, WaitResult};
use crate::perm::Perm;

/// The "marked for destruction" bit of `shm_perm.mode` (`SHM_DEST`, not in the libc crate).
const SHM_DEST: u32 = 0o1000;

/// How [`SharedMemory::open`] finds or creates the segment.
///
/// ```
/// let opts = ipckit::shm::OpenOptions { size: 4096, create: true, ..Default::default() };
/// assert_eq!(opts.mode, 0o600);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// Size in bytes of a created segment; when opening an existing one, a size larger than
    /// the segment fails with `EINVAL` and 0 accepts any size.
    pub size: usize,
    /// Create the segment if the key has none (`IPC_CREAT`).
    pub create: bool,
    /// Fail with `EEXIST` if the key already has a segment (`IPC_CREAT | IPC_EXCL`).
    pub exclusive: bool,
    /// Permission bits of a created segment.
    pub mode: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            size: 0,
            create: false,
            exclusive: false,
            mode: 0o600,
        }
    }
}

impl OpenOptions {
    /// Without `create` (and for a key other than `IPC_PRIVATE`, which always creates), no
    /// permission bits are passed: shmget would check them against the segment's mode, so a
    /// process allowed only to read could not open it; access is checked where it matters, by
    /// `shmat` (read-write or `SHM_RDONLY`) and `IPC_STAT`.
    fn flags(&self, key: Key) -> libc::c_int {
        let mut flags = 0;
        if self.create || self.exclusive || key == crate::key::IPC_PRIVATE {
            flags |= (self.mode & 0o777) as libc::c_int;
        }
        if self.create || self.exclusive {
            flags |= libc::IPC_CREAT;
        }
        if self.exclusive {
            flags |= libc::IPC_EXCL;
        }
        flags
    }
}

/// A segment's state, from `shmctl(IPC_STAT)`.
///
/// ```
/// # use ipckit::shm::{OpenOptions, SharedMemory};
/// let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 64, ..Default::default() })?;
/// let st = shm.stat()?;
/// assert_eq!((st.size, st.attachments, st.removed), (64, 0, false));
/// shm.remove()?;
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmStat {
    /// The key, owner, creator and permission bits (`struct ipc_perm`).
    pub perm: Perm,
    /// Size in bytes (`shm_segsz`).
    pub size: u64,
    /// Current attachments, in every process (`shm_nattch`).
    pub attachments: u64,
    /// Pid of the creator (`shm_cpid`).
    pub creator_pid: i32,
    /// Pid of the last `shmat` or `shmdt` (`shm_lpid`).
    pub last_pid: i32,
    /// Seconds since the epoch of the last `shmat`, 0 if none.
    pub attach_time: i64,
    /// Seconds since the epoch of the last `shmdt`, 0 if none.
    pub detach_time: i64,
    /// Seconds since the epoch of the last change (creation or IPC_SET).
    pub change_time: i64,
    /// Whether IPC_RMID was done: the segment goes away at its last detach (`SHM_DEST`).
    pub removed: bool,
}

/// Changes for [`SharedMemory::update`] (`shmctl(IPC_SET)`); `None` keeps the current value.
///
/// ```
/// let only_mode = ipckit::shm::ShmUpdate { mode: Some(0o640), ..Default::default() };
/// assert_eq!(only_mode.uid, None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShmUpdate {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner user id.
    pub uid: Option<u32>,
    /// New owner group id.
    pub gid: Option<u32>,
}

/// A handle on a System V shared memory segment.
///
/// ```
/// use ipckit::shm::{OpenOptions, SharedMemory};
/// let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 64, ..Default::default() })?;
/// assert_eq!(SharedMemory::from_id(shm.id()).stat()?.size, 64);
/// shm.remove()?;
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedMemory {
    id: i32,
}

impl SharedMemory {
    /// Finds or creates the segment of `key` (`shmget`). [`IPC_PRIVATE`](crate::IPC_PRIVATE)
    /// always creates a new segment. A new segment is filled with zeros.
    ///
    /// Errors: `ENOENT` (no segment and no `create`), `EEXIST` (`exclusive` and one exists),
    /// `EINVAL` (a size of 0 or above `shmmax` for a new segment, larger than the existing
    /// one), `EACCES`, `ENOSPC`, `ENOMEM`.
    ///
    /// ```
    /// use ipckit::shm::{OpenOptions, SharedMemory};
    /// let e = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions::default()).unwrap_err();
    /// assert_eq!(e.code(), "EINVAL"); // size 0
    /// ```
    ///
    /// For more information, see [`shmget(2)`](https://man7.org/linux/man-pages/man2/shmget.2.html).
    #[doc(alias = "shmget")]
    pub fn open(key: Key, options: OpenOptions) -> Result<Self> {
        // SAFETY: shmget takes no pointers.
        let id = check(
            unsafe { libc::shmget(key, options.size, options.flags(key)) },
            "shmget",
        )?;
        Ok(Self { id })
    }

    /// A handle on the segment with identifier `id`, as `ipcs -m` shows it. No system call is
    /// made; use [`stat`](Self::stat) to check that it exists.
    ///
    /// ```
    /// assert_eq!(ipckit::shm::SharedMemory::from_id(7).id(), 7);
    /// ```
    pub const fn from_id(id: i32) -> Self {
        Self { id }
    }

    /// The segment identifier.
    pub const fn id(&self) -> i32 {
        self.id
    }

    /// Maps the segment into this process (`shmat`), read-only with `readonly`
    /// (`SHM_RDONLY`, which needs only read permission). The [`Mapping`] detaches when dropped.
    ///
    /// Errors: `EACCES` (no permission for that access), `EINVAL`/`EIDRM` (no such segment).
    ///
    /// ```
    /// use ipckit::shm::{OpenOptions, SharedMemory};
    /// let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 100, ..Default::default() })?;
    /// let map = shm.attach(true)?;
    /// assert_eq!((map.len(), map.is_readonly()), (100, true));
    /// assert_eq!(map.write(0, b"x").unwrap_err().code(), "EACCES");
    /// shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`shmat(2)`](https://man7.org/linux/man-pages/man2/shmat.2.html).
    #[doc(alias = "shmat")]
    pub fn attach(&self, readonly: bool) -> Result<Mapping> {
        let flags = if readonly { libc::SHM_RDONLY } else { 0 };
        // SAFETY: a null address lets the kernel choose a free range, so no existing memory of
        // this process is replaced; the result is checked before use.
        let addr = unsafe { libc::shmat(self.id, std::ptr::null(), flags) };
        if addr as isize == -1 {
            return Err(Error::last("shmat"));
        }
        let ptr = NonNull::new(addr.cast::<u8>()).ok_or(Error::new(Errno::EINVAL, "shmat"))?;
        // From here on the Mapping owns the attachment, so an error below detaches it.
        // SAFETY: `ptr` is the attachment shmat just made, owned by nothing else.
        let mut mapping = unsafe { Mapping::from_shmat(ptr, readonly, self.id) };
        let len = usize::try_from(self.stat()?.size)
            .map_err(|_| Error::new(Errno::EOVERFLOW, "shmctl"))?;
        mapping.set_len(len);
        Ok(mapping)
    }

    /// The segment's state (`shmctl(IPC_STAT)`).
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 64, ..Default::default() })?;
    /// let _map = shm.attach(false)?;
    /// assert_eq!(shm.stat()?.attachments, 1);
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`shmctl(2)`](https://man7.org/linux/man-pages/man2/shmctl.2.html).
    #[doc(alias = "shmctl")]
    // The field types of shmid_ds differ between C libraries; the casts are no-ops on some.
    #[allow(clippy::unnecessary_cast)]
    pub fn stat(&self) -> Result<ShmStat> {
        let ds = self.raw_stat()?;
        let mode = ds.shm_perm.mode as u32;
        Ok(ShmStat {
            perm: Perm::of(&ds.shm_perm),
            size: ds.shm_segsz as u64,
            attachments: ds.shm_nattch as u64,
            creator_pid: ds.shm_cpid,
            last_pid: ds.shm_lpid,
            attach_time: ds.shm_atime as i64,
            detach_time: ds.shm_dtime as i64,
            change_time: ds.shm_ctime as i64,
            removed: mode & SHM_DEST != 0,
        })
    }

    fn raw_stat(&self) -> Result<libc::shmid_ds> {
        let mut ds = MaybeUninit::<libc::shmid_ds>::uninit();
        // SAFETY: IPC_STAT fills the whole shmid_ds that `ds` points to.
        let rc = unsafe { libc::shmctl(self.id, libc::IPC_STAT, ds.as_mut_ptr()) };
        check(rc, "shmctl")?;
        // SAFETY: shmctl succeeded, so the kernel initialised `ds`.
        Ok(unsafe { ds.assume_init() })
    }

    /// Changes owner or mode (`shmctl(IPC_SET)`), keeping what `update` leaves out.
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 64, ..Default::default() })?;
    /// shm.update(ipckit::shm::ShmUpdate { mode: Some(0o640), ..Default::default() })?;
    /// assert_eq!(shm.stat()?.perm.mode, 0o640);
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`shmctl(2)`](https://man7.org/linux/man-pages/man2/shmctl.2.html).
    pub fn update(&self, update: ShmUpdate) -> Result<()> {
        let mut ds = self.raw_stat()?;
        crate::perm::set_owner(&mut ds.shm_perm, update.mode, update.uid, update.gid);
        // SAFETY: `ds` is a valid shmid_ds; IPC_SET reads it.
        let rc = unsafe { libc::shmctl(self.id, libc::IPC_SET, &mut ds) };
        check(rc, "shmctl").map(drop)
    }

    /// Marks the segment for removal (`shmctl(IPC_RMID)`): its key is free at once, and the
    /// memory goes away at the last detach. Existing attachments keep working (and, on Linux,
    /// new `shmat` by id still succeed while some remain).
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 64, ..Default::default() })?;
    /// let map = shm.attach(false)?;
    /// shm.remove()?;
    /// assert!(shm.stat()?.removed);
    /// map.write(0, b"still mapped")?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`shmctl(2)`](https://man7.org/linux/man-pages/man2/shmctl.2.html).
    pub fn remove(&self) -> Result<()> {
        // SAFETY: IPC_RMID ignores the buffer argument.
        let rc = unsafe { libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
        check(rc, "shmctl").map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::IPC_PRIVATE;
    use crate::wait::Canceller;
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    struct Temp(SharedMemory);
    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = self.0.remove();
        }
    }
    fn private(size: usize) -> Temp {
        Temp(
            SharedMemory::open(
                IPC_PRIVATE,
                OpenOptions {
                    size,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
    }

    #[test]
    fn two_attachments_share_bytes_and_count() {
        let shm = private(10_000);
        let a = shm.0.attach(false).unwrap();
        let b = shm.0.attach(true).unwrap();
        assert_eq!(a.len(), 10_000);
        assert_ne!(a.as_ptr(), b.as_ptr());
        a.write(9_990, b"0123456789").unwrap();
        let mut out = [0u8; 10];
        b.read(9_990, &mut out).unwrap();
        assert_eq!(&out, b"0123456789");
        assert_eq!(shm.0.stat().unwrap().attachments, 2);
        drop(a);
        assert_eq!(shm.0.stat().unwrap().attachments, 1);
        drop(b);
        assert_eq!(shm.0.stat().unwrap().attachments, 0);
    }

    #[test]
    fn bounds_and_readonly() {
        let shm = private(16);
        let rw = shm.0.attach(false).unwrap();
        assert_eq!(rw.write(15, b"ab").unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(
            rw.write(usize::MAX, b"a").unwrap_err().errno(),
            Errno::EINVAL
        );
        assert_eq!(rw.read(17, &mut []).unwrap_err().errno(), Errno::EINVAL);
        rw.read(16, &mut []).unwrap();
        let mut one = [9u8];
        rw.read(15, &mut one).unwrap();
        assert_eq!(one, [0]);
        let ro = shm.0.attach(true).unwrap();
        assert_eq!(ro.write(0, b"a").unwrap_err().errno(), Errno::EACCES);
        assert_eq!(rw.load_u32(2).unwrap_err().errno(), Errno::EINVAL);
        assert_eq!(rw.load_u32(16).unwrap_err().errno(), Errno::EINVAL);
    }

    #[test]
    fn remove_keeps_attachments_working() {
        let shm = SharedMemory::open(
            IPC_PRIVATE,
            OpenOptions {
                size: 64,
                ..Default::default()
            },
        )
        .unwrap();
        let map = shm.attach(false).unwrap();
        shm.remove().unwrap();
        let st = shm.stat().unwrap();
        assert!(st.removed);
        map.write(0, b"still here").unwrap();
        drop(map);
        assert!(shm.stat().is_err());
    }

    #[test]
    fn stat_update_and_size_errors() {
        let shm = private(100);
        let st = shm.0.stat().unwrap();
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        assert_eq!(
            (st.size, st.perm.mode, st.creator_pid, st.removed),
            (100, 0o600, pid, false)
        );
        shm.0
            .update(ShmUpdate {
                mode: Some(0o640),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(shm.0.stat().unwrap().perm.mode, 0o640);
        let zero = SharedMemory::open(IPC_PRIVATE, OpenOptions::default()).unwrap_err();
        assert_eq!((zero.errno(), zero.syscall()), (Errno::EINVAL, "shmget"));
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "no futex: wait/wake are ENOSYS there"
    )]
    fn futex_wait_wake_between_threads() {
        let shm = private(64);
        let map = Arc::new(shm.0.attach(false).unwrap());
        assert_eq!(map.wait(4, 1, None, None).unwrap(), WaitResult::NotEqual);
        let started = Instant::now();
        let r = map
            .wait(4, 0, Some(Duration::from_millis(30)), None)
            .unwrap();
        assert_eq!(r, WaitResult::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(29));
        let m = map.clone();
        let waiter = std::thread::spawn(move || m.wait(8, 0, Some(Duration::from_secs(10)), None));
        let deadline = Instant::now() + Duration::from_secs(5);
        while map.wake(8, 1).unwrap() == 0 {
            assert!(Instant::now() < deadline, "waiter never woken");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(waiter.join().unwrap().unwrap(), WaitResult::Ok);
    }

    extern "C" fn ignore(_: libc::c_int) {}

    /// A signal interrupts the wait after the word changed without a wake: the wait ends with
    /// `Ok` (a wake-up), never `NotEqual`, which means that no wait took place.
    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "no futex: wait/wake are ENOSYS there"
    )]
    fn futex_wait_interrupted_after_a_change_is_a_wake_up() {
        for flags in [0, libc::SA_RESTART] {
            // SAFETY: a zeroed sigaction with a handler that does nothing, installed for SIGURG,
            // which no other test of this crate uses.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as libc::sighandler_t;
                sa.sa_flags = flags;
                assert_eq!(libc::sigaction(libc::SIGURG, &sa, std::ptr::null_mut()), 0);
            }
            let shm = private(64);
            let map = Arc::new(shm.0.attach(false).unwrap());
            let m = map.clone();
            let (tid_tx, tid_rx) = std::sync::mpsc::channel();
            let waiter = std::thread::spawn(move || {
                #[cfg(any(target_os = "linux", target_os = "android"))]
                tid_tx.send(crate::testing::gettid()).unwrap();
                #[cfg(not(any(target_os = "linux", target_os = "android")))]
                tid_tx.send(0).unwrap();
                m.wait(0, 0, Some(crate::testing::PATIENCE * 2), None)
            });
            let _tid = tid_rx.recv().unwrap();
            // Changed once the waiter sleeps in the futex wait (not before it looked).
            #[cfg(any(target_os = "linux", target_os = "android"))]
            crate::testing::wait_until_in_syscall(_tid, libc::SYS_futex);
            map.write(0, &1u32.to_ne_bytes()).unwrap();
            // SAFETY: the thread is alive (it waits up to 10 s) and SIGURG has a handler.
            unsafe { libc::pthread_kill(waiter.as_pthread_t(), libc::SIGURG) };
            assert_eq!(
                waiter.join().unwrap().unwrap(),
                WaitResult::Ok,
                "flags {flags}"
            );
        }
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "no futex: wait/wake are ENOSYS there"
    )]
    fn futex_wait_is_cancellable() {
        let _serial = crate::wait::POOL_TESTS.lock();
        let shm = private(64);
        let map = Arc::new(shm.0.attach(false).unwrap());
        let canceller = Canceller::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let (m, c) = (map.clone(), canceller.clone());
        crate::wait::spawn(move || tx.send(m.wait(0, 0, None, Some(&c))).unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        canceller.cancel();
        let r = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(r.unwrap_err().is_cancelled());
    }
}
