/* Dates: the API's .NET "/Date(ms)/" and ISO 8601 forms, and Retry-After.
 * Pure arithmetic on the proleptic Gregorian calendar (days from civil), so
 * neither the TZ variable nor the locale can change a result, and every
 * parser reads only s[0..len). */
#include <stdint.h>
#include <string.h>

#include "internal.h"

/* ---- calendar ---------------------------------------------------------- */

#define MS_PER_DAY INT64_C(86400000)
/* 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z */
#define ISO_MIN_MS INT64_C(-62167219200000)
#define ISO_MAX_MS INT64_C(253402300799999)

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char DAYS[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : DAYS[m - 1];
}

/* Days since 1970-01-01 of y-m-d; y within a few thousand years of 0. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ---- small readers ----------------------------------------------------- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Exactly n digits at s[*i]; advances *i. */
static int read_fixed(const char *s, size_t len, size_t *i, int n, int *out)
{
    int v = 0, k;
    if (len - *i < (size_t)n)
        return -1;
    for (k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];
        if (!is_digit(c))
            return -1;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    *out = v;
    return 0;
}

static int expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return -1;
    (*i)++;
    return 0;
}

static int64_t day_ms(int64_t y, int mo, int d, int h, int mi, int sec, int ms)
{
    return days_from_civil(y, mo, d) * MS_PER_DAY
         + (int64_t)h * 3600000 + (int64_t)mi * 60000 + (int64_t)sec * 1000 + ms;
}

static int valid_ymd(int64_t y, int mo, int d)
{
    return mo >= 1 && mo <= 12 && d >= 1 && d <= days_in_month(y, mo);
}

/* ---- unl_parse_date ---------------------------------------------------- */

/* "/Date(ms)/" or "/Date(ms+hhmm)/": the offset only says where the writer
 * was; ms is already UTC. */
static int parse_dotnet(const char *s, size_t len, int64_t *ms)
{
    size_t i = 6;   /* after "/Date(" */
    int neg = 0, ndig = 0;
    int64_t v = 0;
    if (i < len && s[i] == '-') {
        neg = 1;
        i++;
    }
    while (i < len && is_digit(s[i])) {
        int dgt = s[i] - '0';
        if (v > (INT64_MAX - dgt) / 10)
            return -1;
        v = v * 10 + dgt;
        ndig++;
        i++;
    }
    if (ndig == 0)
        return -1;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        int hh, mm;
        i++;
        if (read_fixed(s, len, &i, 2, &hh) || read_fixed(s, len, &i, 2, &mm) || hh > 23 || mm > 59)
            return -1;
    }
    if (expect(s, len, &i, ')') || expect(s, len, &i, '/') || i != len)
        return -1;
    *ms = neg ? -v : v;
    return 0;
}

int unl_parse_date(const char *s, size_t len, int64_t *ms)
{
    size_t i = 0;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, frac = 0;
    if (len >= 6 && memcmp(s, "/Date(", 6) == 0)
        return parse_dotnet(s, len, ms);
    if (read_fixed(s, len, &i, 4, &y) || expect(s, len, &i, '-') ||
        read_fixed(s, len, &i, 2, &mo) || expect(s, len, &i, '-') ||
        read_fixed(s, len, &i, 2, &d) || !valid_ymd(y, mo, d))
        return -1;
    if (i < len) {
        if (expect(s, len, &i, 'T') ||
            read_fixed(s, len, &i, 2, &h) || expect(s, len, &i, ':') ||
            read_fixed(s, len, &i, 2, &mi) || expect(s, len, &i, ':') ||
            read_fixed(s, len, &i, 2, &sec) || h > 23 || mi > 59 || sec > 59)
            return -1;
        if (i < len && s[i] == '.') {
            /* 1 to 9 digits (.NET writes 7); kept to the millisecond */
            int ndig = 0, scale = 100;
            i++;
            while (i < len && is_digit(s[i])) {
                if (++ndig > 9)
                    return -1;
                frac += (s[i] - '0') * scale;
                scale /= 10;
                i++;
            }
            if (ndig == 0)
                return -1;
        }
        if (i < len && s[i] == 'Z')
            i++;
        if (i != len)
            return -1;
    }
    *ms = day_ms(y, mo, d, h, mi, sec, frac);
    return 0;
}

/* ---- unl_format_iso ---------------------------------------------------- */

static void put_digits(char *out, int64_t v, int n)
{
    while (n-- > 0) {
        out[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

size_t unl_format_iso(int64_t ms, char out[UNL_ISO_MAX])
{
    int64_t days, rem, y;
    int m, d;
    if (ms < ISO_MIN_MS || ms > ISO_MAX_MS) {
        out[0] = '\0';
        return 0;
    }
    days = ms / MS_PER_DAY;
    rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    memcpy(out, "0000-00-00T00:00:00.000Z", 25);
    put_digits(out, y, 4);
    put_digits(out + 5, m, 2);
    put_digits(out + 8, d, 2);
    put_digits(out + 11, rem / 3600000, 2);
    put_digits(out + 14, rem / 60000 % 60, 2);
    put_digits(out + 17, rem / 1000 % 60, 2);
    put_digits(out + 20, rem % 1000, 3);
    return 24;
}

/* ---- unl_parse_retry_after --------------------------------------------- */

static const char MONTHS[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
static const char *const WEEKDAYS[7] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const WEEKDAYS_LONG[7] = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"
};

static int read_month(const char *s, size_t len, size_t *i, int *mo)
{
    int k;
    if (len - *i < 3)
        return -1;
    for (k = 0; k < 12; k++) {
        if (memcmp(s + *i, MONTHS + 3 * k, 3) == 0) {
            *mo = k + 1;
            *i += 3;
            return 0;
        }
    }
    return -1;
}

/* One of the names at s[*i], followed by `after`; advances *i past both. */
static int read_name(const char *s, size_t len, size_t *i, const char *const names[7], char after)
{
    int k;
    for (k = 0; k < 7; k++) {
        size_t n = strlen(names[k]);
        if (len - *i > n && memcmp(s + *i, names[k], n) == 0 && s[*i + n] == after) {
            *i += n + 1;
            return 0;
        }
    }
    return -1;
}

static int read_time(const char *s, size_t len, size_t *i, int *h, int *mi, int *sec)
{
    /* second 60 is a leap second (RFC 9110 dates count it); it lands on the
     * next minute */
    if (read_fixed(s, len, i, 2, h) || expect(s, len, i, ':') ||
        read_fixed(s, len, i, 2, mi) || expect(s, len, i, ':') ||
        read_fixed(s, len, i, 2, sec) || *h > 23 || *mi > 59 || *sec > 60)
        return -1;
    return 0;
}

/* Year of now, for RFC 850's two-digit years. */
static int64_t year_of(time_t now)
{
    int64_t y;
    int m, d;
    double days = (double)now / 86400.0;
    /* a clock beyond the calendar's range: any century will do */
    if (!(days > -3.0e9 && days < 3.0e9))
        return 2000;
    civil_from_days((int64_t)days, &y, &m, &d);
    return y;
}

/* Seconds since 1970 of an HTTP-date (RFC 9110 section 5.6.7), or -1. */
static int parse_http_date(const char *s, size_t len, time_t now, int64_t *secs)
{
    size_t i = 0;
    int y = 0, mo = 0, d = 0, h, mi, sec;
    int64_t year;
    if (read_name(s, len, &i, WEEKDAYS, ',') == 0) {
        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (expect(s, len, &i, ' ') || read_fixed(s, len, &i, 2, &d) ||
            expect(s, len, &i, ' ') || read_month(s, len, &i, &mo) ||
            expect(s, len, &i, ' ') || read_fixed(s, len, &i, 4, &y) ||
            expect(s, len, &i, ' ') || read_time(s, len, &i, &h, &mi, &sec) ||
            expect(s, len, &i, ' ') || len - i != 3 || memcmp(s + i, "GMT", 3) != 0)
            return -1;
        year = y;
    } else if (read_name(s, len, &i, WEEKDAYS_LONG, ',') == 0) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        int64_t now_year, century;
        if (expect(s, len, &i, ' ') || read_fixed(s, len, &i, 2, &d) ||
            expect(s, len, &i, '-') || read_month(s, len, &i, &mo) ||
            expect(s, len, &i, '-') || read_fixed(s, len, &i, 2, &y) ||
            expect(s, len, &i, ' ') || read_time(s, len, &i, &h, &mi, &sec) ||
            expect(s, len, &i, ' ') || len - i != 3 || memcmp(s + i, "GMT", 3) != 0)
            return -1;
        /* RFC 9110: a two-digit year more than 50 years ahead is in the past */
        now_year = year_of(now);
        century = now_year - (now_year % 100 + 100) % 100;
        year = century + y;
        if (year > now_year + 50)
            year -= 100;
        else if (year < now_year - 50)
            year += 100;
    } else if (read_name(s, len, &i, WEEKDAYS, ' ') == 0) {
        /* asctime: Sun Nov  6 08:49:37 1994 */
        if (read_month(s, len, &i, &mo) || expect(s, len, &i, ' '))
            return -1;
        if (i < len && s[i] == ' ') {
            i++;
            if (read_fixed(s, len, &i, 1, &d))
                return -1;
        } else if (read_fixed(s, len, &i, 2, &d)) {
            return -1;
        }
        if (expect(s, len, &i, ' ') || read_time(s, len, &i, &h, &mi, &sec) ||
            expect(s, len, &i, ' ') || read_fixed(s, len, &i, 4, &y) || i != len)
            return -1;
        year = y;
    } else {
        return -1;
    }
    if (!valid_ymd(year, mo, d))
        return -1;
    *secs = days_from_civil(year, mo, d) * 86400 + (int64_t)h * 3600 + mi * 60 + sec;
    return 0;
}

/* RFC 9111 section 1.2.2: a delta too large to represent counts as 2^31. */
#define DELTA_MAX 2147483648.0

int unl_parse_retry_after(const char *s, size_t len, time_t now, double *seconds)
{
    size_t i = 0;
    int64_t when;
    double wait;
    /* header values may arrive with their surrounding whitespace */
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    s += i;
    len -= i;
    if (len == 0)
        return -1;
    if (is_digit(s[0])) {
        double v = 0;
        for (i = 0; i < len; i++) {
            if (!is_digit(s[i]))
                return -1;
            if (v < DELTA_MAX)
                v = v * 10 + (s[i] - '0');
        }
        *seconds = v < DELTA_MAX ? v : DELTA_MAX;
        return 0;
    }
    if (parse_http_date(s, len, now, &when) != 0)
        return -1;
    /* in doubles: now may be any time_t, and the difference must not overflow */
    wait = (double)when - (double)now;
    *seconds = wait > 0 ? wait : 0;
    return 0;
}
