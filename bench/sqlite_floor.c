/* The SQLite floor of a first sync (make bench-sync): the rows a sync wrote
 * into SRC (every order with its JSON, every line) written again into a new
 * mirror DST by C alone, the way the sync writes them: DST's schema is
 * SRC's, the pragmas are the mirror's (argv[3]), and each page of PAGE
 * orders is one transaction in which every order is looked up by Guid,
 * upserted, and its lines inserted. Reading SRC is done a page ahead and
 * not timed. Prints one JSON line: orders, lines, seconds, cpu_seconds.
 *
 *   sqlite_floor SRC.sqlite DST.sqlite "PRAGMA ...; PRAGMA ..." [PAGE]
 *
 * What no client can go below on this machine: the sync's time minus this
 * is what the library adds. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ORDER_COLUMNS 25
#define LINE_COLUMNS 15

typedef struct {
    int type;
    sqlite3_int64 i;
    double d;
    char *text;
    int len;
} cell;

typedef struct {
    cell *cells;
    size_t n, cap;
} rows;

static double seconds(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "sqlite_floor: %s: %s\n", what, db ? sqlite3_errmsg(db) : "failed");
    exit(1);
}

static void keep(rows *r, sqlite3_stmt *st, int ncol)
{
    int c;
    if (r->cap - r->n < (size_t)ncol) {
        size_t ncap = r->cap ? r->cap * 2 : 4096;
        cell *np;
        while (ncap - r->n < (size_t)ncol)
            ncap *= 2;
        np = realloc(r->cells, ncap * sizeof *np);
        if (np == NULL)
            die(NULL, "out of memory");
        r->cells = np;
        r->cap = ncap;
    }
    for (c = 0; c < ncol; c++) {
        cell *x = &r->cells[r->n++];
        x->type = sqlite3_column_type(st, c);
        x->text = NULL;
        if (x->type == SQLITE_INTEGER) {
            x->i = sqlite3_column_int64(st, c);
        } else if (x->type == SQLITE_FLOAT) {
            x->d = sqlite3_column_double(st, c);
        } else if (x->type != SQLITE_NULL) {
            const unsigned char *t = sqlite3_column_text(st, c);
            x->len = sqlite3_column_bytes(st, c);
            x->text = malloc((size_t)x->len + 1);
            if (x->text == NULL)
                die(NULL, "out of memory");
            memcpy(x->text, t, (size_t)x->len + 1);
            x->type = SQLITE_TEXT;
        }
    }
}

static void forget(rows *r)
{
    size_t k;
    for (k = 0; k < r->n; k++)
        free(r->cells[k].text);
    r->n = 0;
}

static void bind_cells(sqlite3 *db, sqlite3_stmt *st, const cell *x, int n)
{
    int c, rc = SQLITE_OK;
    for (c = 0; c < n && rc == SQLITE_OK; c++) {
        switch (x[c].type) {
        case SQLITE_INTEGER: rc = sqlite3_bind_int64(st, c + 1, x[c].i); break;
        case SQLITE_FLOAT: rc = sqlite3_bind_double(st, c + 1, x[c].d); break;
        case SQLITE_TEXT: rc = sqlite3_bind_text(st, c + 1, x[c].text, x[c].len, SQLITE_STATIC); break;
        default: rc = sqlite3_bind_null(st, c + 1);
        }
    }
    if (rc != SQLITE_OK)
        die(db, "binding");
}

static void run(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        die(db, what);
    sqlite3_reset(st);
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        die(db, sql);
    return st;
}

int main(int argc, char **argv)
{
    sqlite3 *src, *dst;
    sqlite3_stmt *schema, *read_orders, *read_lines, *modified, *upsert, *insert_line;
    rows orders = { 0 }, lines = { 0 };
    int page, rc;
    long norders = 0, nlines = 0;
    double wall = 0, cpu = 0;
    sqlite3_int64 after = -1;
    if (argc < 4) {
        fprintf(stderr, "usage: sqlite_floor SRC.sqlite DST.sqlite PRAGMAS [PAGE]\n");
        return 2;
    }
    page = argc > 4 ? atoi(argv[4]) : 1000;
    if (sqlite3_open_v2(argv[1], &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die(src, argv[1]);
    if (sqlite3_open(argv[2], &dst) != SQLITE_OK)
        die(dst, argv[2]);
    if (sqlite3_exec(dst, argv[3], NULL, NULL, NULL) != SQLITE_OK)
        die(dst, "the pragmas");
    /* the schema, as the sync made it: tables before their indexes */
    schema = prepare(src, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
                          "ORDER BY type = 'index', rowid");
    while ((rc = sqlite3_step(schema)) == SQLITE_ROW)
        if (sqlite3_exec(dst, (const char *)sqlite3_column_text(schema, 0), NULL, NULL, NULL) != SQLITE_OK)
            die(dst, "the schema");
    sqlite3_finalize(schema);

    read_orders = prepare(src, "SELECT rowid, guid, order_number, status, custom_status, supplier_code, "
        "supplier_name, warehouse_code, warehouse_name, currency, exchange_rate, order_date, delivery_date, "
        "received_date, completed_date, supplier_ref, sub_total, tax_total, total, bc_sub_total, bc_tax_total, "
        "bc_total, created_on, last_modified_on, last_modified_ms, json FROM orders WHERE rowid > ? "
        "ORDER BY rowid LIMIT ?");
    read_lines = prepare(src, "SELECT order_guid, guid, line_number, product_code, product_description, unit, "
        "order_quantity, receipt_quantity, unit_price, discount_rate, line_total, line_tax, tax_code, "
        "delivery_date, comments FROM lines WHERE order_guid = ? ORDER BY rowid");
    modified = prepare(dst, "SELECT last_modified_ms FROM orders WHERE guid = ?");
    upsert = prepare(dst, "INSERT INTO orders (guid, order_number, status, custom_status, supplier_code, "
        "supplier_name, warehouse_code, warehouse_name, currency, exchange_rate, order_date, delivery_date, "
        "received_date, completed_date, supplier_ref, sub_total, tax_total, total, bc_sub_total, bc_tax_total, "
        "bc_total, created_on, last_modified_on, last_modified_ms, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guid) DO UPDATE SET json = excluded.json, "
        "last_modified_ms = excluded.last_modified_ms");
    insert_line = prepare(dst, "INSERT INTO lines (order_guid, guid, line_number, product_code, "
        "product_description, unit, order_quantity, receipt_quantity, unit_price, discount_rate, line_total, "
        "line_tax, tax_code, delivery_date, comments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");

    for (;;) {
        size_t k, o, l, *first_line;
        size_t count;
        double w0, c0;
        /* a page read ahead, untimed */
        forget(&orders);
        forget(&lines);
        sqlite3_bind_int64(read_orders, 1, after);
        sqlite3_bind_int(read_orders, 2, page);
        while ((rc = sqlite3_step(read_orders)) == SQLITE_ROW) {
            after = sqlite3_column_int64(read_orders, 0);
            keep(&orders, read_orders, ORDER_COLUMNS + 1);
        }
        if (rc != SQLITE_DONE)
            die(src, "reading orders");
        sqlite3_reset(read_orders);
        count = orders.n / (ORDER_COLUMNS + 1);
        if (count == 0)
            break;
        first_line = malloc((count + 1) * sizeof *first_line);
        if (first_line == NULL)
            die(NULL, "out of memory");
        for (k = 0; k < count; k++) {
            const cell *g = &orders.cells[k * (ORDER_COLUMNS + 1) + 1];
            first_line[k] = lines.n / LINE_COLUMNS;
            sqlite3_bind_text(read_lines, 1, g->text, g->len, SQLITE_STATIC);
            while ((rc = sqlite3_step(read_lines)) == SQLITE_ROW)
                keep(&lines, read_lines, LINE_COLUMNS);
            if (rc != SQLITE_DONE)
                die(src, "reading lines");
            sqlite3_reset(read_lines);
        }
        first_line[count] = lines.n / LINE_COLUMNS;

        /* the page written, timed */
        w0 = seconds(CLOCK_MONOTONIC);
        c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
        if (sqlite3_exec(dst, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            die(dst, "BEGIN");
        for (o = 0; o < count; o++) {
            const cell *row = &orders.cells[o * (ORDER_COLUMNS + 1) + 1];
            bind_cells(dst, modified, row, 1);
            run(dst, modified, "the Guid lookup");
            bind_cells(dst, upsert, row, ORDER_COLUMNS);
            run(dst, upsert, "the order");
            for (l = first_line[o]; l < first_line[o + 1]; l++) {
                bind_cells(dst, insert_line, &lines.cells[l * LINE_COLUMNS], LINE_COLUMNS);
                run(dst, insert_line, "a line");
                nlines++;
            }
            norders++;
        }
        if (sqlite3_exec(dst, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            die(dst, "COMMIT");
        wall += seconds(CLOCK_MONOTONIC) - w0;
        cpu += seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
        free(first_line);
    }
    {
        double w0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
        sqlite3_finalize(modified);
        sqlite3_finalize(upsert);
        sqlite3_finalize(insert_line);
        if (sqlite3_close(dst) != SQLITE_OK)
            die(dst, "closing");
        wall += seconds(CLOCK_MONOTONIC) - w0;
        cpu += seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
    }
    sqlite3_finalize(read_orders);
    sqlite3_finalize(read_lines);
    sqlite3_close(src);
    forget(&orders);
    forget(&lines);
    free(orders.cells);
    free(lines.cells);
    printf("{\"orders\":%ld,\"lines\":%ld,\"seconds\":%.6f,\"cpu_seconds\":%.6f}\n", norders, nlines, wall, cpu);
    return 0;
}
