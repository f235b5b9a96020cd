//! memfd: anonymous shared files (`memfd_create`) and their seals (`F_ADD_SEALS`,
//! `F_GET_SEALS`).
//!
//! A memfd is a file in memory with no name in any folder: it exists while some descriptor or
//! mapping refers to it, and reaches another process only as a descriptor (inherited by a
//! child, or sent over a UNIX socket with `SCM_RIGHTS`). Map it with
//! [`Mapping::map`](crate::mmap::Mapping::map), as a POSIX shared memory object.
//!
//! Seals are the point: once a memfd is sealed against writing, growing and shrinking, a
//! receiver that checks [`seals`] knows that the bytes it maps will never change under it,
//! whatever the sender does (seals can only be added, never removed).
//!
//! ```
//! # #[cfg(any(target_os = "linux", target_os = "android"))] {
//! use ipckit::memfd::{self, MemfdOptions, Seals};
//! use std::os::fd::AsFd;
//!
//! let fd = memfd::create("snapshot", MemfdOptions::default())?;
//! ipckit::mmap::truncate(fd.as_fd(), 4096)?;
//! memfd::add_seals(fd.as_fd(), Seals::WRITE | Seals::GROW | Seals::SHRINK | Seals::SEAL)?;
//! assert!(memfd::seals(fd.as_fd())?.contains(Seals::WRITE | Seals::SHRINK));
//! # }
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! On macOS, which has no memfd, every function fails with `ENOSYS` (syscall `memfd_create`
//! or `fcntl`).
//!
//! For more information, see [`memfd_create(2)`](https://man7.org/linux/man-pages/man2/memfd_create.2.html).

use std::ops::BitOr;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::os::fd::{BorrowedFd, OwnedFd};

#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::error::check;
use crate::error::{Errno, Error, Result};

/// The longest memfd name: 249 bytes (`NAME_MAX` less the `memfd:` prefix the kernel adds).
///
/// ```
/// assert_eq!(ipckit::memfd::NAME_MAX, 249);
/// ```
pub const NAME_MAX: usize = 249;

/// A set of seals (`F_SEAL_*`), as [`add_seals`] takes them and [`seals`] reports them.
///
/// ```
/// use ipckit::memfd::Seals;
/// let s = Seals::WRITE | Seals::SHRINK;
/// assert!(s.contains(Seals::WRITE) && !s.contains(Seals::GROW));
/// assert_eq!(Seals::from_bits(s.bits()), s);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Seals(u32);

impl Seals {
    /// No seal.
    pub const NONE: Seals = Seals(0);
    /// `F_SEAL_SEAL`: no seal can be added any more.
    pub const SEAL: Seals = Seals(0x0001);
    /// `F_SEAL_SHRINK`: the file cannot shrink, so no mapping of it can ever fault (`SIGBUS`).
    pub const SHRINK: Seals = Seals(0x0002);
    /// `F_SEAL_GROW`: the file cannot grow.
    pub const GROW: Seals = Seals(0x0004);
    /// `F_SEAL_WRITE`: the contents can no longer change (`write` and writable shared mappings
    /// fail with `EPERM`). Refused with `EBUSY` while a writable shared mapping exists, in any
    /// process.
    pub const WRITE: Seals = Seals(0x0008);
    /// `F_SEAL_FUTURE_WRITE` (Linux 5.1): no new writes through `write` or new mappings, while
    /// writable mappings that exist already keep writing (so it proves nothing to a receiver).
    pub const FUTURE_WRITE: Seals = Seals(0x0010);

    /// The bits, as `F_GET_SEALS` returns them.
    ///
    /// ```
    /// assert_eq!(ipckit::memfd::Seals::WRITE.bits(), 8); // F_SEAL_WRITE
    /// ```
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The set of the seals in `bits` that this type names; other bits are dropped.
    ///
    /// ```
    /// use ipckit::memfd::Seals;
    /// assert_eq!(Seals::from_bits(0x3 | 0x100), Seals::SEAL | Seals::SHRINK);
    /// ```
    pub const fn from_bits(bits: u32) -> Seals {
        Seals(bits & 0x1f)
    }

    /// Whether every seal of `other` is in this set.
    ///
    /// ```
    /// use ipckit::memfd::Seals;
    /// assert!((Seals::WRITE | Seals::GROW).contains(Seals::GROW));
    /// ```
    pub const fn contains(self, other: Seals) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Seals {
    type Output = Seals;
    fn bitor(self, rhs: Seals) -> Seals {
        Seals(self.0 | rhs.0)
    }
}

/// How [`create`] makes a memfd: close-on-exec always (`MFD_CLOEXEC`).
///
/// ```
/// assert!(ipckit::memfd::MemfdOptions::default().sealing);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemfdOptions {
    /// Allow seals (`MFD_ALLOW_SEALING`, the default); without it the memfd carries
    /// `F_SEAL_SEAL` from birth and can never be sealed.
    pub sealing: bool,
}

impl Default for MemfdOptions {
    fn default() -> Self {
        Self { sealing: true }
    }
}

/// Checks a memfd name (at most [`NAME_MAX`] bytes, no NUL; it only shows in
/// `/proc/<pid>/fd` as `/memfd:<name>`, and need not be unique).
fn check_name(name: &str) -> Result<std::ffi::CString> {
    if name.len() > NAME_MAX {
        return Err(Error::new(Errno::EINVAL, "memfd_create"));
    }
    std::ffi::CString::new(name).map_err(|_| Error::new(Errno::EINVAL, "memfd_create"))
}

/// Creates a memfd of size 0 (`memfd_create(MFD_CLOEXEC [| MFD_ALLOW_SEALING])`); size it with
/// [`truncate`](crate::mmap::truncate). Errors: `EINVAL` (a name longer than [`NAME_MAX`] or
/// holding a NUL), `EMFILE`, `ENFILE`, `ENOMEM`; `ENOSYS` where there is no memfd (macOS).
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let fd = ipckit::memfd::create("buffer", Default::default())?;
/// assert_eq!(ipckit::mmap::file_size(fd.as_fd())?, 0);
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`memfd_create(2)`](https://man7.org/linux/man-pages/man2/memfd_create.2.html).
#[doc(alias = "memfd_create")]
pub fn create(name: &str, options: MemfdOptions) -> Result<OwnedFd> {
    let c_name = check_name(name)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut flags = libc::MFD_CLOEXEC;
        if options.sealing {
            flags |= libc::MFD_ALLOW_SEALING;
        }
        // SAFETY: `c_name` is a valid C string; memfd_create copies it.
        let fd = check(
            unsafe { libc::memfd_create(c_name.as_ptr(), flags) },
            "memfd_create",
        )?;
        // SAFETY: memfd_create just returned this descriptor; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (c_name, options);
        Err(Error::new(Errno::ENOSYS, "memfd_create"))
    }
}

/// Adds `seals` to the memfd `fd` (`fcntl(F_ADD_SEALS)`; seals already there stay).
///
/// Errors: `EPERM` (the memfd carries `F_SEAL_SEAL`, or was made without sealing), `EBUSY`
/// (adding `F_SEAL_WRITE` while a writable shared mapping of it exists, in this process or
/// another: unmap those first), `EINVAL` (not a memfd), `EBADF`; `ENOSYS` on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::memfd::{self, Seals};
/// use std::os::fd::AsFd;
/// let fd = memfd::create("s", Default::default())?;
/// ipckit::mmap::truncate(fd.as_fd(), 4096)?;
/// let map = ipckit::mmap::Mapping::map(fd.as_fd(), 4096, false)?;
/// assert_eq!(memfd::add_seals(fd.as_fd(), Seals::WRITE).unwrap_err().code(), "EBUSY");
/// drop(map);
/// memfd::add_seals(fd.as_fd(), Seals::WRITE)?;
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html).
#[doc(alias = "F_ADD_SEALS")]
pub fn add_seals(fd: BorrowedFd<'_>, seals: Seals) -> Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let bits = libc::c_int::try_from(seals.bits()).unwrap_or(0);
        check(
            // SAFETY: F_ADD_SEALS takes an integer.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, bits) },
            "fcntl",
        )
        .map(drop)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (fd, seals);
        Err(Error::new(Errno::ENOSYS, "fcntl"))
    }
}

/// The seals of `fd` (`fcntl(F_GET_SEALS)`). Works on any file of the kernel's shared memory
/// (memfds, POSIX shared memory objects, whose seals are `F_SEAL_SEAL` alone); `EINVAL` for
/// anything else; `ENOSYS` on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::memfd::{self, MemfdOptions, Seals};
/// use std::os::fd::AsFd;
/// let open = memfd::create("s", MemfdOptions::default())?;
/// assert_eq!(memfd::seals(open.as_fd())?, Seals::NONE);
/// let fixed = memfd::create("s", MemfdOptions { sealing: false })?;
/// assert_eq!(memfd::seals(fixed.as_fd())?, Seals::SEAL);
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html).
#[doc(alias = "F_GET_SEALS")]
pub fn seals(fd: BorrowedFd<'_>) -> Result<Seals> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: F_GET_SEALS takes no argument.
        let bits = check(
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) },
            "fcntl",
        )?;
        Ok(Seals::from_bits(u32::try_from(bits).unwrap_or(0)))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        Err(Error::new(Errno::ENOSYS, "fcntl"))
    }
}

/// Maps `len` bytes of the memfd `fd` read-only, in a way that does not hold back
/// [`Seals::WRITE`]: through a read-only descriptor of the same file (opened from
/// `/proc/self/fd`, then closed). A shared mapping made through a read-write descriptor counts
/// as writable when the kernel checks for `F_SEAL_WRITE`, even without `PROT_WRITE` (it could
/// be made writable with `mprotect`), so the seal would fail with `EBUSY` while it exists.
/// Errors: those of [`Mapping::map`](crate::mmap::Mapping::map), and `ENOENT` without `/proc`.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use ipckit::memfd::{self, Seals};
/// use std::os::fd::AsFd;
/// let fd = memfd::create("ro", Default::default())?;
/// ipckit::mmap::truncate(fd.as_fd(), 4096)?;
/// let ro = memfd::map_readonly(fd.as_fd(), 4096)?;
/// memfd::add_seals(fd.as_fd(), Seals::WRITE)?; // not refused: `ro` cannot write
/// assert!(ro.is_readonly());
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn map_readonly(fd: BorrowedFd<'_>, len: usize) -> Result<crate::mmap::Mapping> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        let path = std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|_| Error::new(Errno::EBADF, "open"))?;
        // SAFETY: `path` is a valid C string; open copies it.
        let ro = check(
            unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) },
            "open",
        )?;
        // SAFETY: open just returned this descriptor; nothing else owns it.
        let ro = unsafe { OwnedFd::from_raw_fd(ro) };
        crate::mmap::Mapping::map(ro.as_fd(), len, true)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (fd, len);
        Err(Error::new(Errno::ENOSYS, "memfd_create"))
    }
}

/// What [`inspect`] found out about a descriptor received from elsewhere.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let fd = ipckit::memfd::create("i", Default::default())?;
/// let seen = ipckit::memfd::inspect(fd.as_fd())?;
/// assert_eq!((seen.size, seen.seals, seen.writable), (0, ipckit::memfd::Seals::NONE, true));
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inspected {
    /// Size in bytes.
    pub size: u64,
    /// Its seals.
    pub seals: Seals,
    /// Whether the descriptor is open for writing (`O_RDWR`); a read-only one maps read-only.
    pub writable: bool,
}

/// Checks that `fd` is a file of the kernel's shared memory (a memfd or a POSIX shared memory
/// object: a regular file whose seals can be read) and says how it can be mapped: its size,
/// seals and access mode. Errors: `EINVAL` (syscall `fcntl`) for any other descriptor (a
/// regular file on disk, a pipe, a socket), `EBADF`; `ENOSYS` on macOS.
///
/// ```
/// # #[cfg(any(target_os = "linux", target_os = "android"))] {
/// use std::os::fd::AsFd;
/// let fd = ipckit::memfd::create("x", Default::default())?;
/// ipckit::mmap::truncate(fd.as_fd(), 10)?;
/// let info = ipckit::memfd::inspect(fd.as_fd())?;
/// assert_eq!((info.size, info.writable), (10, true));
/// let (r, _w) = ipckit::pipe::pipe()?;
/// assert_eq!(ipckit::memfd::inspect(r.as_fd()).unwrap_err().code(), "EINVAL");
/// # }
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn inspect(fd: BorrowedFd<'_>) -> Result<Inspected> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let st = crate::mmap::fstat(fd)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Error::new(Errno::EINVAL, "fcntl"));
        }
        let seals = seals(fd)?;
        // SAFETY: F_GETFL takes no argument.
        let flags = check(
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) },
            "fcntl",
        )?;
        Ok(Inspected {
            size: u64::try_from(st.st_size).unwrap_or(0),
            seals,
            writable: flags & libc::O_ACCMODE == libc::O_RDWR,
        })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        Err(Error::new(Errno::ENOSYS, "fcntl"))
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use crate::mmap::{truncate, Mapping};
    use std::os::fd::AsRawFd;

    fn sized(size: u64) -> OwnedFd {
        let fd = create("test", MemfdOptions::default()).unwrap();
        truncate(fd.as_fd(), size).unwrap();
        fd
    }

    #[test]
    fn write_seal_needs_no_writable_mapping_then_forbids_writes() {
        let fd = sized(4096);
        let rw = Mapping::map(fd.as_fd(), 4096, false).unwrap();
        rw.write(0, b"snapshot").unwrap();
        let e = add_seals(fd.as_fd(), Seals::WRITE).unwrap_err();
        assert_eq!((e.errno(), e.syscall()), (Errno::EBUSY, "fcntl"));
        drop(rw);
        // A PROT_READ mapping through the read-write descriptor still counts as writable.
        let through_rw = Mapping::map(fd.as_fd(), 4096, true).unwrap();
        let e = add_seals(fd.as_fd(), Seals::WRITE).unwrap_err();
        assert_eq!(e.errno(), Errno::EBUSY);
        drop(through_rw);
        let ro = map_readonly(fd.as_fd(), 4096).unwrap();
        add_seals(fd.as_fd(), Seals::WRITE | Seals::SHRINK | Seals::GROW).unwrap();
        let e = Mapping::map(fd.as_fd(), 4096, false).unwrap_err();
        assert_eq!((e.errno(), e.syscall()), (Errno::EPERM, "mmap"));
        // SAFETY: a write of one byte from a valid buffer.
        let rc = unsafe { libc::write(fd.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        assert_eq!((rc, Errno::last()), (-1, Errno::EPERM));
        assert_eq!(truncate(fd.as_fd(), 0).unwrap_err().errno(), Errno::EPERM);
        assert_eq!(
            truncate(fd.as_fd(), 8192).unwrap_err().errno(),
            Errno::EPERM
        );
        let mut out = [0u8; 8];
        ro.read(0, &mut out).unwrap();
        assert_eq!(&out, b"snapshot");
        let s = seals(fd.as_fd()).unwrap();
        assert_eq!(s, Seals::WRITE | Seals::SHRINK | Seals::GROW);
        add_seals(fd.as_fd(), Seals::SEAL).unwrap();
        let e = add_seals(fd.as_fd(), Seals::FUTURE_WRITE).unwrap_err();
        assert_eq!(e.errno(), Errno::EPERM);
    }

    #[test]
    fn unsealable_memfd_and_names() {
        let fd = create("", MemfdOptions { sealing: false }).unwrap();
        assert_eq!(seals(fd.as_fd()).unwrap(), Seals::SEAL);
        assert_eq!(
            add_seals(fd.as_fd(), Seals::WRITE).unwrap_err().errno(),
            Errno::EPERM
        );
        let longest = "n".repeat(NAME_MAX);
        create(&longest, MemfdOptions::default()).unwrap();
        let e = create(&format!("{longest}n"), MemfdOptions::default()).unwrap_err();
        assert_eq!((e.errno(), e.syscall()), (Errno::EINVAL, "memfd_create"));
        let e = create("a\0b", MemfdOptions::default()).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
    }

    #[test]
    fn inspect_tells_shared_memory_from_other_files() {
        let fd = sized(100);
        let dup = crate::socket::duplicate(fd.as_fd()).unwrap();
        assert_eq!(
            inspect(dup.as_fd()).unwrap(),
            Inspected {
                size: 100,
                seals: Seals::NONE,
                writable: true
            }
        );
        // A regular file on disk (this crate's folder, not a tmpfs) has no seals.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("ipckit-memfd-test-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let e = inspect(file.as_fd());
        std::fs::remove_file(&path).unwrap();
        assert_eq!(e.unwrap_err().errno(), Errno::EINVAL);
        let (a, _b) = crate::socket::socketpair(crate::socket::Kind::Stream).unwrap();
        assert_eq!(inspect(a.as_fd()).unwrap_err().errno(), Errno::EINVAL);
        let ro = std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        let info = inspect(ro.as_fd()).unwrap();
        assert!(!info.writable);
    }
}
