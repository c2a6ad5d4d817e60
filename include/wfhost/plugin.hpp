/*
 * wfhost/plugin.hpp - a header-only C++ layer over wfhost/plugin.h.
 *
 * The ABI is C: an exception that leaves a step function crosses C frames in the
 * runner, which is undefined behaviour (in practice std::terminate, a crashed attempt
 * and no message). This header puts a catch-everything boundary around each step and
 * init function: an exception becomes a failed step whose error is the exception's
 * message, and wfhost::step_error lets C++ code pick the failure class by throwing.
 *
 *   static int32_t greet(wfhost::context &cx) {
 *       std::string who = ...parse cx.inputs_json() with your JSON library...;
 *       if (who.empty())
 *           throw wfhost::invalid_input("with.name: required");
 *       cx.set_output("message", wfhost::json_quote("Hello, " + who));
 *       return WFH_STEP_OK;
 *   }
 *   static const wfh_step_type types[] = {{sizeof(wfh_step_type), "greet", "...",
 *       schema, outputs, "{}", wfhost::step<greet>}};
 *
 * Needs C++11, no exceptions of its own escape, no RTTI beyond what catch needs, and
 * nothing to link: everything here is inline. Build the plugin with
 * -fvisibility=hidden (pkg-config wfhost-plugin, or the CMake target wfhost::plugin).
 * Ownership is plugin.h's: what the host hands in is borrowed for the call; strings
 * handed to the host are copied before the service returns.
 */
#ifndef WFHOST_PLUGIN_HPP
#define WFHOST_PLUGIN_HPP

#include <wfhost/plugin.h>

#include <cstdio>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

namespace wfhost {

/** Thrown to end a step with a given wfh_step_status and message. */
class step_error : public std::runtime_error {
public:
    step_error(int32_t status, const std::string &msg) : std::runtime_error(msg), status_(status) {}
    int32_t status() const noexcept { return status_; }

private:
    int32_t status_;
};

/** The inputs are wrong; nothing was done (WFH_STEP_INVALID_INPUT). */
struct invalid_input : step_error {
    explicit invalid_input(const std::string &msg) : step_error(WFH_STEP_INVALID_INPUT, msg) {}
};
/** A passing condition; retrying should help (WFH_STEP_TRANSIENT). */
struct transient_error : step_error {
    explicit transient_error(const std::string &msg) : step_error(WFH_STEP_TRANSIENT, msg) {}
};
/** Retrying cannot help (WFH_STEP_PERMANENT). */
struct permanent_error : step_error {
    explicit permanent_error(const std::string &msg) : step_error(WFH_STEP_PERMANENT, msg) {}
};

/** One attempt: the request and the host services. Borrowed for the step call. */
class context {
public:
    context(const wfh_host_api *host, wfh_call *call, const wfh_step_request *req) noexcept
        : host_(host), call_(call), req_(req) {}

    const wfh_step_request &request() const noexcept { return *req_; }
    const wfh_host_api &host() const noexcept { return *host_; }
    wfh_call *call() const noexcept { return call_; }

    /** The step's `with:` as JSON text (an object). */
    std::string inputs_json() const
    {
        return req_ && req_->inputs_json ? std::string(req_->inputs_json, req_->inputs_len) : std::string("{}");
    }
    /** The environment the workflow sets, as a JSON object of strings. */
    std::string env_json() const
    {
        return req_ && req_->env_json ? std::string(req_->env_json, req_->env_len) : std::string("{}");
    }
    /** True if the host set the sandbox grant (ABI 1.1; a 1.0 host does not). */
    bool has_grant() const noexcept { return WFH_REQUEST_HAS(req_, grant_json); }
    /** The sandbox grant as JSON text, or "" from a 1.0 host. */
    std::string grant_json() const { return has_grant() ? std::string(req_->grant_json, req_->grant_len) : std::string(); }

    void log(int32_t level, const std::string &msg) const noexcept
    {
        if (WFH_HOST_HAS(host_, log))
            host_->log(call_, level, msg.data(), msg.size());
    }
    /** Set output @p name to the JSON text @p json; throws step_error if refused. */
    void set_output(const char *name, const std::string &json) const
    {
        if (!WFH_HOST_HAS(host_, set_output) || host_->set_output(call_, name, json.data(), json.size()) != 0)
            throw step_error(WFH_STEP_FAILED, std::string("could not set output '") + name + "'");
    }
    void set_retry_after(uint64_t ms) const noexcept
    {
        if (WFH_HOST_HAS(host_, set_retry_after))
            host_->set_retry_after(call_, ms);
    }
    void progress(double fraction, const std::string &msg) const noexcept
    {
        if (WFH_HOST_HAS(host_, progress))
            host_->progress(call_, fraction, msg.data(), msg.size());
    }
    /** True once the attempt was cancelled or timed out: stop soon. */
    bool cancelled() const noexcept { return WFH_HOST_HAS(host_, is_cancelled) && host_->is_cancelled(call_) != 0; }

    /** Set the error message and return @p status (for code that does not throw). */
    int32_t fail(int32_t status, const char *msg) const noexcept
    {
        if (WFH_HOST_HAS(host_, set_error))
            host_->set_error(call_, msg, std::char_traits<char>::length(msg));
        return status;
    }

private:
    const wfh_host_api *host_; /* borrowed */
    wfh_call *call_;           /* borrowed */
    const wfh_step_request *req_; /* borrowed */
};

/** @p s as a JSON string literal (quotes and escapes added). */
inline std::string json_quote(const std::string &s)
{
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
    return out;
}

namespace detail {
/* The boundary: runs @p body, and turns anything thrown into a status and message.
 * Nothing leaves: even a throwing message copy falls back to a fixed string. */
template <typename Body>
int32_t guard(const context &cx, Body body) noexcept
{
    try {
        return body();
    } catch (const step_error &e) {
        return cx.fail(e.status(), e.what());
    } catch (const std::bad_alloc &) {
        return cx.fail(WFH_STEP_FAILED, "out of memory (std::bad_alloc)");
    } catch (const std::exception &e) {
        return cx.fail(WFH_STEP_FAILED, e.what());
    } catch (...) {
        return cx.fail(WFH_STEP_FAILED, "the step threw a C++ exception that is not a std::exception");
    }
}
} // namespace detail

/**
 * The C step function for @p Fn (int32_t Fn(wfhost::context &)): put `wfhost::step<Fn>`
 * in wfh_step_type.run. Exceptions become failed steps with their message;
 * wfhost::step_error and its subclasses choose the status.
 */
template <int32_t (*Fn)(context &)>
int32_t step(const wfh_host_api *host, wfh_call *call, const wfh_step_request *req) noexcept
{
    context cx(host, call, req);
    return detail::guard(cx, [&]() { return Fn(cx); });
}

/** The C init function for @p Fn (int32_t Fn(wfhost::context &), 0 = ok): put
 * `wfhost::init<Fn>` in wfh_plugin.init. The context has no request (request() must not
 * be called); an exception refuses the plugin with its message. */
template <int32_t (*Fn)(context &)>
int32_t init(const wfh_host_api *host, wfh_call *call) noexcept
{
    context cx(host, call, nullptr);
    int32_t rc = detail::guard(cx, [&]() { return Fn(cx); });
    return rc;
}

} // namespace wfhost

#endif /* WFHOST_PLUGIN_HPP */
