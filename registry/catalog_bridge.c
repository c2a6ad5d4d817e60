/*
 * registry/catalog_bridge.c - the host's catalog (core/catalog.h) built from the
 * verified registry index instead of a plugin-directory scan.
 *
 * Nothing is probed and no plugin code runs: step types, schemas and capabilities come
 * from the signed index, recorded at install time. Only active entries are offered; a
 * disabled or yanked plugin is not a step type a workflow can name. Each entry carries
 * the signed hash and size, so the attempt path (core/attempt.c) can load exactly the
 * bytes that were verified (wfh_registry_blob_memfd).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/catalog.h"
#include "../core/error.h"
#include "../core/home.h"
#include "../core/workflow.h"
#include "registry.h"
#include <wfhost/plugin.h>

#define WFH_HOST_ABI_MAJOR WFH_ABI_MAJOR
#define WFH_HOST_ABI_MINOR WFH_ABI_MINOR

#include <unistd.h>

static int fill_meta(const wfh_registry *r, const wfh_reg_plugin *p, wfh_plugin_meta *m)
{
    m->name = strdup(p->name);
    m->version = strdup(p->version);
    m->version_major = p->version_major;
    m->abi_major = p->abi_major;
    m->abi_minor = p->abi_minor;
    m->description = p->description ? strdup(p->description) : NULL;
    m->path = wfh_registry_blob_path(r, p->blake2b256);
    m->blake2b256 = strdup(p->blake2b256);
    m->sha256 = strdup(p->sha256);
    m->size = p->size;
    m->types = calloc(p->n_types, sizeof *m->types);
    if (!m->name || !m->version || (p->description && !m->description) || !m->path ||
        !m->blake2b256 || !m->sha256 || !m->types)
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n_types; i++) {
        const wfh_reg_type *t = &p->types[i];
        wfh_type_meta *tm = &m->types[i];
        m->n_types = i + 1;
        tm->name = strdup(t->name);
        tm->description = t->description ? strdup(t->description) : NULL;
        /* Shared with the index, not copied: nothing changes a parsed schema (the index
         * is signed; the catalog only reads), and deep copies of every type's schemas
         * were ~0.5 M instructions of each start (callgrind). */
        tm->input_schema = json_incref(t->input_schema);
        tm->outputs = json_incref(t->outputs);
        tm->capabilities = json_incref(t->capabilities);
        if (!tm->name || (t->description && !tm->description) || !tm->input_schema ||
            !tm->outputs || !tm->capabilities)
            return wfh_error_set(WFH_ENOMEM, "out of memory");
    }
    return 0;
}

int wfh_catalog_from_registry(const char *home, wfh_catalog **out)
{
    int err = 0;
    char *h = NULL;          /* owned */
    wfh_registry *r = NULL;  /* owned */
    wfh_catalog *c = NULL;   /* owned until handed to *out */
    *out = NULL;
    /* It used to name a directory of unsigned plugins; say it no longer does, rather
     * than let a workflow fail with "unknown step type". */
    const char *old_dir = getenv("WFH_PLUGIN_DIR");
    if (old_dir && *old_dir)
        fprintf(stderr, "wfhost: warning: $WFH_PLUGIN_DIR (%s) is ignored: plugins load only "
                "from the signed registry (wfhost plugin install FILE.so)\n", old_dir);
    if ((err = wfh_home_path(home, &h)) < 0 || (err = wfh_registry_open(h, 0, &r)) < 0)
        goto done;
    const wfh_index *ix = wfh_registry_index(r);
    c = calloc(1, sizeof *c);
    if (!c || !(c->plugins = calloc(ix->n_plugins + 1, sizeof *c->plugins)) ||
        !(c->inactive = calloc(ix->n_plugins + 1, sizeof *c->inactive)) ||
        !(c->runner_path = wfh_default_runner_path())) {
        err = wfh_error_set(WFH_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < ix->n_plugins; i++) {
        const wfh_reg_plugin *p = &ix->plugins[i];
        /* Not offered, but kept (no file is opened for them) so the validator can say
         * why a workflow naming one is refused. The ABI is checked from the signed index
         * before any plugin code could run. */
        const char *why = p->state == WFH_PSTATE_DISABLED ? "disabled"
                        : p->state == WFH_PSTATE_YANKED   ? "yanked"
                        : p->state != WFH_PSTATE_ACTIVE   ? "inactive"
                        : p->abi_major != WFH_HOST_ABI_MAJOR || p->abi_minor > WFH_HOST_ABI_MINOR
                            ? "newer-abi" : NULL;
        if (why) {
            c->n_inactive++;
            if ((err = fill_meta(r, p, &c->inactive[c->n_inactive - 1])) < 0)
                goto done;
            c->inactive[c->n_inactive - 1].state = why;
            continue;
        }
        /* Every offered plugin's file must still be there, a regular file (no
         * symlink), unwritable by others and of the signed size. Its bytes are hashed
         * for the plugins a run uses, before the run starts (wfh_catalog_verify_used),
         * and again on the bytes each attempt hands to the runner: hashing every
         * installed plugin on every command would make each start pay for the whole
         * registry. */
        if ((err = wfh_registry_blob_shape(r, p)) < 0)
            goto done;
        c->n_plugins++;
        if ((err = fill_meta(r, p, &c->plugins[c->n_plugins - 1])) < 0)
            goto done;
    }
    for (size_t i = 0; i < c->n_plugins; i++)
        for (size_t t = 0; t < c->plugins[i].n_types; t++)
            c->plugins[i].types[t].plugin = &c->plugins[i];
    for (size_t i = 0; i < c->n_inactive; i++)
        for (size_t t = 0; t < c->inactive[i].n_types; t++)
            c->inactive[i].types[t].plugin = &c->inactive[i];
    *out = c;
    c = NULL;
done:
    wfh_catalog_free(c);
    wfh_registry_free(r);
    free(h);
    return err;
}

int wfh_catalog_verify_used(const wfh_workflow *wf)
{
    const wfh_plugin_meta **seen = NULL; /* owned array of borrowed pointers */
    size_t n_seen = 0;
    int err = 0;
    if (wf->n_steps && !(seen = calloc(wf->n_steps, sizeof *seen)))
        return wfh_error_set(WFH_ENOMEM, "out of memory");
    for (size_t i = 0; i < wf->n_steps && err == 0; i++) {
        const wfh_plugin_meta *m = wf->steps[i].meta ? wf->steps[i].meta->plugin : NULL;
        if (!m || !m->blake2b256) /* not from the registry: nothing signed to compare */
            continue;
        size_t k = 0;
        while (k < n_seen && seen[k] != m)
            k++;
        if (k < n_seen)
            continue;
        seen[n_seen++] = m;
        err = wfh_registry_check_blob_file(m->path, m->name, m->version, m->blake2b256, m->sha256,
                                           m->size);
    }
    free(seen);
    return err;
}
