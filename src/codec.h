/* The codec's C entry points beyond internal.h: for the fuzz targets, which
 * drive the normaliser on the fuzzer's own buffer so that AddressSanitizer
 * sees any read past its end. */
#ifndef UNLEASHED_CODEC_H
#define UNLEASHED_CODEC_H

#include "internal.h"

/* Pushes the normalised form of json[0..len) (see docs/design.md,
 * "Normalisation"); when the text is not JSON the normaliser accepts, pushes
 * it unchanged. Raises only on memory errors. */
void unl_normalize_push(lua_State *L, const char *json, size_t len);

#endif
