/* stub: replaced by the query encoder */
#include "internal.h"
void unl_query_push(lua_State *L, int idx) { (void)idx; lua_pushliteral(L, ""); lua_pushliteral(L, ""); }
