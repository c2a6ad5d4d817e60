/*
 * tests/fuzz/fuzz_index.c - libFuzzer target for the registry's parsers: everything the
 * registry reads from disk before (or while) deciding whether to trust it.
 *
 * The first byte picks the parser: the index (a parsed index must serialize and parse
 * back to the same seq and plugin count), keys.txt, state.txt, a .minisig file (then
 * verified against a fixed key, which must fail), a public key, or the ELF checks.
 * Nothing may crash, leak or trip a sanitizer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "registry/elfcheck.h"
#include "registry/index.h"
#include "registry/minisign.h"
#include "registry/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 6) {
    case 0: {
        wfh_index *ix = NULL, *back = NULL;
        if (wfh_index_parse(text, len, "fuzz", &ix) == 0) {
            char *out = NULL;
            size_t olen = 0;
            if (wfh_index_serialize(ix, &out, &olen) == 0) {
                if (wfh_index_parse(out, olen, "reparse", &back) != 0 || back->seq != ix->seq ||
                    back->n_plugins != ix->n_plugins)
                    abort(); /* what we write we must read back identically */
            }
            free(out);
        }
        wfh_index_free(back);
        wfh_index_free(ix);
        break;
    }
    case 1: {
        wfh_trust t;
        if (wfh_trust_parse(text, len, "fuzz", &t) == 0) {
            char *out = wfh_trust_format(&t);
            wfh_trust again;
            if (!out || wfh_trust_parse(out, strlen(out), "reparse", &again) != 0 ||
                again.n_keys != t.n_keys || again.version != t.version)
                abort();
            free(out);
        }
        break;
    }
    case 2: {
        wfh_reg_state s;
        (void)wfh_state_parse(text, len, "fuzz", &s);
        break;
    }
    case 3: {
        static const char pub[] = "RWS5r7AXZ+tjmrOPQdbYbkUpkoGG0B22kw1K1dhM64Y87O67aerBNMXC";
        wfh_ms_pubkey pk;
        wfh_ms_sig sig;
        if (wfh_ms_pubkey_parse(pub, strlen(pub), "pub", &pk) != 0)
            abort();
        if (wfh_ms_sig_parse(text, len, "fuzz", &sig) == 0 &&
            wfh_ms_verify(&sig, &pk, "fuzz", 4, "fuzz") == 0)
            abort(); /* a forgery */
        wfh_ms_sig_clear(&sig);
        break;
    }
    case 4: {
        wfh_ms_pubkey pk;
        (void)wfh_ms_pubkey_parse(text, len, "fuzz", &pk);
        break;
    }
    default:
        (void)wfh_elf_check((const uint8_t *)text, len, "fuzz");
        break;
    }
    return 0;
}
