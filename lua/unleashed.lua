local core = require "unleashed.core"
return { sign = core.sign, version = core.version }
