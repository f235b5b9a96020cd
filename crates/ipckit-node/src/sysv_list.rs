//! `ipcs`, `ipcrm` and the System V limits for JavaScript: value conversion over
//! [`ipckit::sysv_list`].

use ipckit::sysv_list::{self, Details, IpcType, IpcsEntry, Names};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{OrThrow, SysErrorInfo};

/// One System V object. Times are seconds since the epoch (0 for never); the per-type fields
/// are set for their type only.
#[napi(object)]
pub struct IpcsEntryJs {
    /// `'msg'`, `'sem'` or `'shm'`.
    #[napi(js_name = "type")]
    pub kind: String,
    pub key: u32,
    pub id: i32,
    /// The whole mode word (SHM_DEST / SHM_LOCKED included).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub owner: Option<String>,
    pub owner_group: Option<String>,
    pub creator: Option<String>,
    pub creator_group: Option<String>,
    pub change_time: f64,
    pub messages: Option<f64>,
    pub bytes: Option<f64>,
    pub last_send_pid: Option<i32>,
    pub last_receive_pid: Option<i32>,
    pub last_send_time: Option<f64>,
    pub last_receive_time: Option<f64>,
    pub count: Option<f64>,
    pub last_op_time: Option<f64>,
    pub size: Option<f64>,
    pub attachments: Option<f64>,
    pub creator_pid: Option<i32>,
    pub last_pid: Option<i32>,
    pub attach_time: Option<f64>,
    pub detach_time: Option<f64>,
    pub rss: Option<f64>,
    pub swap: Option<f64>,
}

fn convert(e: IpcsEntry, names: &mut Names) -> IpcsEntryJs {
    let mut out = IpcsEntryJs {
        kind: e.kind.as_str().to_owned(),
        key: e.key as u32,
        id: e.id,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        cuid: e.cuid,
        cgid: e.cgid,
        owner: names.user(e.uid),
        owner_group: names.group(e.gid),
        creator: names.user(e.cuid),
        creator_group: names.group(e.cgid),
        change_time: e.change_time as f64,
        messages: None,
        bytes: None,
        last_send_pid: None,
        last_receive_pid: None,
        last_send_time: None,
        last_receive_time: None,
        count: None,
        last_op_time: None,
        size: None,
        attachments: None,
        creator_pid: None,
        last_pid: None,
        attach_time: None,
        detach_time: None,
        rss: None,
        swap: None,
    };
    match e.details {
        Details::Msg(m) => {
            out.messages = Some(m.messages as f64);
            out.bytes = Some(m.bytes as f64);
            out.last_send_pid = Some(m.last_send_pid);
            out.last_receive_pid = Some(m.last_receive_pid);
            out.last_send_time = Some(m.last_send_time as f64);
            out.last_receive_time = Some(m.last_receive_time as f64);
        }
        Details::Sem(s) => {
            out.count = Some(s.count as f64);
            out.last_op_time = Some(s.last_op_time as f64);
        }
        Details::Shm(s) => {
            out.size = Some(s.size as f64);
            out.attachments = Some(s.attachments as f64);
            out.creator_pid = Some(s.creator_pid);
            out.last_pid = Some(s.last_pid);
            out.attach_time = Some(s.attach_time as f64);
            out.detach_time = Some(s.detach_time as f64);
            out.rss = Some(s.rss as f64);
            out.swap = Some(s.swap as f64);
        }
    }
    out
}

fn parse_kind(env: &Env, name: &str) -> Result<IpcType> {
    name.parse::<IpcType>().or_throw(env)
}

/// Every System V object of `type` (all types when `None`), from `/proc/sysvipc`.
#[napi]
pub fn ipcs_list(env: &Env, kind: Option<String>) -> Result<Vec<IpcsEntryJs>> {
    let k = kind.map(|t| parse_kind(env, &t)).transpose()?;
    let mut names = Names::default();
    let list = sysv_list::ipcs(k).or_throw(env)?;
    Ok(list.into_iter().map(|e| convert(e, &mut names)).collect())
}

/// `IPC_RMID` by id; with `expected_key`, only if the object still has that key (else EIDRM).
#[napi]
pub fn ipcrm_id(env: &Env, kind: String, id: i32, expected_key: Option<i32>) -> Result<()> {
    sysv_list::remove(parse_kind(env, &kind)?, id, expected_key).or_throw(env)
}

/// `IPC_RMID` of the object that has `key`; returns the id it had.
#[napi]
pub fn ipcrm_key(env: &Env, kind: String, key: i32) -> Result<i32> {
    sysv_list::remove_key(parse_kind(env, &kind)?, key).or_throw(env)
}

/// The result of one removal by [`ipcrm_all`].
#[napi(object)]
pub struct IpcrmOutcome {
    pub entry: IpcsEntryJs,
    /// The failure, when the object could not be removed.
    pub error: Option<SysErrorInfo>,
}

/// Removes every object of `type` (all types when `None`) owned by `owner` (all when `None`).
#[napi]
pub fn ipcrm_all(env: &Env, kind: Option<String>, owner: Option<u32>) -> Result<Vec<IpcrmOutcome>> {
    let k = kind.map(|t| parse_kind(env, &t)).transpose()?;
    let mut names = Names::default();
    let results = sysv_list::remove_all(k, owner).or_throw(env)?;
    Ok(results
        .into_iter()
        .map(|(entry, result)| IpcrmOutcome {
            entry: convert(entry, &mut names),
            error: result.err().as_ref().map(SysErrorInfo::from),
        })
        .collect())
}

/// The uid of a user name, `None` when the user database has no such user.
#[napi]
pub fn user_id(name: String) -> Option<u32> {
    Names::uid_of(&name)
}

/// The System V limits, as decimal strings (shmmax and shmall exceed 2^53 by default).
#[napi(object)]
pub struct LimitsJs {
    pub msgmax: String,
    pub msgmnb: String,
    pub msgmni: String,
    pub shmmax: String,
    pub shmall: String,
    pub shmmni: String,
    pub shmmin: String,
    pub semmsl: String,
    pub semmns: String,
    pub semopm: String,
    pub semmni: String,
    pub semvmx: String,
}

/// Reads the System V limits from `/proc/sys/kernel`.
#[napi]
pub fn ipc_limits(env: &Env) -> Result<LimitsJs> {
    let l = sysv_list::limits().or_throw(env)?;
    Ok(LimitsJs {
        msgmax: l.msgmax.to_string(),
        msgmnb: l.msgmnb.to_string(),
        msgmni: l.msgmni.to_string(),
        shmmax: l.shmmax.to_string(),
        shmall: l.shmall.to_string(),
        shmmni: l.shmmni.to_string(),
        shmmin: l.shmmin.to_string(),
        semmsl: l.semmsl.to_string(),
        semmns: l.semmns.to_string(),
        semopm: l.semopm.to_string(),
        semmni: l.semmni.to_string(),
        semvmx: l.semvmx.to_string(),
    })
}

/// The system page size in bytes (`sysconf(_SC_PAGESIZE)`), for `shmall` in bytes.
#[napi]
pub fn page_size() -> u32 {
    ipckit::sysv_list::page_size() as u32
}
