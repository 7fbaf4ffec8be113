/* stub: replaced by the client */
#include "internal.h"
void unl_open_client(lua_State *L) { (void)L; }
