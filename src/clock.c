/* The wall clock in milliseconds, and waits that SIGINT or SIGTERM end.
 *
 * core.now_ms() stamps what the sandbox changes (LastModifiedOn to the
 * millisecond). The signal functions let a long-running command (a watch
 * loop) stop cleanly: it blocks SIGINT and SIGTERM, so that they stay pending
 * instead of ending the process in the middle of a step, waits for them
 * between steps, and checks for them after each one. They change the calling
 * thread's signal mask, nothing else; threads libcurl starts afterwards
 * inherit it. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
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

/* core.wait_signal(seconds) -> "SIGINT", "SIGTERM", or nil once `seconds`
 * (0 to 86400; 0 only looks) have passed with neither pending. */
static int l_wait_signal(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    sigset_t set;
    struct timespec deadline, now, left;
    int sig;
    luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds must be in 0..86400");
    stop_signals(&set);
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
        sig = sigtimedwait(&set, NULL, &left);
        if (sig == SIGINT || sig == SIGTERM) {
            lua_pushstring(L, sig == SIGINT ? "SIGINT" : "SIGTERM");
            return 1;
        }
        if (sig < 0 && errno == EINTR) continue;      /* another signal: wait on */
        return 0;                                     /* EAGAIN: the time is up */
    }
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
}
