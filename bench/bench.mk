# make bench: builds the modules and the floor program, then runs every
# benchmark against local sandboxes and prints each figure with its target.
# Not part of the test suite; takes a few minutes on 2 cores.

BENCH_FLOOR := $(BUILD)/bench/floor

# The floor is built optimised and without sanitizers whatever SAN says: it
# is the reference rate the client is measured against.
$(BENCH_FLOOR): bench/floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -g $(WARN) $(CURL_CFLAGS) -o $@ $< $(CURL_LIBS) $(SSL_LIBS)

bench: all $(BENCH_FLOOR)
	BUILD=$(BUILD) sh bench/run
