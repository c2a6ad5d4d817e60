//! src/lib.rs - the `sdktemplate` step type: a wfhost plugin in Rust, made from the SDK
//! template (`wfhost plugin new NAME --lang rust` copies this directory and renames it).
//!
//! A plugin is a cdylib that exports one symbol, `wfh_plugin_entry_v1`, returning a
//! static descriptor that lists the step types: each with an input JSON Schema (the
//! host checks a workflow's `with:` against it), its outputs, the capabilities it needs
//! from the sandbox, and a run function that does one attempt and returns a status.
//! The plugin runs in a sandboxed child process (wfhost-runner), never in the host.
//!
//! This step greets someone: inputs {name, greeting?, times?}, outputs {message,
//! length}. Replace `greet` and the schema with your own work.

mod abi;
mod json;

use abi::*;
use std::os::raw::c_char;

const INPUT_SCHEMA: &[u8] = b"{\"type\": \"object\",\
 \"properties\": {\
   \"name\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 200, \"description\": \"who to greet\"},\
   \"greeting\": {\"type\": \"string\", \"maxLength\": 40, \"default\": \"Hello\"},\
   \"times\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 20, \"default\": 1}\
 },\
 \"required\": [\"name\"],\
 \"additionalProperties\": false}\0";

const OUTPUTS: &[u8] = b"{\"message\": \"the greeting, repeated `times` times\",\
 \"length\": \"length of message in bytes\"}\0";

struct Inputs {
    name: String,
    greeting: String,
    times: i64,
}

/// Read and check the inputs. The host checked them against the schema already, but
/// do not rely on it: an invalid input is WFH_STEP_INVALID_INPUT, never a panic.
fn read_inputs(text: &[u8]) -> Result<Inputs, String> {
    let v = json::parse(text).map_err(|e| format!("inputs: not JSON: {}", e))?;
    let members = match &v {
        json::Value::Object(m) => m,
        _ => return Err("inputs: expected a JSON object".into()),
    };
    for (k, _) in members {
        if !matches!(k.as_str(), "name" | "greeting" | "times") {
            return Err(format!("with.{}: unknown input (expected name, greeting, times)", k));
        }
    }
    let name = match v.get("name") {
        None => return Err("with.name: required".into()),
        Some(n) => match n.as_str() {
            Some(s) if !s.is_empty() && s.chars().count() <= 200 => s.to_string(),
            _ => return Err("with.name: expected a non-empty string of at most 200 characters".into()),
        },
    };
    let greeting = match v.get("greeting") {
        None => "Hello".to_string(),
        Some(g) => match g.as_str() {
            Some(s) if s.chars().count() <= 40 => s.to_string(),
            _ => return Err("with.greeting: expected a string of at most 40 characters".into()),
        },
    };
    let times = match v.get("times") {
        None => 1,
        Some(t) => match t.as_i64() {
            Some(n) if (1..=20).contains(&n) => n,
            _ => return Err("with.times: expected an integer from 1 to 20".into()),
        },
    };
    Ok(Inputs { name, greeting, times })
}

fn greet(host: &Host, req: &wfh_step_request) -> i32 {
    let inputs = match read_inputs(unsafe { bytes(req.inputs_json, req.inputs_len) }) {
        Ok(i) => i,
        Err(msg) => return host.fail(WFH_STEP_INVALID_INPUT, &msg),
    };
    // A member added in ABI 1.1: check that this host set it before reading it.
    if request_has_grant(req) {
        let grant = unsafe { bytes(req.grant_json, req.grant_len) };
        host.log(WFH_LOG_DEBUG, &format!("sandbox grant: {}", String::from_utf8_lossy(grant)));
    }
    let mut parts = Vec::new();
    for _ in 0..inputs.times {
        if host.is_cancelled() {
            return host.fail(WFH_STEP_CANCELLED, "cancelled");
        }
        parts.push(format!("{}, {}!", inputs.greeting, inputs.name));
    }
    let message = parts.join(" ");
    // set_output copies the JSON text before it returns.
    if !host.set_output("message", &json::quote(&message)) || !host.set_output("length", &message.len().to_string()) {
        return host.fail(WFH_STEP_FAILED, "could not set the outputs");
    }
    host.log(WFH_LOG_INFO, &format!("greeted {} time(s)", inputs.times));
    WFH_STEP_OK
}

unsafe extern "C" fn run_greet(api: *const wfh_host_api, call: *mut wfh_call, req: *const wfh_step_request) -> i32 {
    if api.is_null() || req.is_null() {
        return WFH_STEP_FAILED;
    }
    let host = Host { api: &*api, call };
    // A panic must not cross into C: with panic = "abort" (Cargo.toml) it ends the
    // process, which the host reports as a crashed attempt; this catch turns the
    // unwinding case (a debug build) into a failed step with the message.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| greet(&host, &*req))) {
        Ok(status) => status,
        Err(_) => host.fail(WFH_STEP_FAILED, "the step panicked"),
    }
}

static STEP_TYPES: Shared<[wfh_step_type; 1]> = Shared([wfh_step_type {
    struct_size: std::mem::size_of::<wfh_step_type>() as u32,
    name: b"sdktemplate\0".as_ptr() as *const c_char,
    description: b"greets someone (made from the wfhost Rust plugin template)\0".as_ptr() as *const c_char,
    input_schema: INPUT_SCHEMA.as_ptr() as *const c_char,
    outputs: OUTPUTS.as_ptr() as *const c_char,
    capabilities: b"{}\0".as_ptr() as *const c_char, // nothing beyond the workspace
    run: Some(run_greet),
}]);

static PLUGIN: Shared<wfh_plugin> = Shared(wfh_plugin {
    struct_size: std::mem::size_of::<wfh_plugin>() as u32,
    abi_major: WFH_ABI_MAJOR,
    // The oldest host minor this plugin needs: 1.0, because the one 1.1 member it
    // reads (grant_json) is checked with request_has_grant first.
    abi_minor: 0,
    step_type_count: 1,
    step_type_size: std::mem::size_of::<wfh_step_type>() as u32,
    name: b"sdktemplate\0".as_ptr() as *const c_char,
    version: b"0.1.0\0".as_ptr() as *const c_char,
    description: b"a wfhost plugin made from the Rust SDK template\0".as_ptr() as *const c_char,
    step_types: &STEP_TYPES.0 as *const [wfh_step_type; 1] as *const wfh_step_type,
    init: None,
});

/// The one exported symbol: returns the static descriptor, with no side effects.
#[no_mangle]
pub extern "C" fn wfh_plugin_entry_v1() -> *const wfh_plugin {
    &PLUGIN.0
}
