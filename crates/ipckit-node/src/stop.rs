//! Synchronous waits that stop with the JavaScript environment that made them.
//!
//! A Worker thread blocked in a `...Sync` call (`receiveSync`, `waitSync`, `lockSync`, ...)
//! would never notice `worker.terminate()`, nor the termination of every worker that
//! `process.exit()` performs (and waits for): the call blocks in the kernel and retries after
//! signals. [`sync_waits_stoppable`] installs, for the calling thread, the core's stop check
//! ([`ipckit::interrupt`]): the blocked call is interrupted every tick and asks whether the
//! environment is stopping.
//!
//! The question is a Node-API call that may run JavaScript, `napi_coerce_to_bool`: it fails
//! once the environment cannot call into JavaScript any more, which Node.js decides on the
//! terminating thread itself (`Environment::ExitEnv` marks the environment stopping before
//! anything else), so the answer is there while this thread is still blocked.

use ipckit::interrupt;
use napi::bindgen_prelude::*;
use napi::JsValue;
use napi_derive::napi;

/// Makes this thread's synchronous waits end when its environment stops (a Worker thread
/// that is terminated, or ended by `process.exit()`); for Worker threads, called once per
/// environment when the package loads there.
///
/// ```js
/// if (!require('node:worker_threads').isMainThread) native.syncWaitsStoppable()
/// ```
#[napi]
pub fn sync_waits_stoppable(env: &Env) -> Result<()> {
    let raw = env.raw();
    interrupt::install(move || {
        let env = Env::from_raw(raw);
        env.create_int32(1)
            .and_then(|one| one.coerce_to_bool())
            .is_err()
    });
    env.add_env_cleanup_hook((), |()| interrupt::uninstall())?;
    Ok(())
}
