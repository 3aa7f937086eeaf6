-- SPDX-License-Identifier: MIT
-- ns/call of the LuaJIT host module against raw FFI calls (not a pass/fail test):
--   LUA_PATH='bindings/luajit/?.lua;;' luajit tests/bench/host_luajit_bench.lua \
--     build/shim/libpolyplug.so build/examples/bundles/c_calc build/examples/scripts/lua_calc \
--     examples/contracts/example_calc.api.toml
-- Best of 5 runs each, timed with clock_gettime(CLOCK_MONOTONIC) through the FFI.
local ffi = require("ffi")
local polyplug = require("polyplug")

local lib, native_dir, vm_dir, api = arg[1], arg[2], arg[3], arg[4]
if not (lib and native_dir and api) then
  io.stderr:write("usage: host_luajit_bench.lua LIBPOLYPLUG NATIVE_CALC_DIR [LUA_CALC_DIR|-] CONTRACT_FILE\n")
  os.exit(2)
end

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
