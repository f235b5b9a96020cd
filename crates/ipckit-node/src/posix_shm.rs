//! POSIX shared memory for JavaScript: value conversion over [`ipckit::posix_shm`].
//!
//! The descriptor crosses to JavaScript as a plain number that the TypeScript layer owns (it
//! closes it); a mapping is the same [`ShmMapping`] object as a System V attachment, so views,
//! copies and futex waits work alike.

use std::os::fd::IntoRawFd;

use ipckit::mmap::Mapping;
use ipckit::posix_shm::{self, OpenOptions};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;
use crate::shm::ShmMapping;

/// An object `shm_open` opened: its descriptor (the caller owns it), whether this call created
/// it, and its size.
#[napi(object)]
pub struct PosixShmOpened {
    pub fd: i32,
    pub created: bool,
    pub size: f64,
}

/// `shm_open` (creating with `O_EXCL` first when asked to create), sized and moded when created.
#[napi]
pub fn posix_shm_open(
    env: &Env,
    name: String,
    size: f64,
    create: bool,
    exclusive: bool,
    readonly: bool,
    mode: u32,
) -> Result<PosixShmOpened> {
    let options = OpenOptions {
        size: size as u64,
        create,
        exclusive,
        readonly,
        mode,
    };
    let opened = posix_shm::open(&name, options).or_throw(env)?;
    Ok(PosixShmOpened {
        fd: opened.fd.into_raw_fd(),
        created: opened.created,
        size: opened.size as f64,
    })
}

/// `shm_unlink`; with `fd`, only if the name still refers to that object (else `ENOENT`).
#[napi]
pub fn posix_shm_unlink(env: &Env, name: String, fd: Option<i32>) -> Result<()> {
    match fd {
        Some(fd) => crate::uv::with_fd(fd, |fd| posix_shm::unlink_if_same(&name, fd)).or_throw(env),
        None => posix_shm::unlink(&name).or_throw(env),
    }
}

/// `mmap(MAP_SHARED)` of `size` bytes of the object, read-only or read-write.
#[napi]
pub fn posix_shm_map(env: &Env, fd: i32, size: f64, readonly: bool) -> Result<ShmMapping> {
    let mapping =
        crate::uv::with_fd(fd, |fd| Mapping::map(fd, size as usize, readonly)).or_throw(env)?;
    Ok(ShmMapping::new(mapping))
}

/// Size, mode and owner of an object (`fstat`).
#[napi(object)]
pub struct PosixShmStatJs {
    pub size: f64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// `fstat` of the object's descriptor.
#[napi]
pub fn posix_shm_stat(env: &Env, fd: i32) -> Result<PosixShmStatJs> {
    let st = crate::uv::with_fd(fd, posix_shm::stat).or_throw(env)?;
    Ok(PosixShmStatJs {
        size: st.size as f64,
        mode: st.mode,
        uid: st.uid,
        gid: st.gid,
    })
}

/// The longest name this platform takes: bytes after the slash (Linux), or in all (macOS).
#[napi]
pub fn posix_shm_name_max() -> u32 {
    posix_shm::NAME_MAX as u32
}
