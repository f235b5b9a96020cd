//! `ftok` for JavaScript.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::OrThrow;

/// `ftok(3)`: the key as an unsigned 32-bit number, as `ipcs` prints it.
#[napi]
pub fn ftok(env: &Env, path: String, project_id: u32) -> Result<u32> {
    let key = ipckit::ftok(&path, project_id as u8).or_throw(env)?;
    Ok(key as u32)
}
