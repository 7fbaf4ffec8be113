/* Large buffers (a response body, a parsed page's tape and strings: some
 * MB each for a page of 1,000 orders) in mappings of their own, smaller
 * ones from malloc.
 *
 * Why: glibc serves a block above its mmap threshold (128 KiB at first) by
 * a mapping, and when such a block is freed it raises the threshold to the
 * block's size (up to 32 MiB), so from then on blocks of several MB come
 * from its heaps, where a freed block seldom goes back to the kernel and
 * the pages of a long listing pile up: the process's peak memory then
 * depends on how the blocks happened to fall, not on what it holds. A
 * buffer here is mapped and unmapped by itself, grows by mremap without a
 * copy, and its memory goes back the moment it is freed; glibc never sees
 * it, so its threshold stays where it was. A library cannot set glibc's
 * threshold for its host (mallopt is process-wide); this needs no setting.
 *
 * The caller keeps each buffer's capacity in bytes: the kind of a buffer
 * (mapped or malloc'd) follows from it, so nothing is stored besides.
 *
 * A pool (optional: NULL goes straight to the kernel) keeps a few freed
 * mappings for the next buffer. A fresh mapping costs a page fault and a
 * zeroed page for every 4 KiB written (some 2 us each on these machines),
 * and its unmapping a TLB flush on every core the process runs on: a
 * listing's pager makes and drops three buffers a page (the body, the
 * parsed tape and its strings), all of about one size. The pool is bounded
 * in mappings and bytes, so what it keeps is never more than about one
 * page's buffers; it is shared by the threads that hold it (the pager's
 * transfers, its parser thread, the pages it made, which may outlive it)
 * and freed with the last of them. */
#define _GNU_SOURCE   /* mremap */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define POOL_SLOTS 4

struct unl_bigpool {
    pthread_mutex_t mu;
    int refs;
    size_t max_bytes, bytes;
    int n;
    void *p[POOL_SLOTS];
    size_t cap[POOL_SLOTS];
};

static int mapped(size_t cap)
{
    return cap >= UNL_BIG_BUFFER;
}

unl_bigpool *unl_bigpool_new(size_t max_bytes)
{
    unl_bigpool *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return NULL;
    if (pthread_mutex_init(&pool->mu, NULL) != 0) {
        free(pool);
        return NULL;
    }
    pool->refs = 1;
    pool->max_bytes = max_bytes;
    return pool;
}

void unl_bigpool_hold(unl_bigpool *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->mu);
    pool->refs++;
    pthread_mutex_unlock(&pool->mu);
}

void unl_bigpool_drop(unl_bigpool *pool)
{
    int refs, i;
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->mu);
    refs = --pool->refs;
    pthread_mutex_unlock(&pool->mu);
    if (refs > 0)
        return;
    for (i = 0; i < pool->n; i++)
        munmap(pool->p[i], pool->cap[i]);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}

static size_t page_round(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

/* Whether a kept mapping of a bytes serves a request for ncap better than
 * one of b: one that holds ncap over one that does not; of two that do, the
 * smaller; of two that do not, the larger (fewer new pages to write). */
static int better(size_t a, size_t b, size_t ncap)
{
    if ((a >= ncap) != (b >= ncap))
        return a >= ncap;
    return a >= ncap ? a < b : a > b;
}

/* A mapping of at least ncap bytes, *got its length: a kept one when there
 * is one (the smallest that holds ncap, else the largest, grown: the pages
 * it has written stay), else a new one. NULL when out of memory. */
static void *map_new(unl_bigpool *pool, size_t ncap, size_t *got)
{
    void *np = NULL;
    size_t have = 0;
    ncap = page_round(ncap);
    if (pool != NULL) {
        int i, pick = -1;
        pthread_mutex_lock(&pool->mu);
        for (i = 0; i < pool->n; i++)
            if (pick < 0 || better(pool->cap[i], pool->cap[pick], ncap))
                pick = i;
        if (pick >= 0) {
            np = pool->p[pick];
            have = pool->cap[pick];
            pool->bytes -= have;
            pool->n--;
            pool->p[pick] = pool->p[pool->n];
            pool->cap[pick] = pool->cap[pool->n];
        }
        pthread_mutex_unlock(&pool->mu);
    }
    if (np != NULL) {
        void *rp;
        if (have >= ncap) {
            *got = have;
            return np;
        }
        rp = mremap(np, have, ncap, MREMAP_MAYMOVE);
        if (rp != MAP_FAILED) {
            *got = ncap;
            return rp;
        }
        munmap(np, have);
    }
    np = mmap(NULL, ncap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (np == MAP_FAILED)
        return NULL;
    *got = ncap;
    return np;
}

/* A mapping done with: kept when the pool has room, else unmapped. */
static void map_done(unl_bigpool *pool, void *p, size_t cap)
{
    cap = page_round(cap);
    if (pool != NULL) {
        int kept = 0;
        pthread_mutex_lock(&pool->mu);
        if (pool->n < POOL_SLOTS && cap <= pool->max_bytes - pool->bytes) {
            pool->p[pool->n] = p;
            pool->cap[pool->n] = cap;
            pool->n++;
            pool->bytes += cap;
            kept = 1;
        }
        pthread_mutex_unlock(&pool->mu);
        if (kept)
            return;
    }
    munmap(p, cap);
}

void *unl_big_resize(unl_bigpool *pool, void *p, size_t cap, size_t *ncap)
{
    void *np;
    size_t want = *ncap;
    if (want == 0) {
        unl_big_free(pool, p, cap);
        return NULL;
    }
    if (!mapped(want)) {
        if (!mapped(cap))
            return realloc(p, want);
        /* mapped to malloc'd: a copy of what fits */
        np = malloc(want);
        if (np == NULL)
            return NULL;
        memcpy(np, p, want);
        map_done(pool, p, cap);
        return np;
    }
    if (mapped(cap)) {
        /* page-rounded, as the kernel keeps a mapping's length */
        np = mremap(p, page_round(cap), page_round(want), MREMAP_MAYMOVE);
        if (np == MAP_FAILED)
            return NULL;
        *ncap = page_round(want);
        return np;
    }
    np = map_new(pool, want, ncap);
    if (np == NULL)
        return NULL;
    if (p != NULL) {
        memcpy(np, p, cap);
        free(p);
    }
    return np;
}

void unl_big_free(unl_bigpool *pool, void *p, size_t cap)
{
    if (p == NULL)
        return;
    if (mapped(cap))
        map_done(pool, p, cap);
    else
        free(p);
}
