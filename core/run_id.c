/*
 * core/run_id.c - run ids: unique, sortable by time, safe in file names and URLs.
 *
 * Shaped like a ULID (26 chars of Crockford base32: 48 bits of milliseconds, then 80
 * random bits from getrandom), so `ls` of a run store and `ORDER BY id` both list runs
 * in the order they started, and two hosts starting runs in the same millisecond still
 * cannot collide in practice.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "error.h"
#include "scheduler.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int wfh_run_id_new(char out[WFH_RUN_ID_LEN + 1])
{
    unsigned char b[16]; /* 6 bytes of time, big-endian, then 10 random */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    for (int i = 5; i >= 0; i--) {
        b[i] = (unsigned char)(ms & 0xff);
        ms >>= 8;
    }
    size_t got = 0;
    while (got < 10) {
        ssize_t r = getrandom(b + 6 + got, 10 - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return wfh_error_set(WFH_EIO, "run id: getrandom: %s", strerror(errno));
        }
        got += (size_t)r;
    }
    /* 128 bits -> 26 base32 digits: the first digit carries the top 3 bits (130 - 128
     * leading zero bits), as in the ULID spec. */
    for (int i = 0; i < WFH_RUN_ID_LEN; i++) {
        unsigned bit = (unsigned)(i * 5) - 2; /* index of the digit's first bit */
        unsigned v = 0;
        for (unsigned k = 0; k < 5; k++) {
            unsigned pos = bit + k; /* wraps to huge for the two leading pad bits */
            unsigned one = pos < 128 ? (b[pos / 8] >> (7 - pos % 8)) & 1u : 0u;
            v = (v << 1) | one;
        }
        out[i] = crockford[v];
    }
    out[WFH_RUN_ID_LEN] = '\0';
    return 0;
}
