/* The Client userdata: options, lifetime (one idempotent release that wipes
 * the key), and request() with its retry loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "client.h"
#include "unleashed.h"

#define DEFAULT_BASE_URL "https://api.unleashedsoftware.com"
#define DEFAULT_CLIENT_TYPE "lua-unleashed/app"

/* ---- option readers ----------------------------------------------------- */

long unl_ms(double seconds)
{
    double ms = ceil(seconds * 1000.0);
    return ms < 1 ? 1L : (long)ms;
}

double unl_opt_seconds(lua_State *L, int t, int arg, const char *field, double def)
{
    double v = def;
    if (lua_getfield(L, t, field) != LUA_TNIL) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(v > 0) || v > UNL_MAX_SECONDS)
            luaL_argerror(L, arg, lua_pushfstring(L,
                "%s: must be a positive number of seconds (at most %d)", field,
                (int)UNL_MAX_SECONDS));
    }
    lua_pop(L, 1);
    return v;
}

/* Non-negative seconds (a zero backoff is allowed). */
static double opt_backoff(lua_State *L, int t, int arg, const char *field, double def)
{
    double v = def;
    if (lua_getfield(L, t, field) != LUA_TNIL) {
        v = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(v >= 0) || v > UNL_MAX_SECONDS)
            luaL_argerror(L, arg, lua_pushfstring(L,
                "%s: must be a number of seconds from 0 to %d", field, (int)UNL_MAX_SECONDS));
    }
    lua_pop(L, 1);
    return v;
}

int unl_opt_int(lua_State *L, int t, int arg, const char *field, int def, int lo, int hi)
{
    lua_Integer v = def;
    if (lua_getfield(L, t, field) != LUA_TNIL) {
        int ok = 0;
        if (lua_type(L, -1) == LUA_TNUMBER)
            v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < lo || v > hi)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: must be an integer from %d to %d",
                                                  field, lo, hi));
    }
    lua_pop(L, 1);
    return (int)v;
}

static int has_control(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

/* Copies opts[field] (a string) into malloc'd storage owned by the box. A
 * value that goes into a header must not carry CR/LF or other controls. */
static char *opt_string(lua_State *L, int t, int arg, const char *field, const char *def,
                        int required, size_t *lenp)
{
    size_t n = 0;
    const char *s = def;
    char *copy;
    int ty = lua_getfield(L, t, field);
    if (ty != LUA_TNIL) {
        if (ty != LUA_TSTRING)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: must be a string", field));
        s = lua_tolstring(L, -1, &n);
        if (n == 0)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: must not be empty", field));
        if (has_control(s, n) || strlen(s) != n)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: must not contain control characters",
                                                  field));
    } else if (required) {
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: required, a non-empty string", field));
    } else if (s) {
        n = strlen(s);
    }
    if (s == NULL) {
        lua_pop(L, 1);
        return NULL;
    }
    copy = malloc(n + 1);
    if (copy == NULL)
        luaL_error(L, "not enough memory");
    memcpy(copy, s, n);
    copy[n] = '\0';
    lua_pop(L, 1);
    if (lenp)
        *lenp = n;
    return copy;
}

/* ---- URLs and paths ------------------------------------------------------ */

/* Whether a path has a "." or ".." segment, spelt with dots or with %2e;
 * '\', %2f and %5c count as separators too, as some servers read them so.
 * libcurl would squash such segments (or a server would), so the request
 * sent or served would not be the one reported. */
/* The length of a separator at p[i]: '/', '\\', %2f or %5c; 0 for none. */
static size_t separator_at(const char *p, size_t n, size_t i)
{
    if (p[i] == '/' || p[i] == '\\')
        return 1;
    if (p[i] == '%' && i + 2 < n) {
        char a = p[i + 1], b = (char)(p[i + 2] | 0x20);
        if ((a == '2' && b == 'f') || (a == '5' && b == 'c'))
            return 3;
    }
    return 0;
}

int unl_has_dot_segment(const char *p, size_t n)
{
    size_t i = 0;
    for (;;) {
        int dots = 0, other = 0;
        while (i < n && separator_at(p, n, i) == 0) {
            if (p[i] == '.') {
                dots++;
                i++;
            } else if (p[i] == '%' && i + 2 < n && p[i + 1] == '2' && (p[i + 2] | 0x20) == 'e') {
                dots++;
                i += 3;
            } else {
                other = 1;
                i++;
            }
        }
        if (!other && (dots == 1 || dots == 2))
            return 1;
        if (i >= n)
            return 0;
        i += separator_at(p, n, i);
    }
}

#define URL_MAX 2048
enum { URL_BASE, URL_PROXY };

/* Checks a base_url or proxy with libcurl's URL parser. Returns a malloc'd
 * URL (trailing '/' removed), or NULL with the rule it breaks in rule[]
 * (never the URL itself: it may hold a password). A URL is accepted only
 * when libcurl reads it exactly as written (scheme case and a trailing '/'
 * aside), so it cannot read like one host and connect to another. */
static char *check_url(const char *s, size_t n, int role, char *rule, size_t rulesz)
{
    CURLU *u = NULL;
    CURLUcode rc;
    char *scheme = NULL, *part = NULL, *full = NULL, *out = NULL;
    size_t i, m, k;
    int ok_scheme = 0;
    const char *const schemes_base[] = { "http", "https", NULL };
    const char *const schemes_proxy[] = { "http", "https", "socks4", "socks4a", "socks5", "socks5h",
                                          NULL };
    const char *const *schemes = role == URL_BASE ? schemes_base : schemes_proxy;
    rule[0] = '\0';
    if (n == 0) {
        snprintf(rule, rulesz, "must not be empty");
        return NULL;
    }
    if (n > URL_MAX) {
        snprintf(rule, rulesz, "must be a URL of at most %d bytes", URL_MAX);
        return NULL;
    }
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch == 0x7f || ch == '\\') {
            snprintf(rule, rulesz, "must not contain spaces, control characters or a backslash");
            return NULL;
        }
        if (ch == '?' || ch == '#') {
            snprintf(rule, rulesz, "must not have a query or fragment");
            return NULL;
        }
    }
    u = curl_url();
    if (u == NULL) {
        snprintf(rule, rulesz, "cannot be checked: out of memory");
        return NULL;
    }
    rc = curl_url_set(u, CURLUPART_URL, s,
                      CURLU_PATH_AS_IS | (role == URL_PROXY ? CURLU_NON_SUPPORT_SCHEME : 0));
    if (rc != CURLUE_OK) {
        if (rc == CURLUE_UNSUPPORTED_SCHEME || rc == CURLUE_BAD_SCHEME)
            goto bad_scheme;
        snprintf(rule, rulesz, "must be a URL libcurl can parse (%s)", curl_url_strerror(rc));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
        goto bad_scheme;
    for (i = 0; schemes[i] != NULL; i++)
        if (strcmp(scheme, schemes[i]) == 0)
            ok_scheme = 1;
    if (!ok_scheme)
        goto bad_scheme;
    if (curl_url_get(u, CURLUPART_USER, &part, 0) != CURLUE_NO_USER
        || curl_url_get(u, CURLUPART_PASSWORD, &part, 0) != CURLUE_NO_PASSWORD
        || curl_url_get(u, CURLUPART_OPTIONS, &part, 0) != CURLUE_NO_OPTIONS) {
        snprintf(rule, rulesz, role == URL_BASE
                 ? "must not carry user info (user:password@): the API signs with api_id and api_key"
                 : "must not carry user info (user:password@): proxy credentials are not supported");
        goto done;
    }
    curl_free(part);
    part = NULL;
    if (curl_url_get(u, CURLUPART_PATH, &part, 0) != CURLUE_OK) {
        snprintf(rule, rulesz, "must be a URL libcurl can parse (no path)");
        goto done;
    }
    m = strlen(part);
    if (role == URL_PROXY && !(m == 0 || (m == 1 && part[0] == '/'))) {
        snprintf(rule, rulesz, "must be scheme://host:port, without a path");
        goto done;
    }
    if (unl_has_dot_segment(part, m)) {
        snprintf(rule, rulesz, "must not have . or .. path segments");
        goto done;
    }
    if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        snprintf(rule, rulesz, "must be a URL libcurl can parse");
        goto done;
    }
    /* What libcurl will use, against what was written. */
    m = strlen(full);
    while (m > 0 && full[m - 1] == '/')
        m--;
    k = n;
    while (k > 0 && s[k - 1] == '/')
        k--;
    for (i = 0; i < k && i < m; i++) {
        char a = s[i], b = full[i];
        if (i < strlen(scheme) && a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != b)
            break;
    }
    if (i != k || k != m) {
        snprintf(rule, rulesz, "must be written as libcurl reads it (scheme://host:port/path; "
                               "libcurl would read this one differently)");
        goto done;
    }
    out = malloc(m + 1);
    if (out == NULL) {
        snprintf(rule, rulesz, "cannot be checked: out of memory");
        goto done;
    }
    memcpy(out, full, m);
    out[m] = '\0';
    goto done;
bad_scheme:
    snprintf(rule, rulesz, role == URL_BASE ? "must be an http:// or https:// URL"
             : "must be an http://, https://, socks4://, socks4a://, socks5:// or socks5h:// URL");
done:
    curl_free(scheme);
    curl_free(part);
    curl_free(full);
    curl_url_cleanup(u);
    return out;
}

/* core.check_url(url [, "base_url" | "proxy"]) -> url | nil, rule */
static int l_check_url(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    static const char *const roles[] = { "base_url", "proxy", NULL };
    int role = luaL_checkoption(L, 2, "base_url", roles);
    char rule[256];
    char *out = check_url(s, n, role, rule, sizeof rule);
    if (out == NULL) {
        lua_pushnil(L);
        lua_pushstring(L, rule);
        return 2;
    }
    lua_pushstring(L, out);
    free(out);
    return 1;
}

/* Reads opts[field] as a URL for role into malloc'd storage, or NULL when
 * absent; a bad one raises naming the field and the rule. */
static char *opt_url(lua_State *L, int t, const char *field, int role)
{
    char rule[256];
    size_t n;
    const char *s;
    char *out;
    int ty = lua_getfield(L, t, field);
    if (ty == LUA_TNIL) {
        lua_pop(L, 1);
        return NULL;
    }
    if (ty != LUA_TSTRING)
        luaL_argerror(L, t, lua_pushfstring(L, "%s: must be a string", field));
    s = lua_tolstring(L, -1, &n);
    out = check_url(s, n, role, rule, sizeof rule);
    if (out == NULL)
        luaL_argerror(L, t, lua_pushfstring(L, "%s: %s", field, rule));
    lua_pop(L, 1);
    return out;
}

/* ---- lifetime ----------------------------------------------------------- */

static void client_release(unl_client *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    /* Pagers' easy handles hold the share: they go first. */
    while (c->pagers)
        unl_pager_release(c->pagers, 1);
    unl_xfer_free(&c->single);
    if (c->req_headers) {
        unl_headers_free(c->req_headers);
        c->req_headers = NULL;
    }
    if (c->share) {
        curl_share_cleanup(c->share);
        c->share = NULL;
    }
    if (c->key) {
        OPENSSL_cleanse(c->key, c->keylen);
        free(c->key);
        c->key = NULL;
    }
    free(c->id);
    free(c->base_url);
    free(c->client_type);
    free(c->user_agent);
    free(c->ca_file);
    free(c->proxy);
    c->id = c->base_url = c->client_type = c->user_agent = c->ca_file = c->proxy = NULL;
}

unl_client *unl_check_client(lua_State *L, int idx)
{
    unl_client *c = luaL_checkudata(L, idx, UNL_CLIENT_MT);
    if (c->closed)
        luaL_error(L, "client is closed");
    return c;
}

static int l_client_gc(lua_State *L)
{
    client_release(luaL_checkudata(L, 1, UNL_CLIENT_MT));
    return 0;
}

static int l_client_tostring(lua_State *L)
{
    unl_client *c = luaL_checkudata(L, 1, UNL_CLIENT_MT);
    if (c->closed) {
        lua_pushliteral(L, "unleashed.Client(closed)");
        return 1;
    }
    /* The id's first characters are enough to tell companies apart; the
     * key never appears. */
    lua_pushliteral(L, "unleashed.Client(");
    lua_pushlstring(L, c->id, c->idlen < 8 ? c->idlen : 8);
    lua_pushfstring(L, "..., %s)", c->base_url);
    lua_concat(L, 3);
    return 1;
}

/* ---- new_client --------------------------------------------------------- */

static const char *const client_options[] = {
    "api_id", "api_key", "base_url", "client_type", "user_agent", "timeout", "connect_timeout",
    "max_retries", "retry_base", "retry_cap", "ca_file", "max_body", "proxy", NULL
};

/* Whether s reads as an option name: a short identifier. Only such a name
 * is repeated in a message, so that a credential put where a name goes
 * never comes back in one. */
static int is_name(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || n > 40 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
              || ch == '_'))
            return 0;
    }
    return 1;
}

/* An option the core does not know is refused, not ignored: a misspelt
 * name, or one a caller expects to turn TLS verification off, must fail. */
static void check_option_names(lua_State *L, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        int i, known = 0;
        size_t n = 0;
        const char *k = NULL;
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            k = lua_tolstring(L, -1, &n);
            for (i = 0; client_options[i] != NULL; i++)
                if (strcmp(k, client_options[i]) == 0 && strlen(k) == n)
                    known = 1;
        }
        if (!known) {
            if (k != NULL && is_name(k, n))
                luaL_argerror(L, t, lua_pushfstring(L, "%s: unknown option", k));
            luaL_argerror(L, t, lua_pushfstring(L, "a %s that is not an option name is not an option",
                                                luaL_typename(L, -1)));
        }
    }
}

static int l_new_client(lua_State *L)
{
    unl_client *c;
    const curl_version_info_data *vi;
    luaL_checktype(L, 1, LUA_TTABLE);
    check_option_names(L, 1);
    /* The box exists (with its __gc) before anything it will own. */
    c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, UNL_CLIENT_MT);

    c->id = opt_string(L, 1, 1, "api_id", NULL, 1, &c->idlen);
    c->key = opt_string(L, 1, 1, "api_key", NULL, 1, &c->keylen);
    /* Parsed as libcurl will read it: scheme, host, port and a path only. */
    c->base_url = opt_url(L, 1, "base_url", URL_BASE);
    if (c->base_url == NULL) {
        c->base_url = malloc(sizeof DEFAULT_BASE_URL);
        if (c->base_url == NULL)
            return luaL_error(L, "not enough memory");
        memcpy(c->base_url, DEFAULT_BASE_URL, sizeof DEFAULT_BASE_URL);
    }
    /* No proxy unless this says so: the environment's are not used. */
    c->proxy = opt_url(L, 1, "proxy", URL_PROXY);
    c->client_type = opt_string(L, 1, 1, "client_type", DEFAULT_CLIENT_TYPE, 0, NULL);
    vi = curl_version_info(CURLVERSION_NOW);
    lua_pushfstring(L, "lua-unleashed/%s libcurl/%s", UNLEASHED_VERSION, vi->version);
    c->user_agent = opt_string(L, 1, 1, "user_agent", lua_tostring(L, -1), 0, NULL);
    lua_pop(L, 1);
    c->ca_file = opt_string(L, 1, 1, "ca_file", NULL, 0, NULL);

    c->timeout = unl_opt_seconds(L, 1, 1, "timeout", 30);
    c->connect_timeout = unl_opt_seconds(L, 1, 1, "connect_timeout", 10);
    c->max_retries = unl_opt_int(L, 1, 1, "max_retries", 3, 0, UNL_MAX_RETRIES);
    c->retry_base = opt_backoff(L, 1, 1, "retry_base", 0.5);
    c->retry_cap = opt_backoff(L, 1, 1, "retry_cap", 30);
    c->max_body = (size_t)unl_opt_int(L, 1, 1, "max_body", 64 * 1024 * 1024, 1, 0x7fffffff);

    c->share = curl_share_init();
    if (c->share == NULL)
        return luaL_error(L, "not enough memory");
    /* One connection cache, DNS cache and TLS session cache for request()
     * and every pager of this client; only one thread uses them, so no
     * lock callbacks. */
    if (curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK
        || curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK
        || curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        return luaL_error(L, "libcurl cannot share connections");
    c->single.easy = curl_easy_init();
    if (c->single.easy == NULL)
        return luaL_error(L, "not enough memory");
    if (curl_easy_setopt(c->single.easy, CURLOPT_SHARE, c->share) != CURLE_OK)
        return luaL_error(L, "libcurl cannot share connections");
    unl_rng_seed(&c->rng, c);
    return 1;
}

static int l_client_close(lua_State *L)
{
    client_release(luaL_checkudata(L, 1, UNL_CLIENT_MT));
    return 0;
}

/* ---- request ------------------------------------------------------------ */

/* Indexes into this list name the methods below. */
static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", NULL };
enum { M_GET, M_HEAD, M_POST, M_PUT, M_DELETE, M_PATCH };

static void check_path(lua_State *L, int arg, const char *path, size_t n)
{
    size_t i;
    if (n == 0 || path[0] != '/')
        luaL_argerror(L, arg, "path: must start with '/'");
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)path[i];
        if (ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#')
            luaL_argerror(L, arg, "path: must not contain spaces, controls, '?' or '#' "
                                  "(the query goes in opts.query)");
    }
    /* What is sent is what is reported: no segment a server or libcurl
     * would squash into another path. */
    if (unl_has_dot_segment(path, n))
        luaL_argerror(L, arg, "path: must not have . or .. segments (also as %2e)");
}

/* Pushes signed and wire texts for opts.query, then the URL. Leaves
 * [signed, wire, url] on the stack. Every Lua call here may run an __index
 * or a finalizer that closes the client, so its fields are read only after
 * a check, and copied into Lua values by single calls (which copy before
 * they may collect). */
static const char *prepare(lua_State *L, unl_client *c, int opts, int path)
{
    size_t wlen;
    int top;
    if (opts)
        lua_getfield(L, opts, "query");
    else
        lua_pushnil(L);
    if (!lua_isnil(L, -1) && !lua_istable(L, -1))
        luaL_argerror(L, opts, "query: must be a table");
    unl_query_push(L, lua_gettop(L));
    lua_remove(L, -3);
    lua_tolstring(L, -1, &wlen);
    if (c->closed)
        luaL_error(L, "client is closed");
    top = lua_gettop(L);
    lua_pushstring(L, c->base_url);
    lua_pushvalue(L, path);
    if (wlen > 0) {
        lua_pushliteral(L, "?");
        lua_pushvalue(L, top);   /* the wire text */
    }
    lua_concat(L, lua_gettop(L) - top);
    return lua_tostring(L, -1);
}

static int l_request(lua_State *L)
{
    unl_client *c = unl_check_client(L, 1);
    int m = luaL_checkoption(L, 2, NULL, methods);
    size_t plen, blen = 0;
    const char *path = luaL_checklstring(L, 3, &plen);
    const char *body = NULL, *url, *method = methods[m], *signed_text;
    size_t slen;
    unl_xfer *out;
    int opts = lua_isnoneornil(L, 4) ? 0 : 4;
    char sig[UNL_SIG_LEN + 1];
    unl_settings s;
    unl_xfer *x = &c->single;
    int attempt;

    check_path(L, 3, path, plen);
    if (opts)
        luaL_checktype(L, 4, LUA_TTABLE);
    /* The box the result is pushed from, made first: the client is checked
     * again after every Lua call, the last right before signing. */
    lua_settop(L, 4);
    out = unl_hold_new(L);
    s.timeout_ms = unl_ms(c->timeout);
    s.connect_timeout_ms = unl_ms(c->connect_timeout);
    s.retries = c->max_retries;
    /* RFC 9110: POST and PATCH are not idempotent. */
    s.idempotent = m != M_POST && m != M_PATCH;
    if (opts) {
        int ty;
        s.timeout_ms = unl_ms(unl_opt_seconds(L, 4, 4, "timeout", c->timeout));
        s.connect_timeout_ms = unl_ms(unl_opt_seconds(L, 4, 4, "connect_timeout",
                                                      c->connect_timeout));
        s.retries = unl_opt_int(L, 4, 4, "retries", c->max_retries, 0, UNL_MAX_RETRIES);
        ty = lua_getfield(L, 4, "idempotent");
        if (ty == LUA_TBOOLEAN)
            s.idempotent = lua_toboolean(L, -1);
        else if (ty != LUA_TNIL)
            luaL_argerror(L, 4, "idempotent: must be a boolean");
        lua_pop(L, 1);
        /* The body string stays anchored in the stack slot below. */
        ty = lua_getfield(L, 4, "body");
        if (ty == LUA_TSTRING) {
            if (m == M_GET || m == M_HEAD)
                return luaL_argerror(L, 4, lua_pushfstring(L, "body: not allowed with %s",
                                                           method));
            body = lua_tolstring(L, -1, &blen);
        } else if (ty != LUA_TNIL) {
            return luaL_argerror(L, 4, "body: must be a string");
        }
    } else {
        lua_pushnil(L);
    }
    url = prepare(L, c, opts, 3);
    /* The last Lua call is behind us: from here to the result the client
     * cannot be closed under this function, so check once more. */
    if (c->closed)
        return luaL_error(L, "client is closed");
    signed_text = lua_tolstring(L, -3, &slen);
    if (unl_sign(c->key, c->keylen, signed_text, slen, sig) != 0) {
        OPENSSL_cleanse(sig, sizeof sig);
        unl_push_openssl_error(L, "HMAC-SHA256 failed");
        return lua_error(L);
    }

    if (c->req_headers) {
        unl_headers_free(c->req_headers);
        c->req_headers = NULL;
    }
    c->req_headers = unl_headers_new(c, sig);
    OPENSSL_cleanse(sig, sizeof sig);
    if (c->req_headers == NULL || unl_xfer_begin(x, s.retries) != 0)
        return luaL_error(L, "not enough memory");

    for (attempt = 1;; attempt++) {
        CURLcode rc = unl_xfer_setup(c, x, url, c->req_headers, &s);
        double wait;
        if (rc == CURLE_OK) {
            switch (m) {
            case M_HEAD: rc = curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L); break;
            case M_POST: case M_PUT: case M_PATCH:
                /* These always carry a length, even for an empty body. */
                rc = curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
                if (rc == CURLE_OK)
                    rc = curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, body ? body : "");
                break;
            case M_DELETE:
                if (body) {
                    rc = curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
                    if (rc == CURLE_OK)
                        rc = curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, body);
                }
                break;
            default: break;
            }
            if (rc == CURLE_OK && (m == M_PUT || m == M_DELETE || m == M_PATCH))
                rc = curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, method);
        }
        if (rc != CURLE_OK)
            return luaL_error(L, "libcurl refused an option: %s", curl_easy_strerror(rc));
        rc = curl_easy_perform(x->easy);
        unl_xfer_finish(x, rc, method, path);
        if (x->failed & UNL_FAIL_OOM)
            return luaL_error(L, "not enough memory");
        wait = unl_retry_wait(c, x, attempt, &s);
        unl_xfer_record(x, wait);
        if (wait < 0)
            break;
        unl_sleep(wait);
    }
    x->ms = (unl_now() - x->t_start) * 1000.0;
    /* Pushed from the box, not from c->single: a finalizer run while the
     * result is built may close the client or make another request. */
    unl_hold_take(out, x);
    unl_push_result(L, out);
    unl_xfer_free(out);
    return 1;
}

/* ---- registration ------------------------------------------------------- */

void unl_open_client(lua_State *L)
{
    static const luaL_Reg meta[] = {
        { "__gc", l_client_gc },
        { "__close", l_client_gc },
        { "__tostring", l_client_tostring },
        { NULL, NULL }
    };
    static const luaL_Reg methods_[] = {
        { "request", l_request },
        { "pager", unl_client_pager },
        { "close", l_client_close },
        { NULL, NULL }
    };
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    /* CURLOPT_PROTOCOLS_STR needs 7.85; from 7.84 the global init is thread
     * safe, so every lua_State may run it (it is reference counted). */
    if (vi->version_num < 0x075500)
        luaL_error(L, "unleashed.core needs libcurl 7.85 or later (found %s)", vi->version);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        luaL_error(L, "libcurl global initialisation failed");
    if (luaL_newmetatable(L, UNL_CLIENT_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods_);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    unl_open_pager(L);
    unl_open_hold(L);
    lua_pushcfunction(L, l_new_client);
    lua_setfield(L, -2, "new_client");
    lua_pushcfunction(L, l_check_url);
    lua_setfield(L, -2, "check_url");
}
