/*
 * core/display.c - the human view of a run (see display.h).
 *
 * Live mode keeps the running steps in a doubly linked list threaded through arrays
 * indexed by step (O(1) to add or remove), and owns the bottom lines of the terminal:
 * anything that scrolls (a finished step, a log line) first erases the status block,
 * prints, and leaves the block to be redrawn once per event-loop turn by
 * wfh_display_tick, so a burst of log lines costs one redraw, not one each. Lines are
 * cut to the terminal's width, since a wrapped line would break the cursor arithmetic,
 * and control bytes from plugins are neutralised so a step cannot repaint the screen.
 *
 * Both modes compose in memory and hand the text to the stream in one write: finished
 * steps and log lines wait for wfh_display_flush, which the scheduler calls once per
 * turn, when it commits the turn's state changes and before it blocks in poll()
 * (issue #8: stderr is unbuffered, and each line was three write() calls: 30 000 for
 * 10 000 pass steps). Rare lines (the run's id, notes, retries, the summary) go out at
 * once, with anything held before them, so the order never changes; so does a held
 * text past DISPLAY_HOLD_MAX, and wfh_display_free writes what is left.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "display.h"

#define NONE ((size_t)-1)
#define MAX_STATUS_LINES 12
/* Held text past this many bytes goes out before the turn ends: memory stays bounded
 * whatever a turn produces (a chatty step, thousands of pass steps). */
#define DISPLAY_HOLD_MAX 65536

struct wfh_display {
    FILE *out;               /* owned memstream: text composed, not yet written to real */
    FILE *real;              /* borrowed: where the text goes (stderr) */
    char *buf;               /* owned by the memstream */
    size_t buflen;
    int live;
    size_t n;
    const char *const *ids;  /* borrowed [n] */
    size_t finished;
    /* running list, in start order */
    size_t *prev, *next;     /* owned [n] (live mode only) */
    size_t head, tail, n_running;
    uint64_t *start_ms;      /* owned [n] (live mode only) */
    double *fraction;        /* owned [n]: progress, < 0 when none reported */
    char **note;             /* owned [n]: last progress message, each owned */
    unsigned *attempt;       /* owned [n] */
    unsigned char *linked;   /* owned [n]: in the running list */
    size_t drawn;            /* status lines on screen below the scrolled text */
    int dirty;
    uint64_t now_ms, drawn_at_ms;
    wfh_display_mask_fn mask; /* may be NULL */
    const void *mask_ud;      /* borrowed */
};

static int detect_tty(FILE *out)
{
    const char *term = getenv("TERM");
    if (!term || !*term || !strcmp(term, "dumb"))
        return 0;
    return isatty(fileno(out));
}

wfh_display *wfh_display_new(FILE *out, int tty, size_t n_steps, const char *const *ids)
{
    wfh_display *d = calloc(1, sizeof *d); /* owned until returned */
    if (!d)
        return NULL;
    d->real = out;
    d->n = n_steps;
    d->ids = ids;
    d->live = tty < 0 ? detect_tty(out) : tty;
    d->head = d->tail = NONE;
    /* stderr is unbuffered: composing a redraw byte by byte would be hundreds of
     * write()s and visible flicker, and a plain line was three. Compose in memory,
     * write once per emit. */
    d->out = open_memstream(&d->buf, &d->buflen);
    if (!d->out) {
        wfh_display_free(d);
        return NULL;
    }
    if (d->live) {
        size_t cells = n_steps ? n_steps : 1;
        d->prev = calloc(cells, sizeof *d->prev);
        d->next = calloc(cells, sizeof *d->next);
        d->start_ms = calloc(cells, sizeof *d->start_ms);
        d->fraction = calloc(cells, sizeof *d->fraction);
        d->note = calloc(cells, sizeof *d->note);
        d->attempt = calloc(cells, sizeof *d->attempt);
        d->linked = calloc(cells, 1);
        if (!d->prev || !d->next || !d->start_ms || !d->fraction || !d->note ||
            !d->attempt || !d->linked) {
            wfh_display_free(d);
            return NULL;
        }
    }
    return d;
}

static void emit(wfh_display *d);

void wfh_display_free(wfh_display *d)
{
    if (!d)
        return;
    if (d->out) {
        emit(d); /* nothing held is lost, whatever path ended the run */
        fclose(d->out);
        free(d->buf);
    }
    if (d->note)
        for (size_t i = 0; i < d->n; i++)
            free(d->note[i]);
    free(d->prev);
    free(d->next);
    free(d->start_ms);
    free(d->fraction);
    free(d->note);
    free(d->attempt);
    free(d->linked);
    free(d);
}

int wfh_display_live(const wfh_display *d)
{
    return d->live;
}

static void fmt_duration(char *buf, size_t len, uint64_t ms)
{
    if (ms < 1000)
        snprintf(buf, len, "%llu ms", (unsigned long long)ms);
    else if (ms < 60000)
        snprintf(buf, len, "%.2f s", (double)ms / 1000.0);
    else
        snprintf(buf, len, "%llum%02llus", (unsigned long long)(ms / 60000),
                 (unsigned long long)(ms / 1000 % 60));
}

static unsigned term_cols(const wfh_display *d)
{
    struct winsize ws;
    if (ioctl(fileno(d->real), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
        return ws.ws_col;
    return 80;
}

static unsigned term_rows(const wfh_display *d)
{
    struct winsize ws;
    if (ioctl(fileno(d->real), TIOCGWINSZ, &ws) == 0 && ws.ws_row > 2)
        return ws.ws_row;
    return 24;
}

/* Write @p len bytes, replacing control bytes on a terminal (tabs become spaces). */
static void put_text(wfh_display *d, const char *s, size_t len)
{
    if (!d->live) {
        fwrite(s, 1, len, d->out);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        fputc(c == '\t' ? ' ' : (c < 0x20 || c == 0x7f) ? '?' : c, d->out);
    }
}

/* Hand what was composed to the real stream: one write. It holds whole lines only
 * (every caller ends its text with a newline first), which masking needs. */
static void emit(wfh_display *d)
{
    if (!d->out || fflush(d->out) != 0 || d->buflen == 0)
        return;
    if (d->mask) {
        size_t ml = 0;
        char *m = d->mask(d->mask_ud, d->buf, d->buflen, &ml); /* owned */
        if (m)
            fwrite(m, 1, ml, d->real);
        free(m);
    } else {
        fwrite(d->buf, 1, d->buflen, d->real);
    }
    fflush(d->real);
    fseeko(d->out, 0, SEEK_SET);
    d->buflen = 0;
}

/* Held text waits for wfh_display_flush unless there is a lot of it. */
static void hold(wfh_display *d)
{
    off_t held = ftello(d->out);
    if (held < 0 || held >= DISPLAY_HOLD_MAX)
        emit(d);
}

/* Take the status block off the screen, so that text can scroll in its place. */
static void erase(wfh_display *d)
{
    if (d->live && d->drawn > 0) {
        fprintf(d->out, "\r\x1b[%zuA\x1b[J", d->drawn);
        d->drawn = 0;
    }
    d->dirty = 1;
}

/* One status line, cut to @p cols - 1 columns (the last column would wrap on some
 * terminals). */
static void draw_line(wfh_display *d, size_t step, unsigned cols)
{
    char line[512], dur[32];
    fmt_duration(dur, sizeof dur, d->now_ms >= d->start_ms[step] ? d->now_ms - d->start_ms[step] : 0);
    int k = snprintf(line, sizeof line, "[%zu/%zu] %s (%s", d->finished, d->n, d->ids[step], dur);
    size_t used = k > 0 ? (size_t)k : 0;
    if (used < sizeof line && d->attempt[step] > 1) {
        k = snprintf(line + used, sizeof line - used, ", attempt %u", d->attempt[step]);
        used += k > 0 ? (size_t)k : 0;
    }
    if (used < sizeof line && d->fraction[step] >= 0) {
        k = snprintf(line + used, sizeof line - used, ", %d%%", (int)(d->fraction[step] * 100.0));
        used += k > 0 ? (size_t)k : 0;
    }
    if (used < sizeof line) {
        k = snprintf(line + used, sizeof line - used, ")%s%s", d->note[step] ? " " : "",
                     d->note[step] ? d->note[step] : "");
        used += k > 0 ? (size_t)k : 0;
    }
    if (used >= sizeof line)
        used = sizeof line - 1;
    if (used > cols - 1)
        used = cols - 1;
    /* Cut on a UTF-8 character boundary, not inside one. */
    while (used > 0 && used < sizeof line && ((unsigned char)line[used] & 0xC0) == 0x80)
        used--;
    put_text(d, line, used);
    fputc('\n', d->out);
}

void wfh_display_tick(wfh_display *d, uint64_t now_ms)
{
    if (!d->live)
        return;
    d->now_ms = now_ms;
    /* Redraw when something changed, or every 100 ms so elapsed times move. */
    if (!d->dirty && now_ms - d->drawn_at_ms < 100)
        return;
    erase(d);
    unsigned cols = term_cols(d);
    size_t max = term_rows(d) / 2;
    if (max > MAX_STATUS_LINES)
        max = MAX_STATUS_LINES;
    if (max < 2)
        max = 2;
    size_t shown = 0;
    for (size_t s = d->head; s != NONE; s = d->next[s]) {
        if (shown + 1 == max && d->n_running > max) {
            fprintf(d->out, "... and %zu more running\n", d->n_running - shown);
            shown++;
            break;
        }
        draw_line(d, s, cols);
        shown++;
    }
    d->drawn = shown;
    d->dirty = 0;
    d->drawn_at_ms = now_ms;
    emit(d);
}

void wfh_display_flush(wfh_display *d, uint64_t now_ms)
{
    if (d->live)
        wfh_display_tick(d, now_ms); /* redraws what the turn changed, and emits */
    emit(d);
}

void wfh_display_run_start(wfh_display *d, const char *run_id, const char *workflow)
{
    erase(d);
    fprintf(d->out, "run %s (%s)\n", run_id, workflow);
    emit(d);
}

void wfh_display_note(wfh_display *d, const char *msg)
{
    erase(d);
    fprintf(d->out, "%s\n", msg);
    emit(d);
}

void wfh_display_step_start(wfh_display *d, size_t step, unsigned attempt, uint64_t now_ms)
{
    if (!d->live || step >= d->n || d->linked[step])
        return;
    d->linked[step] = 1;
    d->start_ms[step] = now_ms;
    d->attempt[step] = attempt;
    d->fraction[step] = -1;
    d->prev[step] = d->tail;
    d->next[step] = NONE;
    if (d->tail != NONE)
        d->next[d->tail] = step;
    else
        d->head = step;
    d->tail = step;
    d->n_running++;
    d->dirty = 1;
}

static void unlink_running(wfh_display *d, size_t step)
{
    /* Only steps that started are linked: a skipped or cancelled step never was. */
    if (!d->linked[step])
        return;
    d->linked[step] = 0;
    if (d->prev[step] != NONE)
        d->next[d->prev[step]] = d->next[step];
    else
        d->head = d->next[step];
    if (d->next[step] != NONE)
        d->prev[d->next[step]] = d->prev[step];
    else
        d->tail = d->prev[step];
    d->prev[step] = d->next[step] = NONE;
    d->n_running--;
    free(d->note[step]);
    d->note[step] = NULL;
}

void wfh_display_step_end(wfh_display *d, size_t step, wfh_sstate st, uint64_t duration_ms,
                          const char *why)
{
    if (step >= d->n)
        return;
    if (d->live)
        unlink_running(d, step);
    d->finished++;
    erase(d);
    const char *word;
    switch (st) {
    case WFH_S_SUCCEEDED: word = "ok  "; break;
    case WFH_S_FAILED: word = "FAIL"; break;
    case WFH_S_TIMED_OUT: word = "TIME"; break;
    case WFH_S_SKIPPED: word = "skip"; break;
    case WFH_S_CANCELLED: word = "cncl"; break;
    default: word = "??? "; break;
    }
    char dur[32] = "";
    int ran = duration_ms != WFH_DISPLAY_NEVER_RAN;
    if (ran)
        fmt_duration(dur, sizeof dur, duration_ms);
    fprintf(d->out, "[%zu/%zu] %s %s", d->finished, d->n, word, d->ids[step]);
    if (ran)
        fprintf(d->out, " (%s)", dur);
    if (why && *why) {
        fputs(": ", d->out);
        size_t len = strcspn(why, "\n");
        put_text(d, why, len);
    }
    fputc('\n', d->out);
    hold(d);
}

void wfh_display_log(wfh_display *d, size_t step, const char *msg, size_t len)
{
    if (step >= d->n)
        return;
    erase(d);
    /* One output line per log line, each carrying the step id, so interleaved steps
     * stay readable and grep-able. */
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        len--;
    size_t off = 0;
    do {
        const char *nl = memchr(msg + off, '\n', len - off);
        size_t end = nl ? (size_t)(nl - msg) : len;
        fprintf(d->out, "%s | ", d->ids[step]);
        put_text(d, msg + off, end - off);
        fputc('\n', d->out);
        off = end + 1;
    } while (off < len);
    hold(d);
}

void wfh_display_progress(wfh_display *d, size_t step, double fraction, const char *msg)
{
    if (!d->live || step >= d->n)
        return;
    if (fraction >= 0 && fraction <= 1)
        d->fraction[step] = fraction;
    if (msg && *msg) {
        char *copy = strndup(msg, 120);
        if (copy) {
            free(d->note[step]);
            d->note[step] = copy;
        }
    }
    d->dirty = 1;
}

void wfh_display_run_end(wfh_display *d, const char *status, size_t succeeded, size_t failed,
                         size_t skipped, size_t cancelled, uint64_t duration_ms)
{
    erase(d);
    d->dirty = 0;
    char dur[32];
    fmt_duration(dur, sizeof dur, duration_ms);
    fprintf(d->out, "run %s: %zu succeeded, %zu failed, %zu skipped", status, succeeded, failed,
            skipped);
    if (cancelled)
        fprintf(d->out, ", %zu cancelled", cancelled);
    fprintf(d->out, " (%s)\n", dur);
    emit(d);
}

int wfh_display_set_mask(wfh_display *d, wfh_display_mask_fn mask, const void *ud)
{
    /* Masking needs whole lines: both modes compose in memory and emit whole lines. */
    d->mask = mask;
    d->mask_ud = ud;
    return 0;
}

void wfh_display_step_retry(wfh_display *d, size_t step, unsigned attempt, uint64_t wait_ms,
                            const char *why)
{
    if (step >= d->n)
        return;
    if (d->live) /* off the status lines while it waits; the next start shows attempt n+1 */
        unlink_running(d, step);
    erase(d);
    char dur[32];
    fmt_duration(dur, sizeof dur, wait_ms);
    fprintf(d->out, "[%zu/%zu] again %s: attempt %u failed", d->finished, d->n, d->ids[step],
            attempt);
    if (why && *why) {
        fputs(" (", d->out);
        put_text(d, why, strcspn(why, "\n"));
        fputc(')', d->out);
    }
    fprintf(d->out, "; attempt %u in %s\n", attempt + 1, dur);
    d->dirty = 1;
    emit(d);
}
