//! Shared mappings: the [`Mapping`] type that System V attachments ([`crate::shm`]), POSIX
//! shared memory objects ([`crate::posix_shm`]) and memfds ([`crate::memfd`]) share, with its
//! copies, atomic loads and futex wait/wake on 32-bit words; [`Mapping::map`] maps a file
//! (`mmap(MAP_SHARED)`), and [`file_size`] / [`truncate`] read and set the size of the file
//! behind one.
//!
//! The bytes of a mapping are shared with other processes, which may change them at any time.
//! So a [`Mapping`] never hands out a Rust reference (`&[u8]`) into them: it copies in and out
//! ([`Mapping::read`], [`Mapping::write`]), loads 32-bit words atomically
//! ([`Mapping::load_u32`]), and gives its raw address ([`Mapping::as_ptr`]) to callers that
//! take on the aliasing rules themselves. Share one between threads (or with a JavaScript
//! engine) as an `Arc<Mapping>`: the memory stays mapped until the last clone is dropped, which
//! unmaps it (`shmdt` or `munmap`, whichever made it).
//!
//! A file mapping covers the file's bytes as they were when it was made. If the file shrinks
//! afterwards (another process calls `ftruncate` on it), touching the pages past its new end
//! raises `SIGBUS`, as it would in C: share files only with processes you trust with that, or
//! seal a memfd against shrinking ([`crate::memfd::Seals::SHRINK`]).
//!
//! ```
//! # #[cfg(any(target_os = "linux", target_os = "android"))] {
//! use ipckit::memfd::{self, MemfdOptions};
//! use ipckit::mmap::Mapping;
//! use std::os::fd::AsFd;
//!
//! let fd = memfd::create("doc", MemfdOptions::default())?;
//! ipckit::mmap::truncate(fd.as_fd(), 4096)?;
//! let map = Mapping::map(fd.as_fd(), 4096, false)?;
//! map.write(0, b"hello")?;
//! let mut out = [0u8; 5];
//! map.read(0, &mut out)?;
//! assert_eq!(&out, b"hello");
//! # }
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! For more information, see [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html).

use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::time::Instant;

use crate::error::{check, Errno, Error, Result};
#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::wait::interruptible;
use crate::wait::Canceller;
use crate::wait::Ticket;
#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::wait::{Lines, Operation, Served};

/// What a futex wait ended with, named as `Atomics.wait` names its results.
///
/// ```
/// # use ipckit::shm::{OpenOptions, SharedMemory, WaitResult};
/// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 4, ..Default::default() })?;
/// let map = shm.attach(false)?;
/// # #[cfg(any(target_os = "linux", target_os = "android"))]
/// assert_eq!(map.wait(0, 7, None, None)?, WaitResult::NotEqual);
/// # shm.remove()?;
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitResult {
    /// Woken by [`Mapping::wake`] (or, rarely, spuriously: futex waits may end without a wake).
    Ok,
    /// The word did not hold the expected value, so there was no wait.
    NotEqual,
    /// The timeout passed.
    TimedOut,
}

/// A shared mapping: one attachment of a System V segment (`shmat`, made by
/// [`SharedMemory::attach`](crate::shm::SharedMemory::attach)) or a shared mapping of a file
/// (`mmap(MAP_SHARED)`, made by [`Mapping::map`]: POSIX shared memory, memfds). Dropping it
/// unmaps the memory (`shmdt` or `munmap`).
///
/// Its memory is shared with other processes, so it is reached only through copies, atomic
/// loads, futex calls and the raw [`as_ptr`](Self::as_ptr).
///
/// ```
/// # use ipckit::shm::{OpenOptions, SharedMemory};
/// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 64, ..Default::default() })?;
/// let map = std::sync::Arc::new(shm.attach(false)?);
/// let other = map.clone();
/// std::thread::spawn(move || other.write(0, &[1, 0, 0, 0])).join().unwrap()?;
/// assert_eq!(map.load_u32(0)?, 1);
/// drop(map); // the last clone detaches (shmdt)
/// assert_eq!(shm.stat()?.attachments, 0);
/// # shm.remove()?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`shmat(2)`](https://man7.org/linux/man-pages/man2/shmat.2.html),
/// [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html).
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    readonly: bool,
    origin: Origin,
}

/// What made a [`Mapping`], and so what unmaps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// `shmat` of the System V segment with this id: `shmdt` unmaps it.
    Shmat(i32),
    /// `mmap`: `munmap` unmaps it.
    Mmap,
}

// SAFETY: the mapping is plain shared memory, reachable from any thread; this type only copies
// through raw pointers and uses atomics and futex calls, all of which are thread-safe, and
// `shmdt` and `munmap` may be called from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above; no method hands out a reference into the memory.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Takes ownership of an attachment that `shmat` returned at `ptr` for segment `id`; the
    /// caller sets its length (see [`set_len`](Self::set_len)) once known, and an error before
    /// that still detaches it.
    ///
    /// # Safety
    ///
    /// `ptr` must be the address of a live attachment of this process that nothing else
    /// detaches, `readonly` whether it was made with `SHM_RDONLY`.
    pub(crate) unsafe fn from_shmat(ptr: NonNull<u8>, readonly: bool, id: i32) -> Self {
        Self {
            ptr,
            len: 0,
            readonly,
            origin: Origin::Shmat(id),
        }
    }

    /// Sets the length of an attachment made by [`from_shmat`](Self::from_shmat); `len` must
    /// not exceed the segment's size.
    pub(crate) fn set_len(&mut self, len: usize) {
        self.len = len;
    }

    /// Maps `len` bytes of the file `fd` from its start, shared with every other mapping of it
    /// (`mmap(MAP_SHARED)`), read-only with `readonly` (`PROT_READ`; else `PROT_READ |
    /// PROT_WRITE`, for which `fd` must be open for reading and writing). The mapping does not
    /// depend on `fd` afterwards: closing it leaves the mapping working.
    ///
    /// Errors: `EINVAL` for a length of 0 or a file smaller than `len` (touching the missing
    /// pages would raise `SIGBUS`), `EACCES` (`fd` not open for the access asked for), `EPERM`
    /// (a writable mapping of a memfd sealed with `F_SEAL_WRITE`), `ENODEV` (a descriptor that
    /// cannot be mapped, such as a pipe), `ENOMEM` (no room in the address space), `EBADF`.
    ///
    /// ```
    /// # #[cfg(any(target_os = "linux", target_os = "android"))] {
    /// use ipckit::{memfd, mmap};
    /// use std::os::fd::AsFd;
    /// let fd = memfd::create("map", memfd::MemfdOptions::default())?;
    /// assert_eq!(mmap::Mapping::map(fd.as_fd(), 1, false).unwrap_err().code(), "EINVAL"); // empty file
    /// mmap::truncate(fd.as_fd(), 100)?;
    /// let map = mmap::Mapping::map(fd.as_fd(), 100, true)?;
    /// assert_eq!((map.len(), map.is_readonly()), (100, true));
    /// # }
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html).
    #[doc(alias = "mmap")]
    pub fn map(fd: BorrowedFd<'_>, len: usize, readonly: bool) -> Result<Self> {
        if len == 0 || file_size(fd)? < len as u64 {
            return Err(Error::new(Errno::EINVAL, "mmap"));
        }
        let prot = if readonly {
            libc::PROT_READ
        } else {
            libc::PROT_READ | libc::PROT_WRITE
        };
        // SAFETY: a null address lets the kernel choose a free range, so no existing memory of
        // this process is replaced; the result is checked before use.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(Error::last("mmap"));
        }
        let ptr = NonNull::new(addr.cast::<u8>()).ok_or(Error::new(Errno::EINVAL, "mmap"))?;
        Ok(Self {
            ptr,
            len,
            readonly,
            origin: Origin::Mmap,
        })
    }

    /// Maps the `len` bytes of the file `fd` at `offset` twice, back to back, read-write and
    /// shared (a "mirrored" mapping, `2 * len` bytes long): byte `i` and byte `i + len` of it
    /// are the same byte of the file, so a run of bytes that wraps around the end of a ring of
    /// `len` bytes kept there is contiguous in it. Plain `mmap`s over a reserved range (no
    /// `mremap` of an existing mapping, which emulators such as qemu-user do not follow); the
    /// mapping does not depend on `fd` afterwards.
    ///
    /// Errors: `EINVAL` for a length of 0, an `offset` or `len` that is not a multiple of the
    /// page size, or a file that ends before `offset + len`; `ENOMEM` (no room in the address
    /// space), `EACCES`, `ENODEV`, `EBADF` as for [`map`](Self::map). Nothing stays mapped on
    /// an error.
    ///
    /// ```
    /// # #[cfg(any(target_os = "linux", target_os = "android"))] {
    /// use ipckit::{memfd, mmap};
    /// use std::os::fd::AsFd;
    /// let page = ipckit::sysv_list::page_size() as usize;
    /// let fd = memfd::create("ring", memfd::MemfdOptions::default())?;
    /// mmap::truncate(fd.as_fd(), 2 * page as u64)?;
    /// let map = mmap::Mapping::map(fd.as_fd(), 2 * page, false)?;
    /// let ring = mmap::Mapping::map_mirrored(fd.as_fd(), page as u64, page)?; // the second page, twice
    /// assert_eq!(ring.len(), 2 * page);
    /// ring.write(page - 2, b"wrap")?; // the ring's last 2 bytes, then its first 2
    /// let mut head = [0u8; 2];
    /// map.read(page, &mut head)?;
    /// assert_eq!(&head, b"ap");
    /// assert_eq!(mmap::Mapping::map_mirrored(fd.as_fd(), 8, page).unwrap_err().code(), "EINVAL");
    /// assert_eq!(mmap::Mapping::map_mirrored(fd.as_fd(), page as u64, 2 * page).unwrap_err().code(), "EINVAL");
    /// # }
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html).
    pub fn map_mirrored(fd: BorrowedFd<'_>, offset: u64, len: usize) -> Result<Self> {
        let page = crate::sysv_list::page_size();
        let (Some(total), Some(end)) = (len.checked_mul(2), offset.checked_add(len as u64)) else {
            return Err(Error::new(Errno::EINVAL, "mmap"));
        };
        if len == 0 || offset % page != 0 || len as u64 % page != 0 || file_size(fd)? < end {
            return Err(Error::new(Errno::EINVAL, "mmap"));
        }
        let file_offset =
            libc::off_t::try_from(offset).map_err(|_| Error::new(Errno::EINVAL, "mmap"))?;
        // SAFETY: a null address lets the kernel choose a free range of `total` bytes, so no
        // existing memory of this process is replaced; it only reserves the range (no access)
        // for the two mappings below, and the result is checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::last("mmap"));
        }
        for half in 0..2 {
            // SAFETY: `base + half * len` and the `len` bytes after it lie inside the range
            // reserved above, which this function owns alone, so MAP_FIXED replaces only that
            // reservation.
            let addr = unsafe {
                libc::mmap(
                    base.cast::<u8>().add(half * len).cast(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fd.as_raw_fd(),
                    file_offset,
                )
            };
            if addr == libc::MAP_FAILED {
                let err = Error::last("mmap");
                // SAFETY: the whole reserved range, mapped by this function only, and no
                // pointer into it escapes.
                unsafe { libc::munmap(base, total) };
                return Err(err);
            }
        }
        let ptr = NonNull::new(base.cast::<u8>()).ok_or(Error::new(Errno::EINVAL, "mmap"))?;
        Ok(Self {
            ptr,
            len: total,
            readonly: false,
            origin: Origin::Mmap,
        })
    }

    /// The address of the first byte. It stays valid while this mapping lives; another process
    /// may write to the memory at any time, so never form a Rust reference over it.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes (the segment's size, or the length mapped).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the length is 0 (never true for a mapping the kernel made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether this is a read-only mapping (`SHM_RDONLY`, or `PROT_READ` only).
    pub fn is_readonly(&self) -> bool {
        self.readonly
    }

    /// The id of the System V segment attached, `None` for a file mapping.
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 64, ..Default::default() })?;
    /// assert_eq!(shm.attach(false)?.segment_id(), Some(shm.id()));
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn segment_id(&self) -> Option<i32> {
        match self.origin {
            Origin::Shmat(id) => Some(id),
            Origin::Mmap => None,
        }
    }

    fn range(&self, offset: usize, len: usize, what: &'static str) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::new(Errno::EINVAL, what)),
        }
    }

    /// Copies `dst.len()` bytes from `offset` into `dst`. Fails with `EINVAL` (naming
    /// `shm_read`) if the range passes the end, and copies nothing then.
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 8, ..Default::default() })?;
    /// let map = shm.attach(false)?;
    /// let mut two = [1u8; 2];
    /// map.read(6, &mut two)?;          // a new segment holds zeros
    /// assert_eq!(two, [0, 0]);
    /// assert!(map.read(7, &mut two).is_err());
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        self.range(offset, dst.len(), "shm_read")?;
        // SAFETY: [offset, offset + len) lies inside the mapping (checked above), which stays
        // mapped while `self` lives; `dst` is a distinct, writable Rust buffer of that length.
        // Other processes may write the source concurrently: the copy then holds a mix of old
        // and new bytes, as memcpy in C would, and no reference to the shared bytes is formed.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            )
        };
        Ok(())
    }

    /// Copies `src` into the segment at `offset`. Fails with `EINVAL` (naming `shm_write`) if
    /// the range passes the end, with `EACCES` on a read-only mapping; nothing is written then.
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 64, ..Default::default() })?;
    /// let map = shm.attach(false)?;
    /// map.write(60, b"abcd")?;
    /// assert_eq!(map.write(61, b"abcd").unwrap_err().code(), "EINVAL");
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<()> {
        if self.readonly {
            return Err(Error::new(Errno::EACCES, "shm_write"));
        }
        self.range(offset, src.len(), "shm_write")?;
        // SAFETY: the range lies inside a writable mapping (both checked above) that stays
        // mapped while `self` lives; `src` is a Rust slice, which cannot overlap the shared
        // memory since no reference into it is ever formed.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(offset), src.len())
        };
        Ok(())
    }

    pub(crate) fn word(&self, offset: usize, what: &'static str) -> Result<&AtomicU32> {
        if offset % 4 != 0 {
            return Err(Error::new(Errno::EINVAL, what));
        }
        self.range(offset, 4, what)?;
        // SAFETY: the word is inside the mapping and 4-aligned (the mapping is page-aligned),
        // lives as long as `&self`, and is only ever accessed atomically through this
        // reference (AtomicU32 permits concurrent writes by others, including other processes).
        Ok(unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(offset).cast()) })
    }

    /// Loads the 32-bit word at `offset` (4-aligned) atomically, as `Atomics.load` does.
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 64, ..Default::default() })?;
    /// let map = shm.attach(false)?;
    /// map.write(8, &7u32.to_ne_bytes())?;
    /// assert_eq!(map.load_u32(8)?, 7);
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn load_u32(&self, offset: usize) -> Result<u32> {
        Ok(self.word(offset, "futex")?.load(Ordering::SeqCst))
    }

    /// Waits until the 32-bit word at `offset` (4-aligned) is woken by [`wake`](Self::wake)
    /// from any process, if it holds `expected` (`FUTEX_WAIT`, shared, not
    /// `FUTEX_PRIVATE_FLAG`). `timeout` `None` waits for ever. [`WaitResult::NotEqual`] means
    /// the word did not hold `expected` at the call (no wait); a change seen after the wait
    /// began, even without a wake, ends it with [`WaitResult::Ok`].
    ///
    /// With a `canceller`, the wait can be cancelled ([`crate::wait::interruptible`]) and then
    /// fails with [`Error::cancelled`]; without one, signals do not end it. `EINTR` re-arms
    /// the wait with the same absolute deadline (`FUTEX_WAIT_BITSET` on `CLOCK_MONOTONIC`), so
    /// signals never stretch the timeout.
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory, WaitResult};
    /// # use std::time::Duration;
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 8, ..Default::default() })?;
    /// let map = shm.attach(false)?;
    /// assert_eq!(map.wait(0, 1, None, None)?, WaitResult::NotEqual);
    /// assert_eq!(map.wait(0, 0, Some(Duration::from_millis(1)), None)?, WaitResult::TimedOut);
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html).
    #[doc(alias = "futex")]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn wait(
        &self,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
        canceller: Option<&Canceller>,
    ) -> Result<WaitResult> {
        let word = self.word(offset, "futex")?;
        let deadline = match timeout {
            Some(t) => Some(deadline_after(t)?),
            None => None,
        };
        // `NotEqual` means "no wait": decide it here, once. After this point the kernel's
        // EAGAIN means the word changed after we committed to wait: between this load and the
        // futex call, or while a signal interrupted the wait (the kernel restarts a futex wait
        // under SA_RESTART, and we retry after EINTR, and either re-check finds the new value).
        // That is a wake-up, as `Atomics.wait` would report it, not "not equal".
        if word.load(Ordering::SeqCst) != expected {
            return Ok(WaitResult::NotEqual);
        }
        let call = || futex_wait(word, expected, deadline.as_ref());
        let result = match canceller {
            Some(c) => interruptible(c, "futex", call),
            None => crate::interrupt::retry_eintr(call),
        };
        match result {
            Ok(()) => Ok(WaitResult::Ok),
            Err(e) if e.errno() == Errno::EAGAIN => Ok(WaitResult::Ok),
            Err(e) if e.errno() == Errno::ETIMEDOUT => Ok(WaitResult::TimedOut),
            Err(e) => Err(e),
        }
    }

    /// Waits on one of this crate's threads until the 32-bit word at `offset` is woken (as
    /// [`wait`](Self::wait) does), and hands the result to `deliver`: the asynchronous wait.
    /// The caller has seen the word hold `expected` (a word that does not is
    /// [`WaitResult::NotEqual`] without any wait). Waits of this process on one word of one
    /// attachment with one expected value stand in one line served by one thread: 1,000 of
    /// them take one thread and one kernel waiter. So a wake reaches them as follows: when the
    /// word no longer holds `expected` after the wake, every one of them resolves
    /// [`WaitResult::Ok`] (the usual store-then-notify); when it still does, only the first
    /// in line does (a `notify(1)`). As with any futex, a wake may be spurious: callers
    /// re-check the word. Each wait keeps its own `timeout`. `EAGAIN` at once when no thread
    /// can be had.
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory, WaitResult};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 64, ..Default::default() })?;
    /// let map = std::sync::Arc::new(shm.attach(false)?);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// map.wait_later(0, 0, None, move |r| tx.send(r).unwrap())?;
    /// std::thread::sleep(std::time::Duration::from_millis(20));
    /// map.write(0, &[1, 0, 0, 0])?;
    /// map.wake(0, 1)?;
    /// assert_eq!(rx.recv().unwrap()?, WaitResult::Ok);
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn wait_later(
        self: &Arc<Self>,
        offset: usize,
        expected: u32,
        timeout: Option<Duration>,
        deliver: impl FnOnce(Result<WaitResult>) + Send + 'static,
    ) -> Result<Ticket> {
        static LINES: Lines<(usize, usize, u32), LineFutex> = Lines::new();
        self.word(offset, "futex")?;
        let deadline = timeout.map(|t| {
            let now = Instant::now();
            now.checked_add(t)
                .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
        });
        LINES.submit(
            (self.ptr.as_ptr() as usize, offset, expected),
            move || LineFutex { offset, expected },
            "futex",
            self.clone(),
            deadline,
            deliver,
        )
    }

    /// Wakes up to `count` waiters on the 32-bit word at `offset` (4-aligned), in every
    /// process (`FUTEX_WAKE`); returns how many were woken.
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 64, ..Default::default() })?;
    /// let map = shm.attach(false)?;
    /// assert_eq!(map.wake(0, u32::MAX)?, 0); // nobody waits
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub fn wake(&self, offset: usize, count: u32) -> Result<u32> {
        let word = self.word(offset, "futex")?;
        let count = libc::c_int::try_from(count).unwrap_or(libc::c_int::MAX);
        // SAFETY: `word` is a valid, aligned u32 of a mapping that outlives the call;
        // FUTEX_WAKE reads nothing else (timeout, uaddr2 and val3 are ignored).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE,
                count,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0,
            )
        };
        let woken = check(rc as i64, "futex")?;
        Ok(u32::try_from(woken).unwrap_or(u32::MAX))
    }
}

/// Where the kernel has no futex (macOS): [`Mapping::wait`] and [`Mapping::wake`] check their
/// offset as on Linux, then fail with `ENOSYS` (syscall `futex`). Attaching, reading and
/// writing the segment work as everywhere.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
impl Mapping {
    /// Not available without futexes: `ENOSYS` (syscall `futex`) for a valid `offset`,
    /// `EINVAL` for a bad one, as on Linux.
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 8, ..Default::default() })?;
    /// let map = shm.attach(false)?;
    /// # #[cfg(target_os = "macos")]
    /// assert_eq!(map.wait(0, 0, None, None).unwrap_err().code(), "ENOSYS");
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    ///
    /// For more information, see [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html).
    #[doc(alias = "futex")]
    pub fn wait(
        &self,
        offset: usize,
        _expected: u32,
        _timeout: Option<Duration>,
        _canceller: Option<&Canceller>,
    ) -> Result<WaitResult> {
        self.word(offset, "futex")?;
        Err(Error::new(Errno::ENOSYS, "futex"))
    }

    /// Not available without futexes: `ENOSYS` (syscall `futex`), as [`wait`](Self::wait).
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 8, ..Default::default() })?;
    /// let map = shm.attach(false)?;
    /// # #[cfg(target_os = "macos")]
    /// assert_eq!(map.wake(0, 1).unwrap_err().code(), "ENOSYS");
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn wake(&self, offset: usize, _count: u32) -> Result<u32> {
        self.word(offset, "futex")?;
        Err(Error::new(Errno::ENOSYS, "futex"))
    }

    /// Not available without futexes: `ENOSYS` (syscall `futex`), as [`wait`](Self::wait);
    /// `deliver` is never called.
    ///
    /// ```
    /// # use ipckit::shm::{OpenOptions, SharedMemory};
    /// # let shm = SharedMemory::open(ipckit::IPC_PRIVATE, OpenOptions { size: 8, ..Default::default() })?;
    /// let map = std::sync::Arc::new(shm.attach(false)?);
    /// # #[cfg(target_os = "macos")]
    /// assert_eq!(map.wait_later(0, 0, None, |_| {}).err().map(|e| e.code()), Some("ENOSYS".into()));
    /// # shm.remove()?;
    /// # Ok::<(), ipckit::Error>(())
    /// ```
    pub fn wait_later(
        self: &Arc<Self>,
        offset: usize,
        _expected: u32,
        _timeout: Option<Duration>,
        _deliver: impl FnOnce(Result<WaitResult>) + Send + 'static,
    ) -> Result<Ticket> {
        self.word(offset, "futex")?;
        Err(Error::new(Errno::ENOSYS, "futex"))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let rc = match self.origin {
            // SAFETY: `ptr` is the address shmat returned for this attachment, detached only
            // here, once; no reference into the memory outlives the mapping.
            Origin::Shmat(_) => unsafe { libc::shmdt(self.ptr.as_ptr().cast()) },
            // SAFETY: `ptr` and `len` are the range mmap returned, unmapped only here, once; no
            // reference into the memory outlives the mapping.
            Origin::Mmap => unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) },
        };
        debug_assert_eq!(rc, 0, "unmapping failed");
    }
}

/// The size in bytes of the file `fd` (`fstat`'s `st_size`).
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let fd = ipckit::memfd::create("size", Default::default())?;
/// ipckit::mmap::truncate(fd.as_fd(), 12345)?;
/// assert_eq!(ipckit::mmap::file_size(fd.as_fd())?, 12345);
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`fstat(2)`](https://man7.org/linux/man-pages/man2/fstat.2.html).
pub fn file_size(fd: BorrowedFd<'_>) -> Result<u64> {
    Ok(u64::try_from(fstat(fd)?.st_size).unwrap_or(0))
}

/// `fstat` of `fd`.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    check(
        // SAFETY: fstat fills the whole stat that `st` points to.
        unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) },
        "fstat",
    )?;
    // SAFETY: fstat succeeded, so the kernel initialised `st`.
    Ok(unsafe { st.assume_init() })
}

/// Sets the size of the file `fd` to `len` bytes (`ftruncate`): new bytes read as zeros, and
/// bytes past a smaller size are gone. Errors: `EINVAL` (a size the file system refuses,
/// `fd` not open for writing), `EFBIG`, `EPERM` (a memfd sealed against growing or
/// shrinking).
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let fd = ipckit::memfd::create("grow", Default::default())?;
/// ipckit::mmap::truncate(fd.as_fd(), 4096)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`ftruncate(2)`](https://man7.org/linux/man-pages/man2/ftruncate.2.html).
#[doc(alias = "ftruncate")]
pub fn truncate(fd: BorrowedFd<'_>, len: u64) -> Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| Error::new(Errno::EFBIG, "ftruncate"))?;
    crate::interrupt::retry_eintr(|| {
        // SAFETY: ftruncate takes no pointers.
        let rc = unsafe { libc::ftruncate(fd.as_raw_fd(), len) };
        check(rc, "ftruncate")
    })
    .map(drop)
}

/// `CLOCK_MONOTONIC` now + `t`, saturating far in the future.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(clippy::unnecessary_cast)] // time_t and c_long are i64 on 64-bit targets only
fn deadline_after(t: Duration) -> Result<libc::timespec> {
    let mut now = MaybeUninit::<libc::timespec>::uninit();
    check(
        // SAFETY: clock_gettime writes a timespec to the pointer it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, now.as_mut_ptr()) },
        "clock_gettime",
    )?;
    // SAFETY: clock_gettime succeeded, so `now` is initialised.
    let now = unsafe { now.assume_init() };
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX / 2);
    let mut sec = (now.tv_sec as i64).saturating_add(secs);
    let mut nsec = now.tv_nsec as i64 + i64::from(t.subsec_nanos());
    if nsec >= 1_000_000_000 {
        nsec -= 1_000_000_000;
        sec = sec.saturating_add(1);
    }
    Ok(libc::timespec {
        tv_sec: sec as _,
        tv_nsec: nsec as _,
    })
}

/// One `FUTEX_WAIT_BITSET` (absolute `CLOCK_MONOTONIC` deadline; woken by `FUTEX_WAKE` as a
/// plain `FUTEX_WAIT` is, since the bitset matches every waker).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn futex_wait(word: &AtomicU32, expected: u32, deadline: Option<&libc::timespec>) -> Result<()> {
    let timeout = deadline.map_or(std::ptr::null(), |d| d as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 that outlives the call, and `timeout` is null or
    // points to a timespec that does; the kernel reads the word atomically and compares it with
    // `expected`; uaddr2 is ignored by FUTEX_WAIT_BITSET.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET,
            expected,
            timeout,
            std::ptr::null::<u32>(),
            libc::FUTEX_BITSET_MATCH_ANY,
        )
    };
    check(rc as i64, "futex").map(drop)
}

/// The waits of one word of one attachment for one value (see [`Mapping::wait_later`]). Each
/// wait holds its attachment (the line does not, so a line left behind keeps nothing mapped).
#[cfg(any(target_os = "linux", target_os = "android"))]
struct LineFutex {
    offset: usize,
    expected: u32,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Operation for LineFutex {
    type Input = Arc<Mapping>;
    type Output = WaitResult;

    fn run(
        &mut self,
        mapping: &Arc<Mapping>,
        deadline: Option<Instant>,
    ) -> Result<Served<WaitResult>> {
        let word = mapping.word(self.offset, "futex")?;
        let at = match deadline {
            Some(d) => Some(deadline_after(d.saturating_duration_since(Instant::now()))?),
            None => None,
        };
        let changed = |word: &AtomicU32| word.load(Ordering::SeqCst) != self.expected;
        // The caller saw `expected`: a word that changed since was woken, for every waiter.
        if changed(word) {
            return Ok(Served::All(WaitResult::Ok));
        }
        match futex_wait(word, self.expected, at.as_ref()) {
            Ok(()) if changed(word) => Ok(Served::All(WaitResult::Ok)),
            Ok(()) => Ok(Served::One(WaitResult::Ok)),
            Err(e) if e.errno() == Errno::EAGAIN => Ok(Served::All(WaitResult::Ok)),
            Err(e) if e.errno() == Errno::ETIMEDOUT => Ok(Served::TimedOut),
            Err(e) => Err(e),
        }
    }

    fn timed_out(&self) -> Result<WaitResult> {
        Ok(WaitResult::TimedOut)
    }

    /// A line serves one value of the word, and the next wait of a loop is for the next value
    /// (another line): a lingering thread would only hold a thread per value (a ping-pong of
    /// waits started a thread for each wait, ~150 µs, and kept them all for the linger).
    fn linger(&self) -> Duration {
        Duration::ZERO
    }
}
