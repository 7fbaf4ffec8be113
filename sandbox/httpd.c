/* unleashed.sandbox.httpd: the sandbox's HTTP server (libmicrohttpd).
 *
 * Connections cost no thread of their own: libmicrohttpd's internal polling
 * threads (epoll, a small pool) read and write every socket, so idle or slow
 * connections cost a socket and a little memory, never a thread. Those
 * threads never touch Lua. A request whose headers (or whole body) have
 * arrived is suspended and put on the server's queue; the thread inside
 * run() is woken through an eventfd, calls the Lua handler for each queued
 * request, one at a time, fills in the answer and resumes the connection,
 * whose polling thread then sends it. An answer with delay_ms is handed to
 * the server's clock thread instead, which resumes the connection when the
 * delay is over: latency is held outside the Lua thread and slow answers
 * overlap.
 *
 * Requests with a body are shown to run()'s check function (when one is
 * given) as soon as their headers arrive: an answer from it is sent without
 * reading the body (a refused signature never costs the body's memory).
 * Bodies accepted are counted against a budget of bytes in flight; past it a
 * request gets 503 before its body is read.
 *
 * The clock thread also closes connections whose request headers do not
 * arrive in time: HEADER_TIMEOUT seconds from the first byte of a request
 * (the kernel's count of bytes received, TCP_INFO, tells when it came, so a
 * client busy before it sends anything is not cut short), and IDLE_TIMEOUT
 * seconds after the connection's start or its last answer when no request
 * has begun. Over TLS the first request's bytes cannot be told from the
 * handshake's, which a slow client (one under valgrind, say) may need
 * seconds of CPU for: there the first request's deadline runs from its
 * request line. The clock shuts the socket down; the polling thread then
 * sees the end and closes it.
 *
 * SIGINT and SIGTERM are blocked from new() on (the daemon's and the clock's
 * threads inherit the mask, so no signal lands on them) and read by run()
 * from a signalfd; run() restores the caller's mask when it returns. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/tcp.h>             /* struct tcp_info with tcpi_bytes_received (Linux 4.1+) */
#include <microhttpd.h>
#include <lauxlib.h>

#include "unleashed.h"
#include "files.h"

#define SERVER_MT "unleashed.sandbox.Server"
#define MAX_BODY (16u * 1024u * 1024u)     /* larger request bodies get 413 */
#define BODY_BUDGET (64u * 1024u * 1024u)  /* bodies in flight past this get 503 */
#define MAX_DELAY_MS 600000.0              /* a response is held ten minutes at most */
#define HEADER_TIMEOUT 5.0                 /* seconds from a request's first byte to its last header */
#define IDLE_TIMEOUT 60.0                  /* seconds a connection may stay silent between requests */
#define POLL_THREADS 2u                    /* libmicrohttpd's polling threads */
#define MAX_CONNECTIONS 4096u              /* lowered to fit the process's file limit */
#define CLOCK_TICK 0.25                    /* seconds between two looks at the deadlines */
#define INLINE_HEADERS 24

UNLEASHED_API int luaopen_unleashed_sandbox_httpd(lua_State *L);

/* ---- time ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timespec to_timespec(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec < 0)
        ts.tv_nsec = 0;
    if (ts.tv_nsec > 999999999L)
        ts.tv_nsec = 999999999L;
    return ts;
}

/* ---- connections and requests -------------------------------------------- */

/* What the clock thread knows of a connection: its socket, what it waits
 * for and by when. Guarded by the server lock; freed when libmicrohttpd says
 * the connection closed (before it closes the socket, so a shutdown or a
 * TCP_INFO look under the lock never hits a reused descriptor). */
enum {
    CONN_SILENT,   /* no byte of the next request yet (new, or kept alive): IDLE_TIMEOUT */
    CONN_HEAD,     /* a request has begun: its headers are due within HEADER_TIMEOUT */
    CONN_BUSY      /* headers in: the request is read, handled or answered; no deadline */
};
typedef struct conn {
    struct conn *prev, *next;
    int fd;
    int phase;
    int shut;
    double deadline;                   /* CONN_SILENT and CONN_HEAD */
    uint64_t seen;                     /* bytes received when it fell silent */
    int fresh;                         /* no request answered yet */
} conn;

/* A header as the connection holds it: pointers into the connection's memory
 * pool, valid while the request is being processed. */
typedef struct {
    const char *name, *value;
    size_t name_len, value_len;
} header_ref;

/* Where a request is: each stage is left by one call of on_request. */
enum {
    ST_NEW,        /* headers not seen yet */
    ST_CHECKING,   /* suspended: run() shows the headers to the check function */
    ST_BODY,       /* reading the body */
    ST_HANDLING,   /* suspended: run() calls the handler (then maybe the clock holds it) */
    ST_DONE        /* answer queued */
};

typedef struct req {
    struct req *next;                  /* the server's queue or the clock's list */
    struct MHD_Connection *con;
    int stage;
    int answered;                      /* an answer is ready: send it at the next call */
    int counted;                       /* in the server's inflight count */
    int too_large, over_budget;
    size_t reserved;                   /* bytes of the body budget held */
    double due;                        /* the clock resumes the connection then */
    const char *method;
    char *uri;                         /* raw request target; path and query split in place */
    const char *query;
    char *body;
    size_t body_len, body_cap;
    header_ref inline_headers[INLINE_HEADERS];
    header_ref *headers;
    size_t nheaders, headers_cap;
    int headers_failed;
    /* the answer, filled by run() */
    unsigned status;
    char *resp_body;                   /* malloc'd; handed to the MHD response */
    size_t resp_len;
    char *resp_headers;                /* "name\0value\0" * resp_nheaders */
    size_t resp_nheaders;
    double delay_ms;
    int drop;
} req;

/* ---- the server box ------------------------------------------------------ */

typedef struct {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;
    int lock_ready;
    req *head, *tail;                  /* requests waiting for run() */
    req *held;                         /* answers the clock holds for their delay */
    conn *conns;                       /* every open connection */
    int efd;                           /* written when the queue becomes non-empty */
    int closing;                       /* under lock: close() has begun */
    int inflight;                      /* under lock: requests handed to run() and not yet completed */
    size_t body_reserved;              /* under lock: the body budget in use */
    int tls;                           /* serving HTTPS */
    pthread_cond_t changed;            /* broadcast when inflight drops to 0 */
    int changed_ready;
    pthread_cond_t tick;               /* wakes the clock thread */
    int tick_ready;
    pthread_t clock;
    int clock_running, clock_stop;
    int running;                       /* run() is on the stack (Lua thread only) */
    int stop_requested;                /* Lua thread only */
    int masked;                        /* SIGINT/SIGTERM blocked by us; oldmask restores */
    sigset_t oldmask;
    char *tls_cert, *tls_key;          /* MHD keeps pointers to these while it runs */
    size_t tls_key_len;
    unsigned port;
} server;

static void req_free_response(req *r)
{
    free(r->resp_body);
    free(r->resp_headers);
    r->resp_body = NULL;
    r->resp_headers = NULL;
    r->resp_len = r->resp_nheaders = 0;
}

static void req_free(req *r)
{
    if (r == NULL)
        return;
    free(r->uri);
    free(r->body);
    if (r->headers != r->inline_headers)
        free(r->headers);
    req_free_response(r);
    free(r);
}

/* JSON text {"Description": "<prefix><msg>"} in a malloc'd buffer, or NULL. */
static char *json_description(const char *prefix, const char *msg, size_t msglen, size_t *outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t plen = strlen(prefix), cap = 32 + plen + 6 * msglen, n = 0, i;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    memcpy(out, "{\"Description\": \"", 17);
    n = 17;
    memcpy(out + n, prefix, plen);
    n += plen;
    for (i = 0; i < msglen; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[c >> 4];
            out[n + 5] = hex[c & 15];
            n += 6;
        } else {
            out[n++] = (char)c;
        }
    }
    memcpy(out + n, "\"}", 2);
    n += 2;
    *outlen = n;
    return out;
}

static const char json_type[] = "Content-Type\0application/json";
static const char json_retry[] = "Content-Type\0application/json\0Retry-After\0" "1";

/* Replaces whatever answer r holds with status and a JSON description;
 * retry adds "Retry-After: 1". */
static void req_set_error(req *r, unsigned status, const char *prefix, const char *msg, size_t msglen,
                          int retry)
{
    req_free_response(r);
    r->status = status;
    r->delay_ms = 0;
    r->drop = 0;
    r->answered = 1;
    r->resp_body = json_description(prefix, msg, msglen, &r->resp_len);
    if (r->resp_body == NULL)
        r->resp_len = 0;
    r->resp_headers = malloc(retry ? sizeof json_retry : sizeof json_type);
    if (r->resp_headers != NULL) {
        if (retry)
            memcpy(r->resp_headers, json_retry, sizeof json_retry);
        else
            memcpy(r->resp_headers, json_type, sizeof json_type);
        r->resp_nheaders = retry ? 2 : 1;
    }
}

static void req_set_message(req *r, unsigned status, const char *msg, int retry)
{
    req_set_error(r, status, "", msg, strlen(msg), retry);
}

/* ---- connection deadlines (polling threads) -------------------------------- */

/* Bytes the kernel has received on the socket so far; -1 when it cannot say. */
static int bytes_received(int fd, uint64_t *n)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0
        || len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received)
        return -1;
    *n = ti.tcpi_bytes_received;
    return 0;
}

static conn *conn_of(struct MHD_Connection *con)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *con, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    server *s = cls;
    conn *c;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = NULL;
        if (info == NULL)
            return;
        /* Without memory the connection goes untracked: it has no header
         * deadline, only libmicrohttpd's inactivity timeout. */
        c = calloc(1, sizeof *c);
        if (c == NULL)
            return;
        c->fd = info->connect_fd;
        c->fresh = 1;
        c->phase = CONN_SILENT;
        c->deadline = now_s() + IDLE_TIMEOUT;
        pthread_mutex_lock(&s->lock);
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        pthread_mutex_unlock(&s->lock);
        *socket_context = c;
        return;
    }
    c = *socket_context;
    if (c == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&s->lock);
    free(c);
    *socket_context = NULL;
}

/* A request line arrived (CONN_HEAD), its headers arrived (CONN_BUSY), or
 * its answer went out (CONN_SILENT). */
static void conn_phase(server *s, struct MHD_Connection *con, int phase)
{
    conn *c = conn_of(con);
    uint64_t seen = 0;
    if (c == NULL)
        return;
    if (phase == CONN_SILENT && bytes_received(c->fd, &seen) != 0)
        seen = 0;
    pthread_mutex_lock(&s->lock);
    if (phase == CONN_HEAD) {
        /* A deadline the clock set at the request's first byte stays. */
        if (c->phase == CONN_SILENT) {
            c->phase = CONN_HEAD;
            c->deadline = now_s() + HEADER_TIMEOUT;
        }
    } else {
        c->phase = phase;
        c->seen = seen;
        if (phase == CONN_SILENT)
            c->fresh = 0;
        c->deadline = phase == CONN_SILENT ? now_s() + IDLE_TIMEOUT : 0;
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- libmicrohttpd callbacks (polling threads; no Lua here) -------------- */

/* Called with the request target exactly as received, before MHD decodes it:
 * the one place the raw path and query can be read. Its result becomes the
 * request's context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    req *r;
    char *q;
    conn_phase(cls, con, CONN_HEAD);
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->uri = strdup(uri ? uri : "");
    if (r->uri == NULL) {
        free(r);
        return NULL;
    }
    q = strchr(r->uri, '?');
    if (q != NULL) {
        *q = '\0';
        r->query = q + 1;
    } else {
        r->query = "";
    }
    r->headers = r->inline_headers;
    r->headers_cap = INLINE_HEADERS;
    return r;
}

static void release_budget(server *s, req *r)
{
    if (r->reserved == 0)
        return;
    pthread_mutex_lock(&s->lock);
    s->body_reserved -= r->reserved;
    pthread_mutex_unlock(&s->lock);
    r->reserved = 0;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
    server *s = cls;
    req *r = *ctx;
    (void)toe;
    if (r != NULL) {
        release_budget(s, r);
        if (r->counted) {
            pthread_mutex_lock(&s->lock);
            if (--s->inflight == 0)
                pthread_cond_broadcast(&s->changed);
            pthread_mutex_unlock(&s->lock);
        }
    }
    conn_phase(s, con, CONN_SILENT);
    req_free(r);
    *ctx = NULL;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind,
                                      const char *name, size_t name_len,
                                      const char *value, size_t value_len)
{
    req *r = cls;
    (void)kind;
    if (r->nheaders == r->headers_cap) {
        size_t cap = r->headers_cap * 2;
        header_ref *h = malloc(cap * sizeof *h);
        if (h == NULL) {
            r->headers_failed = 1;
            return MHD_NO;
        }
        memcpy(h, r->headers, r->nheaders * sizeof *h);
        if (r->headers != r->inline_headers)
            free(r->headers);
        r->headers = h;
        r->headers_cap = cap;
    }
    r->headers[r->nheaders].name = name;
    r->headers[r->nheaders].name_len = name_len;
    r->headers[r->nheaders].value = value ? value : "";
    r->headers[r->nheaders].value_len = value ? value_len : 0;
    r->nheaders++;
    return MHD_YES;
}

/* Takes want more bytes of the body budget for r. 0, or -1 past the budget
 * (r then holds no budget and no body, and answers 503). */
static int reserve(server *s, req *r, size_t want)
{
    int ok;
    pthread_mutex_lock(&s->lock);
    ok = want <= BODY_BUDGET - s->body_reserved;
    if (ok)
        s->body_reserved += want;
    pthread_mutex_unlock(&s->lock);
    if (ok) {
        r->reserved += want;
        return 0;
    }
    r->over_budget = 1;
    release_budget(s, r);
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    return -1;
}

/* Keeps a piece of the body, within MAX_BODY and the budget; past either the
 * rest is read and dropped and the request answered 413 or 503. */
static int take_body(server *s, req *r, const char *data, size_t len)
{
    size_t need;
    if (r->too_large || r->over_budget)
        return 0;
    if (len > MAX_BODY - r->body_len) {
        r->too_large = 1;
        release_budget(s, r);
        free(r->body);
        r->body = NULL;
        r->body_len = r->body_cap = 0;
        return 0;
    }
    need = r->body_len + len;
    if (need > r->reserved && reserve(s, r, need - r->reserved) != 0)
        return 0;
    if (need > r->body_cap) {
        /* Grows with what arrives, never past what is reserved. */
        size_t cap = r->body_cap ? r->body_cap : 4096;
        char *b;
        while (cap < need)
            cap *= 2;
        if (cap > r->reserved)
            cap = r->reserved;
        b = realloc(r->body, cap);
        if (b == NULL)
            return -1;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    return 0;
}

/* A dropped response: declares the full length, sends about half of the
 * body, then fails so that MHD closes the connection mid-body. */
typedef struct {
    char *body;
    size_t len, cut;
} partial;

static ssize_t partial_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    partial *p = cls;
    size_t n;
    if (pos >= p->cut)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    n = p->cut - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, p->body + pos, n);
    return (ssize_t)n;
}

static void partial_free(void *cls)
{
    partial *p = cls;
    free(p->body);
    free(p);
}

/* Queues r's answer on the connection; takes ownership of the body. */
static enum MHD_Result send_answer(struct MHD_Connection *con, req *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    size_t i;
    const char *h;
    if (r->drop) {
        partial *p = malloc(sizeof *p);
        if (p == NULL)
            return MHD_NO;
        p->body = r->resp_body;
        p->len = r->resp_len;
        p->cut = r->resp_len / 2;
        resp = MHD_create_response_from_callback(p->len, 16 * 1024, partial_read, p, partial_free);
        if (resp == NULL) {
            free(p);
            return MHD_NO;
        }
    } else {
        resp = MHD_create_response_from_buffer_with_free_callback(
            r->resp_len, r->resp_body, free);
        if (resp == NULL)
            return MHD_NO;
    }
    r->resp_body = NULL;              /* the response owns it now */
    r->resp_len = 0;
    for (i = 0, h = r->resp_headers; i < r->resp_nheaders; i++) {
        const char *v = h + strlen(h) + 1;
        /* MHD computes the framing headers itself. */
        if (strcasecmp(h, "Content-Length") != 0 && strcasecmp(h, "Transfer-Encoding") != 0)
            MHD_add_response_header(resp, h, v);
        h = v + strlen(v) + 1;
    }
    r->stage = ST_DONE;
    ret = MHD_queue_response(con, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Suspends the connection and puts r on run()'s queue. A closing server
 * answers 503 at once instead. */
static enum MHD_Result submit(server *s, struct MHD_Connection *con, req *r, int stage)
{
    int was_empty;
    r->stage = stage;
    r->con = con;
    /* Suspended before run() can see it, so its resume always follows. */
    MHD_suspend_connection(con);
    pthread_mutex_lock(&s->lock);
    if (s->closing) {
        pthread_mutex_unlock(&s->lock);
        req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the sandbox is shutting down", 0);
        MHD_resume_connection(con);
        return MHD_YES;
    }
    if (!r->counted) {
        r->counted = 1;
        s->inflight++;
    }
    was_empty = s->head == NULL;
    r->next = NULL;
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    if (was_empty) {
        uint64_t one = 1;
        /* Cannot fail short of a full counter, which one reader draining it rules out. */
        if (write(s->efd, &one, sizeof one) < 0) {
            /* nothing to do: run() also drains the queue on every wake */
        }
    }
    pthread_mutex_unlock(&s->lock);
    return MHD_YES;
}

static const char too_large_msg[] = "request body larger than 16777216 bytes";
static const char over_budget_msg[] = "the sandbox holds too many request bodies at once; retry later";

/* The body will be read: the declared length is taken from the budget. */
static enum MHD_Result admit(server *s, struct MHD_Connection *con, req *r, size_t declared)
{
    if (reserve(s, r, declared) != 0) {
        req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, over_budget_msg, 1);
        return send_answer(con, r);
    }
    r->stage = ST_BODY;
    return MHD_YES;
}

static size_t declared_length(struct MHD_Connection *con, int *chunked, int *too_large)
{
    const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    unsigned long long n = 0;
    *chunked = te != NULL;
    *too_large = 0;
    if (cl != NULL) {
        char *end;
        n = strtoull(cl, &end, 10);
        if (n > MAX_BODY) {
            *too_large = 1;
            return 0;
        }
    }
    return (size_t)n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **ctx)
{
    server *s = cls;
    req *r = *ctx;
    int chunked, too_large;
    size_t declared;
    (void)url;
    (void)version;
    if (r == NULL)                     /* out of memory in on_uri */
        return MHD_NO;
    switch (r->stage) {
    case ST_NEW:                       /* the headers are in */
        conn_phase(s, con, CONN_BUSY);
        r->method = method;
        MHD_get_connection_values_n(con, MHD_HEADER_KIND, collect_header, r);
        if (r->headers_failed)
            return MHD_NO;
        declared = declared_length(con, &chunked, &too_large);
        if (too_large) {
            req_set_message(r, MHD_HTTP_CONTENT_TOO_LARGE, too_large_msg, 0);
            return send_answer(con, r);
        }
        /* Shown to run() whether or not it has a check function: one that
         * arrives before run() starts waits for it, and its check. */
        if (declared > 0 || chunked)
            return submit(s, con, r, ST_CHECKING);
        return admit(s, con, r, declared);
    case ST_CHECKING:                  /* called again after the check */
        if (r->answered) {
            if (*upload_data_size == 0)
                return send_answer(con, r);
            *upload_data_size = 0;     /* no answer while body is passed: drop it, answer at the end */
            return MHD_YES;
        }
        declared = declared_length(con, &chunked, &too_large);
        if (*upload_data_size == 0)
            return admit(s, con, r, declared);
        /* Handed a piece of the body already: no answer may be queued now,
         * so a refusal waits for the end of the body. */
        r->stage = ST_BODY;
        if (reserve(s, r, declared) != 0) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        /* fall through */
    case ST_BODY:
        if (*upload_data_size > 0) {
            if (take_body(s, r, upload_data, *upload_data_size) < 0)
                return MHD_NO;
            *upload_data_size = 0;
            return MHD_YES;
        }
        if (r->too_large) {
            req_set_message(r, MHD_HTTP_CONTENT_TOO_LARGE, too_large_msg, 0);
            return send_answer(con, r);
        }
        if (r->over_budget) {
            req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, over_budget_msg, 1);
            return send_answer(con, r);
        }
        return submit(s, con, r, ST_HANDLING);
    case ST_HANDLING:                  /* resumed with its answer */
        return send_answer(con, r);
    default:
        return MHD_NO;
    }
}

/* ---- the clock: held answers and deadlines -------------------------------- */

/* Hands r's connection back to its polling thread, now or when its delay is
 * over. r may be freed as soon as the connection is resumed. */
static void deliver(server *s, req *r)
{
    struct MHD_Connection *con = r->con;
    pthread_mutex_lock(&s->lock);
    if (r->answered && r->delay_ms > 0 && !s->closing) {
        r->due = now_s() + r->delay_ms / 1000.0;
        r->next = s->held;
        s->held = r;
        pthread_cond_signal(&s->tick);
        pthread_mutex_unlock(&s->lock);
        return;
    }
    pthread_mutex_unlock(&s->lock);
    MHD_resume_connection(con);
}

static void resume_list(req *r)
{
    while (r != NULL) {
        req *next = r->next;
        MHD_resume_connection(r->con);   /* r may be gone after this */
        r = next;
    }
}

static void *clock_main(void *arg)
{
    server *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->clock_stop) {
        double now = now_s(), wake = now + CLOCK_TICK;
        req *due = NULL, **pp = &s->held;
        conn *c;
        struct timespec ts;
        while (*pp != NULL) {
            req *r = *pp;
            if (r->due <= now) {
                *pp = r->next;
                r->next = due;
                due = r;
            } else {
                if (r->due < wake)
                    wake = r->due;
                pp = &r->next;
            }
        }
        /* Under the lock: the connection cannot have closed its socket yet. */
        for (c = s->conns; c != NULL; c = c->next) {
            uint64_t got;
            if (c->shut || c->phase == CONN_BUSY)
                continue;
            /* The first byte of a request starts its header deadline. */
            if (c->phase == CONN_SILENT && !(s->tls && c->fresh) && bytes_received(c->fd, &got) == 0
                && got > c->seen) {
                c->phase = CONN_HEAD;
                c->deadline = now + HEADER_TIMEOUT;
            }
            if (c->deadline <= now) {
                shutdown(c->fd, SHUT_RDWR);
                c->shut = 1;
            }
        }
        if (due != NULL) {
            pthread_mutex_unlock(&s->lock);
            resume_list(due);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        ts = to_timespec(wake);
        pthread_cond_timedwait(&s->tick, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- the Lua side: building req, reading resp --------------------------- */

static void push_request(lua_State *L, req *r)
{
    size_t i, j;
    lua_createtable(L, 0, 5);
    lua_pushstring(L, r->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, r->uri);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, r->query);
    lua_setfield(L, -2, "query");
    lua_pushlstring(L, r->body ? r->body : "", r->body_len);
    lua_setfield(L, -2, "body");
    lua_createtable(L, 0, (int)r->nheaders);
    for (i = 0; i < r->nheaders; i++) {
        const header_ref *h = &r->headers[i];
        luaL_Buffer b;
        char *name = luaL_buffinitsize(L, &b, h->name_len);
        for (j = 0; j < h->name_len; j++) {
            char c = h->name[j];
            name[j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        luaL_pushresultsize(&b, h->name_len);
        /* A repeated header joins its values, as HTTP allows. */
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) == LUA_TSTRING) {
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, h->value, h->value_len);
            lua_concat(L, 3);
        } else {
            lua_pop(L, 1);
            lua_pushlstring(L, h->value, h->value_len);
        }
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");
}

static char *alloc_out(lua_State *L, size_t len)
{
    char *p = malloc(len ? len : 1);
    if (p == NULL)
        luaL_error(L, "out of memory");
    return p;
}

/* Reads the handler's answer (at the top of the stack) into r. Raises for
 * an answer that breaks the contract; r's fields are freed by the caller. */
static void read_response(lua_State *L, req *r)
{
    int t = lua_gettop(L), isnum;
    lua_Integer status;
    size_t len, total, n;
    const char *s;
    char *p;
    if (!lua_istable(L, t))
        luaL_error(L, "handler returned %s, not a response table", luaL_typename(L, t));

    lua_getfield(L, t, "status");
    status = lua_isnil(L, -1) ? 200 : lua_tointegerx(L, -1, &isnum);
    if (!lua_isnil(L, -1) && (!isnum || status < 100 || status > 599))
        luaL_error(L, "response field \"status\": must be an integer in 100..599");
    r->status = (unsigned)status;
    lua_pop(L, 1);

    if (lua_getfield(L, t, "body") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "response field \"body\": must be a string");
        s = lua_tolstring(L, -1, &len);
        r->resp_body = alloc_out(L, len);
        memcpy(r->resp_body, s, len);
        r->resp_len = len;
    }
    lua_pop(L, 1);

    if (lua_getfield(L, t, "delay_ms") != LUA_TNIL) {
        double d = lua_tonumberx(L, -1, &isnum);
        if (!isnum || !(d >= 0 && d <= MAX_DELAY_MS))
            luaL_error(L, "response field \"delay_ms\": must be a number in 0..600000");
        r->delay_ms = d;
    }
    lua_pop(L, 1);

    lua_getfield(L, t, "drop");
    r->drop = lua_toboolean(L, -1);
    lua_pop(L, 1);

    if (lua_getfield(L, t, "headers") != LUA_TNIL) {
        int h = lua_gettop(L);
        if (!lua_istable(L, h))
            luaL_error(L, "response field \"headers\": must be a table");
        /* two passes: validate and size, then copy */
        total = 0;
        n = 0;
        lua_pushnil(L);
        while (lua_next(L, h)) {
            size_t kl, vl;
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "response field \"headers\": names and values must be strings");
            lua_tolstring(L, -2, &kl);
            lua_tolstring(L, -1, &vl);
            total += kl + vl + 2;
            n++;
            lua_pop(L, 1);
        }
        r->resp_headers = p = alloc_out(L, total);
        lua_pushnil(L);
        while (lua_next(L, h)) {
            size_t kl, vl;
            const char *k = lua_tolstring(L, -2, &kl), *v = lua_tolstring(L, -1, &vl);
            if (strlen(k) != kl || strlen(v) != vl || strpbrk(v, "\r\n") || strpbrk(k, "\r\n: "))
                luaL_error(L, "response header \"%s\": name or value holds a forbidden character", k);
            memcpy(p, k, kl + 1);
            memcpy(p + kl + 1, v, vl + 1);
            p += kl + vl + 2;
            lua_pop(L, 1);
        }
        r->resp_nheaders = n;
    }
    lua_pop(L, 1);
}

/* Protected: the function at 1, the request (light userdata) at 2. Calls
 * it with the request table and reads its answer into r: always for the
 * handler; for the check only when it returns one (r->answered says). */
static int call_one(lua_State *L)
{
    req *r = lua_touserdata(L, 2);
    int handling = r->stage == ST_HANDLING;
    lua_settop(L, 2);
    lua_pushvalue(L, 1);
    push_request(L, r);
    lua_call(L, 1, 1);
    if (!handling && lua_isnil(L, -1))
        return 0;
    read_response(L, r);
    r->answered = 1;
    return 0;
}

/* Message handler: the error as a string, whatever it was raised with. */
static int error_text(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TSTRING)
        return 1;
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
        return 1;
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
}

/* Shows r to fn (the handler, or the check at header time) and fills its
 * answer; never raises. A failing function answers 500. */
static void answer(lua_State *L, int fn, int msgh, req *r)
{
    r->status = 200;
    r->delay_ms = 0;
    r->drop = 0;
    lua_pushcfunction(L, call_one);
    lua_pushvalue(L, fn);
    lua_pushlightuserdata(L, r);
    if (lua_pcall(L, 2, 0, msgh) != LUA_OK) {
        size_t len;
        const char *msg = lua_tolstring(L, -1, &len);
        if (msg == NULL) {
            msg = "error in the error handler";
            len = strlen(msg);
        }
        fprintf(stderr, "sandbox error: %s\n", msg);
        fflush(stderr);
        req_set_error(r, 500, "sandbox error: ", msg, len, 0);
        lua_pop(L, 1);
    }
}

/* ---- the server object ----------------------------------------------------- */

static server *check_server(lua_State *L)
{
    return luaL_checkudata(L, 1, SERVER_MT);
}

static server *check_open(lua_State *L)
{
    server *s = check_server(L);
    if (s->daemon == NULL)
        luaL_error(L, "httpd: the server is closed");
    return s;
}

static void restore_mask(server *s)
{
    if (s->masked) {
        pthread_sigmask(SIG_SETMASK, &s->oldmask, NULL);
        s->masked = 0;
    }
}

static void wipe(char *p, size_t n)
{
    volatile char *v = p;
    while (n--)
        *v++ = 0;
}

/* Answers every queued request with a 503, sends the answers held for their
 * delay at once, refuses new requests, and gives the answers a few seconds
 * to reach their clients before the daemon's shutdown cuts the connections.
 * Afterwards no connection is suspended (libmicrohttpd cannot stop with
 * one). */
static void drain(server *s)
{
    static const char msg[] = "the sandbox is shutting down";
    struct timespec deadline;
    req *r, *next, *wake = NULL;
    pthread_mutex_lock(&s->lock);
    s->closing = 1;
    for (r = s->head; r != NULL; r = next) {
        next = r->next;
        req_set_message(r, MHD_HTTP_SERVICE_UNAVAILABLE, msg, 0);
        r->next = wake;
        wake = r;
    }
    s->head = s->tail = NULL;
    for (r = s->held; r != NULL; r = next) {
        next = r->next;
        r->next = wake;
        wake = r;
    }
    s->held = NULL;
    pthread_mutex_unlock(&s->lock);
    resume_list(wake);
    deadline = to_timespec(now_s() + 5.0);
    pthread_mutex_lock(&s->lock);
    while (s->inflight > 0)
        if (pthread_cond_timedwait(&s->changed, &s->lock, &deadline) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->lock);
}

static void stop_clock(server *s)
{
    if (!s->clock_running)
        return;
    pthread_mutex_lock(&s->lock);
    s->clock_stop = 1;
    pthread_cond_signal(&s->tick);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->clock, NULL);
    s->clock_running = 0;
}

static int srv_close(lua_State *L)
{
    server *s = check_server(L);
    if (s->running)
        return luaL_error(L, "httpd: close() inside run(); call stop() and close after run returns");
    if (s->daemon != NULL) {
        drain(s);
        /* The clock may be resuming answers it took: it finishes first. */
        stop_clock(s);
        MHD_stop_daemon(s->daemon);   /* closes every connection, joins the polling threads */
        s->daemon = NULL;
    }
    stop_clock(s);
    while (s->conns != NULL) {        /* none once the daemon has stopped; never leaked */
        conn *c = s->conns;
        s->conns = c->next;
        free(c);
    }
    if (s->efd >= 0) {
        close(s->efd);
        s->efd = -1;
    }
    if (s->tick_ready) {
        pthread_cond_destroy(&s->tick);
        s->tick_ready = 0;
    }
    if (s->changed_ready) {
        pthread_cond_destroy(&s->changed);
        s->changed_ready = 0;
    }
    if (s->lock_ready) {
        pthread_mutex_destroy(&s->lock);
        s->lock_ready = 0;
    }
    if (s->tls_key != NULL) {
        wipe(s->tls_key, s->tls_key_len);
        free(s->tls_key);
        s->tls_key = NULL;
    }
    free(s->tls_cert);
    s->tls_cert = NULL;
    restore_mask(s);
    return 0;
}

static int srv_port(lua_State *L)
{
    server *s = check_open(L);
    lua_pushinteger(L, (lua_Integer)s->port);
    return 1;
}

static int srv_stop(lua_State *L)
{
    server *s = check_server(L);
    s->stop_requested = 1;
    return 0;
}

/* Takes the whole queue at once. */
static req *take_queue(server *s)
{
    req *r;
    pthread_mutex_lock(&s->lock);
    r = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* srv:run(handler [, check]) -> "SIGINT" | "SIGTERM" | "stop" */
static int srv_run(lua_State *L)
{
    server *s = check_open(L);
    sigset_t set;
    int sfd, msgh, has_check;
    const char *why = NULL;
    char err[160] = "";
    luaL_checktype(L, 2, LUA_TFUNCTION);
    has_check = !lua_isnoneornil(L, 3);
    if (has_check)
        luaL_checktype(L, 3, LUA_TFUNCTION);
    if (s->running)
        return luaL_error(L, "httpd: run() is already running");
    lua_settop(L, 3);
    lua_pushcfunction(L, error_text);
    msgh = 4;
    lua_checkstack(L, 8);

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (!s->masked) {
        pthread_sigmask(SIG_BLOCK, &set, &s->oldmask);
        s->masked = 1;
    }
    sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        restore_mask(s);
        return luaL_error(L, "httpd: signalfd: %s", strerror(errno));
    }
    s->running = 1;
    while (why == NULL) {
        struct pollfd fds[2];
        req *r, *next;
        if (s->stop_requested) {
            why = "stop";
            break;
        }
        fds[0].fd = sfd;
        fds[0].events = POLLIN;
        fds[1].fd = s->efd;
        fds[1].events = POLLIN;
        fds[0].revents = fds[1].revents = 0;
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(err, sizeof err, "httpd: poll: %s", strerror(errno));
            break;
        }
        if (fds[1].revents & POLLIN) {
            uint64_t count;
            if (read(s->efd, &count, sizeof count) < 0 && errno != EAGAIN) {
                snprintf(err, sizeof err, "httpd: eventfd: %s", strerror(errno));
                break;
            }
        }
        /* Every wake drains the queue, so a lost wake-up cannot strand a
         * request; every request taken is answered or let through. */
        for (r = take_queue(s); r != NULL; r = next) {
            next = r->next;
            if (r->stage == ST_HANDLING)
                answer(L, 2, msgh, r);
            else if (has_check)
                answer(L, 3, msgh, r);
            deliver(s, r);
        }
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                why = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
        }
    }
    s->running = 0;
    s->stop_requested = 0;
    close(sfd);
    restore_mask(s);
    if (err[0])
        return luaL_error(L, "%s", err);
    lua_pushstring(L, why);
    return 1;
}

static int srv_tostring(lua_State *L)
{
    server *s = check_server(L);
    if (s->daemon)
        lua_pushfstring(L, SERVER_MT "(port %d)", (int)s->port);
    else
        lua_pushliteral(L, SERVER_MT "(closed)");
    return 1;
}

/* ---- httpd.new ------------------------------------------------------------- */

static char *opt_string(lua_State *L, const char *field, size_t *len)
{
    const char *v;
    char *copy;
    size_t n;
    lua_getfield(L, 1, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "httpd.new: field \"%s\": must be a PEM string", field);
    v = lua_tolstring(L, -1, &n);
    if (n == 0 || strlen(v) != n)
        luaL_error(L, "httpd.new: field \"%s\": must be a non-empty PEM string", field);
    copy = malloc(n + 1);
    if (copy == NULL)
        luaL_error(L, "out of memory");
    memcpy(copy, v, n + 1);
    lua_pop(L, 1);
    if (len)
        *len = n;
    return copy;
}

static int init_cond(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    int ok = 0;
    if (pthread_condattr_init(&attr) == 0) {
        ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 && pthread_cond_init(c, &attr) == 0;
        pthread_condattr_destroy(&attr);
    }
    return ok;
}

/* As many connections as the process's file limit leaves room for. */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    unsigned limit = MAX_CONNECTIONS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t room = rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64;
        if (room < limit)
            limit = (unsigned)room;
    }
    return limit;
}

static int l_new(lua_State *L)
{
    server *s;
    const char *host;
    lua_Integer port;
    int isnum, rc, tls;
    struct addrinfo hints, *ai = NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME;
    sigset_t set, blocked;
    const union MHD_DaemonInfo *info;
    char portbuf[8];

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    if (lua_isnil(L, -1))
        host = "127.0.0.1";
    else if (lua_type(L, -1) == LUA_TSTRING)
        host = lua_tostring(L, -1);
    else
        return luaL_error(L, "httpd.new: field \"host\": must be a string");
    lua_getfield(L, 1, "port");
    port = lua_isnil(L, -1) ? 0 : lua_tointegerx(L, -1, &isnum);
    if (!lua_isnil(L, -1) && (!isnum || port < 0 || port > 65535))
        return luaL_error(L, "httpd.new: field \"port\": must be an integer in 0..65535");
    lua_pop(L, 1);                    /* host stays on the stack, anchoring the string */

    /* The box first, so every resource below has an owner. */
    s = lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    s->efd = -1;
    luaL_setmetatable(L, SERVER_MT);

    s->tls_cert = opt_string(L, "tls_cert", NULL);
    s->tls_key = opt_string(L, "tls_key", &s->tls_key_len);
    tls = s->tls_cert != NULL || s->tls_key != NULL;
    if (tls && (s->tls_cert == NULL || s->tls_key == NULL))
        return luaL_error(L, "httpd.new: fields \"tls_cert\" and \"tls_key\": give both or neither");
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return luaL_error(L, "httpd.new: this libmicrohttpd was built without TLS");
    if (tls)
        flags |= MHD_USE_TLS;
    s->tls = tls;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;

    if (pthread_mutex_init(&s->lock, NULL) != 0)
        return luaL_error(L, "httpd.new: cannot create a mutex");
    s->lock_ready = 1;
    if (!init_cond(&s->changed))
        return luaL_error(L, "httpd.new: cannot create a condition variable");
    s->changed_ready = 1;
    if (!init_cond(&s->tick))
        return luaL_error(L, "httpd.new: cannot create a condition variable");
    s->tick_ready = 1;
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd < 0)
        return luaL_error(L, "httpd.new: eventfd: %s", strerror(errno));

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portbuf, sizeof portbuf, "%d", (int)port);
    rc = getaddrinfo(host, portbuf, &hints, &ai);
    if (rc != 0)
        return luaL_error(L, "httpd.new: field \"host\": cannot resolve %s: %s", host, gai_strerror(rc));
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;

    /* The daemon's and the clock's threads inherit this mask: signals meant
     * for run() never land on them, and SIGPIPE from a vanished client is
     * never fatal. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    blocked = set;
    sigaddset(&blocked, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &blocked, &s->oldmask);
    s->masked = 1;
    rc = pthread_create(&s->clock, NULL, clock_main, s);
    if (rc == 0) {
        s->clock_running = 1;
        s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                                     MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                     MHD_OPTION_THREAD_POOL_SIZE, POLL_THREADS,
                                     MHD_OPTION_CONNECTION_LIMIT, connection_limit(),
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT,
                                     MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)s,
                                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)s,
                                     MHD_OPTION_NOTIFY_CONNECTION, on_connection, (void *)s,
                                     /* without TLS the list ends here */
                                     tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->tls_cert,
                                     MHD_OPTION_HTTPS_MEM_KEY, s->tls_key,
                                     MHD_OPTION_END);
        rc = s->daemon == NULL ? errno : 0;
    }
    freeaddrinfo(ai);
    /* This thread keeps only SIGINT and SIGTERM blocked, until run() returns. */
    {
        sigset_t mine = s->oldmask;
        sigaddset(&mine, SIGINT);
        sigaddset(&mine, SIGTERM);
        pthread_sigmask(SIG_SETMASK, &mine, NULL);
    }
    if (s->daemon == NULL) {
        stop_clock(s);
        restore_mask(s);
        return luaL_error(L, "httpd.new: cannot listen on %s port %d%s%s", host, (int)port,
                          rc ? ": " : "", rc ? strerror(rc) : "");
    }
    info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : (unsigned)port;
    return 1;
}

/* httpd.now() -> seconds on a monotonic clock, for windows and timings that
 * must not jump with the wall clock. */
static int l_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)now_s());
    return 1;
}

UNLEASHED_API int luaopen_unleashed_sandbox_httpd(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"port", srv_port},
        {"run", srv_run},
        {"stop", srv_stop},
        {"close", srv_close},
        {NULL, NULL}
    };
    static const luaL_Reg meta[] = {
        {"__gc", srv_close},
        {"__close", srv_close},
        {"__tostring", srv_tostring},
        {NULL, NULL}
    };
    luaL_checkversion(L);
    if (luaL_newmetatable(L, SERVER_MT)) {
        luaL_setfuncs(L, meta, 0);
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "new");
    lua_pushcfunction(L, l_now);
    lua_setfield(L, -2, "now");
    lua_pushinteger(L, MAX_BODY);
    lua_setfield(L, -2, "max_body");
    lua_pushinteger(L, BODY_BUDGET);
    lua_setfield(L, -2, "body_budget");
    lua_pushnumber(L, HEADER_TIMEOUT);
    lua_setfield(L, -2, "header_timeout");
    lua_pushnumber(L, IDLE_TIMEOUT);
    lua_setfield(L, -2, "idle_timeout");
    unl_sandbox_open_files(L);
    return 1;
}
