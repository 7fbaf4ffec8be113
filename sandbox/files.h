/* The sandbox's state file: reading it with every error told apart from
 * "there is no file yet", and saving it durably (write, fsync, rename, fsync
 * of the folder). Part of the unleashed.sandbox.httpd module. */
#ifndef UNLEASHED_SANDBOX_FILES_H
#define UNLEASHED_SANDBOX_FILES_H

#include <lua.h>

/* Adds read_file, write_file and the temporary file's name rule to the
 * module table on top of the stack. */
void unl_sandbox_open_files(lua_State *L);

#endif
