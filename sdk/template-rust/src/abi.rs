//! src/abi.rs - the wfhost plugin ABI (include/wfhost/plugin.h, ABI 1.1), declared by
//! hand with #[repr(C)]. Members are only ever appended in a minor version; a member
//! added after 1.0 may be read only after checking the struct's size (see
//! `request_has_grant`), exactly as WFH_REQUEST_HAS / WFH_HOST_HAS do in C.
#![allow(non_camel_case_types, dead_code)]

use std::os::raw::{c_char, c_void};

pub const WFH_ABI_MAJOR: u32 = 1;

pub const WFH_STEP_OK: i32 = 0;
pub const WFH_STEP_FAILED: i32 = 1;
pub const WFH_STEP_TRANSIENT: i32 = 2;
pub const WFH_STEP_PERMANENT: i32 = 3;
pub const WFH_STEP_TIMEOUT: i32 = 4;
pub const WFH_STEP_INVALID_INPUT: i32 = 5;
pub const WFH_STEP_CANCELLED: i32 = 6;

pub const WFH_LOG_ERROR: i32 = 0;
pub const WFH_LOG_WARN: i32 = 1;
pub const WFH_LOG_INFO: i32 = 2;
pub const WFH_LOG_DEBUG: i32 = 3;

/// One step attempt, opaque: only passed back to host services.
pub type wfh_call = c_void;

#[repr(C)]
pub struct wfh_host_api {
    pub struct_size: u32,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub log: Option<unsafe extern "C" fn(*mut wfh_call, i32, *const c_char, usize)>,
    pub set_output: Option<unsafe extern "C" fn(*mut wfh_call, *const c_char, *const c_char, usize) -> i32>,
    pub set_error: Option<unsafe extern "C" fn(*mut wfh_call, *const c_char, usize)>,
    pub set_retry_after: Option<unsafe extern "C" fn(*mut wfh_call, u64)>,
    pub progress: Option<unsafe extern "C" fn(*mut wfh_call, f64, *const c_char, usize)>,
    pub is_cancelled: Option<unsafe extern "C" fn(*mut wfh_call) -> i32>,
}

#[repr(C)]
pub struct wfh_step_request {
    pub struct_size: u32,
    pub attempt: u32,
    pub step_type: *const c_char,
    pub inputs_json: *const c_char,
    pub inputs_len: usize,
    pub env_json: *const c_char,
    pub env_len: usize,
    pub run_id: *const c_char,
    pub step_id: *const c_char,
    pub idempotency_key: *const c_char,
    pub workspace: *const c_char,
    /// [1.1] read only if `request_has_grant` says the host set it.
    pub grant_json: *const c_char,
    pub grant_len: usize,
}

pub type wfh_step_fn = unsafe extern "C" fn(*const wfh_host_api, *mut wfh_call, *const wfh_step_request) -> i32;

#[repr(C)]
pub struct wfh_step_type {
    pub struct_size: u32,
    pub name: *const c_char,
    pub description: *const c_char,
    pub input_schema: *const c_char,
    pub outputs: *const c_char,
    pub capabilities: *const c_char,
    pub run: Option<wfh_step_fn>,
}

#[repr(C)]
pub struct wfh_plugin {
    pub struct_size: u32,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub step_type_count: u32,
    pub step_type_size: u32,
    pub name: *const c_char,
    pub version: *const c_char,
    pub description: *const c_char,
    pub step_types: *const wfh_step_type,
    pub init: Option<unsafe extern "C" fn(*const wfh_host_api, *mut wfh_call) -> i32>,
}

/// Static descriptor data holds raw pointers to static strings: safe to share.
pub struct Shared<T>(pub T);
unsafe impl<T> Sync for Shared<T> {}

/// WFH_REQUEST_HAS(req, grant_json): a 1.0 host's request ends before grant_json.
pub fn request_has_grant(req: &wfh_step_request) -> bool {
    let end = std::mem::size_of::<wfh_step_request>();
    (req.struct_size as usize) >= end && !req.grant_json.is_null()
}

/// The host services with the plugin's calling conventions: Rust strings in, copies
/// made by the host before each call returns.
pub struct Host<'a> {
    pub api: &'a wfh_host_api,
    pub call: *mut wfh_call,
}

impl<'a> Host<'a> {
    pub fn log(&self, level: i32, msg: &str) {
        if let Some(f) = self.api.log {
            unsafe { f(self.call, level, msg.as_ptr() as *const c_char, msg.len()) }
        }
    }
    /// Set output `name` (ASCII, NUL-terminated here) to the JSON text `json`.
    pub fn set_output(&self, name: &str, json: &str) -> bool {
        let mut cname = Vec::with_capacity(name.len() + 1);
        cname.extend_from_slice(name.as_bytes());
        cname.push(0);
        match self.api.set_output {
            Some(f) => unsafe { f(self.call, cname.as_ptr() as *const c_char, json.as_ptr() as *const c_char, json.len()) == 0 },
            None => false,
        }
    }
    pub fn fail(&self, status: i32, msg: &str) -> i32 {
        if let Some(f) = self.api.set_error {
            unsafe { f(self.call, msg.as_ptr() as *const c_char, msg.len()) }
        }
        status
    }
    pub fn is_cancelled(&self) -> bool {
        match self.api.is_cancelled {
            Some(f) => unsafe { f(self.call) != 0 },
            None => false,
        }
    }
}

/// The bytes of a (pointer, length) pair from the host, borrowed for the call.
pub unsafe fn bytes<'a>(p: *const c_char, len: usize) -> &'a [u8] {
    if p.is_null() {
        &[]
    } else {
        std::slice::from_raw_parts(p as *const u8, len)
    }
}
