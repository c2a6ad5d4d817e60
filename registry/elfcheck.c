/*
 * registry/elfcheck.c - static checks on a plugin's ELF image (see elfcheck.h).
 *
 * Everything is bounds-checked against the buffer: the file is hostile until proven
 * otherwise. The symbol count comes from DT_HASH or DT_GNU_HASH, as the dynamic loader
 * sees it; section headers are not consulted.
 */
#include "elfcheck.h"

#include <elf.h>
#include <string.h>

#include "../core/error.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#elif defined(__riscv)
#define HOST_MACHINE EM_RISCV
#else
#define HOST_MACHINE EM_NONE
#endif

#define ENTRY "wfh_plugin_entry_v1"

typedef struct {
    const uint8_t *img;
    size_t len;
    const Elf64_Phdr *ph;
    size_t phnum;
    const char *what;
} elf;

static int in_bounds(const elf *e, uint64_t off, uint64_t n)
{
    return off <= e->len && n <= e->len - off;
}

/* Virtual address -> file offset through the PT_LOAD segments. */
static int vaddr_off(const elf *e, uint64_t va, uint64_t n, uint64_t *off)
{
    for (size_t i = 0; i < e->phnum; i++) {
        const Elf64_Phdr *p = &e->ph[i];
        if (p->p_type != PT_LOAD)
            continue;
        if (va >= p->p_vaddr && va - p->p_vaddr < p->p_filesz &&
            n <= p->p_filesz - (va - p->p_vaddr)) {
            *off = p->p_offset + (va - p->p_vaddr);
            return in_bounds(e, *off, n) ? 0 : -1;
        }
    }
    return -1;
}

static int bad(const elf *e, const char *why)
{
    return wfh_error_set(WFH_ESECURITY, "%s: refused: %s", e->what, why);
}

/* Number of dynamic symbols from a GNU hash table: highest chain index + 1. */
static int gnu_hash_count(const elf *e, uint64_t va, uint64_t *count)
{
    uint64_t off;
    if (vaddr_off(e, va, 16, &off) < 0)
        return -1;
    uint32_t hdr[4];
    memcpy(hdr, e->img + off, 16);
    uint32_t nbuckets = hdr[0], symoffset = hdr[1], bloom_size = hdr[2];
    if (nbuckets == 0 || nbuckets > (1u << 24) || bloom_size > (1u << 24))
        return -1;
    uint64_t buckets_va = va + 16 + (uint64_t)bloom_size * 8;
    uint64_t boff;
    if (vaddr_off(e, buckets_va, (uint64_t)nbuckets * 4, &boff) < 0)
        return -1;
    uint32_t maxb = 0;
    for (uint32_t i = 0; i < nbuckets; i++) {
        uint32_t b;
        memcpy(&b, e->img + boff + (uint64_t)i * 4, 4);
        if (b > maxb)
            maxb = b;
    }
    if (maxb == 0) {
        *count = symoffset;
        return 0;
    }
    if (maxb < symoffset)
        return -1;
    uint64_t chains_va = buckets_va + (uint64_t)nbuckets * 4;
    for (uint64_t idx = maxb;; idx++) {
        uint64_t coff;
        if (idx - maxb > (1u << 24) ||
            vaddr_off(e, chains_va + (idx - symoffset) * 4, 4, &coff) < 0)
            return -1;
        uint32_t h;
        memcpy(&h, e->img + coff, 4);
        if (h & 1) {
            *count = idx + 1;
            return 0;
        }
    }
}

int wfh_elf_check(const uint8_t *img, size_t len, const char *what)
{
    elf e = {.img = img, .len = len, .what = what};
    Elf64_Ehdr eh;
    if (len < sizeof eh || memcmp(img, ELFMAG, SELFMAG) != 0)
        return bad(&e, "not an ELF file");
    memcpy(&eh, img, sizeof eh);
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return bad(&e, "not a 64-bit little-endian ELF");
    if (eh.e_type != ET_DYN)
        return bad(&e, "not a shared object (ET_DYN)");
    if (eh.e_machine != HOST_MACHINE)
        return wfh_error_set(WFH_ESECURITY, "%s: refused: built for ELF machine %u, this host is %u",
                             what, (unsigned)eh.e_machine, (unsigned)HOST_MACHINE);
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256 ||
        !in_bounds(&e, eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr)) ||
        eh.e_phoff % 8 != 0)
        return bad(&e, "malformed program headers");
    /* Copy the headers out so alignment never matters. */
    Elf64_Phdr ph[256];
    memcpy(ph, img + eh.e_phoff, (size_t)eh.e_phnum * sizeof(Elf64_Phdr));
    e.ph = ph;
    e.phnum = eh.e_phnum;

    const Elf64_Phdr *dynph = NULL;
    for (size_t i = 0; i < e.phnum; i++) {
        if (ph[i].p_type == PT_DYNAMIC) {
            if (dynph)
                return bad(&e, "more than one PT_DYNAMIC");
            dynph = &ph[i];
        }
        if (ph[i].p_type == PT_INTERP)
            return bad(&e, "has PT_INTERP (an executable, not a plugin)");
    }
    if (!dynph || !in_bounds(&e, dynph->p_offset, dynph->p_filesz) ||
        dynph->p_filesz % sizeof(Elf64_Dyn) != 0)
        return bad(&e, "no valid dynamic section");

    uint64_t symtab = 0, strtab = 0, strsz = 0, syment = 0, hash = 0, gnuhash = 0;
    uint64_t needed[64]; /* DT_NEEDED string offsets, checked once the table is known */
    size_t nneeded = 0;
    size_t ndyn = dynph->p_filesz / sizeof(Elf64_Dyn);
    for (size_t i = 0; i < ndyn; i++) {
        Elf64_Dyn d;
        memcpy(&d, img + dynph->p_offset + i * sizeof d, sizeof d);
        if (d.d_tag == DT_NULL)
            break;
        switch (d.d_tag) {
        case DT_RPATH: return bad(&e, "has DT_RPATH (library search path baked in)");
        case DT_RUNPATH: return bad(&e, "has DT_RUNPATH (library search path baked in)");
        case DT_TEXTREL: return bad(&e, "has text relocations (DT_TEXTREL)");
        case DT_FLAGS:
            if (d.d_un.d_val & DF_TEXTREL)
                return bad(&e, "has text relocations (DF_TEXTREL)");
            if (d.d_un.d_val & DF_STATIC_TLS)
                return bad(&e, "uses the static TLS model (DF_STATIC_TLS)");
            break;
        case DT_SYMTAB: symtab = d.d_un.d_ptr; break;
        case DT_STRTAB: strtab = d.d_un.d_ptr; break;
        case DT_STRSZ: strsz = d.d_un.d_val; break;
        case DT_SYMENT: syment = d.d_un.d_val; break;
        case DT_HASH: hash = d.d_un.d_ptr; break;
        case DT_GNU_HASH: gnuhash = d.d_un.d_ptr; break;
        case DT_NEEDED:
            if (nneeded == sizeof needed / sizeof needed[0])
                return bad(&e, "more than 64 DT_NEEDED libraries");
            needed[nneeded++] = d.d_un.d_val;
            break;
        default: break;
        }
    }
    if (!symtab || !strtab || !strsz || (syment && syment != sizeof(Elf64_Sym)))
        return bad(&e, "no dynamic symbol table");
    uint64_t nsyms = 0;
    if (hash) {
        uint64_t off;
        uint32_t h[2];
        if (vaddr_off(&e, hash, 8, &off) < 0)
            return bad(&e, "malformed DT_HASH");
        memcpy(h, img + off, 8);
        nsyms = h[1];
    } else if (gnuhash) {
        if (gnu_hash_count(&e, gnuhash, &nsyms) < 0)
            return bad(&e, "malformed DT_GNU_HASH");
    } else {
        return bad(&e, "no symbol hash table");
    }
    if (nsyms > (1u << 20))
        return bad(&e, "implausible number of dynamic symbols");
    uint64_t symoff, stroff;
    if (vaddr_off(&e, symtab, nsyms * sizeof(Elf64_Sym), &symoff) < 0 ||
        vaddr_off(&e, strtab, strsz, &stroff) < 0)
        return bad(&e, "dynamic symbol or string table outside the file");
    const char *strs = (const char *)img + stroff;
    /* With no RPATH/RUNPATH, a library named by its bare soname is found only through
     * the system's own search path; a name with a '/' (absolute, relative to the current
     * directory, or $ORIGIN-based) would load code from wherever it points, outside
     * anything the registry signed. */
    for (size_t i = 0; i < nneeded; i++) {
        if (needed[i] >= strsz || !memchr(strs + needed[i], '\0', strsz - needed[i]))
            return bad(&e, "DT_NEEDED name outside the string table");
        const char *lib = strs + needed[i];
        if (!*lib || strchr(lib, '/'))
            return wfh_error_set(WFH_ESECURITY, "%s: refused: needs library '%.120s' by path "
                                 "(DT_NEEDED must be a bare soname such as libcurl.so.4; link "
                                 "against a library that has a SONAME)", what, lib);
    }
    int found = 0;
    for (uint64_t i = 1; i < nsyms; i++) {
        Elf64_Sym s;
        memcpy(&s, img + symoff + i * sizeof s, sizeof s);
        if (s.st_shndx == SHN_UNDEF)
            continue;
        unsigned bind = ELF64_ST_BIND(s.st_info), vis = ELF64_ST_VISIBILITY(s.st_other);
        if (bind == STB_LOCAL || vis == STV_HIDDEN || vis == STV_INTERNAL)
            continue;
        if (s.st_name >= strsz || !memchr(strs + s.st_name, '\0', strsz - s.st_name))
            return bad(&e, "symbol name outside the string table");
        const char *name = strs + s.st_name;
        /* Version definitions appear as absolute symbols named after the version. */
        if (s.st_shndx == SHN_ABS && s.st_value == 0 && ELF64_ST_TYPE(s.st_info) == STT_OBJECT)
            continue;
        if (!strcmp(name, ENTRY) && ELF64_ST_TYPE(s.st_info) == STT_FUNC) {
            found++;
            continue;
        }
        return wfh_error_set(WFH_ESECURITY,
                             "%s: refused: exports '%.80s'; a plugin must export only " ENTRY
                             " (build with -fvisibility=hidden or a version script)",
                             what, name);
    }
    if (found != 1)
        return wfh_error_set(WFH_ESECURITY, "%s: refused: entry symbol " ENTRY " is missing", what);
    return 0;
}
