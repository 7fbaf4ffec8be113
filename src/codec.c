/* stub: replaced by the codec */
#include "internal.h"
void unl_open_codec(lua_State *L) { (void)L; }
