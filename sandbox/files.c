/* The sandbox's state file, in C because Lua's io library can neither tell
 * "no such file" from other failures reliably (a folder opens and reads as
 * empty) nor flush a file or a folder to disk.
 *
 *   httpd.read_file(path, max_bytes) -> data | nil, message, "missing" | "error"
 *     Only a path that does not exist (ENOENT) is "missing"; a folder, a
 *     device, a file past max_bytes, no permission, any read error is "error".
 *   httpd.write_file(path, data) -> true | nil, message
 *     Writes path .. httpd.temp_suffix (created, never reused: O_EXCL),
 *     fsyncs it, renames it over path and fsyncs the folder, so that after a
 *     crash path holds either the old or the new text, whole. The target's
 *     permission bits carry over. On failure the temporary file is removed
 *     and path is untouched.
 *   httpd.temp_suffix = ".tmp" */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

#include "files.h"

#define TEMP_SUFFIX ".tmp"

static int push_failure(lua_State *L, const char *what, const char *path, int err, const char *kind)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s %s: %s", what, path, strerror(err));
    if (kind == NULL)
        return 2;
    lua_pushstring(L, kind);
    return 3;
}

/* httpd.read_file(path, max_bytes) */
static int l_read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lua_Integer max = luaL_checkinteger(L, 2);
    struct stat st;
    luaL_Buffer b;
    size_t got = 0;
    int fd, err;
    luaL_argcheck(L, max >= 0, 2, "must not be negative");
    /* O_NONBLOCK: a FIFO put where the file goes must not hang the start. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        err = errno;
        return push_failure(L, "cannot open", path, err, err == ENOENT ? "missing" : "error");
    }
    if (fstat(fd, &st) != 0) {
        err = errno;
        close(fd);
        return push_failure(L, "cannot read", path, err, "error");
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot read %s: %s", path,
                        S_ISDIR(st.st_mode) ? "it is a folder" : "not a regular file");
        lua_pushliteral(L, "error");
        return 3;
    }
    if ((lua_Integer)st.st_size > max) {
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot read %s: larger than %I bytes", path, max);
        lua_pushliteral(L, "error");
        return 3;
    }
    luaL_buffinit(L, &b);
    for (;;) {
        char *p = luaL_prepbuffsize(&b, 65536);
        ssize_t n = read(fd, p, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno;
            close(fd);
            return push_failure(L, "cannot read", path, err, "error");
        }
        if (n == 0)
            break;
        got += (size_t)n;
        luaL_addsize(&b, (size_t)n);
        if ((lua_Integer)got > max) {   /* it grew while we read */
            close(fd);
            lua_pushnil(L);
            lua_pushfstring(L, "cannot read %s: larger than %I bytes", path, max);
            lua_pushliteral(L, "error");
            return 3;
        }
    }
    close(fd);
    luaL_pushresult(&b);
    return 1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Flushes the folder holding path, so that a rename in it is on disk. */
static int sync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, rc = 0, err = 0;
    if (slash == NULL) {
        dir = strdup(".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir != NULL) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (dir == NULL) {
        errno = ENOMEM;
        return -1;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        err = errno;
        rc = -1;
    }
    if (fd >= 0)
        close(fd);
    free(dir);
    errno = err;
    return rc;
}

/* httpd.write_file(path, data) */
static int l_write_file(lua_State *L)
{
    size_t plen, n;
    const char *path = luaL_checklstring(L, 1, &plen);
    const char *data = luaL_checklstring(L, 2, &n);
    struct stat st;
    mode_t mode = 0666;
    int keep_mode = 0, fd, err;
    const char *tmp;
    lua_pushfstring(L, "%s" TEMP_SUFFIX, path);
    tmp = lua_tostring(L, -1);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        mode = st.st_mode & 07777;
        keep_mode = 1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return push_failure(L, "cannot create", tmp, errno, NULL);
    if ((keep_mode && fchmod(fd, mode) != 0) || write_all(fd, data, n) != 0 || fsync(fd) != 0) {
        err = errno;
        close(fd);
        unlink(tmp);
        return push_failure(L, "cannot write", tmp, err, NULL);
    }
    if (close(fd) != 0) {
        err = errno;
        unlink(tmp);
        return push_failure(L, "cannot write", tmp, err, NULL);
    }
    if (rename(tmp, path) != 0) {
        err = errno;
        unlink(tmp);
        return push_failure(L, "cannot replace", path, err, NULL);
    }
    if (sync_folder(path) != 0)
        return push_failure(L, "cannot flush the folder of", path, errno, NULL);
    lua_pushboolean(L, 1);
    return 1;
}

void unl_sandbox_open_files(lua_State *L)
{
    lua_pushcfunction(L, l_read_file);
    lua_setfield(L, -2, "read_file");
    lua_pushcfunction(L, l_write_file);
    lua_setfield(L, -2, "write_file");
    lua_pushliteral(L, TEMP_SUFFIX);
    lua_setfield(L, -2, "temp_suffix");
}
