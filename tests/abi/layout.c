/*
 * tests/abi/layout.c - prints the layout of every ABI struct, one member per line.
 *
 * abi_header.sh builds this once against the frozen 1.0 header and once against the
 * current one: every line of the first must appear unchanged in the second, so a
 * member that moves, shrinks or changes type inside major 1 fails the build's tests
 * (appending is the only allowed change).
 */
#include <stddef.h>
#include <stdio.h>

#include <wfhost/plugin.h>

#define M(type, member)                                                                        \
    printf("%s.%s offset=%zu size=%zu\n", #type, #member, offsetof(type, member),           \
           sizeof(((type *)0)->member))

int main(void)
{
    printf("WFH_ABI_MAJOR=%d entry=%s\n", WFH_ABI_MAJOR, WFH_ENTRY_SYMBOL);
    printf("status ok=%d failed=%d transient=%d permanent=%d timeout=%d invalid=%d cancelled=%d\n",
           WFH_STEP_OK, WFH_STEP_FAILED, WFH_STEP_TRANSIENT, WFH_STEP_PERMANENT, WFH_STEP_TIMEOUT,
           WFH_STEP_INVALID_INPUT, WFH_STEP_CANCELLED);
    printf("log error=%d warn=%d info=%d debug=%d\n", WFH_LOG_ERROR, WFH_LOG_WARN, WFH_LOG_INFO, WFH_LOG_DEBUG);
    M(wfh_host_api, struct_size);
    M(wfh_host_api, abi_major);
    M(wfh_host_api, abi_minor);
    M(wfh_host_api, log);
    M(wfh_host_api, set_output);
    M(wfh_host_api, set_error);
    M(wfh_host_api, set_retry_after);
    M(wfh_host_api, progress);
    M(wfh_host_api, is_cancelled);
    M(wfh_step_request, struct_size);
    M(wfh_step_request, attempt);
    M(wfh_step_request, step_type);
    M(wfh_step_request, inputs_json);
    M(wfh_step_request, inputs_len);
    M(wfh_step_request, env_json);
    M(wfh_step_request, env_len);
    M(wfh_step_request, run_id);
    M(wfh_step_request, step_id);
    M(wfh_step_request, idempotency_key);
    M(wfh_step_request, workspace);
    M(wfh_step_type, struct_size);
    M(wfh_step_type, name);
    M(wfh_step_type, description);
    M(wfh_step_type, input_schema);
    M(wfh_step_type, outputs);
    M(wfh_step_type, capabilities);
    M(wfh_step_type, run);
    M(wfh_plugin, struct_size);
    M(wfh_plugin, abi_major);
    M(wfh_plugin, abi_minor);
    M(wfh_plugin, step_type_count);
    M(wfh_plugin, step_type_size);
    M(wfh_plugin, name);
    M(wfh_plugin, version);
    M(wfh_plugin, description);
    M(wfh_plugin, step_types);
    M(wfh_plugin, init);
    return 0;
}
