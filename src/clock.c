/* The wall clock in milliseconds, and waits that SIGINT or SIGTERM end.
 *
 * core.now_ms() stamps what the sandbox changes (LastModifiedOn to the
 * millisecond). The signal functions let a long-running command (a watch
 * loop) stop cleanly. block_signals, unblock_signals and wait_signal block
 * SIGINT and SIGTERM, so that they stay pending instead of ending the
 * process in the middle of a step, and take them between steps; they change
 * the calling thread's signal mask, nothing else (threads libcurl starts
 * afterwards inherit it). stop_signals notes a first signal without ending
 * the process and lets a second one end it at once. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* core.now_ms() -> milliseconds since 1970 UTC (an integer), from CLOCK_REALTIME. */
static int l_now_ms(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + (lua_Integer)(ts.tv_nsec / 1000000));
    return 1;
}

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

/* core.block_signals(): SIGINT and SIGTERM stay pending in this thread until
 * core.wait_signal takes them or core.unblock_signals delivers them. */
static int l_block_signals(lua_State *L)
{
    sigset_t set;
    stop_signals(&set);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return luaL_error(L, "block_signals: pthread_sigmask failed");
    return 0;
}

static int l_unblock_signals(lua_State *L)
{
    sigset_t set;
    stop_signals(&set);
    if (pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0) {
        return luaL_error(L, "unblock_signals: pthread_sigmask failed");
    }
    return 0;
}

/* Waits up to s seconds (0 only looks) for one of `set`, which the caller
 * has blocked, and takes it: the signal's number, or 0 once the time is up. */
static int timed_wait(lua_Number s, const sigset_t *set)
{
    struct timespec deadline, now, left;
    int sig;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)s;                     /* s >= 0: truncation is floor */
    deadline.tv_nsec += (long)((s - (lua_Number)(time_t)s) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1000000000L;
    }
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        left.tv_sec = deadline.tv_sec - now.tv_sec;
        left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
        if (left.tv_nsec < 0) {
            left.tv_sec -= 1;
            left.tv_nsec += 1000000000L;
        }
        if (left.tv_sec < 0) left.tv_sec = left.tv_nsec = 0;
        sig = sigtimedwait(set, NULL, &left);
        if (sig == SIGINT || sig == SIGTERM) return sig;
        if (sig < 0 && errno == EINTR) continue;      /* another signal: wait on */
        return 0;                                     /* EAGAIN: the time is up */
    }
}

/* core.wait_signal(seconds) -> "SIGINT", "SIGTERM", or nil once `seconds`
 * (0 to 86400; 0 only looks) have passed with neither pending. */
static int l_wait_signal(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    sigset_t set;
    int sig;
    luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds must be in 0..86400");
    stop_signals(&set);
    sig = timed_wait(s, &set);
    if (sig == 0) return 0;
    lua_pushstring(L, sig == SIGINT ? "SIGINT" : "SIGTERM");
    return 1;
}

/* core.stop_signals() -> guard: a first SIGINT or SIGTERM is noted and does
 * not end the process; a second one ends it at once (the default action).
 * The handler does nothing: it is installed with SA_RESETHAND, so the
 * signal's own disposition, back to SIG_DFL, is the record that it came
 * (no state in the handler). guard:taken() -> "SIGINT", "SIGTERM" or nil;
 * guard:wait(seconds) waits up to `seconds` for one (0.. 86400);
 * guard:close() (also __close, __gc) puts the former handlers back. */
#define GUARD_MT "unleashed.StopSignals"

typedef struct {
    int armed;
    int taken;                     /* the signal noted, or 0 */
    struct sigaction old_int, old_term;
} stop_guard;

static void on_stop(int sig)
{
    (void)sig;
}

static int l_stop_signals(lua_State *L)
{
    stop_guard *g = (stop_guard *)lua_newuserdatauv(L, sizeof *g, 0);
    struct sigaction sa;
    sigset_t set;
    g->armed = 0;
    g->taken = 0;
    luaL_setmetatable(L, GUARD_MT);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    /* A signal the process was started ignoring (`cmd &` in a script) stays ignored. */
    if (sigaction(SIGINT, NULL, &g->old_int) != 0 || sigaction(SIGTERM, NULL, &g->old_term) != 0) {
        return luaL_error(L, "stop_signals: sigaction failed");
    }
    if ((g->old_int.sa_handler != SIG_IGN && sigaction(SIGINT, &sa, NULL) != 0)
        || (g->old_term.sa_handler != SIG_IGN && sigaction(SIGTERM, &sa, NULL) != 0)) {
        sigaction(SIGINT, &g->old_int, NULL);
        return luaL_error(L, "stop_signals: sigaction failed");
    }
    g->armed = 1;
    stop_signals(&set);
    if (pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0) return luaL_error(L, "stop_signals: pthread_sigmask failed");
    return 1;
}

static stop_guard *check_guard(lua_State *L)
{
    stop_guard *g = (stop_guard *)luaL_checkudata(L, 1, GUARD_MT);
    if (!g->armed) luaL_error(L, "the stop-signal guard is closed");
    return g;
}

static int is_default(int sig)
{
    struct sigaction cur;
    if (sigaction(sig, NULL, &cur) != 0) return 0;
    return cur.sa_handler == SIG_DFL;
}

static int push_taken(lua_State *L, stop_guard *g)
{
    if (!g->taken) {
        if (is_default(SIGINT)) g->taken = SIGINT;
        else if (is_default(SIGTERM)) g->taken = SIGTERM;
    }
    if (!g->taken) return 0;
    lua_pushstring(L, g->taken == SIGINT ? "SIGINT" : "SIGTERM");
    return 1;
}

static int guard_taken(lua_State *L)
{
    return push_taken(L, check_guard(L));
}

static int guard_wait(lua_State *L)
{
    stop_guard *g = check_guard(L);
    lua_Number s = luaL_checknumber(L, 2);
    sigset_t set;
    int sig;
    luaL_argcheck(L, s >= 0 && s <= 86400, 2, "seconds must be in 0..86400");
    if (push_taken(L, g)) return 1;
    /* Blocked while waiting, so that sigtimedwait takes the signal; one
     * taken so is then given the default action by hand, like a handled one. */
    stop_signals(&set);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return luaL_error(L, "wait: pthread_sigmask failed");
    sig = push_taken(L, g) ? 0 : timed_wait(s, &set);
    if (sig != 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
        g->taken = sig;
    }
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    if (g->taken) {
        lua_settop(L, 2);
        return push_taken(L, g);
    }
    return 0;
}

static int guard_close(lua_State *L)
{
    stop_guard *g = (stop_guard *)luaL_checkudata(L, 1, GUARD_MT);
    if (g->armed) {
        g->armed = 0;
        sigaction(SIGINT, &g->old_int, NULL);
        sigaction(SIGTERM, &g->old_term, NULL);
    }
    return 0;
}

void unl_open_clock(lua_State *L)
{
    lua_pushcfunction(L, l_now_ms);
    lua_setfield(L, -2, "now_ms");
    lua_pushcfunction(L, l_block_signals);
    lua_setfield(L, -2, "block_signals");
    lua_pushcfunction(L, l_unblock_signals);
    lua_setfield(L, -2, "unblock_signals");
    lua_pushcfunction(L, l_wait_signal);
    lua_setfield(L, -2, "wait_signal");
    lua_pushcfunction(L, l_stop_signals);
    lua_setfield(L, -2, "stop_signals");
    if (luaL_newmetatable(L, GUARD_MT)) {
        static const luaL_Reg methods[] = {
            {"taken", guard_taken},
            {"wait", guard_wait},
            {"close", guard_close},
            {NULL, NULL}
        };
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, guard_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, guard_close);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}
