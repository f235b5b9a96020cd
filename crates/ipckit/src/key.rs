//! System V IPC keys: [`ftok`] and [`IPC_PRIVATE`].

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Errno, Error, Result};

/// A System V IPC key, as `key_t` holds it (a signed 32-bit integer).
pub type Key = i32;

/// The key that always creates a new object, `create` or not.
pub const IPC_PRIVATE: Key = libc::IPC_PRIVATE;

/// Builds a System V key from an existing file and a project id, exactly as the C library's
/// `ftok(3)` does (glibc: low 16 bits of the inode, low 8 bits of the device, low 8 bits of
/// `project_id`).
///
/// Fails with the errno of `stat(2)` (`ENOENT`, `EACCES`, ...) and reports `ftok` as the call.
/// A NUL byte inside `path` fails with `EINVAL`.
///
/// ```
/// let key = ipckit::key::ftok("/", 1).unwrap();
/// assert_eq!((key as u32) >> 24, 1);
/// ```
///
/// For more information, see [`ftok(3)`](https://man7.org/linux/man-pages/man3/ftok.3.html).
pub fn ftok(path: impl AsRef<Path>, project_id: u8) -> Result<Key> {
    let path = CString::new(path.as_ref().as_os_str().as_bytes())
        .map_err(|_| Error::new(Errno::EINVAL, "ftok"))?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    let key = unsafe { libc::ftok(path.as_ptr(), libc::c_int::from(project_id)) };
    if key == -1 {
        Err(Error::last("ftok"))
    } else {
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn matches_the_glibc_formula() {
        let meta = std::fs::metadata("/").unwrap();
        let key = ftok("/", 0x5a).unwrap() as u32;
        let expected =
            (meta.ino() as u32 & 0xffff) | ((meta.dev() as u32 & 0xff) << 16) | (0x5a << 24);
        assert_eq!(key, expected);
    }

    #[test]
    fn missing_file_is_enoent() {
        let e = ftok("/definitely/not/here", 1).unwrap_err();
        assert_eq!(e.errno(), Errno::ENOENT);
        assert_eq!(e.syscall(), "ftok");
    }
}
