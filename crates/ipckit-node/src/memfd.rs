//! memfd for JavaScript: value conversion over [`ipckit::memfd`].
//!
//! The descriptor crosses to JavaScript as a plain number that the TypeScript layer owns;
//! seals cross as their names (`'seal'`, `'shrink'`, `'grow'`, `'write'`, `'future-write'`); a
//! mapping is the same [`ShmMapping`] object as a System V attachment.

use std::os::fd::{AsFd, IntoRawFd};

use ipckit::memfd::{self, MemfdOptions, Seals};
use ipckit::mmap::{self, Mapping};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
use crate::shm::ShmMapping;

const NAMES: [(&str, Seals); 5] = [
    ("seal", Seals::SEAL),
    ("shrink", Seals::SHRINK),
    ("grow", Seals::GROW),
    ("write", Seals::WRITE),
    ("future-write", Seals::FUTURE_WRITE),
];

fn seal_names(seals: Seals) -> Vec<String> {
    NAMES
        .iter()
        .filter(|(_, s)| seals.contains(*s))
        .map(|(n, _)| (*n).to_owned())
        .collect()
}

fn seals_of(names: &[String]) -> Result<Seals> {
    names.iter().try_fold(Seals::NONE, |acc, name| {
        NAMES
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| acc | *s)
            .ok_or_else(|| Error::new(Status::InvalidArg, format!("unknown seal '{name}'")))
    })
}

/// `memfd_create(MFD_CLOEXEC [| MFD_ALLOW_SEALING])` then `ftruncate` to `size`: the
/// descriptor, which the caller owns (closed again if sizing fails).
#[napi]
pub fn memfd_create(env: &Env, name: String, size: f64, sealing: bool) -> Result<i32> {
    let fd = memfd::create(&name, MemfdOptions { sealing }).or_throw(env)?;
    mmap::truncate(fd.as_fd(), size as u64).or_throw(env)?;
    Ok(fd.into_raw_fd())
}

/// What a received descriptor is: its size, seals and whether it is open for writing.
#[napi(object)]
pub struct MemfdInfo {
    pub size: f64,
    pub seals: Vec<String>,
    pub writable: bool,
}

/// Checks that `fd` is a file of the kernel's shared memory (`EINVAL` otherwise).
#[napi]
pub fn memfd_inspect(env: &Env, fd: i32) -> Result<MemfdInfo> {
    let info = crate::uv::with_fd(fd, memfd::inspect).or_throw(env)?;
    Ok(MemfdInfo {
        size: info.size as f64,
        seals: seal_names(info.seals),
        writable: info.writable,
    })
}

/// `fcntl(F_ADD_SEALS)`.
#[napi]
pub fn memfd_add_seals(env: &Env, fd: i32, seals: Vec<String>) -> Result<()> {
    let seals = seals_of(&seals)?;
    crate::uv::with_fd(fd, |fd| memfd::add_seals(fd, seals)).or_throw(env)
}

/// `fcntl(F_GET_SEALS)`, as names.
#[napi]
pub fn memfd_seals(env: &Env, fd: i32) -> Result<Vec<String>> {
    crate::uv::with_fd(fd, memfd::seals)
        .map(seal_names)
        .or_throw(env)
}

/// `ftruncate`.
#[napi]
pub fn memfd_truncate(env: &Env, fd: i32, size: f64) -> Result<()> {
    crate::uv::with_fd(fd, |fd| mmap::truncate(fd, size as u64)).or_throw(env)
}

/// Maps `size` bytes: read-write through `fd`, or read-only through a read-only descriptor of
/// the same file (which does not hold back `F_SEAL_WRITE`).
#[napi]
pub fn memfd_map(env: &Env, fd: i32, size: f64, readonly: bool) -> Result<ShmMapping> {
    let mapping = if readonly {
        crate::uv::with_fd(fd, |fd| memfd::map_readonly(fd, size as usize))
    } else {
        crate::uv::with_fd(fd, |fd| Mapping::map(fd, size as usize, false))
    };
    Ok(ShmMapping::new(mapping.or_throw(env)?))
}

/// Maps the `len` bytes of the file `fd` at `offset` twice, back to back, read-write (a
/// channel ring's data, in which a message that wraps around the ring's end is contiguous);
/// see `ipckit::mmap::Mapping::map_mirrored`. `EINVAL` where `offset` or `len` is not a
/// multiple of the page size.
#[napi]
pub fn mirror_map(env: &Env, fd: i32, offset: f64, len: f64) -> Result<ShmMapping> {
    if !(offset >= 0.0 && len > 0.0 && offset.fract() == 0.0 && len.fract() == 0.0) {
        return Err(crate::error::sys_error(
            env,
            ipckit::Error::new(ipckit::Errno::EINVAL, "mmap"),
        ));
    }
    let mapping = crate::uv::with_fd(fd, |fd| {
        Mapping::map_mirrored(fd, offset as u64, len as usize)
    });
    Ok(ShmMapping::new(mapping.or_throw(env)?))
}
