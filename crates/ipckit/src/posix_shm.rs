//! POSIX shared memory: `shm_open`, `ftruncate`, `mmap`, `shm_unlink`.
//!
//! A POSIX shared memory object is a file with a name of the form `/somename` (on Linux, a file
//! of the `tmpfs` mounted at `/dev/shm`). [`open`] opens or creates it and gives an owned,
//! close-on-exec descriptor; [`Mapping::map`](crate::mmap::Mapping::map) maps it, with the same
//! copies, atomic loads and futex wait/wake as a System V segment; [`unlink`] removes the name
//! (the object lives on while some process has it open or mapped).
//!
//! ```
//! use ipckit::posix_shm::{self, OpenOptions};
//! use ipckit::mmap::Mapping;
//! use std::os::fd::AsFd;
//!
//! let name = format!("/ipckit-doc-{}", std::process::id());
//! let obj = posix_shm::open(&name, OpenOptions { size: 4096, create: true, ..Default::default() })?;
//! assert_eq!((obj.created, obj.size), (true, 4096));
//! let map = Mapping::map(obj.fd.as_fd(), 4096, false)?;
//! map.write(0, b"hello")?;
//! posix_shm::unlink(&name)?; // the mapping keeps working
//! # Ok::<(), ipckit::Error>(())
//! ```
//!
//! For more information, see [`shm_overview(7)`](https://man7.org/linux/man-pages/man7/shm_overview.7.html).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{check, Errno, Error, Result};

/// The longest name: on Linux, `NAME_MAX` (255) bytes after the leading slash (the name is a
/// file of `/dev/shm`); on macOS, `PSHMNAMLEN` (31) bytes in all.
///
/// ```
/// assert!(ipckit::posix_shm::NAME_MAX >= 31);
/// ```
#[cfg(not(target_vendor = "apple"))]
pub const NAME_MAX: usize = 255;
/// The longest name: on Linux, `NAME_MAX` (255) bytes after the leading slash (the name is a
/// file of `/dev/shm`); on macOS, `PSHMNAMLEN` (31) bytes in all.
#[cfg(target_vendor = "apple")]
pub const NAME_MAX: usize = 31;

/// Checks a name as `shm_overview(7)` describes it (one leading slash, then 1 to
/// [`NAME_MAX`] bytes, none of them a slash or NUL, and neither `.` nor `..`) and returns it
/// as a C string. Errors: `EINVAL` (naming `syscall`), `ENAMETOOLONG`.
///
/// ```
/// use ipckit::posix_shm::check_name;
/// assert!(check_name("/app", "shm_open").is_ok());
/// for bad in ["app", "/", "//app", "/a/b", "/..", "/a\0b"] {
///     assert_eq!(check_name(bad, "shm_open").unwrap_err().code(), "EINVAL");
/// }
/// assert_eq!(check_name(&format!("/{}", "x".repeat(300)), "shm_open").unwrap_err().code(), "ENAMETOOLONG");
/// ```
pub fn check_name(name: &str, syscall: &'static str) -> Result<CString> {
    let invalid = Error::new(Errno::EINVAL, syscall);
    let rest = name.strip_prefix('/').ok_or(invalid)?;
    if rest.is_empty() || rest == "." || rest == ".." || rest.contains('/') {
        return Err(invalid);
    }
    let len = if cfg!(target_vendor = "apple") {
        name.len()
    } else {
        rest.len()
    };
    if len > NAME_MAX {
        return Err(Error::new(Errno::ENAMETOOLONG, syscall));
    }
    CString::new(name).map_err(|_| invalid)
}

/// How [`open`] finds or creates the object.
///
/// ```
/// let opts = ipckit::posix_shm::OpenOptions { size: 4096, create: true, ..Default::default() };
/// assert_eq!((opts.mode, opts.readonly), (0o600, false));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// Size in bytes of an object this call creates (its bytes are reserved on Linux, see
    /// [`open`]). Opening an existing object, a larger size fails with `EINVAL` and 0 accepts
    /// any size.
    pub size: u64,
    /// Create the object if the name has none (`O_CREAT`).
    pub create: bool,
    /// Fail with `EEXIST` if the name has an object already (`O_CREAT | O_EXCL`).
    pub exclusive: bool,
    /// Open for reading only (`O_RDONLY`, read permission is enough); cannot create.
    pub readonly: bool,
    /// Permission bits of a created object, set exactly (the umask does not apply).
    pub mode: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            size: 0,
            create: false,
            exclusive: false,
            readonly: false,
            mode: 0o600,
        }
    }
}

/// An object [`open`] opened: its descriptor (close-on-exec), whether this call created it,
/// and its size in bytes.
///
/// ```
/// # use ipckit::posix_shm::{self, OpenOptions};
/// # let name = format!("/ipckit-doc-opened-{}", std::process::id());
/// let opened = posix_shm::open(&name, OpenOptions { size: 1, exclusive: true, ..Default::default() })?;
/// assert!(opened.created);
/// drop(opened.fd); // closes it; the object stays until unlinked
/// # posix_shm::unlink(&name)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Debug)]
pub struct Opened {
    /// The descriptor, open read-write or (with `readonly`) read-only.
    pub fd: OwnedFd,
    /// Whether this call created the object.
    pub created: bool,
    /// Its size in bytes (`st_size`).
    pub size: u64,
}

/// The state of an object, from `fstat` of its descriptor.
///
/// ```
/// # use ipckit::posix_shm::{self, OpenOptions};
/// # use std::os::fd::AsFd;
/// # let name = format!("/ipckit-doc-stat-{}", std::process::id());
/// let obj = posix_shm::open(&name, OpenOptions { size: 64, create: true, mode: 0o640, ..Default::default() })?;
/// let st = posix_shm::stat(obj.fd.as_fd())?;
/// assert_eq!((st.size, st.mode), (64, 0o640));
/// # posix_shm::unlink(&name)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectStat {
    /// Size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
}

/// Opens or creates the POSIX shared memory object `name` (`shm_open`; the name is checked
/// first, see [`check_name`]). The descriptor is close-on-exec.
///
/// With `create` (and not `exclusive`), the call first tries to create the object
/// (`O_CREAT | O_EXCL`) and opens it otherwise, so [`Opened::created`] tells which happened.
/// An object this call creates gets exactly `mode` (`fchmod`: the umask does not apply) and
/// `size` bytes of zeros. On Linux those bytes are reserved (`fallocate`), so that a `/dev/shm`
/// too small for them fails here with `ENOSPC` instead of raising `SIGBUS` in whoever touches
/// a page that has no room; if that fails, the object is removed again.
///
/// Errors: `EINVAL` (a bad name, `readonly` with `create`, an existing object smaller than
/// `size`), `ENAMETOOLONG`, `ENOENT` (no object and no `create`), `EEXIST` (`exclusive`),
/// `EACCES`, `ENOSPC`, `EFBIG`, `EMFILE`, `ENFILE`.
///
/// ```
/// use ipckit::posix_shm::{self, OpenOptions};
/// let name = format!("/ipckit-doc-open-{}", std::process::id());
/// assert_eq!(posix_shm::open(&name, OpenOptions::default()).unwrap_err().code(), "ENOENT");
/// let a = posix_shm::open(&name, OpenOptions { size: 100, create: true, ..Default::default() })?;
/// let b = posix_shm::open(&name, OpenOptions { create: true, ..Default::default() })?;
/// assert_eq!((a.created, b.created, b.size), (true, false, 100));
/// let big = OpenOptions { size: 101, ..Default::default() };
/// assert_eq!(posix_shm::open(&name, big).unwrap_err().code(), "EINVAL");
/// posix_shm::unlink(&name)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`shm_open(3)`](https://man7.org/linux/man-pages/man3/shm_open.3.html).
#[doc(alias = "shm_open")]
pub fn open(name: &str, options: OpenOptions) -> Result<Opened> {
    let c_name = check_name(name, "shm_open")?;
    let wants_create = options.create || options.exclusive;
    if options.readonly && wants_create {
        return Err(Error::new(Errno::EINVAL, "shm_open"));
    }
    let access = if options.readonly {
        libc::O_RDONLY
    } else {
        libc::O_RDWR
    };
    // An object that is unlinked between a failed exclusive create and the plain open is
    // created on the next turn; a name that keeps flipping gives up after a while.
    let mut turns = 0;
    let (fd, created) = loop {
        if wants_create {
            match raw_open(&c_name, access | libc::O_CREAT | libc::O_EXCL, 0) {
                Ok(fd) => break (fd, true),
                Err(e) if e.errno() == Errno::EEXIST && !options.exclusive => {}
                Err(e) => return Err(e),
            }
        }
        match raw_open(&c_name, access, 0) {
            Ok(fd) => break (fd, false),
            Err(e) if e.errno() == Errno::ENOENT && wants_create && turns < 100 => turns += 1,
            Err(e) => return Err(e),
        }
    };
    if created {
        if let Err(e) = initialise(fd.as_fd(), options) {
            // SAFETY: `c_name` is a valid C string; this call made the object under it.
            unsafe { libc::shm_unlink(c_name.as_ptr()) };
            return Err(e);
        }
    }
    let size = crate::mmap::file_size(fd.as_fd())?;
    if !created && size < options.size {
        return Err(Error::new(Errno::EINVAL, "shm_open"));
    }
    Ok(Opened { fd, created, size })
}

/// `shm_open` itself, with an owned descriptor; close-on-exec everywhere.
fn raw_open(name: &CString, flags: libc::c_int, mode: libc::mode_t) -> Result<OwnedFd> {
    #[cfg(not(target_vendor = "apple"))]
    // SAFETY: `name` is a valid C string; shm_open copies it. (glibc and musl add
    // O_CLOEXEC themselves; passing it is harmless.)
    let fd = unsafe { libc::shm_open(name.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    #[cfg(target_vendor = "apple")]
    // SAFETY: as above; Apple declares shm_open variadic, with the mode as an unsigned int.
    let fd = unsafe { libc::shm_open(name.as_ptr(), flags, libc::c_uint::from(mode)) };
    let fd = check(fd, "shm_open")?;
    // SAFETY: shm_open just returned this descriptor; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    #[cfg(target_vendor = "apple")]
    {
        use std::os::fd::AsFd;
        crate::pipe::set_cloexec(fd.as_fd())?;
    }
    Ok(fd)
}

/// The mode and size of an object this process just created.
fn initialise(fd: BorrowedFd<'_>, options: OpenOptions) -> Result<()> {
    let mode = (options.mode & 0o7777) as libc::mode_t;
    // SAFETY: fchmod takes no pointers.
    let rc = unsafe { libc::fchmod(fd.as_raw_fd(), mode) };
    check(rc, "fchmod")?;
    if options.size == 0 {
        return Ok(());
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let len = libc::off_t::try_from(options.size)
            .map_err(|_| Error::new(Errno::EFBIG, "fallocate"))?;
        let rc = crate::interrupt::retry_eintr(|| {
            // SAFETY: fallocate takes no pointers; mode 0 allocates and extends the file size.
            let rc = unsafe { libc::fallocate(fd.as_raw_fd(), 0, 0, len) };
            check(rc, "fallocate")
        });
        match rc {
            Ok(_) => return Ok(()),
            // A file system without fallocate: size it without reserving.
            Err(e) if e.errno() == Errno::EOPNOTSUPP => {}
            Err(e) => return Err(e),
        }
    }
    crate::mmap::truncate(fd, options.size)
}

/// Removes the name `name` (`shm_unlink`): later opens no longer find it, and the object goes
/// away once no process has it open or mapped. Errors: `ENOENT`, `EACCES`, `EINVAL`,
/// `ENAMETOOLONG`.
///
/// ```
/// let name = format!("/ipckit-doc-unlink-{}", std::process::id());
/// assert_eq!(ipckit::posix_shm::unlink(&name).unwrap_err().code(), "ENOENT");
/// ```
///
/// For more information, see [`shm_unlink(3)`](https://man7.org/linux/man-pages/man3/shm_unlink.3.html).
#[doc(alias = "shm_unlink")]
pub fn unlink(name: &str) -> Result<()> {
    let c_name = check_name(name, "shm_unlink")?;
    // SAFETY: `c_name` is a valid C string; shm_unlink only reads it.
    check(unsafe { libc::shm_unlink(c_name.as_ptr()) }, "shm_unlink").map(drop)
}

/// Removes the name `name` only if it still names the object open as `fd` (same device and
/// inode), so that a handle never removes an object someone made under the name after its own
/// was removed; fails with `ENOENT` (syscall `shm_unlink`) otherwise. Where this process may
/// not open the name to compare (`EACCES`), it removes the name as [`unlink`] does.
///
/// ```
/// use ipckit::posix_shm::{self, OpenOptions};
/// use std::os::fd::AsFd;
/// let name = format!("/ipckit-doc-same-{}", std::process::id());
/// let old = posix_shm::open(&name, OpenOptions { size: 8, create: true, ..Default::default() })?;
/// posix_shm::unlink(&name)?;
/// let new = posix_shm::open(&name, OpenOptions { size: 8, create: true, ..Default::default() })?;
/// let e = posix_shm::unlink_if_same(&name, old.fd.as_fd()).unwrap_err();
/// assert_eq!(e.code(), "ENOENT"); // the new object keeps its name
/// posix_shm::unlink_if_same(&name, new.fd.as_fd())?;
/// # Ok::<(), ipckit::Error>(())
/// ```
pub fn unlink_if_same(name: &str, fd: BorrowedFd<'_>) -> Result<()> {
    let c_name = check_name(name, "shm_unlink")?;
    let mine = crate::mmap::fstat(fd)?;
    match raw_open(&c_name, libc::O_RDONLY, 0) {
        Ok(now) => {
            let theirs = crate::mmap::fstat(now.as_fd())?;
            if (theirs.st_dev, theirs.st_ino) != (mine.st_dev, mine.st_ino) {
                return Err(Error::new(Errno::ENOENT, "shm_unlink"));
            }
        }
        Err(e) if e.errno() == Errno::EACCES => {}
        Err(e) if e.errno() == Errno::ENOENT => {
            return Err(Error::new(Errno::ENOENT, "shm_unlink"))
        }
        Err(e) => return Err(e),
    }
    // SAFETY: `c_name` is a valid C string; shm_unlink only reads it.
    check(unsafe { libc::shm_unlink(c_name.as_ptr()) }, "shm_unlink").map(drop)
}

/// Size, mode and owner of the object open as `fd` (`fstat`).
///
/// ```
/// # use ipckit::posix_shm::{self, OpenOptions};
/// # use std::os::fd::AsFd;
/// # let name = format!("/ipckit-doc-fstat-{}", std::process::id());
/// let obj = posix_shm::open(&name, OpenOptions { size: 10, create: true, ..Default::default() })?;
/// assert_eq!(posix_shm::stat(obj.fd.as_fd())?.size, 10);
/// # posix_shm::unlink(&name)?;
/// # Ok::<(), ipckit::Error>(())
/// ```
///
/// For more information, see [`fstat(2)`](https://man7.org/linux/man-pages/man2/fstat.2.html).
// The field types of `stat` differ between C libraries; the casts are no-ops on some.
#[allow(clippy::unnecessary_cast)]
pub fn stat(fd: BorrowedFd<'_>) -> Result<ObjectStat> {
    let st = crate::mmap::fstat(fd)?;
    Ok(ObjectStat {
        size: u64::try_from(st.st_size).unwrap_or(0),
        mode: (st.st_mode as u32) & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmap::Mapping;

    /// A unique name, unlinked when dropped.
    struct Name(String);
    impl Name {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            Self(format!("/ipckit-t-{tag}-{}-{n}", std::process::id()))
        }
    }
    impl Drop for Name {
        fn drop(&mut self) {
            let _ = unlink(&self.0);
        }
    }

    fn create(name: &Name, size: u64) -> Opened {
        open(
            &name.0,
            OpenOptions {
                size,
                create: true,
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn two_opens_share_bytes_and_unlink_keeps_mappings() {
        let name = Name::new("share");
        let a = create(&name, 10_000);
        let b = open(&name.0, OpenOptions::default()).unwrap();
        assert_eq!((a.created, b.created, b.size), (true, false, 10_000));
        let ma = Mapping::map(a.fd.as_fd(), 10_000, false).unwrap();
        let mb = Mapping::map(b.fd.as_fd(), 10_000, true).unwrap();
        ma.write(9_990, b"0123456789").unwrap();
        let mut out = [0u8; 10];
        mb.read(9_990, &mut out).unwrap();
        assert_eq!(&out, b"0123456789");
        assert_eq!(mb.write(0, b"x").unwrap_err().errno(), Errno::EACCES);
        drop((a, b));
        unlink(&name.0).unwrap();
        ma.write(0, b"after").unwrap();
        mb.read(0, &mut out[..5]).unwrap();
        assert_eq!(&out[..5], b"after");
        assert_eq!(
            open(&name.0, OpenOptions::default()).unwrap_err().errno(),
            Errno::ENOENT
        );
    }

    #[test]
    fn exact_mode_and_exclusive() {
        let name = Name::new("mode");
        // SAFETY: umask only changes this process's mask; restored below.
        let old = unsafe { libc::umask(0o077) };
        let made = open(
            &name.0,
            OpenOptions {
                size: 16,
                exclusive: true,
                mode: 0o664,
                ..Default::default()
            },
        );
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let made = made.unwrap();
        assert_eq!(stat(made.fd.as_fd()).unwrap().mode, 0o664);
        let again = open(
            &name.0,
            OpenOptions {
                exclusive: true,
                ..Default::default()
            },
        );
        assert_eq!(again.unwrap_err().errno(), Errno::EEXIST);
    }

    #[test]
    fn readonly_cannot_create_and_maps_read_only() {
        let name = Name::new("ro");
        let ro_create = OpenOptions {
            create: true,
            readonly: true,
            ..Default::default()
        };
        assert_eq!(open(&name.0, ro_create).unwrap_err().errno(), Errno::EINVAL);
        create(&name, 64);
        let ro = open(
            &name.0,
            OpenOptions {
                readonly: true,
                ..Default::default()
            },
        )
        .unwrap();
        let e = Mapping::map(ro.fd.as_fd(), 64, false).unwrap_err();
        assert_eq!((e.errno(), e.syscall()), (Errno::EACCES, "mmap"));
        Mapping::map(ro.fd.as_fd(), 64, true).unwrap();
    }

    #[test]
    fn sizes_zero_too_large_and_shrunk() {
        let name = Name::new("size");
        let empty = create(&name, 0);
        assert_eq!(empty.size, 0);
        let e = Mapping::map(empty.fd.as_fd(), 1, false).unwrap_err();
        assert_eq!((e.errno(), e.syscall()), (Errno::EINVAL, "mmap"));
        crate::mmap::truncate(empty.fd.as_fd(), 4096).unwrap();
        let map = Mapping::map(empty.fd.as_fd(), 4096, false);
        assert!(map.is_ok());
        crate::mmap::truncate(empty.fd.as_fd(), 100).unwrap();
        let e = Mapping::map(empty.fd.as_fd(), 4096, false).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL, "a file smaller than the mapping");
    }

    #[test]
    fn bad_names_fail_before_any_call() {
        for bad in ["", "x", "/", "//x", "/x/", "/.", "/..", "/a\0"] {
            let e = open(bad, OpenOptions::default()).unwrap_err();
            assert_eq!(
                (e.errno(), e.syscall()),
                (Errno::EINVAL, "shm_open"),
                "{bad:?}"
            );
        }
        let long = format!("/{}", "n".repeat(NAME_MAX + 1));
        assert_eq!(unlink(&long).unwrap_err().errno(), Errno::ENAMETOOLONG);
        let longest = Name(format!("/{}", "n".repeat(NAME_MAX)));
        #[cfg(not(target_vendor = "apple"))]
        assert!(open(
            &longest.0,
            OpenOptions {
                create: true,
                ..Default::default()
            }
        )
        .is_ok());
        drop(longest);
    }

    #[test]
    #[cfg_attr(
        not(any(target_os = "linux", target_os = "android")),
        ignore = "/dev/shm and fallocate are Linux's"
    )]
    fn a_size_beyond_dev_shm_fails_with_enospc_and_leaves_no_name() {
        let name = Name::new("huge");
        // 1 PiB: more than any /dev/shm holds.
        let e = open(
            &name.0,
            OpenOptions {
                size: 1 << 50,
                create: true,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e.errno(), Errno::ENOSPC | Errno::EFBIG), "{e}");
        assert_eq!(
            open(&name.0, OpenOptions::default()).unwrap_err().errno(),
            Errno::ENOENT
        );
    }
}
