/* libFuzzer target: unl_parse_date on arbitrary bytes, and the round trip
 * between it and unl_format_iso. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ISO_MIN_MS INT64_C(-62167219200000)
#define ISO_MAX_MS INT64_C(253402300799999)

static void check_format(int64_t ms)
{
    char iso[UNL_ISO_MAX];
    int64_t back;
    size_t n = unl_format_iso(ms, iso);
    if (ms < ISO_MIN_MS || ms > ISO_MAX_MS) {
        if (n != 0)
            abort();
        return;
    }
    if (n != 24 || strlen(iso) != 24 || iso[4] != '-' || iso[10] != 'T' || iso[23] != 'Z')
        abort();
    if (unl_parse_date(iso, n, &back) != 0 || back != ms)
        abort();
    /* the date alone is midnight of the same day */
    if (unl_parse_date(iso, 10, &back) != 0 || back > ms || ms - back >= 86400000)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t ms;
    if (unl_parse_date((const char *)data, size, &ms) == 0)
        check_format(ms);
    if (size >= 8) {
        memcpy(&ms, data, 8);
        check_format(ms);
        /* fold into the calendar's range too, where formatting must succeed */
        check_format(ISO_MIN_MS + (int64_t)((uint64_t)ms % (uint64_t)(ISO_MAX_MS - ISO_MIN_MS + 1)));
    }
    return 0;
}
