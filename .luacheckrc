std = "lua54"
max_line_length = 110
include_files = { "lua/", "spec/", "bin/", "examples/", "bench/", "tools/", ".luacheckrc" }
exclude_files = { "build/", "build-san/" }
files["spec/"] = { std = "+busted" }
files["bin/unleashed"] = {}
