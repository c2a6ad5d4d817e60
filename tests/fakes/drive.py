#!/usr/bin/env python3
"""tests/fakes/drive.py - runs one step of a plugin in-process through ctypes, speaking
the step runner's wire protocol (core/attempt.h): one JSON request on stdin, JSON lines
out. It is a stand-in host for developing plugins when build/bin/wfhost-runner is not
available (and for plain, non-sanitizer builds only: an ASan-built plugin needs the
real runner). The tests prefer the runner whenever it exists.
"""
import ctypes as C
import json
import sys

class HostApi(C.Structure):
    pass

LOG = C.CFUNCTYPE(None, C.c_void_p, C.c_int32, C.c_char_p, C.c_size_t)
SETOUT = C.CFUNCTYPE(C.c_int32, C.c_void_p, C.c_char_p, C.c_char_p, C.c_size_t)
SETERR = C.CFUNCTYPE(None, C.c_void_p, C.c_char_p, C.c_size_t)
RETRY = C.CFUNCTYPE(None, C.c_void_p, C.c_uint64)
PROG = C.CFUNCTYPE(None, C.c_void_p, C.c_double, C.c_char_p, C.c_size_t)
CANC = C.CFUNCTYPE(C.c_int32, C.c_void_p)
HostApi._fields_ = [("struct_size", C.c_uint32), ("abi_major", C.c_uint32),
                    ("abi_minor", C.c_uint32), ("log", LOG), ("set_output", SETOUT),
                    ("set_error", SETERR), ("set_retry_after", RETRY), ("progress", PROG),
                    ("is_cancelled", CANC)]

class Request(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("attempt", C.c_uint32),
                ("step_type", C.c_char_p), ("inputs_json", C.c_char_p),
                ("inputs_len", C.c_size_t), ("env_json", C.c_char_p), ("env_len", C.c_size_t),
                ("run_id", C.c_char_p), ("step_id", C.c_char_p),
                ("idempotency_key", C.c_char_p), ("workspace", C.c_char_p)]

StepFn = C.CFUNCTYPE(C.c_int32, C.POINTER(HostApi), C.c_void_p, C.POINTER(Request))

class StepType(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("name", C.c_char_p), ("description", C.c_char_p),
                ("input_schema", C.c_char_p), ("outputs", C.c_char_p),
                ("capabilities", C.c_char_p), ("run", C.c_void_p)]

class Plugin(C.Structure):
    _fields_ = [("struct_size", C.c_uint32), ("abi_major", C.c_uint32),
                ("abi_minor", C.c_uint32), ("step_type_count", C.c_uint32),
                ("step_type_size", C.c_uint32), ("name", C.c_char_p),
                ("version", C.c_char_p), ("description", C.c_char_p),
                ("step_types", C.c_void_p), ("init", C.c_void_p)]

def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()

def main():
    req = json.load(sys.stdin)
    lib = C.CDLL(req["plugin"])
    lib.wfh_plugin_entry_v1.restype = C.POINTER(Plugin)
    p = lib.wfh_plugin_entry_v1().contents
    state = {"error": "", "retry": 0}
    fn = None
    for i in range(p.step_type_count):
        st = StepType.from_address(p.step_types + i * p.step_type_size)
        if st.name.decode() == req["type"]:
            fn = StepFn(st.run)
    if fn is None:
        emit({"t": "result", "status": 5, "error": "no step type " + req["type"]})
        return 0
    def log(call, level, msg, n):
        emit({"t": "log", "level": level, "msg": C.string_at(msg, n).decode()})
    def set_output(call, name, js, n):
        emit({"t": "output", "name": name.decode(), "value": json.loads(C.string_at(js, n))})
        return 0
    def set_error(call, msg, n):
        state["error"] = C.string_at(msg, n).decode()
    def retry(call, ms):
        state["retry"] = ms
    def progress(call, frac, msg, n):
        emit({"t": "progress", "fraction": frac, "msg": C.string_at(msg, n).decode()})
    cbs = [LOG(log), SETOUT(set_output), SETERR(set_error), RETRY(retry), PROG(progress),
           CANC(lambda call: 0)]
    api = HostApi(C.sizeof(HostApi), 1, 0, *cbs)
    inputs = json.dumps(req.get("inputs", {})).encode()
    env = json.dumps(req.get("env", {})).encode()
    r = Request(C.sizeof(Request), req.get("attempt", 1), req["type"].encode(), inputs,
                len(inputs), env, len(env), req.get("run_id", "r").encode(),
                req.get("step_id", "s").encode(), req.get("idempotency_key", "k").encode(),
                req.get("workspace", "/tmp").encode())
    status = fn(C.byref(api), None, C.byref(r))
    emit({"t": "result", "status": status, "error": state["error"],
          "retry_after_ms": state["retry"]})
    return 0

if __name__ == "__main__":
    sys.exit(main())
