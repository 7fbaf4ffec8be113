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
 * (mapped or malloc'd) follows from it, so nothing is stored besides. */
#define _GNU_SOURCE   /* mremap */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

static int mapped(size_t cap)
{
    return cap >= UNL_BIG_BUFFER;
}

void *unl_big_resize(void *p, size_t cap, size_t ncap)
{
    void *np;
    if (ncap == 0) {
        unl_big_free(p, cap);
        return NULL;
    }
    if (!mapped(ncap)) {
        if (!mapped(cap))
            return realloc(p, ncap);
        /* mapped to malloc'd: a copy of what fits */
        np = malloc(ncap);
        if (np == NULL)
            return NULL;
        memcpy(np, p, ncap);
        munmap(p, cap);
        return np;
    }
    if (mapped(cap)) {
        np = mremap(p, cap, ncap, MREMAP_MAYMOVE);
        return np == MAP_FAILED ? NULL : np;
    }
    np = mmap(NULL, ncap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (np == MAP_FAILED)
        return NULL;
    if (p != NULL) {
        memcpy(np, p, cap);
        free(p);
    }
    return np;
}

void unl_big_free(void *p, size_t cap)
{
    if (p == NULL)
        return;
    if (mapped(cap))
        munmap(p, cap);
    else
        free(p);
}
