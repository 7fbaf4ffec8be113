/* The response decoder: every answer the library reads goes from its bytes
 * to Lua tables here, in two steps.
 *
 * Parse (no Lua calls): the bytes become a tape, one 16-byte node per value
 * in document order, with string escapes resolved into an arena (strings
 * without escapes point into the input) and every object key replaced by the
 * id of a string kept in the decoder's cache (so are the short values of
 * members whose values repeat). The API's rules that depend on a
 * value's member name are applied here: a member whose value is null is not
 * written at all, and a string in a member whose name ends in "Date" or "On"
 * that is exactly a .NET date ("/Date(ms)/", "/Date(ms+hhmm)/") becomes ISO
 * text. The limits (depth, items per array, values in all) are checked here,
 * so an answer past them is refused before any table exists.
 *
 * Build: the tape becomes Lua tables, each created with its final size, key
 * strings taken from the decoder's cache (made once per decoder, not once
 * per member), and the integer fields of the API (LineNumber of an order's
 * lines, the Pagination figures) made Lua integers where the library always
 * made them so. Every other number is a float, as cjson made it.
 *
 * The decoder is a userdata: its buffers are reused from one answer to the
 * next and freed by its __gc, so a memory error while building leaks
 * nothing. A Page (the end of this file) is the same parse made by the
 * pager's thread into buffers of its own, every string copied, built an
 * item at a time later on the Lua thread. */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

enum { T_NULL, T_FALSE, T_TRUE, T_NUM, T_STR, T_ARR, T_OBJ, T_SID };

#define TYPE_BITS 4
#define TYPE_MASK 15u
/* Lua's short strings (LUAI_MAXSHORTLEN): the ones it interns, and ours to cache. */
#define SHORT_STRING 40
/* A decoder's cached strings go on the stack for a build up to this many
 * (see build_entry). */
#define STACK_KEYS 8192
#define ARENA_BIT ((uint64_t)1 << 63)

typedef struct {
    uint32_t tk;   /* type | key id << TYPE_BITS (0: not an object member) */
    uint32_t n;    /* string: length; container: members or items */
    union {
        double d;      /* number */
        uint64_t off;  /* string: offset in the input, or ARENA_BIT | offset in the arena;
                          T_SID: the id of the string in the cache */
    } v;
} dnode;

/* What a key name means to the rules. */
enum {
    K_DATE = 1,       /* ends in "Date" or "On" */
    K_PAGINATION = 2, K_ITEMS = 4, K_LINES = 8, K_LINENUMBER = 16, K_PAGEFIGURE = 32,
};

typedef struct {
    uint32_t off, len, hash;
    uint32_t next;    /* the id that followed this one last time, past an object's first SHAPE_MAX */
    uint32_t shape;   /* 1 + where in the shapes the shape of the objects held by this key (its
                         value, or the items of its array) starts; 0: none yet */
    uint32_t last;    /* the id of this member's last string value */
    uint16_t hits, misses;   /* of its string values in the cache */
    unsigned char info, unique;   /* unique: its values seldom repeat, so are not cached */
    unsigned char plain;          /* no backslash or quote in its text */
} dkey;

/* The member names of an object kind, in order, up to this many: objects of
 * one kind (an order, a line, a supplier) list their members in the same
 * order, so the name at each place is nearly always the one there last time
 * and is then checked, not looked up. The kind is the key that holds the
 * object (or the array it is an item of); beyond this many members, the
 * name that followed the previous one last time is the guess. A shape is
 * SHAPE_MAX + 1 ids in d->shapes: how many are known, then the ids. */
#define SHAPE_MAX 64

typedef struct {
    /* the tape of the last answer */
    dnode *nodes;
    size_t nnodes, capnodes;
    char *arena;
    size_t arenalen, arenacap;
    /* the key cache: names, ids 1..nkeys, a hash from name to id */
    dkey *keys;
    size_t nkeys, capkeys;
    char *keytext;
    size_t keytextlen, keytextcap;
    uint32_t *slots;         /* 0: empty; else a key id */
    size_t capslots;         /* a power of two, at least twice nkeys */
    size_t luakeys;          /* ids 1..luakeys have their string in the user value */
    uint32_t *shapes;        /* the shapes of object kinds (see SHAPE_MAX) */
    size_t nshapes, capshapes;
    uint32_t rootshape;      /* the shape of objects held by no key (the root, a root array's items) */
    int busy;                /* a build is running: a nested decode takes a decoder of its own */
    locale_t cloc;           /* the C locale for strtod, made when first needed */
    unl_bigpool *pool;       /* a page's: where its large buffers come from (held); else NULL */
} unl_decoder;

/* ---- buffers ------------------------------------------------------------ */

static int reserve(unl_bigpool *pool, void **p, size_t *cap, size_t need, size_t elem)
{
    size_t ncap = *cap ? *cap : 64, bytes;
    void *np;
    if (need <= *cap)
        return 0;
    while (ncap < need) {
        if (ncap > ((size_t)-1 / 2) / elem)
            return -1;
        ncap *= 2;
    }
    bytes = ncap * elem;
    np = unl_big_resize(pool, *p, *cap * elem, &bytes);   /* a page's tape and strings: mapped */
    if (np == NULL)
        return -1;
    *p = np;
    *cap = bytes / elem;
    return 0;
}

static void decoder_free(unl_decoder *d)
{
    unl_bigpool *pool = d->pool;
    unl_big_free(pool, d->nodes, d->capnodes * sizeof *d->nodes);
    unl_big_free(pool, d->arena, d->arenacap);
    unl_big_free(pool, d->keys, d->capkeys * sizeof *d->keys);
    unl_big_free(pool, d->keytext, d->keytextcap);
    free(d->slots);
    unl_big_free(NULL, d->shapes, d->capshapes * sizeof *d->shapes);
    if (d->cloc != (locale_t)0)
        freelocale(d->cloc);
    memset(d, 0, sizeof *d);
}

/* ---- the key cache ------------------------------------------------------ */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    if (i < n) {
        w = 0;
        memcpy(&w, s + i, n - i);
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    }
    h ^= h >> 29;
    return (uint32_t)h;
}

/* Whether a[0..n) and b[0..n) are the same bytes: the strings compared here
 * (names, short values) are a few words long, where a call to memcmp costs
 * more than the comparison; whole words, the last one overlapping. */
static inline int same_bytes(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    uint32_t u, v;
    size_t i;
    if (n >= 8) {
        for (i = 0; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y)
                return 0;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        if (u != v)
            return 0;
        memcpy(&u, a + n - 4, 4);
        memcpy(&v, b + n - 4, 4);
        return u == v;
    }
    for (i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static int ends_with(const char *s, size_t n, const char *tail, size_t tn)
{
    return n >= tn && memcmp(s + n - tn, tail, tn) == 0;
}

static int is_name(const char *s, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(s, name, n) == 0;
}

static unsigned char key_info(const char *s, size_t n)
{
    unsigned char info = 0;
    if (ends_with(s, n, "Date", 4) || ends_with(s, n, "On", 2))
        info |= K_DATE;
    if (is_name(s, n, "Pagination"))
        info |= K_PAGINATION;
    else if (is_name(s, n, "Items"))
        info |= K_ITEMS;
    else if (is_name(s, n, "PurchaseOrderLines"))
        info |= K_LINES;
    else if (is_name(s, n, "LineNumber"))
        info |= K_LINENUMBER;
    else if (is_name(s, n, "NumberOfItems") || is_name(s, n, "PageSize") ||
             is_name(s, n, "PageNumber") || is_name(s, n, "NumberOfPages"))
        info |= K_PAGEFIGURE;
    return info;
}

static void forget_keys(unl_decoder *d)
{
    d->nkeys = d->keytextlen = d->luakeys = 0;
    d->nshapes = 0;
    d->rootshape = 0;
    if (d->slots)
        memset(d->slots, 0, d->capslots * sizeof *d->slots);
}

static int rehash(unl_decoder *d, size_t ncap)
{
    uint32_t *ns = calloc(ncap, sizeof *ns);
    size_t id;
    if (ns == NULL)
        return -1;
    for (id = 1; id <= d->nkeys; id++) {
        size_t j = d->keys[id].hash & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = (uint32_t)id;
    }
    free(d->slots);
    d->slots = ns;
    d->capslots = ncap;
    return 0;
}

/* The id of key s[0..n), added when new; 0 when out of memory. guess is
 * the id that followed the same sibling last time: objects of one kind list
 * their members in the same order, so it is nearly always right, and then
 * no hash is computed. */
static uint32_t key_id(unl_decoder *d, const char *s, size_t n, uint32_t guess, int *added)
{
    uint32_t h;
    size_t j;
    dkey *k;
    if (guess) {
        k = &d->keys[guess];
        if (k->len == n && same_bytes(d->keytext + k->off, s, n))
            return guess;
    }
    h = hash_bytes(s, n);
    if (d->capslots < 2 * (d->nkeys + 1) && rehash(d, d->capslots ? d->capslots * 2 : 256) != 0)
        return 0;
    for (j = h & (d->capslots - 1); d->slots[j]; j = (j + 1) & (d->capslots - 1)) {
        k = &d->keys[d->slots[j]];
        if (k->hash == h && k->len == n && same_bytes(d->keytext + k->off, s, n))
            return d->slots[j];
    }
    if (reserve(d->pool, (void **)&d->keys, &d->capkeys, d->nkeys + 2, sizeof *d->keys) != 0 ||
        reserve(d->pool, (void **)&d->keytext, &d->keytextcap, d->keytextlen + n + 1, 1) != 0)
        return 0;
    *added = 1;
    d->nkeys++;
    k = &d->keys[d->nkeys];
    k->off = (uint32_t)d->keytextlen;
    k->len = (uint32_t)n;
    k->hash = h;
    k->next = k->shape = k->last = 0;
    k->hits = k->misses = 0;
    k->unique = 0;
    k->plain = memchr(s, '\\', n) == NULL && memchr(s, '"', n) == NULL;
    k->info = key_info(s, n);
    memcpy(d->keytext + d->keytextlen, s, n);
    d->keytextlen += n;
    d->slots[j] = (uint32_t)d->nkeys;
    return (uint32_t)d->nkeys;
}

/* ---- parse -------------------------------------------------------------- */

/* The values of date fields already read in this answer, by their text as
 * sent ("\/Date(ms)\/"): most come again (an order's dates in its lines, a
 * currency's on every order), and are then taken from the cache without
 * being decoded, converted and looked up again. Equal text as sent is the
 * same string whatever its escapes, since a stored text is a whole string. */
#define DATE_SLOTS 64
#define DATE_TEXT 32
typedef struct {
    uint32_t id;        /* 0: empty; else the cached string the text became */
    uint32_t len;
    char text[DATE_TEXT];
} date_slot;

/* The slot of a date text: from the eight bytes before its last four, where
 * "\/Date(1708683775000)\/" has the digits of the day and the time. */
static unsigned date_slot_of(const char *text, size_t n)
{
    uint64_t w = n;
    if (n >= 12)
        memcpy(&w, text + n - 12, 8);
    else if (n >= 8)
        memcpy(&w, text, 8);
    return (unsigned)(((w ^ n) * 0x9E3779B97F4A7C15ull) >> 58);   /* 64 slots */
}

typedef struct {
    unl_decoder *d;
    const char *s;
    size_t len, i;
    char msg[160];
    const char *kind;   /* "syntax" or "limit"; NULL while all is well */
    int copy;           /* strings go to the arena: the tape outlives the input */
    date_slot dates[DATE_SLOTS];
} parser;

static const unsigned char WS[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
};

static const unsigned char STRING_STOP[256] = {
    ['"'] = 1, ['\\'] = 1,
};

/* The first '"' or '\\' in s[j..len), or len: eight bytes at a time where
 * the byte order allows. */
static size_t string_stop(const char *s, size_t j, size_t len)
{
    if (j >= len)
        return len;   /* past a backslash that ended the input */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (len - j >= 8) {
        uint64_t w, q, b, t;
        memcpy(&w, s + j, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        t = (((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
        if (t)
            return j + (size_t)(__builtin_ctzll(t) >> 3);
        j += 8;
    }
#endif
    while (j < len && !STRING_STOP[(unsigned char)s[j]])
        j++;
    return j;
}

static int fail(parser *p, const char *kind, const char *what)
{
    if (p->kind == NULL) {
        p->kind = kind;
        snprintf(p->msg, sizeof p->msg, "%s at byte %lu", what, (unsigned long)p->i + 1);
    }
    return -1;
}

static int oom(parser *p)
{
    if (p->kind == NULL) {
        p->kind = "memory";
        snprintf(p->msg, sizeof p->msg, "not enough memory");
    }
    return -1;
}

static void skip_ws_loop(parser *p)
{
    while (p->i < p->len && WS[(unsigned char)p->s[p->i]])
        p->i++;
}

static inline void skip_ws(parser *p)
{
    if (p->i < p->len && (unsigned char)p->s[p->i] > ' ')
        return;   /* the usual case: compact JSON */
    skip_ws_loop(p);
}

/* Whether the string opening at p->i is exactly cached string id, written
 * without escapes: then p->i moves past it. The cached text must have no
 * backslash or quote, so that equal bytes mean equal strings. */
static inline int same_string(parser *p, uint32_t id)
{
    const dkey *k = &p->d->keys[id];
    size_t end = p->i + 1 + k->len;
    if (!k->plain || end >= p->len || p->s[end] != '"' ||
        !same_bytes(p->s + p->i + 1, p->d->keytext + k->off, k->len))
        return 0;
    p->i = end + 1;
    return 1;
}

/* Room for one more node on the tape: 0, or -1 past the limit or out of
 * memory. */
static int grow_tape(parser *p)
{
    unl_decoder *d = p->d;
    if (d->nnodes >= UNL_DECODE_MAX_NODES)
        return fail(p, "limit", "more than 2,000,000 values in one answer");
    if (reserve(d->pool, (void **)&d->nodes, &d->capnodes, d->nnodes + 1, sizeof *d->nodes) != 0)
        return oom(p);
    return 0;
}

/* A node at the end of the tape. */
static inline dnode *emit(parser *p, unsigned type, uint32_t key)
{
    unl_decoder *d = p->d;
    dnode *nd;
    if ((d->nnodes >= d->capnodes || d->nnodes >= UNL_DECODE_MAX_NODES) && grow_tape(p) != 0)
        return NULL;
    nd = &d->nodes[d->nnodes++];
    nd->tk = type | key << TYPE_BITS;
    nd->n = 0;
    nd->v.off = 0;
    return nd;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of "\uXXXX" at s[i] (i at the backslash), or -1. */
static long hex4(const char *s, size_t len, size_t i)
{
    long v = 0;
    int k;
    if (len - i < 6 || s[i] != '\\' || s[i + 1] != 'u')
        return -1;
    for (k = 2; k < 6; k++) {
        int h = hexval(s[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reads the string whose opening quote is at p->i. Sets *text and *n to its
 * content (in the input when it has no escape, else decoded at the end of
 * the arena, whose length is not advanced) and *in_arena. Bytes are taken as
 * they are (invalid UTF-8 included, as cjson did); a lone UTF-16 surrogate
 * escape becomes U+FFFD. */
static int read_string(parser *p, const char **text, size_t *n, int *in_arena)
{
    const char *s = p->s;
    size_t len = p->len, start = p->i + 1, j = start, end;
    unl_decoder *d = p->d;
    char *o;
    j = string_stop(s, j, len);
    if (j >= len)
        return fail(p, "syntax", "unterminated string");
    if (s[j] == '"') {
        *text = s + start;
        *n = j - start;
        *in_arena = 0;
        p->i = j + 1;
        return 0;
    }
    /* An escape: find the end, then decode (never longer than the source). */
    end = j;
    for (;;) {
        end = string_stop(s, end, len);
        if (end >= len)
            return fail(p, "syntax", "unterminated string");
        if (s[end] == '"')
            break;
        end += 2;
    }
    if (reserve(d->pool, (void **)&d->arena, &d->arenacap, d->arenalen + (end - start) + 1, 1) != 0)
        return oom(p);
    o = d->arena + d->arenalen;
    memcpy(o, s + start, j - start);
    o += j - start;
    while (j < end) {
        char c = s[j];
        if (c != '\\') {
            *o++ = c;
            j++;
            continue;
        }
        switch (s[j + 1]) {
        case '"': *o++ = '"'; j += 2; break;
        case '\\': *o++ = '\\'; j += 2; break;
        case '/': *o++ = '/'; j += 2; break;
        case 'b': *o++ = '\b'; j += 2; break;
        case 'f': *o++ = '\f'; j += 2; break;
        case 'n': *o++ = '\n'; j += 2; break;
        case 'r': *o++ = '\r'; j += 2; break;
        case 't': *o++ = '\t'; j += 2; break;
        case 'u': {
            long cu = hex4(s, end, j), lo;
            unsigned long cp;
            if (cu < 0) {
                p->i = j;
                return fail(p, "syntax", "invalid \\u escape");
            }
            j += 6;
            if (cu >= 0xD800 && cu <= 0xDBFF && (lo = hex4(s, end, j)) >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + (((unsigned long)cu - 0xD800) << 10) + ((unsigned long)lo - 0xDC00);
                j += 6;
            } else if (cu >= 0xD800 && cu <= 0xDFFF) {
                cp = 0xFFFD;   /* a surrogate without its other half */
            } else {
                cp = (unsigned long)cu;
            }
            o += put_utf8(o, cp);
            break;
        }
        default:
            p->i = j;
            return fail(p, "syntax", "invalid escape in a string");
        }
    }
    *text = d->arena + d->arenalen;
    *n = (size_t)(o - *text);
    *in_arena = 1;
    p->i = end + 1;
    return 0;
}

/* Exact powers of ten a double holds. */
static const double POW10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* The nearest double to the number at p->i (JSON's grammar, strictly). A
 * mantissa of up to 2^53 with a power of ten up to 22 is one exact IEEE
 * operation, correctly rounded; anything else goes to strtod. */
static int read_number(parser *p, double *out)
{
    const char *s = p->s;
    size_t len = p->len, i = p->i, start = p->i;
    uint64_t m = 0;
    long exp10 = 0, e = 0;
    int neg = 0, truncated = 0, eneg = 0;
    if (s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i < len && s[i] == '0') {
        i++;
    } else if (i < len && s[i] >= '1' && s[i] <= '9') {
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (m < 100000000000000000ULL)
                m = m * 10 + (uint64_t)(s[i] - '0');
            else {
                truncated = 1;
                exp10++;
            }
        }
    } else {
        p->i = i;
        return fail(p, "syntax", "invalid number");
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || s[i] < '0' || s[i] > '9') {
            p->i = i;
            return fail(p, "syntax", "invalid number");
        }
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (m < 100000000000000000ULL) {
                m = m * 10 + (uint64_t)(s[i] - '0');
                exp10--;
            } else {
                truncated = 1;
            }
        }
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        if (i >= len || s[i] < '0' || s[i] > '9') {
            p->i = i;
            return fail(p, "syntax", "invalid number");
        }
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (e < 100000)
                e = e * 10 + (s[i] - '0');
            else
                truncated = 1;   /* past the cap: strtod reads the whole text */
        }
        exp10 += eneg ? -e : e;
    }
    p->i = i;
    if (m == 0) {
        *out = neg ? -0.0 : 0.0;
        return 0;
    }
    if (!truncated && m <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)m;
        v = exp10 < 0 ? v / POW10[-exp10] : v * POW10[exp10];
        *out = neg ? -v : v;
        return 0;
    } else {
        /* strtod, on a NUL-terminated copy at the end of the arena, in the
         * C locale set for this thread alone (uselocale): whatever locale
         * the host sets, and on the pager's parser thread too. */
        unl_decoder *d = p->d;
        size_t n = i - start;
        char *buf;
        locale_t old;
        if (d->cloc == (locale_t)0) {
            d->cloc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
            if (d->cloc == (locale_t)0)
                return oom(p);
        }
        if (reserve(d->pool, (void **)&d->arena, &d->arenacap, d->arenalen + n + 1, 1) != 0)
            return oom(p);
        buf = d->arena + d->arenalen;
        memcpy(buf, s + start, n);
        buf[n] = '\0';
        old = uselocale(d->cloc);
        *out = strtod(buf, NULL);
        uselocale(old);
        return 0;
    }
}

static int literal(parser *p, const char *word, size_t n)
{
    if (p->len - p->i < n || memcmp(p->s + p->i, word, n) != 0)
        return fail(p, "syntax", "unexpected character");
    p->i += n;
    return 0;
}

/* A string value: its node, with the date rule applied when key_info says
 * the member is a date field. */
static int string_value(parser *p, uint32_t key, unsigned char info)
{
    unl_decoder *d = p->d;
    const char *text;
    size_t n;
    int in_arena;
    dnode *nd;
    date_slot *ds = NULL;
    size_t open = p->i;
    if ((info & K_DATE) && key && !d->keys[key].unique) {
        /* a date value read before in this answer */
        const char *raw = p->s + p->i + 1;
        size_t avail = p->len - p->i - 1;
        const char *q = memchr(raw, '"', avail < DATE_TEXT + 1 ? avail : DATE_TEXT + 1);
        if (q != NULL) {
            size_t rl = (size_t)(q - raw);
            ds = &p->dates[date_slot_of(raw, rl)];
            if (ds->id && ds->len == rl && memcmp(ds->text, raw, rl) == 0) {
                dkey *mk = &d->keys[key];
                mk->last = ds->id;
                if (mk->hits < 0xFFFF)
                    mk->hits++;
                if ((nd = emit(p, T_SID, key)) == NULL)
                    return -1;
                nd->v.off = ds->id;
                p->i += rl + 2;
                return 0;
            }
        }
    }
    if (key && d->keys[key].last && !d->keys[key].unique && same_string(p, d->keys[key].last)) {
        /* the same value as this member had last time */
        dkey *mk = &d->keys[key];
        if (mk->hits < 0xFFFF)
            mk->hits++;
        if ((nd = emit(p, T_SID, key)) == NULL)
            return -1;
        nd->v.off = mk->last;
        return 0;
    }
    if (read_string(p, &text, &n, &in_arena) != 0)
        return -1;
    if (n > 0xFFFFFFFFu)
        return fail(p, "limit", "a string over 4 GB");
    if ((info & K_DATE) && n >= 9 && n <= 40 && memcmp(text, "/Date(", 6) == 0) {
        char iso[UNL_ISO_MAX];
        int64_t ms;
        size_t isolen;
        if (unl_parse_date(text, n, &ms) == 0 && (isolen = unl_format_iso(ms, iso)) != 0) {
            if (reserve(d->pool, (void **)&d->arena, &d->arenacap, d->arenalen + isolen, 1) != 0)
                return oom(p);
            memcpy(d->arena + d->arenalen, iso, isolen);
            text = d->arena + d->arenalen;
            n = isolen;
            in_arena = 1;
        }
    }
    if (key && n <= SHORT_STRING && !d->keys[key].unique) {
        /* A member's short value: from the cache, as long as this member's
         * values tend to repeat (a Guid's never do). */
        int added = 0;
        uint32_t id = key_id(d, text, n, d->keys[key].last, &added);
        dkey *mk;
        if (id == 0)
            return oom(p);
        if (id >= (1u << (32 - TYPE_BITS)))
            return fail(p, "limit", "too many strings");
        mk = &d->keys[key];
        mk->last = id;
        if (added && mk->misses < 0xFFFF)
            mk->misses++;
        else if (!added && mk->hits < 0xFFFF)
            mk->hits++;
        if (mk->misses >= 32 && mk->misses > 2 * mk->hits)
            mk->unique = 1;
        if ((nd = emit(p, T_SID, key)) == NULL)
            return -1;
        nd->v.off = id;
        if (ds != NULL && p->i - open - 2 <= DATE_TEXT) {
            /* the text as sent, between the quotes */
            ds->id = id;
            ds->len = (uint32_t)(p->i - open - 2);
            memcpy(ds->text, p->s + open + 1, ds->len);
        }
        return 0;
    }
    if ((nd = emit(p, T_STR, key)) == NULL)
        return -1;
    nd->n = (uint32_t)n;
    if (!in_arena && p->copy) {
        /* one byte more: the arena exists even for an empty string */
        if (reserve(d->pool, (void **)&d->arena, &d->arenacap, d->arenalen + n + 1, 1) != 0)
            return oom(p);
        memcpy(d->arena + d->arenalen, text, n);
        text = d->arena + d->arenalen;
        in_arena = 1;
    }
    if (in_arena) {
        nd->v.off = ARENA_BIT | (uint64_t)(text - d->arena);
        d->arenalen += n;
    } else {
        nd->v.off = (uint64_t)(text - p->s);
    }
    return 0;
}

static int value(parser *p, uint32_t key, unsigned char info, uint32_t kind, int depth);

/* The shape of object kind `kind` (a key id, 0 for none): 1 + where it
 * starts in d->shapes, made empty when new; 0 when out of memory. */
static uint32_t shape_of(unl_decoder *d, uint32_t kind)
{
    uint32_t sh = kind ? d->keys[kind].shape : d->rootshape;
    if (sh)
        return sh;
    if (d->nshapes + SHAPE_MAX + 1 >= 0xFFFFFFFFu ||
        reserve(NULL, (void **)&d->shapes, &d->capshapes, d->nshapes + SHAPE_MAX + 1, sizeof *d->shapes) != 0)
        return 0;
    sh = (uint32_t)d->nshapes + 1;
    d->shapes[d->nshapes] = 0;   /* no member known yet */
    d->nshapes += SHAPE_MAX + 1;
    if (kind)
        d->keys[kind].shape = sh;
    else
        d->rootshape = sh;
    return sh;
}

static int object_value(parser *p, uint32_t key, uint32_t kind, int depth)
{
    unl_decoder *d = p->d;
    size_t at = d->nnodes;
    uint32_t count = 0, prev = 0, m = 0, sh;
    if (emit(p, T_OBJ, key) == NULL)
        return -1;
    if ((sh = shape_of(d, kind)) == 0)
        return oom(p);
    p->i++;   /* '{' */
    skip_ws(p);
    if (p->i < p->len && p->s[p->i] == '}') {
        p->i++;
        return 0;
    }
    for (;;) {
        const char *name;
        size_t n;
        int in_arena;
        uint32_t id, guess;
        int added = 0;
        if (p->i >= p->len || p->s[p->i] != '"')
            return fail(p, "syntax", "expected a member name");
        if (m < d->shapes[sh - 1])
            guess = d->shapes[sh + m];
        else
            guess = prev ? d->keys[prev].next : 0;
        if (guess && same_string(p, guess)) {
            id = guess;
        } else {
            if (read_string(p, &name, &n, &in_arena) != 0)
                return -1;
            if (n > 0xFFFFFFFu)
                return fail(p, "limit", "a member name over 256 MB");
            if ((id = key_id(d, name, n, guess, &added)) == 0)
                return oom(p);
        }
        if (id >= (1u << (32 - TYPE_BITS)))
            return fail(p, "limit", "too many member names");
        if (m < SHAPE_MAX) {
            d->shapes[sh + m] = id;
            if (d->shapes[sh - 1] < ++m)
                d->shapes[sh - 1] = m;
        } else if (prev) {
            d->keys[prev].next = id;   /* past the shape: the guess for the next object */
        }
        prev = id;
        skip_ws(p);
        if (p->i >= p->len || p->s[p->i] != ':')
            return fail(p, "syntax", "expected ':'");
        p->i++;
        skip_ws(p);
        if (p->i < p->len && p->s[p->i] == 'n') {
            /* A null member is left out, as if never sent. */
            if (literal(p, "null", 4) != 0)
                return -1;
        } else {
            if (value(p, id, d->keys[id].info, id, depth) != 0)
                return -1;
            count++;
        }
        skip_ws(p);
        if (p->i < p->len && p->s[p->i] == ',') {
            p->i++;
            skip_ws(p);
            continue;
        }
        if (p->i < p->len && p->s[p->i] == '}') {
            p->i++;
            break;
        }
        return fail(p, "syntax", "expected ',' or '}'");
    }
    d->nodes[at].n = count;
    return 0;
}

static int array_value(parser *p, uint32_t key, int depth)
{
    unl_decoder *d = p->d;
    size_t at = d->nnodes;
    uint32_t count = 0;
    if (emit(p, T_ARR, key) == NULL)
        return -1;
    p->i++;   /* '[' */
    skip_ws(p);
    if (p->i < p->len && p->s[p->i] == ']') {
        p->i++;
        return 0;
    }
    for (;;) {
        if (count == UNL_DECODE_MAX_ITEMS)
            return fail(p, "limit", "more than 100,000 items in one array");
        if (value(p, 0, 0, key, depth) != 0)   /* its items are objects of the array's kind */
            return -1;
        count++;
        skip_ws(p);
        if (p->i < p->len && p->s[p->i] == ',') {
            p->i++;
            skip_ws(p);
            continue;
        }
        if (p->i < p->len && p->s[p->i] == ']') {
            p->i++;
            break;
        }
        return fail(p, "syntax", "expected ',' or ']'");
    }
    d->nodes[at].n = count;
    return 0;
}

/* One value at p->i (no whitespace before it), depth containers deep; an
 * object there is of kind `kind` (see SHAPE_MAX). */
static int value(parser *p, uint32_t key, unsigned char info, uint32_t kind, int depth)
{
    dnode *nd;
    if (p->i >= p->len)
        return fail(p, "syntax", "unexpected end of input");
    switch (p->s[p->i]) {
    case '{':
    case '[':
        if (depth >= UNL_DECODE_MAX_DEPTH)
            return fail(p, "limit", "more than 100 levels of nesting");
        return p->s[p->i] == '{' ? object_value(p, key, kind, depth + 1)
                                 : array_value(p, key, depth + 1);
    case '"':
        return string_value(p, key, info);
    case 't':
        if (literal(p, "true", 4) != 0)
            return -1;
        return emit(p, T_TRUE, key) ? 0 : -1;
    case 'f':
        if (literal(p, "false", 5) != 0)
            return -1;
        return emit(p, T_FALSE, key) ? 0 : -1;
    case 'n':
        if (literal(p, "null", 4) != 0)
            return -1;
        return emit(p, T_NULL, key) ? 0 : -1;
    default: {
        double v = 0.0;
        char c = p->s[p->i];
        if (c != '-' && (c < '0' || c > '9'))
            return fail(p, "syntax", "unexpected character");
        if (read_number(p, &v) != 0)
            return -1;
        if ((nd = emit(p, T_NUM, key)) == NULL)
            return -1;
        nd->v.d = v;
        return 0;
    }
    }
}

/* Parses json[0..len) into d's tape. Returns 0, or -1 with p->msg set. */
static int parse(parser *p, unl_decoder *d, const char *json, size_t len, int copy)
{
    p->d = d;
    p->copy = copy;
    p->s = json;
    p->len = len;
    p->i = 0;
    p->kind = NULL;
    p->msg[0] = '\0';
    memset(p->dates, 0, sizeof p->dates);
    d->nnodes = d->arenalen = 0;
    if (len > 0x7FFFFFFFu)
        return fail(p, "limit", "an answer over 2 GB");
    skip_ws(p);
    if (value(p, 0, 0, 0, 0) != 0)
        return -1;
    skip_ws(p);
    if (p->i != len)
        return fail(p, "syntax", "unexpected text after the value");
    return 0;
}

/* ---- build -------------------------------------------------------------- */

/* Where a value sits, for the integer fields: the places the API declares
 * Integer (a page's Pagination figures, LineNumber of an order's lines or of
 * a line on its own), exactly as the library has always read them. */
enum { X_NONE, X_ROOT, X_ITEM, X_LIST, X_LINES, X_LINE, X_PAGINATION, X_INT };

static int member_place(int place, unsigned char info)
{
    if (place == X_ROOT && (info & K_PAGINATION))
        return X_PAGINATION;
    if (place == X_ROOT && (info & K_ITEMS))
        return X_LIST;
    /* the root is read as an item too */
    if ((place == X_ROOT || place == X_ITEM) && (info & K_LINES))
        return X_LINES;
    if ((place == X_ROOT || place == X_ITEM || place == X_LINE) && (info & K_LINENUMBER))
        return X_INT;
    if (place == X_PAGINATION && (info & K_PAGEFIGURE))
        return X_INT;
    return X_NONE;
}

static int item_place(int place)
{
    switch (place) {
    case X_ROOT:
    case X_LIST:
        return X_ITEM;
    case X_LINES:
        return X_LINE;
    default:
        return X_NONE;
    }
}

typedef struct {
    const unl_decoder *d;
    const char *src;
    int keys;   /* > 0: stack index of the table of cached strings by id;
                   < 0: string id is at stack index id - keys itself */
} builder;

/* Pushes cached string id. */
static void push_key(lua_State *L, const builder *b, uint32_t id)
{
    if (b->keys < 0)
        lua_pushvalue(L, (int)id - b->keys);
    else
        lua_rawgeti(L, b->keys, (lua_Integer)id);
}

static size_t build(lua_State *L, const builder *b, size_t i, int place)
{
    const dnode *nd = &b->d->nodes[i];
    uint32_t k, n = nd->n;
    switch (nd->tk & TYPE_MASK) {
    case T_OBJ:
        lua_createtable(L, 0, (int)n);
        i++;
        for (k = 0; k < n; k++) {
            const dnode *m = &b->d->nodes[i];
            uint32_t id = m->tk >> TYPE_BITS;
            int mplace = place == X_NONE ? X_NONE : member_place(place, b->d->keys[id].info);
            push_key(L, b, id);
            /* the usual members, a number or a cached string of no integer
             * field, without a call of their own */
            if (mplace != X_INT && (m->tk & TYPE_MASK) == T_NUM) {
                lua_pushnumber(L, (lua_Number)m->v.d);
                i++;
            } else if (mplace != X_INT && (m->tk & TYPE_MASK) == T_SID) {
                push_key(L, b, (uint32_t)m->v.off);
                i++;
            } else {
                i = build(L, b, i, mplace);
            }
            lua_rawset(L, -3);
        }
        return i;
    case T_ARR:
        lua_createtable(L, (int)n, 0);
        i++;
        place = item_place(place);
        for (k = 0; k < n; k++) {
            i = build(L, b, i, place);
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        return i;
    case T_STR:
    case T_SID:
        if ((nd->tk & TYPE_MASK) == T_SID)
            push_key(L, b, (uint32_t)nd->v.off);
        else
            lua_pushlstring(L, (nd->v.off & ARENA_BIT) ? b->d->arena + (nd->v.off & ~ARENA_BIT)
                                                       : b->src + nd->v.off, n);
        if (place == X_INT) {
            /* as math.tointeger always read these: "3" is 3 */
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (ok) {
                lua_pop(L, 1);
                lua_pushinteger(L, v);
            }
        }
        return i + 1;
    case T_NUM: {
        double v = nd->v.d;
        lua_Integer iv;
        if (place == X_INT && v == floor(v) && lua_numbertointeger(v, &iv))
            lua_pushinteger(L, iv);
        else
            lua_pushnumber(L, (lua_Number)v);
        return i + 1;
    }
    case T_TRUE:
    case T_FALSE:
        lua_pushboolean(L, (nd->tk & TYPE_MASK) == T_TRUE);
        return i + 1;
    default:
        lua_pushlightuserdata(L, NULL);   /* cjson.null: an array's null item */
        return i + 1;
    }
}

/* build_entry(decoder, reset, source) -> value: run protected, so that the
 * decoder is free again whatever happens. Everything that allocates Lua
 * objects, and so may run a finalizer that decodes, happens in here while
 * the decoder is busy: a new key cache when reset is true, the strings of
 * keys new to the cache, then the tables. */
static int build_entry(lua_State *L)
{
    builder b;
    unl_decoder *d = (unl_decoder *)lua_touserdata(L, 1);
    size_t id;
    if (lua_toboolean(L, 2)) {
        lua_newtable(L);
        lua_setiuservalue(L, 1, 1);
    }
    lua_getiuservalue(L, 1, 1);
    lua_replace(L, 2);
    for (id = d->luakeys + 1; id <= d->nkeys; id++) {
        lua_pushlstring(L, d->keytext + d->keys[id].off, d->keys[id].len);
        lua_rawseti(L, 2, (lua_Integer)id);
    }
    d->luakeys = d->nkeys;
    b.d = d;
    b.keys = 2;
    b.src = (const char *)lua_touserdata(L, 3);
    if (d->nkeys <= STACK_KEYS && d->nkeys * 4 <= d->nnodes &&
        lua_checkstack(L, (int)d->nkeys + 2 * UNL_DECODE_MAX_DEPTH + 20)) {
        /* the strings on the stack, where reading one is cheapest: for an
         * answer large enough that copying them there costs little */
        b.keys = -lua_gettop(L);
        for (id = 1; id <= d->nkeys; id++)
            lua_rawgeti(L, 2, (lua_Integer)id);
    }
    luaL_checkstack(L, 2 * UNL_DECODE_MAX_DEPTH + 20, "decoder");
    build(L, &b, 0, X_ROOT);
    return 1;
}

/* ---- Lua binding -------------------------------------------------------- */

static int l_decoder_gc(lua_State *L)
{
    decoder_free((unl_decoder *)luaL_checkudata(L, 1, UNL_DECODER_MT));
    return 0;
}

static int l_decode(lua_State *L);

void unl_decoder_new(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "decode", l_decode },
        { NULL, NULL },
    };
    unl_decoder *d = (unl_decoder *)lua_newuserdatauv(L, sizeof *d, 1);
    memset(d, 0, sizeof *d);
    if (luaL_newmetatable(L, UNL_DECODER_MT)) {
        lua_pushcfunction(L, l_decoder_gc);
        lua_setfield(L, -2, "__gc");
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_setmetatable(L, -2);
    lua_newtable(L);   /* the key strings, by id */
    lua_setiuservalue(L, -2, 1);
}

int unl_decode_push(lua_State *L, int idx, const char *json, size_t len)
{
    unl_decoder *d = (unl_decoder *)luaL_checkudata(L, idx, UNL_DECODER_MT);
    parser p;
    int status, own = 0, reset = 0;
    idx = lua_absindex(L, idx);
    if (d->busy) {
        /* A finalizer decoding while this decoder parses or builds: a
         * decoder of its own, so the tape being read stays as it is. */
        unl_decoder_new(L);
        idx = own = lua_gettop(L);
        d = (unl_decoder *)lua_touserdata(L, idx);
    }
    /* Busy from here to the end: nothing below allocates a Lua object
     * outside build_entry's protected call, which resets nothing but the
     * flag on its way out. */
    d->busy = 1;
    if (d->nkeys > UNL_DECODE_MAX_KEYS) {
        forget_keys(d);   /* the Lua side of the cache is replaced in build_entry */
        reset = 1;
    }
    if (parse(&p, d, json, len, 0) != 0) {
        d->busy = 0;
        if (strcmp(p.kind, "memory") == 0)
            return luaL_error(L, "not enough memory");
        if (own)
            lua_pop(L, 1);
        lua_pushnil(L);
        lua_pushstring(L, p.msg);
        lua_pushstring(L, p.kind);
        return 0;
    }
    lua_pushcfunction(L, build_entry);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, reset);
    lua_pushlightuserdata(L, (void *)(uintptr_t)json);
    status = lua_pcall(L, 3, 1, 0);
    d->busy = 0;
    if (status != LUA_OK)
        return lua_error(L);
    if (own)
        lua_remove(L, own);
    return 1;
}

/* decoder:decode(json) -> value, or nil, message, kind ("syntax" or "limit") */
static int l_decode(lua_State *L)
{
    size_t len;
    const char *s;
    luaL_checkudata(L, 1, UNL_DECODER_MT);
    s = luaL_checklstring(L, 2, &len);
    lua_settop(L, 2);
    return unl_decode_push(L, 1, s, len) ? 1 : 3;
}

/* core.decoder() -> a decoder with its own key cache */
static int l_decoder(lua_State *L)
{
    unl_decoder_new(L);
    return 1;
}


/* ---- pages: parsed off the Lua thread, built an item at a time ---------- */

struct unl_page {
    unl_decoder d;          /* its own tape and strings: nothing shared with any thread */
    int ok;                 /* parsed */
    const char *kind;       /* else why not: "syntax", "limit" */
    char msg[160];
    size_t pagination;      /* node of the root's Pagination, when an object */
    size_t *items;          /* nodes of the root's Items, when an array */
    uint32_t nitems;
    int shaped;             /* a root object with Pagination an object and Items an array */
};

/* A parsed page keeps only what building needs, in blocks of its size:
 * the hash from names to ids goes. */
static void shrink(unl_decoder *d)
{
    void *np;
    size_t bytes;
    free(d->slots);
    d->slots = NULL;
    d->capslots = 0;
    unl_big_free(NULL, d->shapes, d->capshapes * sizeof *d->shapes);
    d->shapes = NULL;
    d->nshapes = d->capshapes = 0;
    if (d->nnodes && (bytes = d->nnodes * sizeof *d->nodes,
                      np = unl_big_resize(d->pool, d->nodes, d->capnodes * sizeof *d->nodes, &bytes)) != NULL) {
        d->nodes = np;
        d->capnodes = bytes / sizeof *d->nodes;
    }
    if (d->arenalen && (bytes = d->arenalen,
                        np = unl_big_resize(d->pool, d->arena, d->arenacap, &bytes)) != NULL) {
        d->arena = np;
        d->arenacap = bytes;
    }
    if (d->keytextlen && (bytes = d->keytextlen,
                          np = unl_big_resize(d->pool, d->keytext, d->keytextcap, &bytes)) != NULL) {
        d->keytext = np;
        d->keytextcap = bytes;
    }
    bytes = (d->nkeys + 1) * sizeof *d->keys;
    if ((np = unl_big_resize(d->pool, d->keys, d->capkeys * sizeof *d->keys, &bytes)) != NULL) {
        d->keys = np;
        d->capkeys = bytes / sizeof *d->keys;
    }
}

/* The node after the subtree at i. */
static size_t skip(const dnode *nodes, size_t i)
{
    size_t need = 1;
    while (need > 0) {
        const dnode *nd = &nodes[i++];
        unsigned t = nd->tk & TYPE_MASK;
        need--;
        if (t == T_OBJ || t == T_ARR)
            need += nd->n;
    }
    return i;
}

/* Finds the root's Pagination and Items (the last of each, as a table
 * would keep) and where each item starts. Returns -1 when out of memory. */
static int index_page(unl_page *pg)
{
    const dnode *nodes = pg->d.nodes;
    size_t i = 1, pag = 0, items = 0, k;
    uint32_t m;
    if ((nodes[0].tk & TYPE_MASK) != T_OBJ)
        return 0;
    for (m = 0; m < nodes[0].n; m++) {
        unsigned char info = pg->d.keys[nodes[i].tk >> TYPE_BITS].info;
        if (info & K_PAGINATION)
            pag = i;
        else if (info & K_ITEMS)
            items = i;
        i = skip(nodes, i);
    }
    if (pag == 0 || items == 0 || (nodes[pag].tk & TYPE_MASK) != T_OBJ ||
        (nodes[items].tk & TYPE_MASK) != T_ARR)
        return 0;
    pg->pagination = pag;
    pg->nitems = nodes[items].n;
    pg->items = malloc((pg->nitems ? pg->nitems : 1) * sizeof *pg->items);
    if (pg->items == NULL)
        return -1;
    for (k = 0, i = items + 1; k < pg->nitems; k++) {
        pg->items[k] = i;
        i = skip(nodes, i);
    }
    pg->shaped = 1;
    return 0;
}

unl_page *unl_page_parse(const char *body, size_t len, unl_bigpool *pool)
{
    parser p;
    unl_page *pg = calloc(1, sizeof *pg);
    if (pg == NULL)
        return NULL;
    unl_bigpool_hold(pool);
    pg->d.pool = pool;
    /* The tape and its strings at about their final sizes at once (an
     * answer's JSON has some 30 bytes a value, a sixth of it in strings):
     * one buffer each, not a run of doublings; shrink() trims them. */
    if (reserve(pool, (void **)&pg->d.nodes, &pg->d.capnodes, len / 24 + 64, sizeof *pg->d.nodes) != 0 ||
        reserve(pool, (void **)&pg->d.arena, &pg->d.arenacap, len / 5 + 64, 1) != 0) {
        unl_page_free(pg);
        return NULL;
    }
    if (parse(&p, &pg->d, body, len, 1) != 0) {
        if (strcmp(p.kind, "memory") == 0) {
            unl_page_free(pg);
            return NULL;
        }
        pg->kind = p.kind;
        memcpy(pg->msg, p.msg, sizeof pg->msg);
        return pg;
    }
    if (index_page(pg) != 0) {
        unl_page_free(pg);
        return NULL;
    }
    shrink(&pg->d);
    pg->ok = 1;
    return pg;
}

void unl_page_free(unl_page *pg)
{
    if (pg) {
        unl_bigpool *pool = pg->d.pool;
        decoder_free(&pg->d);   /* its buffers back to the pool */
        unl_bigpool_drop(pool);
        free(pg->items);
        free(pg);
    }
}

static int l_page_gc(lua_State *L)
{
    unl_page **box = (unl_page **)luaL_checkudata(L, 1, UNL_PAGE_MT);
    unl_page_free(*box);
    *box = NULL;
    return 0;
}

/* page:free(): frees the parsed page now, not when the collector gets to
 * the box (it does not see the page's memory, several MB for a page of
 * 1,000 orders). Every method but error() then raises. The mark is the
 * box's user value, false once freed (its strings table goes with it). */
static int l_page_free(lua_State *L)
{
    l_page_gc(L);
    lua_pushboolean(L, 0);
    lua_setiuservalue(L, 1, 1);
    return 0;
}

/* The page in the box at index 1, with its strings table (made on first
 * use) pushed. */
static unl_page *check_page(lua_State *L)
{
    unl_page **box = (unl_page **)luaL_checkudata(L, 1, UNL_PAGE_MT);
    unl_page *pg = *box;
    size_t id;
    if (pg == NULL && lua_getiuservalue(L, 1, 1) == LUA_TBOOLEAN)
        luaL_error(L, "page: freed (page:free() was called)");
    if (pg == NULL || !pg->ok)
        luaL_error(L, "page: nothing parsed");
    if (lua_getiuservalue(L, 1, 1) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, (int)pg->d.nkeys, 0);
        for (id = 1; id <= pg->d.nkeys; id++) {
            lua_pushlstring(L, pg->d.keytext + pg->d.keys[id].off, pg->d.keys[id].len);
            lua_rawseti(L, -2, (lua_Integer)id);
        }
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, 1, 1);
    }
    return pg;
}

static void build_node(lua_State *L, unl_page *pg, size_t node, int place)
{
    builder b;
    b.d = &pg->d;
    b.src = NULL;
    b.keys = lua_gettop(L);
    luaL_checkstack(L, 2 * UNL_DECODE_MAX_DEPTH + 20, "decoder");
    build(L, &b, node, place);
}

/* page:count() -> the number of Items, or nil when the answer is not a page
 * (then page:doc() builds it whole) */
static int l_page_count(lua_State *L)
{
    unl_page *pg = check_page(L);
    if (!pg->shaped)
        return 0;
    lua_pushinteger(L, (lua_Integer)pg->nitems);
    return 1;
}

/* page:item(i) -> Items[i], built now */
static int l_page_item(lua_State *L)
{
    unl_page *pg = check_page(L);
    lua_Integer i = luaL_checkinteger(L, 2);
    luaL_argcheck(L, pg->shaped && i >= 1 && i <= (lua_Integer)pg->nitems, 2, "no such item");
    build_node(L, pg, pg->items[i - 1], X_ITEM);
    return 1;
}

/* page:pagination() -> the Pagination table */
static int l_page_pagination(lua_State *L)
{
    unl_page *pg = check_page(L);
    luaL_argcheck(L, pg->shaped, 1, "not a page");
    build_node(L, pg, pg->pagination, X_PAGINATION);
    return 1;
}

/* page:doc() -> the whole answer, as unleashed.json.decode gives it */
static int l_page_doc(lua_State *L)
{
    build_node(L, check_page(L), 0, X_ROOT);
    return 1;
}

/* page:guids() -> { Items[i].Guid or false, ... }, read without building
 * the items (a Guid that is not a string is false) */
static int l_page_guids(lua_State *L)
{
    unl_page *pg;
    const unl_decoder *d;
    uint32_t guid = 0, k, m;
    size_t id;
    int keys;
    lua_settop(L, 1);
    pg = check_page(L);
    d = &pg->d;
    keys = lua_gettop(L);
    luaL_argcheck(L, pg->shaped, 1, "not a page");
    for (id = 1; id <= d->nkeys && guid == 0; id++)
        if (d->keys[id].len == 4 && memcmp(d->keytext + d->keys[id].off, "Guid", 4) == 0)
            guid = (uint32_t)id;
    lua_createtable(L, (int)pg->nitems, 0);
    for (k = 0; k < pg->nitems; k++) {
        size_t i = pg->items[k], found = 0;
        const dnode *nd = &d->nodes[i];
        if ((nd->tk & TYPE_MASK) == T_OBJ && guid) {
            i++;
            for (m = 0; m < nd->n; m++) {
                if (d->nodes[i].tk >> TYPE_BITS == guid)
                    found = i;   /* the last one, as a table keeps it */
                i = skip(d->nodes, i);
            }
        }
        if (found && ((d->nodes[found].tk & TYPE_MASK) == T_STR ||
                      (d->nodes[found].tk & TYPE_MASK) == T_SID)) {
            builder b;
            b.d = d;
            b.src = NULL;
            b.keys = keys;
            build(L, &b, found, X_NONE);
        } else {
            lua_pushboolean(L, 0);
        }
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    return 1;
}

/* page:error() -> nil, or message, kind ("syntax" or "limit") */
static int l_page_error(lua_State *L)
{
    unl_page **box = (unl_page **)luaL_checkudata(L, 1, UNL_PAGE_MT);
    if (*box == NULL || (*box)->ok)
        return 0;
    lua_pushstring(L, (*box)->msg);
    lua_pushstring(L, (*box)->kind);
    return 2;
}

unl_page **unl_page_box(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "count", l_page_count },
        { "item", l_page_item },
        { "pagination", l_page_pagination },
        { "doc", l_page_doc },
        { "error", l_page_error },
        { "guids", l_page_guids },
        { "free", l_page_free },
        { NULL, NULL },
    };
    unl_page **box = (unl_page **)lua_newuserdatauv(L, sizeof *box, 1);
    *box = NULL;
    if (luaL_newmetatable(L, UNL_PAGE_MT)) {
        lua_pushcfunction(L, l_page_gc);
        lua_setfield(L, -2, "__gc");
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_setmetatable(L, -2);
    return box;
}

/* core.parse_page(json) -> a Page, parsed as the pager parses (for tools
 * and tests) */
static int l_parse_page(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unl_page **box = unl_page_box(L);
    *box = unl_page_parse(s, len, NULL);
    if (*box == NULL)
        return luaL_error(L, "not enough memory");
    return 1;
}

void unl_open_decode(lua_State *L)
{
    lua_pushcfunction(L, l_decoder);
    lua_setfield(L, -2, "decoder");
    lua_pushcfunction(L, l_parse_page);
    lua_setfield(L, -2, "parse_page");
}
