/*
 * registry/elfcheck.h - what the installer checks in a plugin file before any of its
 * code runs: read from the bytes in memory (the same bytes that become the blob), with
 * <elf.h> and no external tools.
 */
#ifndef WFH_REG_ELFCHECK_H
#define WFH_REG_ELFCHECK_H

#include <stddef.h>
#include <stdint.h>

/* Check a plugin image: a 64-bit little-endian ELF shared object for this machine,
 * whose dynamic section (what the loader uses, not the section headers, which can
 * lie) has no DT_RPATH/DT_RUNPATH/DT_TEXTREL, no DF_TEXTREL/DF_STATIC_TLS, and whose
 * dynamic symbol table defines exactly one global symbol, wfh_plugin_entry_v1.
 * Returns 0 or WFH_ESECURITY / WFH_EABI naming @p what and the reason. */
int wfh_elf_check(const uint8_t *img, size_t len, const char *what);

#endif
