/* The floor of the per-request benchmark: what one keep-alive libcurl handle
 * costs for a signed GET, with nothing else. It sends the headers the client
 * sends, signs every request (HMAC-SHA256 of the query text, base64), counts
 * the body's bytes and decodes nothing, so the client's rate over this rate is
 * the share of the work that is not the transfer itself.
 *
 *   floor BASE_URL API_ID API_KEY PATH [COUNT] [QUERY]
 *
 * Prints one JSON line: requests, seconds, rps, cpu_seconds, bytes. The key is
 * read from the command line only to sign; it is never printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIG_LEN 44

struct sink {
    size_t bytes;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    (void)data;
    s->bytes += size * nmemb;
    return size * nmemb;
}

static int sign(const char *key, const char *msg, char out[SIG_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)msg,
             strlen(msg), mac, &maclen) == NULL || maclen != 32)
        return -1;
    if (EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen) != SIG_LEN)
        return -1;
    out[SIG_LEN] = '\0';
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* One signed GET on the kept-alive handle; returns the HTTP status, or -1. */
static long get_once(CURL *h, const char *id, const char *key, const char *query,
                     const char *url, char *errbuf)
{
    char sig[SIG_LEN + 1];
    char sig_header[sizeof "api-auth-signature: " + SIG_LEN];
    char id_header[512];
    struct curl_slist *hdrs = NULL, *t;
    long status = -1;
    CURLcode rc;

    if (sign(key, query, sig) != 0) {
        snprintf(errbuf, CURL_ERROR_SIZE, "HMAC-SHA256 failed");
        return -1;
    }
    snprintf(sig_header, sizeof sig_header, "api-auth-signature: %s", sig);
    snprintf(id_header, sizeof id_header, "api-auth-id: %s", id);
    /* The header list is rebuilt per request, as a client that signs each
     * request must. */
    const char *lines[] = { "Accept: application/json", "Content-Type: application/json",
                            id_header, sig_header, "client-type: lua-unleashed/bench-floor" };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        t = curl_slist_append(hdrs, lines[i]);
        if (t == NULL) {
            curl_slist_free_all(hdrs);
            snprintf(errbuf, CURL_ERROR_SIZE, "out of memory");
            return -1;
        }
        hdrs = t;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else if (errbuf[0] == '\0')
        snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    return status;
}

int main(int argc, char **argv)
{
    const char *base, *id, *key, *path, *query = "";
    long count = 5000;
    char url[4096], errbuf[CURL_ERROR_SIZE];
    struct sink sink = { 0 };
    CURL *h;
    double t0, c0, wall, cpu;
    long i, status;
    int failed = 0;

    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: floor BASE_URL API_ID API_KEY PATH [COUNT] [QUERY]\n");
        return 2;
    }
    base = argv[1], id = argv[2], key = argv[3], path = argv[4];
    if (argc > 5)
        count = strtol(argv[5], NULL, 10);
    if (argc > 6)
        query = argv[6];
    if (count < 1) {
        fprintf(stderr, "floor: COUNT must be a positive integer\n");
        return 2;
    }
    if ((size_t)snprintf(url, sizeof url, "%s%s%s%s", base, path, query[0] ? "?" : "", query)
        >= sizeof url) {
        fprintf(stderr, "floor: URL too long\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    h = curl_easy_init();
    if (h == NULL) {
        curl_global_cleanup();
        return 1;
    }
    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "lua-unleashed-floor/0.1.0");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    /* The client offers every encoding libcurl can decode; so does the floor. */
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");

    /* One request outside the timing: connection set-up is not per request. */
    status = get_once(h, id, key, query, url, errbuf);
    if (status != 200) {
        fprintf(stderr, "floor: warm-up GET %s: status %ld %s\n", path, status, errbuf);
        failed = 1;
    }
    sink.bytes = 0;
    t0 = now_s();
    c0 = cpu_s();
    for (i = 0; i < count && !failed; i++) {
        status = get_once(h, id, key, query, url, errbuf);
        if (status != 200) {
            fprintf(stderr, "floor: GET %s #%ld: status %ld %s\n", path, i + 1, status, errbuf);
            failed = 1;
        }
    }
    wall = now_s() - t0;
    cpu = cpu_s() - c0;
    curl_easy_cleanup(h);
    curl_global_cleanup();
    if (failed)
        return 1;
    printf("{\"requests\": %ld, \"seconds\": %.6f, \"rps\": %.1f, \"cpu_seconds\": %.6f, "
           "\"bytes\": %zu}\n", count, wall, (double)count / wall, cpu, sink.bytes);
    return 0;
}
