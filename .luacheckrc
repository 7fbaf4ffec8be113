std = "lua54"
max_line_length = 110
include_files = {
  "lua/**/*.lua", "spec/**/*.lua", "bin/*", "examples/**/*.lua", "bench/**/*.lua", ".luacheckrc",
}
exclude_files = { "build*/**" }
files["spec/"] = { std = "+busted" }
