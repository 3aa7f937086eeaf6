-- SPDX-License-Identifier: MIT
-- Tests of bindings/luajit/polyplug.lua: a LuaJIT host over libpolyplug.so. Every check prints one
-- line; the exit status is non-zero when any failed. Arguments are key=value pairs (meson passes
-- them, see meson.build):
--   module=<dir of polyplug.lua> lib=<libpolyplug.so> source=<source root>
--   parity=<build/tests/parity> kitchen=<build/tests/cli> scripts=<build/examples/scripts>
--   loaders=<comma list of built script loaders> rust=<0|1>
local args = {}
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  if not k then io.stderr:write("bad argument: " .. a .. "\n") os.exit(2) end
  args[k] = v
end
for _, k in ipairs { "module", "lib", "source", "parity", "kitchen", "scripts" } do
  if not args[k] then io.stderr:write("missing argument " .. k .. "=...\n") os.exit(2) end
end
package.path = args.module .. "/?.lua;" .. package.path

local ffi = require("ffi")
io.stdout:setvbuf("line")
local polyplug = require("polyplug")

local built = {}
for lang in (args.loaders or ""):gmatch("[^,]+") do built[lang] = true end

---------------------------------------------------------------------------------------------------
-- A small assertion harness
---------------------------------------------------------------------------------------------------
local passed, failed, section = 0, 0, ""
local function check(cond, what, detail)
  if cond then
    passed = passed + 1
    print("ok   " .. section .. what)
  else
    failed = failed + 1
    print("FAIL " .. section .. what .. (detail and ("  -- " .. tostring(detail)) or ""))
  end
  return cond
end
local function eq(got, want, what)
  return check(got == want, what, "got " .. tostring(got) .. ", want " .. tostring(want))
end
-- Runs f, expecting a polyplug error with `code_name` whose message contains `needle`.
local function raises(f, code_name, needle, what)
  local ok, e = pcall(f)
  if ok then return check(false, what, "no error raised") end
  if not polyplug.is_error(e) then return check(false, what, "not a polyplug error: " .. tostring(e)) end
  local good = e.code_name == code_name and (needle == nil or e.message:find(needle, 1, true) ~= nil)
  return check(good, what, "got " .. tostring(e))
end
local function group(name) section = name .. ": " print("-- " .. name) end

local function run(cmd)
  local ok = os.execute(cmd)
  return ok == 0 or ok == true
end
local tmp = os.tmpname()
os.remove(tmp)
assert(run("mkdir -p '" .. tmp .. "'"))
local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end
local function read(path)
  local f = assert(io.open(path, "rb"))
  local t = f:read("*a")
  f:close()
  return t
end

local function new_runtime(opts)
  opts = opts or {}
  opts.library = opts.library or args.lib
  return polyplug.runtime(opts)
end

---------------------------------------------------------------------------------------------------
group("library")
---------------------------------------------------------------------------------------------------
raises(function() polyplug.runtime { library = tmp .. "/no-such-libpolyplug.so" } end,
       "LibraryNotFound", "POLYPLUG_LIBRARY", "a bad library path names the three ways to find it")
do
  local ok, e = pcall(polyplug.runtime, { library = tmp .. "/no-such-libpolyplug.so" })
  check(not ok and e.message:find("library", 1, true) and e.message:find("libpolyplug.so.0", 1, true),
        "the message names the library option and the soname", e)
end
raises(function() polyplug.runtime { libary = args.lib } end, "InvalidArgument", "unknown option libary",
       "a misspelled option is refused")
raises(function() new_runtime { log_level = "loud" } end, "InvalidArgument", "unknown log level",
       "an unknown log level is refused")
raises(function() new_runtime { loaders = { "cobol" } } end, "NotFound", "libpolyplug-loader-cobol.so",
       "a loader module that does not exist is named")

---------------------------------------------------------------------------------------------------
group("runtime")
---------------------------------------------------------------------------------------------------
do
  local rt = new_runtime()
  check(not rt:is_closed(), "a new runtime is open")
  check(ffi.istype("uint64_t", rt:revision()), "the revision is a uint64_t")
  eq(#rt:bundles(), 0, "no bundles at first")
  rt:close()
  check(rt:is_closed(), "close closes")
  rt:close()
  check(true, "close is idempotent")
  raises(function() rt:load(args.parity .. "/c") end, "Closed", "closed", "load after close raises")
  raises(function() rt:bundles() end, "Closed", nil, "bundles after close raises")
  -- The __gc fallback: a runtime nobody references is destroyed by the collector.
  local weak = setmetatable({}, { __mode = "v" })
  weak[1] = new_runtime()
  collectgarbage()
  collectgarbage()
  check(weak[1] == nil, "an unreferenced runtime is collected (its __gc proxy destroys it)")
end

---------------------------------------------------------------------------------------------------
group("errors")
---------------------------------------------------------------------------------------------------
local parity_api = args.source .. "/tests/parity/parity.api.toml"
local calc_api = args.source .. "/examples/contracts/example_calc.api.toml"
do
  local rt = new_runtime()
  local ok, e = pcall(rt.load, rt, tmp .. "/missing-bundle")
  check(not ok and polyplug.is_error(e) and e.code ~= 0 and e.message:find("missing-bundle", 1, true),
        "loading a missing directory raises with the path", e)
  check(not ok and tostring(e):find("^polyplug: ") ~= nil, "the error has a __tostring", e)
  eq(#rt:bundles(), 0, "the runtime stays as it was")
  local bad = tmp .. "/bad.api.toml"
  write(bad, "[[guest_contract]]\nname = \"x.y\"\nversion = \"1.0\"\n\n[[guest_contract.functions]]\nname = \"f\"\nparams = [{ name = \"a\", type = \"NoSuchType\" }]\n")
  local ok2, e2 = pcall(rt.find, rt, "x.y", { api = bad })
  check(not ok2 and polyplug.is_error(e2) and e2.code == 1 and
        e2.message:find("bad.api.toml:%d+:%d+: ") ~= nil, "a bad contract file gives file:line:column", e2)
  write(bad, "this is = = not toml\n")
  local ok3, e3 = pcall(rt.describe, rt, bad)
  check(not ok3 and polyplug.is_error(e3) and e3.message:find("bad.api.toml:%d+:%d+: ") ~= nil,
        "a contract file that is not TOML gives file:line:column", e3)
  raises(function() rt:find("no.such.Contract", { api = parity_api }) end, "NotFound",
         "test.parity.Kit@1", "an unknown contract name lists the file's contracts")
  raises(function() rt:find("test.parity.Kit", { api = parity_api }) end, "NotFound",
         "no provider", "a contract nobody provides is NotFound")
  raises(function() rt:find("test.parity.Kit") end, "InvalidArgument", "api =",
         "find without a contract file says what to pass")
  local ok4, e4 = pcall(rt.unload, rt, "nobody")
  check(not ok4 and polyplug.is_error(e4) and e4.code ~= 0 and e4.message:find("nobody", 1, true) ~= nil,
        "unloading an unknown bundle raises, naming it", e4)
  rt:close()
end

---------------------------------------------------------------------------------------------------
-- The parity contract, every type category, in every built language
---------------------------------------------------------------------------------------------------
local function fmt(d) return string.format("%.17g", d) end
local function f32(x) return tonumber(ffi.new("float", x)) end
local function bytes(s) return (s:gsub("[^\32-\126]", function(c) return string.format("\\x%02x", c:byte()) end)) end
local I64_MIN, I64_MAX = -0x8000000000000000LL, 0x7fffffffffffffffLL
local U64_MAX = 0xffffffffffffffffULL

local function ints_text(v)
  return string.format("Ints{%d,%d,%d,%d,%d,%d,%s,%s}", v.a, v.b, v.c, v.d, v.e, v.f,
                       tostring(v.g), tostring(v.h))
end

local function parity_rows(kit, lang)
  for _, r in ipairs { { 2, 40, 42 }, { 2147483647, 1, -2147483648 }, { -2147483648, -1, 2147483647 }, { -7, 7, 0 } } do
    eq(kit:add_i32(r[1], r[2]), r[3], "add_i32(" .. r[1] .. ", " .. r[2] .. ")")
  end
  local minimum = { a = -128, b = 0, c = -32768, d = 0, e = -2147483648, f = 0, g = I64_MIN, h = 0ULL }
  local maximum = { a = 127, b = 255, c = 32767, d = 65535, e = 2147483647, f = 4294967295, g = I64_MAX, h = U64_MAX }
  local safe = { a = -1, b = 200, c = -300, d = 60000, e = -70000, f = 4000000000, g = -(2 ^ 53), h = 2 ^ 53 }
  for _, r in ipairs { { "minimum", minimum, { JavaScript = true } },
                       { "maximum", maximum, { JavaScript = true, Lua = true } },
                       { "2^53", safe, {} } } do
    local ok, got = pcall(kit.echo_ints, kit, r[2])
    if r[3][lang] then
      check(not ok and polyplug.is_error(got) and got.code == 3, "echo_ints(" .. r[1] .. ") is refused with Panic", got)
    else
      local want = { a = r[2].a, b = r[2].b, c = r[2].c, d = r[2].d, e = r[2].e, f = r[2].f,
                     g = ffi.new("int64_t", r[2].g), h = ffi.new("uint64_t", r[2].h) }
      eq(ok and ints_text(got), ints_text(want), "echo_ints(" .. r[1] .. ")")
      if ok then check(ffi.istype("int64_t", got.g) and ffi.istype("uint64_t", got.h), "i64/u64 results are cdata") end
    end
  end
  for _, r in ipairs { { 1.5, 0.25 }, { -0.0, -0.0 }, { 3.4028235e38, 1e308 }, { 1e-45, -2.5 } } do
    eq(fmt(kit:scale(r[1], r[2])), fmt(f32(r[1]) * 2.0 + r[2]), "scale(" .. fmt(r[1]) .. ", " .. fmt(r[2]) .. ")")
  end
  for _, r in ipairs { { false, false }, { true, false }, { false, true }, { true, true } } do
    eq(kit:differ(r[1], r[2]), r[1] ~= r[2], "differ(" .. tostring(r[1]) .. ", " .. tostring(r[2]) .. ")")
  end
  for _, name in ipairs { "world", "", "nul\0in", "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x94\x8c" } do
    eq(bytes(kit:greet(name)), bytes("hello, " .. name .. "!"), "greet(\"" .. bytes(name) .. "\")")
  end
  for _, data in ipairs { "", "\1\0\255", "abc" } do
    eq(bytes(kit:reverse(data)), bytes(data:reverse()), "reverse(" .. bytes(data) .. ")")
  end
  local t = kit:total { { x = 1, y = 2 }, { x = 2147483647, y = -3 }, { x = 1, y = -2147483648 } }
  eq(t.x .. "," .. t.y, "-2147483647,2147483647", "total(3 points)")
  t = kit:total {}
  eq(t.x .. "," .. t.y, "0,0", "total(no points)")
  local s = kit:describe { tag = 255, weight = 1.25, color = "Blue", label = "\xc3\xa9t\xc3\xa9" }
  eq(string.format("Shape{%d,%s,%d,%s}", s.tag, fmt(s.weight), s.color, bytes(s.label)),
     "Shape{0,2.5,1," .. bytes("\xc3\xa9t\xc3\xa9!") .. "}", "describe(Shape)")
  eq(kit:enum("Color", s.color), "Red", "an enum result's name")
  for _, r in ipairs { { 0, "" }, { 2, "1,2" }, { 3, "1,2,256" } } do
    eq(table.concat(kit:colors(r[1]), ","), r[2], "colors(" .. r[1] .. ")")
  end
  raises(function() kit:colors(4) end, "Panic", "n too large", "colors(4) raises Panic")
  raises(function() kit:fail(-7) end, "Panic", "parity failure -7", "fail(-7) raises Panic with its message")
  eq(kit:add_i32(1, 1), 2, "calls work after an error")
end

local function parity_bad_args(kit)
  raises(function() kit:add_i32(2 ^ 31, 0) end, "InvalidArgument", "out of range", "i32 2^31 is out of range")
  raises(function() kit:add_i32(1.5, 0) end, "InvalidArgument", "needs an integer", "1.5 is not an i32")
  raises(function() kit:add_i32("1", 0) end, "InvalidArgument", "needs an integer", "a string is not an i32")
  raises(function() kit:add_i32(1) end, "InvalidArgument", "expects 2 argument", "too few arguments")
  raises(function() kit:add_i32(1, 2, 3) end, "InvalidArgument", "expects 2 argument", "too many arguments")
  raises(function() kit:colors(-1) end, "InvalidArgument", "out of range", "u32 -1 is out of range")
  raises(function() kit:colors(0x100000000LL) end, "InvalidArgument", "out of range", "u32 from an int64 cdata out of range")
  raises(function() kit:echo_ints { a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = -1 } end,
         "InvalidArgument", "u64 cannot hold", "u64 -1 is refused")
  raises(function() kit:echo_ints { a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 2 ^ 60 } end,
         "InvalidArgument", "beyond 2^53", "a u64 from an inexact Lua number is refused")
  raises(function() kit:echo_ints { a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = U64_MAX, h = 0 } end,
         "InvalidArgument", "i64 out of range", "i64 from a uint64 cdata beyond 2^63-1 is refused")
  raises(function() kit:echo_ints { a = 128, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0 } end,
         "InvalidArgument", "argument v.a: i8 out of range", "a struct field out of range names the field")
  raises(function() kit:echo_ints { a = 0, b = 0 } end, "InvalidArgument", "needs field c", "a missing struct field is named")
  raises(function() kit:echo_ints { a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0, z = 1 } end,
         "InvalidArgument", "no field z", "an unknown struct field is named")
  raises(function() kit:differ(1, 0) end, "InvalidArgument", "bool needs true or false", "a number is not a bool")
  raises(function() kit:greet(42) end, "InvalidArgument", "StringView needs a string", "a number is not a StringView")
  raises(function() kit:total { { x = 1, y = 2 }, { x = "a", y = 0 } } end, "InvalidArgument",
         "points[2].x", "an array element's error names its index")
  raises(function() kit:total { x = 1 } end, "InvalidArgument", "sequence", "a non-sequence table is not an array")
  raises(function() kit:describe { tag = 0, weight = 0, color = "Purple", label = "" } end, "InvalidArgument",
         "no variant Purple", "an unknown enum variant lists the variants")
  raises(function() kit:describe { tag = 0, weight = 0, color = 70000, label = "" } end, "InvalidArgument",
         "out of range", "an enum value beyond its repr")
  raises(function() return kit.no_such_function end, "InvalidArgument", "no function no_such_function",
         "an unknown function is named")
  raises(function() kit:call("nope") end, "InvalidArgument", "no function nope", "call() of an unknown function")
  eq(kit:call("add_i32", 20, 22), 42, "call() by name")
  eq(kit:add_i32(0x7fffffffLL, 0), 2147483647, "an int64 cdata within range is accepted")
end

local langs = {
  { "C", "c", true }, { "C++", "cpp", true }, { "Rust", "rust", args.rust == "1" },
  { "Lua", "lua", built.lua }, { "Python", "python", built.python }, { "JavaScript", "js", built.js },
}
local vm_loaders = {}
for _, l in ipairs { "lua", "python", "js" } do if built[l] then vm_loaders[#vm_loaders + 1] = l end end
do
  for _, l in ipairs(langs) do
    group("parity " .. l[1])
    if not l[3] then
      print("skip parity " .. l[1] .. ": not built in this configuration")
    else
      local rt = new_runtime { loaders = vm_loaders }
      rt:load(args.parity .. "/" .. l[2])
      local kit = rt:find("test.parity.Kit", { api = parity_api })
      eq(kit:is_vm(), l[2] == "lua" or l[2] == "python" or l[2] == "js", "dispatch is " .. (kit:is_vm() and "VM" or "native"))
      parity_rows(kit, l[1])
      if l[2] == "c" or l[2] == "lua" then parity_bad_args(kit) end
      local infos = rt:bundles()
      eq(#infos, 1, "one bundle loaded")
      local info = infos[1] or {}
      check(type(info.name) == "string" and info.name ~= "" and info.path:find(l[2], 1, true) ~= nil,
            "bundle info has name and path", tostring(info.name) .. " " .. tostring(info.path))
      local kit_id = kit:contract().id
      check(#info.contracts == 1 and info.contracts[1] == kit_id, "bundle info lists test.parity.Kit@1's id")
      eq(info.loader, l[2] == "c" and "native" or l[2] == "cpp" and "native" or l[2] == "rust" and "native" or l[2],
         "bundle info names the loader")
      kit:close()
      raises(function() kit:add_i32(1, 2) end, "Closed", "closed", "a closed contract object raises Closed")
      rt:close()
      raises(function() kit:add_i32(1, 2) end, "Closed", "closed", "calling after the runtime closed raises Closed")
    end
  end
end

---------------------------------------------------------------------------------------------------
group("find_all and unload")
---------------------------------------------------------------------------------------------------
do
  local rt = new_runtime { loaders = vm_loaders }
  local n = 0
  for _, l in ipairs(langs) do
    if l[3] then rt:load(args.parity .. "/" .. l[2]) n = n + 1 end
  end
  local all = rt:find_all("test.parity.Kit", { api = parity_api })
  eq(#all, n, "find_all gives one object per loaded provider")
  local sums = 0
  for _, k in ipairs(all) do if k:add_i32(40, 2) == 42 then sums = sums + 1 end end
  eq(sums, n, "every provider adds")
  eq(rt:count("test.parity.Kit", { api = parity_api }), n, "count() agrees")
  -- Unload the C provider: the object pinned to it raises, the others keep working.
  local first = rt:find("test.parity.Kit", { api = parity_api })
  local c_obj
  for _, k in ipairs(all) do if not k:is_vm() then c_obj = c_obj or k end end
  local names = {}
  for _, b in ipairs(rt:bundles()) do names[#names + 1] = b.name end
  local c_name = rt:bundle(polyplug.fnv1a64((rt:bundles()[1]).name)).name
  rt:unload(c_name)
  eq(#rt:bundles(), n - 1, "unload by name removes one bundle")
  local ok, e = pcall(all[1].add_i32, all[1], 1, 1)
  check(not ok and polyplug.is_error(e) and (e.code_name == "StaleHandle" or e.code_name == "NotFound"),
        "an object pinned to an unloaded provider raises StaleHandle or NotFound", e)
  if n > 1 then
    eq(first:add_i32(1, 2), 3, "an object from find() moves to the next provider")
    eq(all[2]:add_i32(2, 2), 4, "the other providers keep working")
  end
  for _, k in ipairs(all) do k:close() end
  first:close()
  local unloaded = rt:unload_cascade((rt:bundles()[1] or {}).id or 0)
  check(n == 1 or unloaded >= 1, "unload_cascade by id counts what it unloaded", unloaded)
  rt:close()
  check(c_obj ~= nil or n == 0, "a native provider was among them")
end

---------------------------------------------------------------------------------------------------
group("unmap while JIT-compiled code runs")
---------------------------------------------------------------------------------------------------
-- The unmap of an unloaded bundle asks every thread, by a signal, whether it runs the bundle's
-- code. This thread is then in a trace LuaJIT compiled, for which LuaJIT registers unwind tables
-- that hold only at its call sites: unwinding from the signal (what the probe did with
-- backtrace()) aborted the host. The probe now reads the interrupted stack instead, and must
-- still let the unmap happen, since no frame of the bundle is live.
do
  pcall(ffi.cdef, "int usleep(unsigned int usec);")
  local function mapped(name)
    local f = assert(io.open("/proc/self/maps", "r"))
    local maps = f:read("*a")
    f:close()
    return maps:find(name, 1, true) ~= nil
  end
  local other = built.lua and "lua" or "cpp"  -- a VM call from a trace, or a native one
  local rt = new_runtime { loaders = vm_loaders }
  rt:set_unmap_policy("grace", 1)
  for round = 1, 3 do
    rt:load(args.parity .. "/c")
    rt:load(args.parity .. "/" .. other)
    for _, k in ipairs(rt:find_all("test.parity.Kit", { api = parity_api })) do
      for i = 1, 500 do assert(k:add_i32(i, 1) == i + 1) end  -- both traced
      k:close()
    end
    rt:unload("parity-c")
    local kit = rt:find("test.parity.Kit", { api = parity_api })
    local sum, want, started = 0, 0, os.clock()
    repeat  -- in a trace while the unmap's probe arrives, 1 ms after the unload
      for i = 1, 10000 do sum = sum + kit:add_i32(i, 1) end
      want = want + 50015000
    until os.clock() - started > 0.25
    kit:close()
    eq(sum, want, "round " .. round .. ": the host survived the probe and every call added")
    local waited = 0
    while mapped("libparity_c.so") and waited < 2000 do ffi.C.usleep(10000) waited = waited + 10 end
    check(not mapped("libparity_c.so"), "round " .. round .. ": the unloaded bundle was unmapped",
          waited .. " ms")
    rt:unload("parity-" .. other)
  end
  rt:close()
end

-- Runs `run` with a trace watcher on `loop`: checks that the JIT compiles the loop and that no
-- trace of it aborts on something the JIT cannot compile ("NYI: ...", such as a struct passed by
-- value, which would leave every call interpreted). Aborts over the traces' shape (a root trace
-- that leaves the loop or meets an inner one) depend on where the hot counters fire first, vary
-- between runs and are retried by the JIT: they are not the loop failing to compile. Skipped,
-- with the reason, when the JIT is off.
local function jit_compiles(loop, run, what)
  local jit_util_ok = pcall(require, "jit.util")
  local vmdef_ok, vmdef = pcall(require, "jit.vmdef")
  if not (jit.status() and jit_util_ok and vmdef_ok) then
    print("skip the JIT check: " .. (jit.status() and "jit.util or jit.vmdef is missing" or
                                     "the JIT is off in this luajit"))
    return
  end
  local compiled, aborted = false, nil
  local function watch(event, _, func, _, otr, oex)
    if func ~= loop then return end
    if event == "stop" then compiled = true end
    local why = type(otr) == "number" and vmdef.traceerr[otr] or tostring(otr)
    if event == "abort" and why:find("NYI", 1, true) then
      aborted = why .. " " .. tostring(oex)
    end
  end
  jit.attach(watch, "trace")
  run()
  jit.attach(watch)
  check(compiled and not aborted, what, tostring(aborted))
end

---------------------------------------------------------------------------------------------------
group("HostApi handles")
---------------------------------------------------------------------------------------------------
-- find_guest_contract is declared with the handle as one uint64_t: a struct result is a call
-- LuaJIT's JIT does not compile ("NYI: unsupported C function type"), which aborted every trace
-- around a lookup and left it interpreted (about 200 ns a call instead of about 20).
do
  local rt = new_runtime()
  rt:load(args.parity .. "/c")
  local host = rt:host_api()
  local id = rt:describe(parity_api).contracts[1].id
  local packed = host.find_guest_contract(host, id, 0)
  check(ffi.istype("uint64_t", packed), "find_guest_contract gives the handle as one uint64_t")
  local h = polyplug.unpack_handle(packed)
  check(h.index ~= 0xffffffff, "the handle names the provider", tostring(packed))
  eq(polyplug.pack_handle(h), packed, "pack_handle inverts unpack_handle")
  local iface = host.resolve_guest_contract(host, packed)
  check(iface ~= nil and iface.contract_id == id, "resolve_guest_contract takes the packed handle")
  eq(polyplug.unpack_handle(host.find_guest_contract(host, 12345ULL, 0)).index, 0xffffffff,
     "an unknown contract gives the null handle (index 0xffffffff)")
  local function lookups(n)
    local found = 0
    for _ = 1, n do
      if host.find_guest_contract(host, id, 0) == packed then found = found + 1 end
    end
    return found
  end
  jit_compiles(lookups, function() eq(lookups(2000), 2000, "2,000 lookups find the same handle") end,
               "a loop of lookups is compiled by the JIT, not aborted")
  rt:close()
end

---------------------------------------------------------------------------------------------------
group("the call path is compiled")
---------------------------------------------------------------------------------------------------
-- Each contract function's method is generated for it (polyplug.lua, "The call path"): a loop of
-- typed calls, native and VM, must be compiled by the JIT, not aborted (an NYI in the call path,
-- such as a struct passed by value, would leave every call interpreted, several times slower).
do
  for _, guest in ipairs { "c", built.lua and "lua" or nil } do
    local rt = new_runtime { loaders = guest == "lua" and { "lua" } or {} }
    rt:load(args.parity .. "/" .. guest)
    local kit = rt:find("test.parity.Kit", { api = parity_api })
    local function calls(n)
      local good = 0
      for i = 1, n do
        if kit:greet("x") == "hello, x!" and kit:add_i32(i, 1) == i + 1 then good = good + 1 end
      end
      return good
    end
    jit_compiles(calls, function() eq(calls(2000), 2000, guest .. ": 2,000 greet and add_i32 calls") end,
                 guest .. ": a loop of typed calls is compiled by the JIT, not aborted")
    rt:close()
  end
end

---------------------------------------------------------------------------------------------------
group("the call path's edges")
---------------------------------------------------------------------------------------------------
-- The reused per-object storage and the one revision compare (polyplug.lua, "The call path").
do
  local rt = new_runtime()
  rt:load(args.parity .. "/c")
  local ints = { a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, g = 7, h = 8 }
  -- A closed object stays closed: is_vm raises as a call does and does not attach it again.
  local kit = rt:find("test.parity.Kit", { api = parity_api })
  kit:close()
  raises(function() kit:is_vm() end, "Closed", "closed", "is_vm on a closed object")
  raises(function() kit:greet("x") end, "Closed", "closed", "a call after is_vm on a closed object")
  check(rt._contracts[kit] == nil and kit._iface == nil, "is_vm does not reopen a closed object")
  -- A call that fails before the FFI call (no function in the provider's table) leaves the object
  -- idle: not busy, its anchors restored.
  kit = rt:find("test.parity.Kit", { api = parity_api })
  local real = kit._iface
  kit._iface = ffi.new("polyplug_GuestIface")  -- function_count 0
  raises(function() kit:echo_ints(ints) end, "FunctionNotAvailable", "has no function", "an empty function table")
  kit._iface = real
  eq(kit._st.busy, false, "a call that raised before the FFI call leaves the object not busy")
  eq(kit._anchors, nil, "a call that raised before the FFI call restores the anchors")
  check(kit:echo_ints(ints) ~= nil, "a call after it")
  -- A call of the same object from a struct argument's __index while the arguments are stored:
  -- the outer call's arguments are not overwritten.
  kit = rt:find("test.parity.Kit", { api = parity_api })  -- a fresh object for each case
  local want = ints_text(kit:echo_ints(ints))
  local inner = nil
  local lazy = setmetatable({ a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, h = 8 }, {
    __index = function(_, key)
      if key == "g" then
        inner = kit:echo_ints { a = 100, b = 100, c = 100, d = 100, e = 100, f = 100, g = 100, h = 100 }
        return 7
      end
    end,
  })
  eq(ints_text(kit:echo_ints(lazy)), want, "a call made from an argument's __index: the outer call's arguments")
  eq(inner and ints_text(inner), ints_text(kit:echo_ints { a = 100, b = 100, c = 100, d = 100, e = 100, f = 100, g = 100, h = 100 }),
     "a call made from an argument's __index: the inner call")
  -- The reused result is cleared before each call: a provider that reports success without
  -- writing its result (here a Lua function in the table, so the call takes the JIT-off copy)
  -- returns a zero, not the previous call's result.
  kit = rt:find("test.parity.Kit", { api = parity_api })  -- a fresh object for each case
  eq(kit:add_i32(2, 40), 42, "add_i32 before")
  local id = kit._c.by_name.add_i32.id
  local noop = ffi.cast("polyplug_GuestFnSplit", function() end)
  kit._st.nojit = true
  kit._st.fns[id] = noop
  eq(kit:add_i32(1, 1), 0, "a result the provider did not write is zero, not the previous call's")
  kit._st.fns[id] = nil
  kit._st.nojit = rt._nojit or false
  noop:free()
  eq(kit:add_i32(1, 1), 2, "add_i32 after")
  -- A StringView result is a plugin's claim: a NULL pointer with a length, or a length past
  -- 2^31 - 1, raises InvalidPointer instead of reading (or returning an empty string).
  local greet_id = kit._c.by_name.greet.id
  for _, case in ipairs {
    { ptr = nil, len = 5, needle = "a NULL pointer with length 5", what = "NULL with a length" },
    { ptr = "x", len = 2 ^ 40, needle = "beyond the limit", what = "a length of 2^40" },
  } do
    local liar = ffi.cast("polyplug_GuestFnSplit", function(_, _, _, out)
      local sv = ffi.cast("polyplug_StringView*", out)
      sv.ptr = case.ptr and ffi.cast("const uint8_t*", case.ptr) or nil
      sv.len = case.len
    end)
    kit._st.nojit = true
    kit._st.fns[greet_id] = liar
    raises(function() return kit:greet("x") end, "InvalidPointer", case.needle,
           "a StringView result: " .. case.what)
    kit._st.fns[greet_id] = nil
    kit._st.nojit = rt._nojit or false
    liar:free()
  end
  eq(kit:greet("x"), "hello, x!", "greet after")
  rt:close()
  raises(function() kit:is_vm() end, "Closed", "closed", "is_vm after the runtime closed")
end

---------------------------------------------------------------------------------------------------
group("load_dirs")
---------------------------------------------------------------------------------------------------
do
  local dir = tmp .. "/plugins"
  assert(run("mkdir -p '" .. dir .. "/broken' && cp -r '" .. args.parity .. "/c' '" .. dir .. "/c'"))
  write(dir .. "/broken/manifest.toml", "this is not = = toml\n")
  local rt = new_runtime()
  local r = rt:load_dirs { dir }
  eq(r.loaded, 1, "load_dirs loads the good bundle")
  eq(r.skipped, 1, "and skips the broken one")
  check(r.diagnostics:find("broken", 1, true) ~= nil, "the diagnostics name the broken candidate", r.diagnostics)
  local kit = rt:find("test.parity.Kit", { api = parity_api })
  eq(kit:add_i32(2, 40), 42, "the discovered bundle works")
  raises(function() rt:load_dirs {} end, "InvalidArgument", nil, "load_dirs without directories is refused")
  rt:close()
end

---------------------------------------------------------------------------------------------------
group("reload")
---------------------------------------------------------------------------------------------------
do
  -- A native bundle reloaded in place: the object's cached function pointers are read again.
  local dir = tmp .. "/native_c"
  assert(run("cp -r '" .. args.parity .. "/c' '" .. dir .. "'"))
  local seen = {}
  local rt = new_runtime { hot_reload = true, on_reload = function(p) seen[#seen + 1] = p.phase end }
  rt:load(dir)
  local kit = rt:find("test.parity.Kit", { api = parity_api })
  eq(kit:greet("a"), "hello, a!", "native before the reload")
  rt:reload(dir)
  eq(table.concat(seen, ","), "Preparing,Reloaded", "native reload phases")
  for _ = 1, 3 do eq(kit:greet("b"), "hello, b!", "native after the reload") end
  rt:close()
end
if built.lua then
  local dir = tmp .. "/lua_calc"
  assert(run("cp -r '" .. args.scripts .. "/lua_calc' '" .. dir .. "'"))
  local phases = {}
  local rt = new_runtime {
    hot_reload = true, loaders = { "lua" },
    on_reload = function(p) phases[#phases + 1] = p end,
  }
  rt:load(dir)
  local calc = rt:find("example.calc", { api = calc_api })
  check(calc:describe():find("Lua calc", 1, true) ~= nil, "version 1 describes itself", calc:describe())
  eq(calc:add(2, 40), 42, "version 1 adds")
  write(dir .. "/calc.lua", read(args.source .. "/examples/scripts/lua_calc/calc_v2.lua"))
  rt:reload(dir)
  local seq = {}
  for _, p in ipairs(phases) do seq[#seq + 1] = p.phase end
  eq(table.concat(seq, ","), "Preparing,Reloaded", "phases in order")
  eq(phases[1] and phases[1].bundle_name, "lua-calc", "the phase names the bundle")
  check(phases[1] and phases[1].bundle_id == polyplug.fnv1a64("lua-calc"), "the phase carries the bundle id")
  eq(calc:describe(), "Lua calc, version 2", "the same object calls the new code")
  eq(calc:add(-2, -40), -42, "and adds")
  phases = {}
  write(dir .. "/calc.lua", "this is not lua (\n")
  local ok, e = pcall(rt.reload, rt, dir)
  check(not ok and polyplug.is_error(e), "a broken new version fails the reload", e)
  seq = {}
  for _, p in ipairs(phases) do seq[#seq + 1] = p.phase end
  eq(table.concat(seq, ","), "Preparing,Failed", "phases Preparing, Failed")
  check(phases[2] and type(phases[2].reason) == "string" and phases[2].reason ~= "", "Failed carries a reason",
        phases[2] and phases[2].reason)
  eq(calc:describe(), "Lua calc, version 2", "the old code keeps serving")
  rt:close()
else
  print("skip reload: the Lua loader is not built")
end

---------------------------------------------------------------------------------------------------
group("host contract")
---------------------------------------------------------------------------------------------------
do
  local kitchen_api = args.source .. "/tests/cli/kitchen.api.toml"
  local heard = {}
  local fail_next = false
  local reenter = nil  -- run once from inside the next write (see "re-entrant calls" below)
  local rt = new_runtime()
  rt:register_host_contract("host.test.cli.Log", {
    api = kitchen_api,
    implementation = {
      write = function(level, message)
        if fail_next then error("the host log is full") end
        heard[#heard + 1] = level .. ":" .. message
        if reenter then
          local f = reenter
          reenter = nil
          f()
        end
        return true
      end,
    },
  })
  rt:load(args.kitchen)
  local k = rt:find("test.cli.Kitchen", { api = kitchen_api })
  eq(bytes(k:echo("hi\0there")), bytes("v1:hi\0there"), "kitchen echo keeps embedded NUL")
  eq(heard[1] and bytes(heard[1]), bytes("3:v1:hi\0there"), "the plugin called the Lua host contract")
  for i = 1, 2000 do k:echo("n" .. i) end
  eq(heard[#heard], "3:v1:n2000", "2000 calls through the callback (JIT kept off that path)")
  eq(k:mix(-128, 65535, -2147483648, 5, 1.5, 0.25, true, "Blue"),
     ffi.new("int64_t", -128 + 65535 - 2147483648 + 5 + 3 + 1 + 1000 + 256), "kitchen mix (every scalar kind)")
  local m = k:scale({ tag = 7, value = 1.5, small = 3 }, 2)
  eq(m.tag .. "," .. m.value .. "," .. m.small, "7,3,6", "kitchen scale (padded struct)")
  local r = k:describe { flag = true, inner = { a = 1, b = 2, c = 3 }, label = "lbl", points = { { x = 1, y = 2 } },
                         color = "Red", payload = "xyz", opaque = nil, half = 5 }
  check(r.flag == false and r.inner.a == 2 and r.inner.b == 3 and r.inner.c == 4 and r.label == "v1:lbl" and
        r.color == 256 and r.half == -5 and #r.points == 1 and r.points[1].y == 2 and r.payload == "xyz",
        "kitchen describe (nested struct, array, buffer, enum in a struct)")
  eq(k:lists({ 1, 2 }, { "ab", "c" }, { "Red", "Blue" }, { nil }, { true, false, true }, { "abcd" }),
     2 + 3 + 257 + 0 + 2 + 4, "kitchen lists (arrays of every element kind)")
  eq(k:grant("Write", ffi.cast("void*", 1)), 3, "kitchen grant (bitflag enum)")
  raises(function() k:grant("Write", nil) end, "Panic", "nichts zu tun", "a plugin exception is Panic with its text")
  -- Re-entrant calls: the Lua host contract calls back into the object whose echo is running. A
  -- call reuses its object's storage (arguments, result, AbiError) only when no other call on it
  -- is running; these inner calls must get their own: the outer call's arguments stay as they
  -- were (read from the object's storage, as a guest that reads them late would), and an inner
  -- call's error is raised there and does not reach the outer call.
  local want_mix = k:mix(1, 2, 3, 4, 0.5, 0.25, false, "Red")
  local function echo_argument()
    local text = k._st.args_echo.f_text
    return ffi.string(text.ptr, text.len)
  end
  local inner = {}
  reenter = function()
    inner.mix = k:mix(1, 2, 3, 4, 0.5, 0.25, false, "Red")
    inner.scale = k:scale({ tag = 9, value = 0.5, small = 7 }, 3)
    inner.ok, inner.err = pcall(k.grant, k, "Write", nil)
    inner.echo = k:echo("inner")  -- last: the object is still busy after the other inner calls
    inner.outer_argument = echo_argument()
  end
  -- The plugin returns its instance's last echo, which the inner call replaced.
  eq(k:echo("outer"), "v1:inner", "re-entrant calls: the outer call returns")
  eq(table.concat(heard, " ", #heard - 1), "3:v1:outer 3:v1:inner", "re-entrant calls: the host contract ran inside")
  eq(inner.echo, "v1:inner", "re-entrant calls: an inner call of the same function")
  eq(inner.outer_argument, "outer", "re-entrant calls: the outer call's argument storage was not reused")
  eq(inner.mix, want_mix, "re-entrant calls: an inner call with scalar arguments")
  check(inner.scale and inner.scale.tag == 9 and inner.scale.value == 1.5 and inner.scale.small == 21,
        "re-entrant calls: an inner call with a struct argument and result")
  check(inner.ok == false and polyplug.is_error(inner.err) and inner.err.code_name == "Panic" and
        inner.err.message:find("nichts zu tun", 1, true) ~= nil,
        "re-entrant calls: an inner call's error is raised in the inner call", inner.err)
  eq(k:echo("after"), "v1:after", "re-entrant calls: the next call works")
  -- A Lua error inside the implementation: Panic to the plugin, whose glue passes it on.
  fail_next = true
  raises(function() k:echo("still") end, "Panic", "the host log is full",
         "an error in the Lua implementation reaches the caller as Panic, no crash")
  -- Call the host contract ourselves to see the AbiError it produced.
  local host = rt:host_api()
  local set = rt:describe(kitchen_api)
  local log_c
  for _, c in ipairs(set.contracts) do if c.name == "host.test.cli.Log" then log_c = c end end
  local iface = host.resolve_host_contract_interface(host, log_c.id, 0)
  local inst = host.get_host_contract(host, log_c.id, 0)
  check(iface ~= nil and inst.data ~= nil, "the registered host contract resolves")
  local fn = ffi.cast("polyplug_HostFn", iface.dispatch.native.functions[0])
  local a = ffi.new(log_c.functions[1].args_ct)
  local msg = "direct"
  a.f_level = 1
  a.f_message.ptr = ffi.cast("const uint8_t*", msg)
  a.f_message.len = #msg
  local out = ffi.new("bool[1]")
  local err = ffi.new("polyplug_AbiError[1]")
  fn(inst, a, out, err)
  eq(err[0].code, 3, "a Lua error becomes AbiError Panic (3)")
  check(ffi.string(err[0].message.ptr, err[0].message.len):find("the host log is full", 1, true) ~= nil,
        "with the error text as its message")
  fail_next = false
  err[0].code = 0
  fn(inst, a, out, err)
  check(err[0].code == 0 and out[0] == true and heard[#heard] == "1:direct", "and the next call succeeds")
  raises(function() rt:register_host_contract("host.test.cli.Log", { api = kitchen_api, implementation = {} }) end,
         "InvalidArgument", "lacks", "an implementation without the functions is refused")
  raises(function() rt:register_host_contract("host.no.Such", { api = kitchen_api, implementation = {} }) end,
         "NotFound", "host.test.cli.Log@1", "an unknown host contract lists the file's host contracts")
  k:close()
  rt:close()
end

---------------------------------------------------------------------------------------------------
group("log callback")
---------------------------------------------------------------------------------------------------
do
  local lines = {}
  local rt = new_runtime { log_level = "debug", log = function(level, scope, message)
    lines[#lines + 1] = { level, scope, message }
  end }
  pcall(rt.load, rt, tmp .. "/missing-for-log")
  check(#lines > 0, "the runtime logged through the Lua callback")
  check(#lines > 0 and type(lines[1][1]) == "number" and type(lines[1][2]) == "string" and
        type(lines[1][3]) == "string", "with (level, scope, message)")
  local any = false
  for _, l in ipairs(lines) do if l[3]:find("missing-for-log", 1, true) then any = true end end
  check(any, "the message is the runtime's")
  rt:close()
end

---------------------------------------------------------------------------------------------------
group("memory")
---------------------------------------------------------------------------------------------------
do
  local function rss_kb()
    local f = io.open("/proc/self/statm", "r")
    if not f then return nil end
    local _, res = f:read("*l"):match("(%d+)%s+(%d+)")
    f:close()
    return tonumber(res) * 4
  end
  local rt = new_runtime { loaders = vm_loaders }
  rt:load(args.parity .. "/c")
  if built.lua then rt:load(args.parity .. "/lua") end
  local function round(n)
    for _ = 1, n do
      local all = rt:find_all("test.parity.Kit", { api = parity_api })
      for _, k in ipairs(all) do k:greet("x") k:close() end
      local b = rt:bundles()
      assert(#b >= 1)
    end
    collectgarbage()
  end
  round(1000)
  local before = rss_kb()
  round(10000)
  local after = rss_kb()
  if os.getenv("POLYPLUG_TEST_SANITIZED") then
    print("skip RSS bound: under AddressSanitizer RSS measures its quarantine of freed memory")
  elseif before then
    check(after - before < 8192, "10,000 find_all/bundles iterations: RSS grew " .. (after - before) .. " KiB (< 8 MiB)")
  else
    print("skip RSS: no /proc/self/statm")
  end
  rt:close()
end

run("rm -rf '" .. tmp .. "'")
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
