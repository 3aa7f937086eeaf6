-- SPDX-License-Identifier: MIT
-- A LuaJIT host on libpolyplug.so through bindings/luajit/polyplug.lua (FFI only): discovers the
-- example bundles of every built language, implements host.example.Log@1 in Lua (the C bundle
-- calls it on every add), calls example.calc@1 on every provider, and hot-reloads the Lua
-- bundle to new code while a contract object is held.
--
--   LUA_PATH='bindings/luajit/?.lua;;' luajit examples/hosts/luajit_host.lua \
--     --library build/shim/libpolyplug.so --bundles build/examples/bundles \
--     --scripts build/examples/scripts --loaders lua,js \
--     --api examples/contracts/example_calc.api.toml \
--     --calc-v2 examples/scripts/lua_calc/calc_v2.lua
local opts = {}
local i = 1
while i <= #arg do
  local k = arg[i]:match("^%-%-([%w%-]+)$")
  if not k or arg[i + 1] == nil then
    io.stderr:write("usage: luajit_host.lua --library L --bundles DIR --scripts DIR --loaders a,b --api FILE --calc-v2 FILE\n")
    os.exit(2)
  end
  opts[k] = arg[i + 1]
  i = i + 2
end

local polyplug = require("polyplug")

local loaders = {}
for lang in (opts.loaders or ""):gmatch("[^,]+") do loaders[#loaders + 1] = lang end

local phases = {}
local rt = polyplug.runtime {
  library = opts.library, -- nil: $POLYPLUG_LIBRARY, then the soname libpolyplug.so.0
  hot_reload = true,
  loaders = loaders,
  on_reload = function(p)
    phases[#phases + 1] = p.phase
    print(string.format("  [reload] %s %s%s", p.phase, p.bundle_name, p.reason and (": " .. p.reason) or ""))
  end,
  log = function(level, scope, message)
    io.stderr:write(string.format("  [runtime %d] %s: %s\n", level, scope, message))
  end,
}

local failures = 0
local function expect(cond, what)
  if not cond then
    failures = failures + 1
    io.stderr:write("FAILED: " .. what .. "\n")
  end
end

-- host.example.Log@1 in Lua: registered before loading, so the C bundle finds it.
local lines = 0
rt:register_host_contract("host.example.Log", {
  api = opts.api,
  implementation = {
    write = function(line)
      lines = lines + 1
      print("  [plugin log] " .. line)
    end,
  },
})

-- Native bundles by discovery; script bundles one by one, the Lua one from a temporary copy so
-- that it can be rewritten and reloaded without touching the build tree.
local found = rt:load_dirs { opts.bundles }
print(string.format("discovered and loaded %d native bundle(s), skipped %d", found.loaded, found.skipped))
expect(found.loaded >= 1, "at least one native bundle")
local lua_copy
for _, lang in ipairs(loaders) do
  local dir = opts.scripts .. "/" .. lang .. "_calc"
  if lang == "lua" then
    lua_copy = os.tmpname()
    os.remove(lua_copy)
    assert(os.execute("cp -r '" .. dir .. "' '" .. lua_copy .. "'") == 0)
    dir = lua_copy
  end
  rt:load(dir)
end

for _, b in ipairs(rt:bundles()) do
  print(string.format("bundle %-12s %s  %-10s loader %-7s %s", b.name, b.version, b.language, b.loader, b.path))
end

-- Every provider of example.calc@1.
local calcs = rt:find_all("example.calc", { api = opts.api })
print(#calcs .. " provider(s) of example.calc@1")
for _, calc in ipairs(calcs) do
  local sum = calc:add(2, 40)
  print(string.format("  %s: add(2, 40) = %d, describe() = %q", calc:is_vm() and "VM    " or "native", sum, calc:describe()))
  expect(sum == 42, "add(2, 40) == 42")
  calc:close()
end
expect(#calcs >= #loaders + 1, "one provider per built language")
expect(lines >= 1, "the C bundle called host.example.Log")

-- A failure is a polyplug error object with code, code_name and message.
local _, err = polyplug.try(rt.load, rt, "/nonexistent/polyplug-bundle")
print("expected failure: " .. tostring(err))
expect(err and err.code ~= 0, "loading a missing bundle fails")

-- Hot reload: rewrite the Lua bundle's script and reload it; the object keeps working.
if lua_copy then
  local lua_calc
  for _, c in ipairs(rt:find_all("example.calc", { api = opts.api })) do
    if c:describe():find("^Lua calc") then lua_calc = c else c:close() end
  end
  print("before reload: " .. lua_calc:describe())
  local src = assert(io.open(opts["calc-v2"], "rb")):read("*a")
  local f = assert(io.open(lua_copy .. "/calc.lua", "wb"))
  f:write(src)
  f:close()
  phases = {}
  rt:reload(lua_copy)
  print("after reload:  " .. lua_calc:describe())
  expect(table.concat(phases, ",") == "Preparing,Reloaded", "reload phases Preparing, Reloaded")
  expect(lua_calc:describe() == "Lua calc, version 2", "the reloaded code serves")
  expect(lua_calc:add(-1, 1) == 0, "add after the reload")
  os.execute("rm -rf '" .. lua_copy .. "'")
else
  print("(no Lua loader built: hot reload skipped)")
end

rt:close()
if failures > 0 then
  print(failures .. " check(s) failed")
  os.exit(1)
end
print("luajit host: all good")
