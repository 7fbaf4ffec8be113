/*
 * unleashed-host: a C program that embeds Lua 5.4 with the unleashed module
 * linked in, the way an application adds scripted purchase-order workflows.
 *
 *     unleashed-host [--states N] SCRIPT.lua [ARGS...]
 *
 * Each lua_State gets the module (luaL_requiref), the Lua layer and a client
 * made from the environment (UNLEASHED_API_ID, UNLEASHED_API_KEY,
 * UNLEASHED_BASE_URL, UNLEASHED_CLIENT_TYPE), then runs SCRIPT with `client`,
 * `unleashed`, `arg` and `host_state` (its number) as globals. With --states N
 * the script runs in N lua_States at once, one OS thread each, each with its
 * own client: the module keeps no global state, so they never meet.
 *
 * One line per state reports the result:
 *     unleashed-host: state 1: ok: <the script's first result>
 *     unleashed-host: state 1: error (exit 5): <the error>
 * The exit code is 0 when every state succeeded, otherwise the first failing
 * state's code: the `unleashed` command's table (unleashed.cli.exit), asked
 * through Lua, so both programs give one failure the same code.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "unleashed.h"

#define MAX_STATES 16
#define RESULT_MAX 512

struct job {
    int index;              /* 1-based, shown in the report */
    const char *script;
    int argc;               /* the script's arguments */
    char **argv;
    int code;               /* exit code for this state */
    char result[RESULT_MAX];
};

/* The exit code for the error value at index idx: unleashed.cli.exit's
 * for_error, the table the `unleashed` command uses; 1 if it cannot be asked. */
static int exit_code_of(lua_State *L, int idx)
{
    int code = 1;
    idx = lua_absindex(L, idx);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "unleashed.cli.exit");
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, -1, "for_error");
        lua_pushvalue(L, idx);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_isinteger(L, -1))
            code = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);      /* the code, or the error of the call */
    }
    lua_pop(L, 1);          /* the module, or the error of require */
    return code;
}

/* Message handler: keeps error objects that carry a kind (their __tostring
 * reads well), adds a traceback to anything else. */
static int on_error(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TTABLE && lua_getfield(L, 1, "kind") == LUA_TSTRING) {
        lua_pop(L, 1);
        return 1;
    }
    if (lua_type(L, 1) == LUA_TTABLE) lua_pop(L, 1);
    luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
    return 1;
}

/* Sets the globals the script expects: unleashed, client, arg, host_state. */
static const char setup_chunk[] =
    "local index, script = ...\n"
    "unleashed = require 'unleashed'\n"
    "client = unleashed.from_env()\n"
    "host_state = index\n";

static void run_job(struct job *job)
{
    lua_State *L = luaL_newstate();
    int base, i, status;

    if (L == NULL) {
        job->code = 1;
        snprintf(job->result, sizeof job->result, "error (exit 1): cannot create a lua_State");
        return;
    }
    luaL_openlibs(L);
    /* The C core is linked into this program: register it so that
     * require "unleashed.core" finds it without searching package.cpath. */
    luaL_requiref(L, "unleashed.core", luaopen_unleashed_core, 0);
    lua_pop(L, 1);

    lua_pushcfunction(L, on_error);
    base = lua_gettop(L);

    /* arg: arg[0] the script, then its arguments, like lua.c */
    lua_createtable(L, job->argc, 1);
    lua_pushstring(L, job->script);
    lua_rawseti(L, -2, 0);
    for (i = 0; i < job->argc; i++) {
        lua_pushstring(L, job->argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setglobal(L, "arg");

    status = luaL_loadbuffer(L, setup_chunk, sizeof setup_chunk - 1, "=host setup");
    if (status == LUA_OK) {
        lua_pushinteger(L, job->index);
        lua_pushstring(L, job->script);
        status = lua_pcall(L, 2, 0, base);
    }
    if (status == LUA_OK) {
        status = luaL_loadfile(L, job->script);
        if (status == LUA_OK) {
            for (i = 0; i < job->argc; i++) lua_pushstring(L, job->argv[i]);
            status = lua_pcall(L, job->argc, 1, base);
        }
    }

    if (status == LUA_OK) {
        const char *s = luaL_tolstring(L, -1, NULL);
        job->code = 0;
        snprintf(job->result, sizeof job->result, "ok: %s", s);
    } else {
        const char *msg;
        job->code = exit_code_of(L, -1);
        msg = luaL_tolstring(L, -1, NULL);
        snprintf(job->result, sizeof job->result, "error (exit %d): %s", job->code, msg);
    }
    lua_close(L);   /* releases the client: its key is wiped, its handles closed */
}

static void *thread_main(void *arg)
{
    run_job((struct job *)arg);
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: unleashed-host [--states N] SCRIPT.lua [ARGS...]\n"
                    "  runs SCRIPT with a client from UNLEASHED_API_ID, UNLEASHED_API_KEY,\n"
                    "  UNLEASHED_BASE_URL; --states N runs it in N lua_States, one thread each\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct job *jobs;
    pthread_t threads[MAX_STATES];
    int states = 1, first = 1, i, code = 0;

    if (first < argc && strcmp(argv[first], "--help") == 0) {
        usage();
        return 0;
    }
    if (first + 1 < argc && strcmp(argv[first], "--states") == 0) {
        char *end;
        long n = strtol(argv[first + 1], &end, 10);
        if (*end != '\0' || n < 1 || n > MAX_STATES) {
            fprintf(stderr, "unleashed-host: --states: expected 1 to %d, got %s\n", MAX_STATES,
                    argv[first + 1]);
            return 2;
        }
        states = (int)n;
        first += 2;
    }
    if (first >= argc) return usage();

    jobs = calloc((size_t)states, sizeof *jobs);
    if (jobs == NULL) {
        fprintf(stderr, "unleashed-host: out of memory\n");
        return 1;
    }
    for (i = 0; i < states; i++) {
        jobs[i].index = i + 1;
        jobs[i].script = argv[first];
        jobs[i].argc = argc - first - 1;
        jobs[i].argv = argv + first + 1;
    }

    if (states == 1) {
        run_job(&jobs[0]);
    } else {
        int started = 0;
        for (i = 0; i < states; i++) {
            if (pthread_create(&threads[i], NULL, thread_main, &jobs[i]) != 0) {
                jobs[i].code = 1;
                snprintf(jobs[i].result, sizeof jobs[i].result,
                         "error (exit 1): cannot start a thread");
                break;
            }
            started++;
        }
        for (i = 0; i < started; i++) pthread_join(threads[i], NULL);
        for (i = started + 1; i < states; i++) {
            jobs[i].code = 1;
            snprintf(jobs[i].result, sizeof jobs[i].result, "error (exit 1): not started");
        }
    }

    fflush(stdout);
    for (i = 0; i < states; i++) {
        printf("unleashed-host: state %d: %s\n", jobs[i].index, jobs[i].result);
        if (code == 0 && jobs[i].code != 0) code = jobs[i].code;
    }
    free(jobs);
    return code;
}
