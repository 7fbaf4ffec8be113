/* Retry policy: which outcomes are retried and how long to wait, with a
 * per-client jitter source (no process-wide RNG state). */
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

/* ---- jitter source: splitmix64, seeded per client ------------------------ */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void unl_rng_seed(uint64_t *state, const void *salt)
{
    uint64_t seed = 0;
    struct timespec ts;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &seed, sizeof seed) != (ssize_t)sizeof seed)
            seed = 0;
        close(fd);
    }
    /* Without urandom, the clocks and the box's address still keep two
     * clients (or two processes) from backing off in lockstep. */
    clock_gettime(CLOCK_REALTIME, &ts);
    seed ^= (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed ^= ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)salt;
    *state = seed;
    (void)splitmix(state);
}

/* uniform in [0, 1) */
static double uniform(uint64_t *state)
{
    return (double)(splitmix(state) >> 11) / 9007199254740992.0;
}

/* ---- policy ------------------------------------------------------------- */

static int contains_quota(const char *p, size_t n)
{
    static const char word[] = "quota";
    size_t i, j;
    if (p == NULL || n < sizeof word - 1)
        return 0;
    for (i = 0; i + (sizeof word - 1) <= n; i++) {
        for (j = 0; j < sizeof word - 1; j++) {
            char ch = p[i + j];
            if (ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            if (ch != word[j])
                break;
        }
        if (j == sizeof word - 1)
            return 1;
    }
    return 0;
}

static const char *find_header(const unl_buf *h, const char *name)
{
    size_t i = 0;
    while (i < h->len) {
        const char *n = h->p + i;
        size_t nl = strlen(n);
        const char *v = n + nl + 1;
        if (strcmp(n, name) == 0)
            return v;
        i += nl + strlen(v) + 2;
    }
    return NULL;
}

static int retryable(const unl_xfer *x)
{
    if (x->kind)
        /* TLS failures and protocol violations repeat identically. */
        return strcmp(x->kind, "timeout") == 0 || strcmp(x->kind, "network") == 0;
    if (x->status == 408 || (x->status >= 500 && x->status <= 599))
        return 1;
    if (x->status == 429)
        /* The monthly quota is spent until the month turns: waiting a few
         * seconds only burns the retries. */
        return !contains_quota(x->body.p, x->body.len);
    return 0;
}

double unl_retry_wait(unl_client *c, const unl_xfer *x, int attempt, const unl_settings *s)
{
    double ceiling, wait;
    const char *ra;
    if (attempt > s->retries)
        return -1;
    if (!s->idempotent && x->sent)
        return -1;
    if (!retryable(x))
        return -1;
    /* Full jitter: uniform in [0, min(cap, base * 2^(n-1))]. */
    ceiling = c->retry_base * ldexp(1.0, attempt - 1 < 60 ? attempt - 1 : 60);
    if (ceiling > c->retry_cap)
        ceiling = c->retry_cap;
    wait = ceiling * uniform(&c->rng);
    if (x->kind == NULL && (ra = find_header(&x->head, "retry-after")) != NULL) {
        double secs;
        if (unl_parse_retry_after(ra, strlen(ra), time(NULL), &secs) == 0 && secs >= 0) {
            /* The server knows when it will have capacity again: its word
             * replaces the jitter. Asked to wait longer than the cap, an
             * earlier retry is bound to be refused again and only burns the
             * retries: the answer goes back at once, with the wait asked. */
            if (secs > c->retry_cap)
                return -1;
            wait = secs;
        }
    }
    return wait;
}
