//! tests/abi/rust/lib.rs - a wfhost step-type plugin written in Rust, with no crates.
//!
//! The ABI promise is "any language that can export a C symbol". This file is the proof:
//! the structs of include/wfhost/plugin.h are declared by hand with #[repr(C)], the
//! descriptor is static data, and the one exported symbol is wfh_plugin_entry_v1.
//! Built with `rustc --crate-type cdylib -O` (tests/abi/abi_rust.sh); kept to what
//! Debian 12's rustc 1.63 accepts.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_void};

type wfh_call = c_void;

#[repr(C)]
pub struct wfh_host_api {
    struct_size: u32,
    abi_major: u32,
    abi_minor: u32,
    log: Option<unsafe extern "C" fn(*mut wfh_call, i32, *const c_char, usize)>,
    set_output: Option<unsafe extern "C" fn(*mut wfh_call, *const c_char, *const c_char, usize) -> i32>,
    set_error: Option<unsafe extern "C" fn(*mut wfh_call, *const c_char, usize)>,
    set_retry_after: Option<unsafe extern "C" fn(*mut wfh_call, u64)>,
    progress: Option<unsafe extern "C" fn(*mut wfh_call, f64, *const c_char, usize)>,
    is_cancelled: Option<unsafe extern "C" fn(*mut wfh_call) -> i32>,
}

#[repr(C)]
pub struct wfh_step_request {
    struct_size: u32,
    attempt: u32,
    step_type: *const c_char,
    inputs_json: *const c_char,
    inputs_len: usize,
    env_json: *const c_char,
    env_len: usize,
    run_id: *const c_char,
    step_id: *const c_char,
    idempotency_key: *const c_char,
    workspace: *const c_char,
}

type wfh_step_fn = unsafe extern "C" fn(*const wfh_host_api, *mut wfh_call, *const wfh_step_request) -> i32;

#[repr(C)]
pub struct wfh_step_type {
    struct_size: u32,
    name: *const c_char,
    description: *const c_char,
    input_schema: *const c_char,
    outputs: *const c_char,
    capabilities: *const c_char,
    run: Option<wfh_step_fn>,
}

#[repr(C)]
pub struct wfh_plugin {
    struct_size: u32,
    abi_major: u32,
    abi_minor: u32,
    step_type_count: u32,
    step_type_size: u32,
    name: *const c_char,
    version: *const c_char,
    description: *const c_char,
    step_types: *const wfh_step_type,
    init: Option<unsafe extern "C" fn(*const wfh_host_api, *mut wfh_call) -> i32>,
}

// Static descriptor data holds raw pointers to static strings: safe to share.
struct Shared<T>(T);
unsafe impl<T> Sync for Shared<T> {}

const WFH_STEP_OK: i32 = 0;
const WFH_STEP_FAILED: i32 = 1;
const WFH_STEP_INVALID_INPUT: i32 = 5;
const WFH_LOG_INFO: i32 = 2;

fn cstr(s: &'static [u8]) -> *const c_char {
    s.as_ptr() as *const c_char
}

/// The `rusty` step: greets, and echoes its inputs back as the output `inputs`.
unsafe extern "C" fn run_rusty(host: *const wfh_host_api, call: *mut wfh_call, req: *const wfh_step_request) -> i32 {
    let host = &*host;
    let req = &*req;
    if host.struct_size < 48 || req.inputs_json.is_null() {
        return WFH_STEP_INVALID_INPUT;
    }
    if let Some(log) = host.log {
        let msg = b"hello from a Rust plugin";
        log(call, WFH_LOG_INFO, msg.as_ptr() as *const c_char, msg.len());
    }
    let set_output = match host.set_output {
        Some(f) => f,
        None => return WFH_STEP_FAILED,
    };
    let greeting = format!("\"hello from rust, attempt {}\"", req.attempt);
    if set_output(call, cstr(b"greeting\0"), greeting.as_ptr() as *const c_char, greeting.len()) != 0 {
        return WFH_STEP_FAILED;
    }
    if set_output(call, cstr(b"inputs\0"), req.inputs_json, req.inputs_len) != 0 {
        return WFH_STEP_FAILED;
    }
    WFH_STEP_OK
}

static TYPES: Shared<[wfh_step_type; 1]> = Shared([wfh_step_type {
    struct_size: std::mem::size_of::<wfh_step_type>() as u32,
    name: b"rusty\0".as_ptr() as *const c_char,
    description: b"a step written in Rust\0".as_ptr() as *const c_char,
    input_schema: b"{\"type\":\"object\"}\0".as_ptr() as *const c_char,
    outputs: b"{\"greeting\":\"a greeting\",\"inputs\":\"the inputs, echoed\"}\0".as_ptr() as *const c_char,
    capabilities: std::ptr::null(),
    run: Some(run_rusty),
}]);

static PLUGIN: Shared<wfh_plugin> = Shared(wfh_plugin {
    struct_size: std::mem::size_of::<wfh_plugin>() as u32,
    abi_major: 1,
    abi_minor: 0,
    step_type_count: 1,
    step_type_size: std::mem::size_of::<wfh_step_type>() as u32,
    name: b"rusty\0".as_ptr() as *const c_char,
    version: b"0.3.0\0".as_ptr() as *const c_char,
    description: b"a plugin written in Rust against hand-written declarations\0".as_ptr() as *const c_char,
    step_types: &TYPES.0 as *const [wfh_step_type; 1] as *const wfh_step_type,
    init: None,
});

#[no_mangle]
pub extern "C" fn wfh_plugin_entry_v1() -> *const wfh_plugin {
    &PLUGIN.0
}
