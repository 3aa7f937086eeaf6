-- SPDX-License-Identifier: MIT
-- ns/call of the LuaJIT host module against raw FFI calls (not a pass/fail test):
--   LUA_PATH='bindings/luajit/?.lua;;' luajit tests/bench/host_luajit_bench.lua \
--     build/shim/libpolyplug.so build/examples/bundles/c_calc build/examples/scripts/lua_calc \
--     examples/contracts/example_calc.api.toml
-- Best of 5 runs each, timed with clock_gettime(CLOCK_MONOTONIC) through the FFI.
--
--   LUA_PATH='bindings/luajit/?.lua;;' luajit tests/bench/host_luajit_bench.lua \
--     --matrix --build build-bench [--floor LIB] [-n N]
-- prints this host's row of the host x guest matrix instead: one "matrix LuaJIT <cell> <ns>" line
-- per cell, the floor (greet through a plain FFI call of libpolyplug_matrix_floor.so) first, then
-- the parity contract's greet("world") in each guest language (one runtime per guest).
local ffi = require("ffi")
local polyplug = require("polyplug")

ffi.cdef [[
typedef struct polyplug_bench_timespec { long tv_sec; long tv_nsec; } polyplug_bench_timespec;
int clock_gettime(int clk, polyplug_bench_timespec* ts);
]]
local ts = ffi.new("polyplug_bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec)
end

local function bench(n, f)
  local best = math.huge
  for _ = 1, 5 do
    local t0 = now()
    f(n)
    local dt = (now() - t0) / n
    if dt < best then best = dt end
  end
  return best
end

-- The matrix mode (the spec: one greet round trip per cell, best of 5 runs of ~0.15 s each).
local function matrix(opts)
  local here = (arg[0]:match("^(.*)/[^/]*$") or ".")
  local parity_api = here .. "/../parity/parity.api.toml"
  local name, expected = "world", "hello, world!"
  local failed = {}
  -- The results are stored here so the JIT cannot sink or drop the strings a loop builds.
  local keep = {}

  -- Doubles n until a run takes 20 ms or more, then scales it to ~0.15 s.
  local function calibrate(f)
    local n = 16
    while true do
      local t0 = now()
      f(n)
      local dt = now() - t0
      if dt >= 20e6 then return math.max(1, math.floor(n * 150e6 / dt)) end
      n = n * 2
    end
  end
  local function cell(label, f)
    f(1)
    if keep[1] ~= expected then
      error(string.format("greet(%q) returned %q, not %q", name, tostring(keep[1]), expected))
    end
    local ns = bench(opts.n or calibrate(f), f)
    print(string.format("matrix LuaJIT %s %.1f", label, ns))
    io.stdout:flush()
  end
  local function failure(what, e)
    io.stderr:write("error: LuaJIT host, " .. what .. ": " .. tostring(e) .. "\n")
    failed[#failed + 1] = what
  end
  local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() end
    return f ~= nil
  end

  -- The floor: a plain FFI call; the Lua string goes in as const char*, ffi.string reads it back.
  local floor_path = opts.floor or (opts.build .. "/tests/bench/matrix/libpolyplug_matrix_floor.so")
  local ok, e = pcall(function()
    ffi.cdef "size_t polyplug_matrix_greet(const char* name, size_t len, char* out, size_t cap);"
    local floor = ffi.load(floor_path)
    local cap = 256
    local out = ffi.new("char[?]", cap)
    cell("floor", function(n)
      for _ = 1, n do
        local k = floor.polyplug_matrix_greet(name, #name, out, cap)
        keep[1] = ffi.string(out, k)
      end
    end)
  end)
  if not ok then failure("floor (" .. floor_path .. ")", e) end

  local lib = opts.build .. "/shim/libpolyplug.so"
  for _, guest in ipairs { "c", "cpp", "rust", "lua", "python", "js" } do
    local bundle = opts.build .. "/tests/parity/" .. guest
    local vm = guest == "lua" or guest == "python" or guest == "js"
    local module = opts.build .. "/shim/loaders/" .. guest .. "/libpolyplug-loader-" .. guest .. ".so"
    if not exists(bundle .. "/manifest.toml") then
      print("matrix LuaJIT " .. guest .. " skip not built: " .. bundle .. "/manifest.toml is missing")
    elseif vm and not exists(module) then
      print("matrix LuaJIT " .. guest .. " skip loader not built: " .. module .. " is missing")
    else
      local rt
      ok, e = pcall(function()
        -- One runtime per guest: all six provide test.parity.Kit.
        rt = polyplug.runtime { library = lib, loaders = vm and { guest } or {} }
        rt:load(bundle)
        local kit = rt:find("test.parity.Kit", { api = parity_api })
        cell(guest, function(n)
          for _ = 1, n do keep[1] = kit:greet(name) end
        end)
        kit:close()
      end)
      if rt then rt:close() end
      if not ok then failure("guest " .. guest, e) end
    end
  end
  if #failed > 0 then
    io.stderr:write("matrix LuaJIT: failed cells: " .. table.concat(failed, ", ") .. "\n")
    os.exit(1)
  end
  os.exit(0)
end

if arg[1] == "--matrix" then
  local opts, i = {}, 2
  while arg[i] do
    local a, v = arg[i], arg[i + 1]
    if a == "--build" and v then opts.build = v
    elseif a == "--floor" and v then opts.floor = v
    elseif a == "-n" and tonumber(v) then opts.n = tonumber(v)
    else
      io.stderr:write("usage: host_luajit_bench.lua --matrix --build DIR [--floor LIB] [-n N]\n")
      os.exit(2)
    end
    i = i + 2
  end
  if not opts.build then
    io.stderr:write("usage: host_luajit_bench.lua --matrix --build DIR [--floor LIB] [-n N]\n")
    os.exit(2)
  end
  matrix(opts)
end

local lib, native_dir, vm_dir, api = arg[1], arg[2], arg[3], arg[4]
if not (lib and native_dir and api) then
  io.stderr:write("usage: host_luajit_bench.lua LIBPOLYPLUG NATIVE_CALC_DIR [LUA_CALC_DIR|-] CONTRACT_FILE\n")
  io.stderr:write("       host_luajit_bench.lua --matrix --build DIR [--floor LIB] [-n N]\n")
  os.exit(2)
end

local rt = polyplug.runtime { library = lib, loaders = (vm_dir and vm_dir ~= "-") and { "lua" } or {} }
local host = rt:host_api()
rt:load(native_dir)
local calc = rt:find("example.calc", { api = api })
local set = rt:describe(api)
local c = set.contracts[1]

local rows = {}
local baseline = bench(2e6, function(n)
  for _ = 1, n do host.get_error_len(host) end
end)
rows[#rows + 1] = { "raw FFI: HostApi.get_error_len (baseline)", baseline }

rows[#rows + 1] = { "raw FFI: find_guest_contract", bench(1e6, function(n)
  for _ = 1, n do host.find_guest_contract(host, c.id, 0) end
end) }

-- The native add function pointer called directly, with a preallocated argument struct.
local handle = host.find_guest_contract(host, c.id, 0)
local iface = host.resolve_guest_contract(host, handle)
local inst = ffi.new("polyplug_Instance[1]")
host.create_guest_instance(host, iface, nil, inst)
local add = ffi.cast("polyplug_GuestFnSplit", iface.dispatch.native.functions[c.by_name.add.id])
local args = ffi.new(c.by_name.add.args_ct)
args.f_a, args.f_b = 2, 40
local out = ffi.new("int32_t[1]")
local err = ffi.new("polyplug_AbiError[1]")
rows[#rows + 1] = { "raw FFI: native add function pointer", bench(2e6, function(n)
  local data, cid = inst[0].data, inst[0].contract_id
  for _ = 1, n do add(data, cid, args, out, err) end
end) }
assert(out[0] == 42)
host.destroy_guest_instance(host, iface, inst[0])

rows[#rows + 1] = { "module: calc:add(2, 40), native (C)", bench(1e6, function(n)
  for _ = 1, n do calc:add(2, 40) end
end) }
calc:close()

if vm_dir and vm_dir ~= "-" then
  rt:unload("c-calc")
  rt:load(vm_dir)
  local lcalc = rt:find("example.calc", { api = api })
  rows[#rows + 1] = { "module: calc:add(2, 40), VM (Lua 5.4)", bench(2e5, function(n)
    for _ = 1, n do lcalc:add(2, 40) end
  end) }
  lcalc:close()
end
rt:close()

print(string.format("%-44s %10s %8s", "what", "ns/call", "ratio"))
for _, r in ipairs(rows) do
  print(string.format("%-44s %10.1f %7.1fx", r[1], r[2], r[2] / baseline))
end
