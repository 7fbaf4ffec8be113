/* libFuzzer target: unl_parse_retry_after. The first 8 bytes, when there
 * are that many, are also tried as the clock. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *s, size_t len, time_t now)
{
    double wait = -1;
    if (unl_parse_retry_after((const char *)s, len, now, &wait) == 0) {
        if (!(wait >= 0) || isinf(wait))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size, (time_t)784111777);
    check(data, size, (time_t)0);
    if (size >= 8) {
        int64_t now;
        memcpy(&now, data, 8);
        check(data + 8, size - 8, (time_t)now);
    }
    return 0;
}
