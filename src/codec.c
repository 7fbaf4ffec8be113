/* The codec: JSON pre-normalisation (.NET dates made ISO, null members
 * dropped) for every response body before cjson.decode, and the Lua binding
 * of the query encoder and the date parsers. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "codec.h"

/* ---- normalisation ----------------------------------------------------- */

/* Deeper input is handed back unchanged: cjson refuses more than 1000 levels
 * by default anyway. */
#define MAX_DEPTH 1024
/* Room for a few bytes written ahead of the per-token capacity checks. */
#define SLACK 64
/* '"' + "YYYY-MM-DDTHH:MM:SS.mmmZ" + '"' */
#define DATE_TOKEN_LEN (24 + 2)
/* Longest string content tried as a date: "/Date(-9223372036854775808+hhmm)/"
 * with both slashes escaped is 36 bytes. */
#define DATE_CONTENT_MAX 40

enum { C_ARRAY = 0, C_OBJECT = 1, C_OBJECT_USED = 3 };

static const unsigned char WS[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
};

static const unsigned char STRING_STOP[256] = {
    ['"'] = 1, ['\\'] = 1,
};

/* Bytes of a number or a literal: copied as they are, cjson judges them. */
static const unsigned char SCALAR[256] = {
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
    ['7'] = 1, ['8'] = 1, ['9'] = 1, ['-'] = 1, ['+'] = 1, ['.'] = 1,
};

/* Index of the quote closing the string that opens at s[i], or len when the
 * input ends first. */
static size_t scan_string(const char *s, size_t len, size_t i)
{
    size_t j = i + 1;
    for (;;) {
        while (j < len && !STRING_STOP[(unsigned char)s[j]])
            j++;
        if (j >= len)
            return len;
        if (s[j] == '"')
            return j;
        j += 2;   /* a backslash and the byte it escapes */
    }
}

/* The string opening at s[i] when it is exactly a .NET date, "\/" allowed
 * for either slash: writes the ISO text and returns the index of its closing
 * quote, or 0 when it is anything else. */
static size_t match_date(const char *s, size_t len, size_t i, char iso[UNL_ISO_MAX])
{
    char buf[DATE_CONTENT_MAX];
    size_t k = i + 1, n = 0;
    int64_t ms;
    while (k < len && s[k] != '"') {
        if (n == sizeof buf)
            return 0;
        if (s[k] == '\\') {
            if (k + 1 >= len || s[k + 1] != '/')
                return 0;
            k++;
        }
        buf[n++] = s[k++];
    }
    if (k >= len || n < 6 || memcmp(buf, "/Date(", 6) != 0 ||
        unl_parse_date(buf, n, &ms) != 0 || unl_format_iso(ms, iso) == 0)
        return 0;
    return k;
}

/* Makes room for need more bytes after o: a bigger Lua-owned box replaces the
 * old one at bufidx, so a memory error leaks nothing. */
static char *grow(lua_State *L, int bufidx, char *out, size_t o, size_t *cap, size_t need)
{
    size_t ncap = *cap;
    char *nout;
    if (need > (size_t)-1 / 2 - o)
        luaL_error(L, "normalize: output too large");
    while (ncap - o < need)
        ncap = ncap < ((size_t)-1 / 4) ? ncap * 2 : o + need;
    nout = (char *)lua_newuserdatauv(L, ncap, 0);
    memcpy(nout, out, o);
    lua_replace(L, bufidx);
    *cap = ncap;
    return nout;
}

#define ENSURE(n) \
    do { \
        if (cap - o < (size_t)(n)) \
            out = grow(L, bufidx, out, o, &cap, (n)); \
    } while (0)

/* One pass over the input. Whitespace between tokens is dropped; an object
 * member's separating comma is written only when the next member turns out to
 * be kept, and a member whose value is null is cut back off the output.
 * Returns 1 with the result pushed, or 0 with nothing pushed when the input
 * is not JSON this scanner accepts. */
static int normalize(lua_State *L, const char *s, size_t len)
{
    unsigned char stack[MAX_DEPTH];
    size_t depth = 0, i = 0, o = 0, cap, j, mark;
    char iso[UNL_ISO_MAX];
    char *out;
    int bufidx;
    enum { S_VALUE, S_AFTER, S_KEY_FIRST, S_KEY, S_ARRAY_FIRST } state = S_VALUE;

    if (len > (size_t)-1 / 4)
        return 0;
    /* Output never outgrows input except where a date expands. */
    cap = len + SLACK;
    out = (char *)lua_newuserdatauv(L, cap, 0);
    bufidx = lua_gettop(L);

    for (;;) {
        while (i < len && WS[(unsigned char)s[i]])
            i++;
        switch (state) {
        case S_ARRAY_FIRST:
            if (i < len && s[i] == ']')
                goto closing;
            /* fall through */
        case S_VALUE:
            if (i >= len)
                goto invalid;
            switch (s[i]) {
            case '{':
            case '[':
                if (depth == MAX_DEPTH)
                    goto invalid;
                stack[depth++] = s[i] == '{' ? C_OBJECT : C_ARRAY;
                state = s[i] == '{' ? S_KEY_FIRST : S_ARRAY_FIRST;
                ENSURE(1);
                out[o++] = s[i++];
                continue;
            case '"':
                if (i + 1 < len && (s[i + 1] == '/' || s[i + 1] == '\\') &&
                    (j = match_date(s, len, i, iso)) != 0) {
                    ENSURE(DATE_TOKEN_LEN);
                    out[o] = '"';
                    memcpy(out + o + 1, iso, DATE_TOKEN_LEN - 2);
                    out[o + DATE_TOKEN_LEN - 1] = '"';
                    o += DATE_TOKEN_LEN;
                    i = j + 1;
                } else {
                    j = scan_string(s, len, i);
                    if (j >= len)
                        goto invalid;
                    ENSURE(j + 1 - i);
                    memcpy(out + o, s + i, j + 1 - i);
                    o += j + 1 - i;
                    i = j + 1;
                }
                break;
            default:
                j = i;
                while (j < len && SCALAR[(unsigned char)s[j]])
                    j++;
                if (j == i)
                    goto invalid;
                ENSURE(j - i);
                memcpy(out + o, s + i, j - i);
                o += j - i;
                i = j;
                break;
            }
            state = S_AFTER;
            continue;

        case S_KEY_FIRST:
            if (i < len && s[i] == '}')
                goto closing;
            /* fall through */
        case S_KEY:
            if (i >= len || s[i] != '"')
                goto invalid;
            j = scan_string(s, len, i);
            if (j >= len)
                goto invalid;
            mark = o;
            ENSURE(j + 2 - i);
            if (stack[depth - 1] == C_OBJECT_USED)
                out[o++] = ',';
            memcpy(out + o, s + i, j + 1 - i);
            o += j + 1 - i;
            i = j + 1;
            while (i < len && WS[(unsigned char)s[i]])
                i++;
            if (i >= len || s[i] != ':')
                goto invalid;
            i++;
            while (i < len && WS[(unsigned char)s[i]])
                i++;
            if (len - i >= 4 && memcmp(s + i, "null", 4) == 0 &&
                (len - i == 4 || !SCALAR[(unsigned char)s[i + 4]])) {
                o = mark;   /* the member, and the comma it would have had */
                i += 4;
                state = S_AFTER;
            } else {
                ENSURE(1);
                out[o++] = ':';
                stack[depth - 1] = C_OBJECT_USED;
                state = S_VALUE;
            }
            continue;

        case S_AFTER:
            if (depth == 0) {
                if (i != len)
                    goto invalid;
                lua_pushlstring(L, out, o);
                lua_remove(L, bufidx);
                return 1;
            }
            if (i >= len)
                goto invalid;
            if (s[i] == ',') {
                i++;
                if (stack[depth - 1] == C_ARRAY) {
                    ENSURE(1);
                    out[o++] = ',';
                    state = S_VALUE;
                } else {
                    state = S_KEY;
                }
                continue;
            }
            if (s[i] == (stack[depth - 1] == C_ARRAY ? ']' : '}'))
                goto closing;
            goto invalid;
        }
        continue;
    closing:
        /* s[i] closes the innermost container */
        ENSURE(1);
        out[o++] = s[i++];
        depth--;
        state = S_AFTER;
    }

invalid:
    lua_settop(L, bufidx - 1);
    return 0;
}

void unl_normalize_push(lua_State *L, const char *json, size_t len)
{
    if (!normalize(L, json, len))
        lua_pushlstring(L, json, len);
}

/* ---- Lua binding ------------------------------------------------------- */

/* encode_query(t) -> signed, wire */
static int l_encode_query(lua_State *L)
{
    lua_settop(L, 1);
    unl_query_push(L, 1);
    return 2;
}

/* normalize(json) -> json */
static int l_normalize(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (!normalize(L, s, len))
        lua_pushvalue(L, 1);
    return 1;
}

/* iso_date(ms) -> "YYYY-MM-DDTHH:MM:SS.mmmZ" */
static int l_iso_date(lua_State *L)
{
    char iso[UNL_ISO_MAX];
    lua_Integer ms = luaL_checkinteger(L, 1);
    size_t n = unl_format_iso((int64_t)ms, iso);
    if (n == 0)
        return luaL_argerror(L, 1, "ms out of range (years 0000 to 9999)");
    lua_pushlstring(L, iso, n);
    return 1;
}

/* parse_date(s) -> ms, or nil, message */
static int l_parse_date(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int64_t ms;
    if (unl_parse_date(s, len, &ms) != 0) {
        luaL_pushfail(L);
        lua_pushfstring(L, "date \"%s\": expected /Date(ms)/, YYYY-MM-DD or "
                        "YYYY-MM-DDTHH:MM:SS[.fff][Z] with a real calendar day and time", s);
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)ms);
    return 1;
}

static int is_delta(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i < len && s[i] >= '0' && s[i] <= '9';
}

/* parse_retry_after(s [, now_seconds]) -> seconds, or nil, message */
static int l_parse_retry_after(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    double wait, frac = 0;
    time_t now;
    if (lua_isnoneornil(L, 2)) {
        now = time(NULL);
    } else {
        double d = (double)luaL_checknumber(L, 2);
        /* the conversion to time_t must stay defined */
        luaL_argcheck(L, d > -1e15 && d < 1e15, 2, "now_seconds out of range");
        now = (time_t)floor(d);
        frac = d - floor(d);
    }
    if (unl_parse_retry_after(s, len, now, &wait) != 0) {
        luaL_pushfail(L);
        lua_pushfstring(L, "Retry-After \"%s\": expected delta-seconds or an HTTP date", s);
        return 2;
    }
    /* A date is waited for from the fractional now; a delta does not depend
     * on now at all. */
    if (frac > 0 && wait > 0 && !is_delta(s, len))
        wait = wait > frac ? wait - frac : 0;
    lua_pushnumber(L, (lua_Number)wait);
    return 1;
}

void unl_open_codec(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "encode_query", l_encode_query },
        { "normalize", l_normalize },
        { "iso_date", l_iso_date },
        { "parse_date", l_parse_date },
        { "parse_retry_after", l_parse_retry_after },
        { NULL, NULL },
    };
    luaL_setfuncs(L, funcs, 0);
}
