//! The async model of waits without a file descriptor: blocking waits run on the core's
//! threads ([`ipckit::wait`]), never on the libuv threadpool, and report back through one
//! threadsafe function per JavaScript environment. System V waits stand in the core's
//! lines (one thread per waited object, [`Reactor::line`]); the few other blocking calls
//! (a FIFO open, a datagram send to a full receiver) take a pool thread each
//! ([`Reactor::start`]). Waits on a file descriptor do not come here: see [`crate::uv`].
//!
//! The TypeScript layer creates one [`Reactor`] with its dispatch function
//! `(waitId, error, number, buffer) => void`, starts waits with a wait id of its choosing, and
//! cancels them by id. The threadsafe function is weak: it keeps the event loop alive only
//! while the TypeScript layer holds it referenced with [`Reactor::ref_`] (while waits are
//! pending). When the environment shuts down (process exit, worker termination) every pending
//! wait is cancelled, so no thread stays blocked for an environment that is gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use ipckit::wait::{self, Canceller, Ticket};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::error::SysErrorInfo;
use crate::uv::Payload;

/// What a finished wait hands back.
pub(crate) enum Outcome {
    /// Nothing but success (a send, a semaphore operation).
    Done,
    /// A message: its type and payload.
    Message(i64, Vec<u8>),
}

type Completion = (u32, ipckit::Result<Outcome>);
type DispatchArgs = FnArgs<(u32, Option<SysErrorInfo>, Option<f64>, Option<Payload>)>;
type Dispatch = ThreadsafeFunction<Completion, (), DispatchArgs, Status, false, true>;

/// How a pending wait is cancelled: the canceller of a pool job, or the ticket of a wait in
/// a line (`None` for the instant between its submission and the ticket's return).
#[derive(Clone)]
enum Cancel {
    Job(Canceller),
    Line(Option<Arc<Ticket>>),
}

impl Cancel {
    fn cancel(&self) {
        match self {
            Cancel::Job(c) => c.cancel(),
            Cancel::Line(Some(t)) => t.cancel(),
            Cancel::Line(None) => {}
        }
    }
}

type Pending = Arc<Mutex<HashMap<u32, Cancel>>>;

/// Hands a wait's result to JavaScript, from any thread, once.
pub(crate) type Deliver = Box<dyn FnOnce(ipckit::Result<Outcome>) + Send>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs waits off the JavaScript thread and delivers their results to one dispatch function.
#[napi]
pub struct Reactor {
    dispatch: Arc<Mutex<Dispatch>>,
    pending: Pending,
}

#[napi]
impl Reactor {
    /// `dispatch(waitId, error, number, buffer)` is called on the JavaScript thread once per
    /// finished wait: `error` is a system error's fields or null; a received message comes as
    /// `number` (its type) and `buffer` (its payload).
    #[napi(constructor)]
    pub fn new(
        env: &Env,
        #[napi(
            ts_arg_type = "(waitId: number, error: SysErrorInfo | null, value: number | null, data: Buffer | null) => void"
        )]
        dispatch: Function<'_, DispatchArgs, ()>,
    ) -> Result<Self> {
        let tsfn: Dispatch = dispatch
            .build_threadsafe_function::<Completion>()
            .weak::<true>()
            .callee_handled::<false>()
            .build_callback(|ctx| {
                let (id, result) = ctx.value;
                Ok(match result {
                    Ok(Outcome::Done) => (id, None, None, None),
                    Ok(Outcome::Message(mtype, data)) => {
                        (id, None, Some(mtype as f64), Some(Payload(data)))
                    }
                    Err(e) => (id, Some(SysErrorInfo::from(&e)), None, None),
                }
                .into())
            })?;
        let pending: Pending = Arc::default();
        env.add_env_cleanup_hook(pending.clone(), |pending| {
            let all: Vec<Cancel> = lock(&pending).values().cloned().collect();
            all.iter().for_each(Cancel::cancel);
        })?;
        Ok(Self {
            dispatch: Arc::new(Mutex::new(tsfn)),
            pending,
        })
    }

    /// Cancels wait `wait_id`: it finishes with `ECANCELED` unless it completed first (then its
    /// result is delivered as usual, so nothing taken is lost). Unknown ids are ignored.
    #[napi]
    pub fn cancel(&self, wait_id: u32) {
        // Taken out of the lock first: cancelling a wait still in line delivers at once.
        let cancel = lock(&self.pending).get(&wait_id).cloned();
        if let Some(cancel) = cancel {
            cancel.cancel();
        }
    }

    /// Keeps the event loop alive until [`unref`](Self::unref) (called while waits are pending).
    #[napi(js_name = "ref")]
    #[allow(deprecated)] // napi-rs keeps ref/unref for exactly this use
    pub fn ref_(&self, env: &Env) -> Result<()> {
        lock(&self.dispatch).refer(env)
    }

    /// Lets the event loop exit although waits are pending.
    #[napi]
    #[allow(deprecated)]
    pub fn unref(&self, env: &Env) -> Result<()> {
        lock(&self.dispatch).unref(env)
    }

    /// Waits started and not yet delivered; for tests and diagnostics.
    #[napi(getter)]
    pub fn pending(&self) -> u32 {
        lock(&self.pending).len() as u32
    }
}

impl Reactor {
    /// The function that delivers wait `wait_id`'s result (and forgets the wait).
    fn deliverer(&self, wait_id: u32) -> Deliver {
        let pending = self.pending.clone();
        let dispatch = self.dispatch.clone();
        Box::new(move |result| {
            lock(&pending).remove(&wait_id);
            // Fails only when the environment is gone, and then nobody waits for the result.
            lock(&dispatch).call((wait_id, result), ThreadsafeFunctionCallMode::NonBlocking);
        })
    }

    /// Starts wait `wait_id` in a core line: `submit` gets the function that delivers the
    /// result and submits the wait (e.g. [`ipckit::msg::MessageQueue::receive_later`]).
    /// A refusal (`EAGAIN`: no thread) is returned, and nothing is delivered then.
    pub(crate) fn line(
        &self,
        wait_id: u32,
        submit: impl FnOnce(Deliver) -> ipckit::Result<Ticket>,
    ) -> ipckit::Result<()> {
        lock(&self.pending).insert(wait_id, Cancel::Line(None));
        match submit(self.deliverer(wait_id)) {
            Ok(ticket) => {
                if let Some(Cancel::Line(slot)) = lock(&self.pending).get_mut(&wait_id) {
                    *slot = Some(Arc::new(ticket));
                }
                Ok(())
            }
            Err(e) => {
                lock(&self.pending).remove(&wait_id);
                Err(e)
            }
        }
    }

    /// Runs `job` on a core pool thread as wait `wait_id` and delivers its result; for
    /// blocking calls that are not System V waits. `EAGAIN` when no thread can be had.
    pub(crate) fn start(
        &self,
        wait_id: u32,
        job: impl FnOnce(&Canceller) -> ipckit::Result<Outcome> + Send + 'static,
    ) -> ipckit::Result<()> {
        let canceller = Canceller::new();
        lock(&self.pending).insert(wait_id, Cancel::Job(canceller.clone()));
        let deliver = self.deliverer(wait_id);
        let spawned = wait::spawn(move || deliver(job(&canceller)));
        if spawned.is_err() {
            lock(&self.pending).remove(&wait_id);
        }
        spawned
    }
}

/// Gives this thread's CPU to another runnable thread, if there is one (`sched_yield`): what
/// a wait does once before it sleeps (see `ts/yield.ts`). Returns at once when nothing else
/// is runnable on this CPU.
///
/// ```js
/// native.yieldCpu()
/// ```
#[napi]
pub fn yield_cpu() {
    std::thread::yield_now()
}
