-- SPDX-License-Identifier: MIT
-- polyplug.lua: a LuaJIT 2.1 host module over libpolyplug.so, through the FFI only (no C
-- compiler). Contracts come from their contract files (*.api.toml): the runtime describes their
-- layouts (host.polyplug.Runtime@1, DescribeContractFile) and this module builds the FFI types
-- from that description, checking every size and offset against it.
--
--   local polyplug = require("polyplug")
--   local rt = polyplug.runtime{ hot_reload = true, loaders = {"lua"} }
--   rt:load("build/examples/bundles/c_calc")
--   local calc = rt:find("example.calc", { api = "examples/contracts/example_calc.api.toml" })
--   print(calc:add(2, 40), calc:describe())
--   rt:close()
--
-- See docs/LUAJIT_HOST.md for the API, the type mapping and the lifetime rules.
local ffi = require("ffi")
local bit = require("bit")
local jit = require("jit")

local M = { _VERSION = "0.1.0" }

-- Functions that call into C code which may call back into Lua (log, on_reload, host
-- contracts). LuaJIT aborts the process when a callback arrives while a compiled trace is
-- inside such an FFI call, so these are never compiled (jit.off at the end of the file).
local NOJIT = {}

---------------------------------------------------------------------------------------------------
-- The C ABI (include/polyplug/abi.h), prefixed polyplug_ to stay out of others' way in the one
-- global ffi.cdef namespace. Callback types split by-value structs into their scalar members:
-- LuaJIT callbacks cannot take structs by value, and for these small all-integer structs
-- (StringView = {ptr, len}, HostContractInstance = {ptr}) the split form is the same machine ABI
-- on x86-64 SysV and AArch64 (each 8-byte member goes in the next integer register).
---------------------------------------------------------------------------------------------------
local ok_defined = pcall(ffi.typeof, "polyplug_HostApi")
if not ok_defined then
  ffi.cdef [[
typedef struct polyplug_StringView { const uint8_t* ptr; size_t len; } polyplug_StringView;
typedef struct polyplug_Buffer { uint8_t* ptr; size_t len; size_t cap; } polyplug_Buffer;
typedef struct polyplug_Array { void* items; size_t len; size_t align; } polyplug_Array;
typedef struct polyplug_Version { uint32_t major; uint32_t minor; uint32_t patch; } polyplug_Version;
typedef struct polyplug_AbiError { uint32_t code; polyplug_StringView message; } polyplug_AbiError;
typedef struct polyplug_Handle { uint32_t index; uint32_t generation; } polyplug_Handle;
typedef struct polyplug_Instance { void* data; uint64_t contract_id; } polyplug_Instance;
typedef struct polyplug_HostInstance { void* data; } polyplug_HostInstance;
typedef struct polyplug_VmLoaderData { void* data; } polyplug_VmLoaderData;
typedef struct polyplug_OverflowBlock { struct polyplug_OverflowBlock* next; size_t capacity; size_t used; } polyplug_OverflowBlock;
typedef struct polyplug_CallArena { uint8_t* cur; uint8_t* end; uint8_t* base; const void* host;
  polyplug_OverflowBlock* first_overflow; } polyplug_CallArena;
typedef void (*polyplug_GuestFn)(polyplug_Instance, const void*, void*, polyplug_AbiError*);
typedef void (*polyplug_GuestFnSplit)(void* instance_data, uint64_t contract_id, const void*, void*, polyplug_AbiError*);
typedef void (*polyplug_VmCallFnSplit)(void* loader_data, void* instance_data, uint64_t contract_id, uint32_t fn_id,
  const void*, void*, polyplug_CallArena*, polyplug_AbiError*);
typedef void (*polyplug_HostFn)(polyplug_HostInstance, const void*, void*, polyplug_AbiError*);
typedef void (*polyplug_VmCallFn)(polyplug_VmLoaderData, polyplug_Instance, uint32_t, const void*,
  void*, polyplug_CallArena*, polyplug_AbiError*);
typedef struct polyplug_NativeDispatch { uint32_t function_count; const void* const* functions; } polyplug_NativeDispatch;
typedef struct polyplug_VmDispatch { polyplug_VmCallFn call; polyplug_VmLoaderData loader_data; } polyplug_VmDispatch;
typedef union polyplug_Dispatch { polyplug_NativeDispatch native; polyplug_VmDispatch vm; } polyplug_Dispatch;
typedef struct polyplug_GuestIface { uint64_t contract_id; polyplug_Version contract_version;
  uint32_t dispatch_type; void* create_instance; void* destroy_instance; polyplug_Dispatch dispatch; } polyplug_GuestIface;
struct polyplug_HostIface;
typedef void (*polyplug_HostCreateCb)(const struct polyplug_HostIface*, const void*, polyplug_HostInstance*);
typedef void (*polyplug_HostDestroyCb)(const struct polyplug_HostIface*, void* instance_data);
typedef void (*polyplug_HostFnCb)(void* instance_data, const void* args, void* out, polyplug_AbiError* err);
typedef struct polyplug_HostIface { uint64_t contract_id; polyplug_Version contract_version; bool singleton;
  uint32_t dispatch_type; void* runtime; void* user_data; polyplug_HostCreateCb create_instance;
  polyplug_HostDestroyCb destroy_instance; polyplug_Dispatch dispatch; } polyplug_HostIface;
typedef struct polyplug_ReloadPhase { uint32_t phase_type; uint64_t bundle_id; polyplug_StringView bundle_name;
  polyplug_StringView reason; } polyplug_ReloadPhase;
typedef void (*polyplug_ReloadCb)(void*, const polyplug_ReloadPhase*);
typedef void (*polyplug_LogCb)(void*, uint32_t, const uint8_t*, size_t, const uint8_t*, size_t);
typedef struct polyplug_RuntimeConfig { uint32_t compatibility; bool hot_reload_enabled; polyplug_ReloadCb on_reload;
  void* on_reload_user_data; polyplug_LogCb log; void* log_user_data; uint32_t log_max_level; } polyplug_RuntimeConfig;
typedef struct polyplug_HostApi polyplug_HostApi;
struct polyplug_HostApi {
  void* runtime;
  void (*register_guest_contract)(const polyplug_HostApi*, const void*, const void*, polyplug_AbiError*);
  uint8_t* (*alloc)(const polyplug_HostApi*, size_t, size_t);
  void (*free)(const polyplug_HostApi*, uint8_t*, size_t, size_t);
  uint64_t (*find_guest_contract)(const polyplug_HostApi*, uint64_t, uint32_t);  /* a packed handle */
  polyplug_Array (*find_all_guest_contracts)(const polyplug_HostApi*, uint64_t, uint32_t);
  const polyplug_GuestIface* (*resolve_guest_contract)(const polyplug_HostApi*, uint64_t);
  polyplug_HostInstance (*get_host_contract)(const polyplug_HostApi*, uint64_t, uint32_t);
  const polyplug_HostIface* (*resolve_host_contract_interface)(const polyplug_HostApi*, uint64_t, uint32_t);
  polyplug_Array (*list_bundles)(const polyplug_HostApi*);
  polyplug_Array (*get_dependencies)(const polyplug_HostApi*);
  void (*load_bundle)(const polyplug_HostApi*, const uint8_t*, size_t, polyplug_AbiError*);
  void (*reload_bundle)(const polyplug_HostApi*, const uint8_t*, size_t, polyplug_AbiError*);
  void (*register_host_contract)(const polyplug_HostApi*, const polyplug_HostIface*, polyplug_AbiError*);
  void (*register_loader)(const polyplug_HostApi*, void*, polyplug_AbiError*);
  size_t (*get_last_error)(const polyplug_HostApi*, uint8_t*, size_t);
  size_t (*get_error_len)(const polyplug_HostApi*);
  void (*unload_bundle)(const polyplug_HostApi*, uint64_t, polyplug_AbiError*);
  void (*log)(const polyplug_HostApi*, uint32_t, polyplug_StringView, polyplug_StringView);
  void (*create_guest_instance)(const polyplug_HostApi*, const polyplug_GuestIface*, const void*, polyplug_Instance*);
  void (*destroy_guest_instance)(const polyplug_HostApi*, const polyplug_GuestIface*, polyplug_Instance);
  const uint64_t* (*revision_counter)(const polyplug_HostApi*);
  const void* reserved;
};
typedef struct polyplug_LoadDirsArgs { const polyplug_StringView* dirs; size_t count; } polyplug_LoadDirsArgs;
typedef struct polyplug_LoadDirsResult { uint32_t loaded; uint32_t skipped; polyplug_Buffer diagnostics; } polyplug_LoadDirsResult;
typedef struct polyplug_BundleIdArgs { uint64_t bundle_id; } polyplug_BundleIdArgs;
typedef struct polyplug_BundleInfo { uint64_t id; polyplug_Version version; uint32_t language;
  polyplug_Buffer name; polyplug_Buffer path; polyplug_Buffer loader; polyplug_Array contracts; } polyplug_BundleInfo;
typedef struct polyplug_WatchArgs { const polyplug_StringView* dirs; size_t count; uint32_t debounce_ms; uint32_t flags; } polyplug_WatchArgs;
typedef struct polyplug_UnmapPolicyArgs { uint32_t policy; uint32_t grace_ms; } polyplug_UnmapPolicyArgs;
typedef struct polyplug_DescribeArgs { polyplug_StringView path; } polyplug_DescribeArgs;
typedef struct polyplug_DlInfo { const char* dli_fname; void* dli_fbase; const char* dli_sname; void* dli_saddr; } polyplug_DlInfo;
void* dlopen(const char* file, int mode);
void* dlsym(void* handle, const char* name);
char* dlerror(void);
int dladdr(const void* addr, polyplug_DlInfo* info);
]]
end
if not pcall(ffi.typeof, "polyplug_lib_probe") then
  -- Declared separately: ffi.C lookups need no declaration of the library's own exports.
  ffi.cdef [[
typedef int polyplug_lib_probe;
const polyplug_HostApi* polyplug_runtime_create(const polyplug_RuntimeConfig* config);
void polyplug_runtime_destroy(const polyplug_HostApi* host);
]]
end

-- The layouts abi.h asserts; a mismatch here means the cdef above is wrong for this platform.
assert(ffi.sizeof("polyplug_HostApi") == 184 and ffi.sizeof("polyplug_RuntimeConfig") == 48 and
       ffi.sizeof("polyplug_GuestIface") == 56 and ffi.sizeof("polyplug_HostIface") == 80 and
       ffi.sizeof("polyplug_ReloadPhase") == 48 and ffi.sizeof("polyplug_AbiError") == 24 and
       ffi.sizeof("polyplug_CallArena") == 40 and ffi.sizeof("polyplug_BundleInfo") == 120 and
       ffi.sizeof("polyplug_OverflowBlock") == 24 and ffi.offsetof("polyplug_OverflowBlock", "used") == 16 and
       ffi.offsetof("polyplug_HostApi", "revision_counter") == 168,
       "polyplug.lua: the ABI layout does not match this platform (64-bit Linux is required)")

local C = ffi.C
local NULL = nil
local RTLD_NOW, RTLD_LOCAL, RTLD_DEEPBIND = 0x2, 0x0, 0x8

local t_err = ffi.typeof("polyplug_AbiError[1]")
local t_handle = ffi.typeof("polyplug_Handle")
-- GuestContractHandle crosses the FFI as one uint64_t, index in the low half and generation in
-- the high half: the 8-byte struct travels in that same register on x86-64 SysV and AArch64 (and
-- is laid out so on these little-endian targets), and a uint64_t result is a call the JIT
-- compiles, where a struct result is "NYI: unsupported C function type" (find_guest_contract ran
-- interpreted, about 200 ns a call, and aborted every trace around it).
local function handle_of(packed)
  return t_handle(tonumber(packed % 0x100000000ULL), tonumber(packed / 0x100000000ULL))
end
local function packed_handle(handle)
  return handle.index + handle.generation * 0x100000000ULL
end
local t_inst1 = ffi.typeof("polyplug_Instance[1]")
local t_hostfn = ffi.typeof("polyplug_HostFn")
-- The call path uses the split forms of GuestContractFn and VmCallFn (GuestContractInstance as
-- data + contract_id, VmLoaderData as its pointer): the same machine ABI on x86-64 SysV and
-- AArch64 (two integer registers), and unlike by-value struct arguments the JIT compiles them.
local t_guestfn = ffi.typeof("polyplug_GuestFnSplit")
local t_vmfn = ffi.typeof("polyplug_VmCallFnSplit")
local t_u8p = ffi.typeof("uint8_t*")
local t_cu8p = ffi.typeof("const uint8_t*")
local t_u64 = ffi.typeof("uint64_t")
local t_i64 = ffi.typeof("int64_t")
local t_sv = ffi.typeof("polyplug_StringView")
local t_u8arr = ffi.typeof("uint8_t[?]")

local RUNTIME_CONTRACT_ID = 0xe847ef18ULL * 0x100000000ULL + 0x831f2333ULL
local FN = { LoadDirs = 0, UnloadCascade = 1, SetUnmapPolicy = 2, BundleInfo = 3, Watch = 4,
             Unwatch = 5, PollWatch = 6, DescribeContractFile = 7 }

---------------------------------------------------------------------------------------------------
-- Errors
---------------------------------------------------------------------------------------------------
local CODE_NAMES = {
  [0] = "Ok", [1] = "Generic", [2] = "BufferTooSmall", [3] = "Panic", [4] = "NotFound",
  [5] = "StaleHandle", [6] = "FunctionNotAvailable", [7] = "DuplicateProvider",
  [8] = "InvalidPointer", [9] = "ReentrantCall", [100] = "HostContractNotFound",
  [101] = "HostContractVersionMismatch", [102] = "HostContractCallFailed",
  -- Raised by this module itself, never by the runtime (negative: no AbiError code).
  [-1] = "InvalidArgument", [-2] = "Closed", [-3] = "LayoutMismatch", [-4] = "LibraryNotFound",
}
local CODES = {}
for k, v in pairs(CODE_NAMES) do CODES[v] = k end
M.codes = CODES
M.code_names = CODE_NAMES

local Error = {}
Error.__index = Error
Error.__tostring = function(e)
  return string.format("polyplug: %s (%d): %s", e.code_name, e.code, e.message)
end
M.Error = Error

local function make_error(code, message)
  local name = CODE_NAMES[code] or (code >= 256 and "PluginDefined" or "Generic")
  return setmetatable({ code = code, code_name = name, message = message }, Error)
end

local function raise(code, message) error(make_error(code, message), 0) end
local function bad_arg(message) raise(-1, message) end

function M.is_error(value) return getmetatable(value) == Error end

--- Calls f(...); returns its results, or nil and the polyplug error object. Other errors (bugs in
--- the caller's own code) are raised again.
function M.try(f, ...)
  local res = { pcall(f, ...) }
  if res[1] then return unpack(res, 2, table.maxn(res)) end
  if M.is_error(res[2]) then return nil, res[2] end
  error(res[2], 0)
end

local function sv_string(sv)
  if sv.ptr == NULL or sv.len == 0 then return "" end
  return ffi.string(sv.ptr, sv.len)
end

-- The longest run of bytes read from one pointer a plugin hands over (as in the Python package:
-- 2^31 - 1, also LuaJIT's longest string).
local MAX_READ = 2 ^ 31 - 1

-- The bytes of a StringView or Buffer value a plugin hands over (a result, a host contract's
-- argument): InvalidPointer for a NULL pointer with a length or a length past MAX_READ, rather
-- than an empty string or a read the size of the address space. (Error and log texts go through
-- sv_string, which never raises: it is used while another error is being reported.)
local function plugin_bytes(ptr, len, what)
  if len == 0 then return "" end
  if ptr == NULL then raise(8, what .. ": a NULL pointer with length " .. tostring(len):gsub("ULL$", "")) end
  if len > MAX_READ then
    raise(8, what .. ": length " .. tostring(len):gsub("ULL$", "") .. " is beyond the limit of " .. MAX_READ .. " bytes")
  end
  return ffi.string(ptr, len)
end

---------------------------------------------------------------------------------------------------
-- Integers: Lua numbers where exact, 64-bit cdata otherwise
---------------------------------------------------------------------------------------------------
local INT_RANGES = {
  u8 = { 0, 255 }, u16 = { 0, 65535 }, u32 = { 0, 4294967295 },
  i8 = { -128, 127 }, i16 = { -32768, 32767 }, i32 = { -2147483648, 2147483647 },
}
local CTYPE_OF = { u8 = "uint8_t", u16 = "uint16_t", u32 = "uint32_t", u64 = "uint64_t",
                   i8 = "int8_t", i16 = "int16_t", i32 = "int32_t", i64 = "int64_t",
                   f32 = "float", f64 = "double", bool = "bool",
                   StringView = "polyplug_StringView", Buffer = "polyplug_Buffer", Ptr = "void*" }
local TWO53 = 2 ^ 53
local I64_MAX = 0x7fffffffffffffffLL

local function describe_value(v)
  if type(v) == "cdata" then return "cdata<" .. tostring(ffi.typeof(v)) .. ">" end
  if type(v) == "string" then return "string" end
  return type(v) .. " " .. tostring(v)
end

-- Checks `v` for integer type `ty`; returns it in a form ffi can store exactly.
local function check_int(ty, v, what)
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge or v ~= math.floor(v) then
      bad_arg(what .. ": " .. ty .. " needs an integer, got " .. tostring(v))
    end
    local r = INT_RANGES[ty]
    if r then
      if v < r[1] or v > r[2] then
        bad_arg(string.format("%s: %s out of range [%d, %d]: %s", what, ty, r[1], r[2],
                              tostring(v)))
      end
      return v
    end
    -- 64-bit: a double beyond 2^53 may already have lost digits; ask for cdata there.
    if v > TWO53 or v < -TWO53 then
      bad_arg(what .. ": " .. ty .. " from a Lua number beyond 2^53 is not exact; pass " ..
              (ty == "u64" and "a uint64_t cdata (e.g. 0xffffffffffffffffULL)" or
               "an int64_t cdata (e.g. -0x8000000000000000LL)"))
    end
    if ty == "u64" and v < 0 then bad_arg(what .. ": u64 cannot hold " .. tostring(v)) end
    return v
  end
  if type(v) == "cdata" then
    local ok64 = ffi.istype(t_u64, v)
    local oki64 = ffi.istype(t_i64, v)
    if not ok64 and not oki64 then
      bad_arg(what .. ": " .. ty .. " needs an integer, got " .. describe_value(v))
    end
    if ty == "u64" then
      if oki64 and v < 0 then bad_arg(what .. ": u64 cannot hold " .. tostring(v)) end
      return v
    elseif ty == "i64" then
      if ok64 and v > I64_MAX then bad_arg(what .. ": i64 out of range: " .. tostring(v)) end
      return v
    end
    local r = INT_RANGES[ty]
    if (oki64 and (v < r[1] or v > r[2])) or (ok64 and v > r[2]) then
      bad_arg(string.format("%s: %s out of range [%d, %d]: %s", what, ty, r[1], r[2], tostring(v)))
    end
    return tonumber(v)
  end
  bad_arg(what .. ": " .. ty .. " needs an integer, got " .. describe_value(v))
end

local function to_u64(v, what)
  return ffi.new(t_u64, check_int("u64", v, what))
end

--- FNV-1a-64 of a string, as uint64_t cdata (bundle ids are fnv1a64 of the manifest name).
function M.fnv1a64(s)
  local h = 0xcbf29ce484222325ULL
  for i = 1, #s do
    h = bit.bxor(h, s:byte(i)) * 0x100000001b3ULL
  end
  return ffi.new(t_u64, h)
end
function M.guest_contract_id(name, major) return M.fnv1a64("guest_contract:" .. name .. "@" .. major) end
function M.host_contract_id(name, major) return M.fnv1a64("host_contract:" .. name .. "@" .. major) end

local function hex_u64(s, what)
  local digits = s:match("^0x(%x+)$")
  if not digits or #digits > 16 then raise(-3, "contract description: bad hex number " .. what .. ": " .. s) end
  digits = string.rep("0", 16 - #digits) .. digits
  local hi, lo = tonumber(digits:sub(1, 8), 16), tonumber(digits:sub(9, 16), 16)
  return ffi.new(t_u64, hi * 0x100000000ULL + lo)
end

---------------------------------------------------------------------------------------------------
-- Finding the shared libraries
---------------------------------------------------------------------------------------------------
local function dirname(p)
  return p:match("^(.*)/[^/]*$") or "."
end

local function open_library(explicit)
  -- The first of the three that is given is the only one tried: an explicit choice that fails
  -- must not silently fall back to another library.
  local tried = {}
  local candidates = {}
  local env = os.getenv("POLYPLUG_LIBRARY")
  if explicit then
    candidates[1] = { "library option", explicit }
  elseif env and env ~= "" then
    candidates[1] = { "POLYPLUG_LIBRARY", env }
  else
    candidates[1] = { "soname", "libpolyplug.so.0" }
  end
  for _, c in ipairs(candidates) do
    local ok, lib = pcall(ffi.load, c[2])
    if ok then
      local has = pcall(function() return lib.polyplug_runtime_create end)
      if has then return lib, c[2] end
      tried[#tried + 1] = c[1] .. " " .. c[2] .. ": does not export polyplug_runtime_create"
    else
      tried[#tried + 1] = c[1] .. " " .. c[2] .. ": " .. tostring(lib)
    end
  end
  if not explicit then table.insert(tried, 1, "library option: not given") end
  if explicit then tried[#tried + 1] = "POLYPLUG_LIBRARY and the soname: not tried (the library option wins)"
  elseif env and env ~= "" then tried[#tried + 1] = "soname libpolyplug.so.0: not tried ($POLYPLUG_LIBRARY wins)"
  else table.insert(tried, 2, "POLYPLUG_LIBRARY: not set") end
  raise(-4, "libpolyplug.so not found; tried the `library` option, $POLYPLUG_LIBRARY and the " ..
            "soname libpolyplug.so.0 (set one of them, e.g. POLYPLUG_LIBRARY=build/shim/" ..
            "libpolyplug.so):\n  " .. table.concat(tried, "\n  "))
end

local function file_exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

---------------------------------------------------------------------------------------------------
-- Contract descriptions -> FFI types
---------------------------------------------------------------------------------------------------
local described = {}   -- description text -> parsed contract set (ffi types are global)
local mangle_counter = 0

local function valid_name(n)
  return type(n) == "string" and n:match("^[%a_][%w_]*$") ~= nil
end

-- Type descriptors: { name, kind, ctype (C spelling), size, align, store(parent, key, v,
-- anchors, what), load(parent, key) -> Lua value }. `store` appends to `anchors` what must stay
-- alive while the call runs; a call passes nil for arguments its own frame keeps alive (see
-- `allocates` at the call path).
local function make_set(text, source)
  local lines = {}
  for line in text:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  if lines[1] ~= "polyplug-contracts 1" then
    raise(-3, source .. ": the runtime's contract description has an unknown format (" ..
              tostring(lines[1]) .. "); this polyplug.lua reads 'polyplug-contracts 1'")
  end
  mangle_counter = mangle_counter + 1
  local prefix = "polyplug_c" .. mangle_counter .. "_"
  local set = { enums = {}, structs = {}, contracts = {}, types = {}, source = source, prefix = prefix }
  local cdefs = {}
  local pos = 2
  local function fields(i, n)
    local line = lines[i]
    if not line then raise(-3, source .. ": contract description ends early") end
    local f = {}
    for w in line:gmatch("%S+") do f[#f + 1] = w end
    if n and #f ~= n then raise(-3, source .. ": malformed description line: " .. line) end
    return f
  end

  local resolve -- forward

  local function int_type(name)
    local ct = CTYPE_OF[name]
    local is64 = name == "u64" or name == "i64"
    return {
      name = name, kind = "int", ctype = ct, size = ffi.sizeof(ct), align = ffi.alignof(ct),
      store = function(p, k, v, _, what) p[k] = check_int(name, v, what) end,
      load = is64 and function(p, k) return p[k] + 0 end or function(p, k) return tonumber(p[k]) end,
    }
  end

  local builtin = {}
  for _, n in ipairs { "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64" } do builtin[n] = int_type(n) end
  for _, n in ipairs { "f32", "f64" } do
    builtin[n] = {
      name = n, kind = "float", ctype = CTYPE_OF[n], size = n == "f32" and 4 or 8, align = n == "f32" and 4 or 8,
      store = function(p, k, v, _, what)
        if type(v) ~= "number" then bad_arg(what .. ": " .. n .. " needs a number, got " .. describe_value(v)) end
        p[k] = v
      end,
      load = function(p, k) return tonumber(p[k]) end,
    }
  end
  builtin.bool = {
    name = "bool", kind = "bool", ctype = "bool", size = 1, align = 1,
    store = function(p, k, v, _, what)
      if type(v) ~= "boolean" then bad_arg(what .. ": bool needs true or false, got " .. describe_value(v)) end
      p[k] = v
    end,
    load = function(p, k) return p[k] == true end,
  }
  builtin.StringView = {
    name = "StringView", kind = "sv", ctype = "polyplug_StringView", size = 16, align = 8,
    store = function(p, k, v, anchors, what)
      if type(v) ~= "string" then bad_arg(what .. ": StringView needs a string, got " .. describe_value(v)) end
      if anchors then anchors[#anchors + 1] = v end
      local s = p[k]
      s.ptr = ffi.cast(t_cu8p, v)
      s.len = #v
    end,
    load = function(p, k)
      local sv = p[k]
      return plugin_bytes(sv.ptr, sv.len, "a StringView from the plugin")
    end,
  }
  builtin.Buffer = {
    name = "Buffer", kind = "buf", ctype = "polyplug_Buffer", size = 24, align = 8,
    store = function(p, k, v, anchors, what)
      if type(v) ~= "string" then bad_arg(what .. ": Buffer needs a string, got " .. describe_value(v)) end
      local n = #v
      local mem = t_u8arr(n > 0 and n or 1)
      ffi.copy(mem, v, n)
      anchors[#anchors + 1] = mem
      local b = p[k]
      b.ptr = mem
      b.len = n
      b.cap = n
    end,
    load = function(p, k)
      local b = p[k]
      return plugin_bytes(b.ptr, b.len, "a Buffer from the plugin")
    end,
  }
  builtin.Ptr = {
    name = "Ptr", kind = "ptr", ctype = "void*", size = 8, align = 8,
    store = function(p, k, v, anchors, what)
      if v == nil then p[k] = nil return end
      if type(v) ~= "cdata" and type(v) ~= "userdata" then
        bad_arg(what .. ": Ptr needs a pointer (cdata or lightuserdata) or nil, got " .. describe_value(v))
      end
      if anchors then anchors[#anchors + 1] = v end
      p[k] = ffi.cast("void*", v)
    end,
    load = function(p, k)
      local v = p[k]
      if v == NULL then return nil end
      return v
    end,
  }

  local function array_type(elem)
    local key = "Array<" .. elem.name .. ">"
    if set.types[key] then return set.types[key] end
    local cname = prefix .. "Array_" .. elem.name
    cdefs[#cdefs + 1] = "typedef struct " .. cname .. " { const " .. elem.ctype .. "* items; size_t len; } " .. cname .. ";"
    local t
    t = {
      name = key, kind = "array", ctype = cname, size = 16, align = 8, elem = elem,
      store = function(p, k, v, anchors, what)
        if type(v) ~= "table" then bad_arg(what .. ": " .. key .. " needs a sequence table, got " .. describe_value(v)) end
        local n = #v
        for kk in pairs(v) do
          if type(kk) ~= "number" or kk < 1 or kk > n or kk ~= math.floor(kk) then
            bad_arg(what .. ": " .. key .. " needs a sequence table (keys 1.." .. n .. "), found key " .. tostring(kk))
          end
        end
        local a = p[k]
        if n == 0 then a.items = nil a.len = 0 return end
        t.arr_ct = t.arr_ct or ffi.typeof(elem.ctype .. "[?]")
        local mem = t.arr_ct(n)
        anchors[#anchors + 1] = mem
        for i = 1, n do elem.store(mem, i - 1, v[i], anchors, what .. "[" .. i .. "]") end
        a.items = mem
        a.len = n
      end,
      load = function(p, k)
        local a = p[k]
        local out = {}
        local n = tonumber(a.len)
        if n > 0 and a.items == NULL then raise(8, key .. " result with a NULL items pointer and length " .. n) end
        t.ptr_ct = t.ptr_ct or ffi.typeof("const " .. elem.ctype .. "*")
        local items = ffi.cast(t.ptr_ct, a.items)
        for i = 1, n do out[i] = elem.load(items, i - 1) end
        return out
      end,
    }
    set.types[key] = t
    return t
  end

  resolve = function(name, what)
    local t = builtin[name] or set.types[name]
    if t then return t end
    local inner = name:match("^Array<(.+)>$")
    if inner then
      local e = resolve(inner, what)
      if e.kind == "array" then raise(-3, source .. ": " .. what .. ": arrays of arrays are not in the ABI") end
      return array_type(e)
    end
    raise(-3, source .. ": " .. what .. ": unknown type " .. name)
  end

  -- enums
  while lines[pos] and lines[pos]:match("^enum ") do
    local f = fields(pos, 5)
    local name, repr, bitflag, count = f[2], f[3], f[4] == "1", tonumber(f[5])
    if not valid_name(name) or not INT_RANGES[repr] and repr ~= "u64" then
      raise(-3, source .. ": bad enum line: " .. lines[pos])
    end
    local e = { name = name, repr = repr, bitflag = bitflag, variants = {}, by_name = {}, by_value = {} }
    for i = 1, count do
      local v = fields(pos + i, 3)
      if v[1] ~= "variant" then raise(-3, source .. ": expected a variant line: " .. lines[pos + i]) end
      local value = hex_u64(v[3], v[2])
      if repr ~= "u64" or value < 2 ^ 53 then value = tonumber(value) end
      e.variants[i] = { name = v[2], value = value }
      e.by_name[v[2]] = value
      e.by_value[tostring(value)] = v[2]
    end
    pos = pos + count + 1
    set.enums[name] = e
    local base = builtin[repr]
    set.types[name] = {
      name = name, kind = "enum", ctype = base.ctype, size = base.size, align = base.align, enum = e,
      store = function(p, k, v, anchors, what)
        if type(v) == "string" then
          local value = e.by_name[v]
          if value == nil then
            local names = {}
            for _, var in ipairs(e.variants) do names[#names + 1] = var.name end
            bad_arg(what .. ": " .. name .. " has no variant " .. v .. " (one of: " .. table.concat(names, ", ") .. ")")
          end
          v = value
        end
        base.store(p, k, v, anchors, what)
      end,
      load = base.load,
    }
  end

  -- structs
  local t_pending = {}
  while lines[pos] and lines[pos]:match("^struct ") do
    local f = fields(pos, 5)
    local name, size, align, count = f[2], tonumber(f[3]), tonumber(f[4]), tonumber(f[5])
    if not valid_name(name) then raise(-3, source .. ": bad struct name: " .. lines[pos]) end
    local s = { name = name, size = size, align = align, fields = {} }
    local cname = prefix .. name
    local body = {}
    for i = 1, count do
      local fl = fields(pos + i, 4)
      if fl[1] ~= "field" or not valid_name(fl[2]) then raise(-3, source .. ": expected a field line: " .. lines[pos + i]) end
      local ft = resolve(fl[3], name .. "." .. fl[2])
      s.fields[i] = { name = fl[2], type = ft, offset = tonumber(fl[4]), cname = "f_" .. fl[2] }
      body[#body + 1] = ft.ctype .. " f_" .. fl[2] .. ";"
    end
    pos = pos + count + 1
    cdefs[#cdefs + 1] = "typedef struct " .. cname .. " { " .. table.concat(body, " ") .. " } " .. cname .. ";"
    set.structs[name] = s
    local st
    st = {
      name = name, kind = "struct", ctype = cname, size = size, align = align, struct = s,
      store = function(p, k, v, anchors, what)
        if type(v) ~= "table" then bad_arg(what .. ": struct " .. name .. " needs a table, got " .. describe_value(v)) end
        local target = p[k]
        for kk in pairs(v) do
          local known = false
          for _, fd in ipairs(s.fields) do if fd.name == kk then known = true break end end
          if not known then bad_arg(what .. ": struct " .. name .. " has no field " .. tostring(kk)) end
        end
        for _, fd in ipairs(s.fields) do
          local fv = v[fd.name]
          if fv == nil and fd.type.kind ~= "ptr" then
            bad_arg(what .. ": struct " .. name .. " needs field " .. fd.name .. " (" .. fd.type.name .. ")")
          end
          fd.type.store(target, fd.cname, fv, anchors, what .. "." .. fd.name)
        end
      end,
      load = function(p, k)
        local src = p[k]
        local out = {}
        for _, fd in ipairs(s.fields) do out[fd.name] = fd.type.load(src, fd.cname) end
        return out
      end,
    }
    set.types[name] = st
    t_pending[#t_pending + 1] = st
  end

  -- contracts
  local function contract_block()
    local f = fields(pos, 9)
    if f[1] ~= "contract" then raise(-3, source .. ": unexpected description line: " .. lines[pos]) end
    local c = {
      side = f[2], name = f[3], major = tonumber(f[4]), minor = tonumber(f[5]), patch = tonumber(f[6]),
      id = hex_u64(f[7], f[3]), singleton = f[8] == "1", functions = {}, by_name = {}, set = set,
    }
    local count = tonumber(f[9])
    pos = pos + 1
    for i = 1, count do
      local fl = fields(pos, 7)
      if fl[1] ~= "function" or not valid_name(fl[2]) then raise(-3, source .. ": expected a function line: " .. lines[pos]) end
      local fd = { name = fl[2], id = tonumber(fl[3]), args_size = tonumber(fl[4]), args_align = tonumber(fl[5]),
                   result_name = fl[6], params = {}, contract = c }
      local nparams = tonumber(fl[7])
      pos = pos + 1
      local body = {}
      for j = 1, nparams do
        local pl = fields(pos, 4)
        if pl[1] ~= "param" or not valid_name(pl[2]) then raise(-3, source .. ": expected a param line: " .. lines[pos]) end
        local pt = resolve(pl[3], c.name .. "." .. fd.name .. "(" .. pl[2] .. ")")
        fd.params[j] = { name = pl[2], type = pt, offset = tonumber(pl[4]), cname = "f_" .. pl[2] }
        body[#body + 1] = pt.ctype .. " f_" .. pl[2] .. ";"
        pos = pos + 1
      end
      if fd.result_name ~= "Void" then fd.result = resolve(fd.result_name, c.name .. "." .. fd.name .. " result") end
      if nparams > 0 then
        fd.args_cname = prefix .. "args_" .. (#set.contracts + 1) .. "_" .. fd.name
        cdefs[#cdefs + 1] = "typedef struct " .. fd.args_cname .. " { " .. table.concat(body, " ") .. " } " .. fd.args_cname .. ";"
      end
      local sig = {}
      for j, p in ipairs(fd.params) do sig[j] = p.name .. ": " .. p.type.name end
      fd.signature = c.name .. "." .. fd.name .. "(" .. table.concat(sig, ", ") .. ") -> " .. fd.result_name
      for _, p in ipairs(fd.params) do p.what = fd.signature .. " argument " .. p.name end
      c.functions[i] = fd
      c.by_name[fd.name] = fd
    end
    set.contracts[#set.contracts + 1] = c
  end
  while lines[pos] do contract_block() end

  local ok, cerr = pcall(ffi.cdef, table.concat(cdefs, "\n"))
  if not ok then raise(-3, source .. ": the FFI refused the generated declarations: " .. tostring(cerr)) end

  -- Check every layout the FFI computed against the runtime's.
  local function check(what, got, want)
    if got ~= want then
      raise(-3, string.format("%s: layout mismatch at %s: the FFI gives %s, the runtime %s",
                              source, what, tostring(got), tostring(want)))
    end
  end
  for _, st in ipairs(t_pending) do
    local s = st.struct
    check("sizeof(" .. s.name .. ")", ffi.sizeof(st.ctype), s.size)
    check("alignof(" .. s.name .. ")", ffi.alignof(st.ctype), s.align)
    for _, fd in ipairs(s.fields) do
      check(s.name .. "." .. fd.name, ffi.offsetof(st.ctype, fd.cname), fd.offset)
    end
  end
  for _, c in ipairs(set.contracts) do
    for _, fd in ipairs(c.functions) do
      if fd.args_cname then
        check(c.name .. "." .. fd.name .. " args size", ffi.sizeof(fd.args_cname), fd.args_size)
        check(c.name .. "." .. fd.name .. " args align", ffi.alignof(fd.args_cname), fd.args_align)
        for _, p in ipairs(fd.params) do
          check(c.name .. "." .. fd.name .. "(" .. p.name .. ")", ffi.offsetof(fd.args_cname, p.cname), p.offset)
        end
        fd.args_ct = ffi.typeof(fd.args_cname)
        fd.args_ptr_ct = ffi.typeof("const " .. fd.args_cname .. "*")
      elseif fd.args_size ~= 0 then
        check(c.name .. "." .. fd.name .. " args size", 0, fd.args_size)
      end
      if fd.result then
        fd.out_ct = ffi.typeof(fd.result.ctype .. "[1]")
        fd.out_ptr_ct = ffi.typeof(fd.result.ctype .. "*")
      end
    end
  end
  return set
end

---------------------------------------------------------------------------------------------------
-- Runtime
---------------------------------------------------------------------------------------------------
local Runtime = {}
Runtime.__index = Runtime
local destroy_core -- below
M.Runtime = Runtime

local Contract = {}
M.Contract = Contract

local PHASES = { [0] = "Preparing", [1] = "Reloaded", [2] = "Failed", [3] = "Unloading" }
local LANGUAGES = { [0] = "Rust", [1] = "Cpp", [2] = "Dotnet", [3] = "Python", [4] = "Lua", [5] = "JavaScript" }
local LOG_LEVELS = { error = 1, warn = 2, info = 3, debug = 4, trace = 5 }
local COMPAT = { strict = 0, relaxed = 1, yolo = 2 }
M.phases = PHASES
M.languages = LANGUAGES
M.log_levels = LOG_LEVELS

local function host_of(rt)
  local host = rt._host
  if host == nil then raise(-2, "the runtime is closed; create a new one with polyplug.runtime{}") end
  return host
end

-- Takes (copies and clears) the runtime's last error text.
local function take_last_error(host)
  local n = tonumber(host.get_error_len(host))
  if n == 0 then return "" end
  local buf = t_u8arr(n)
  n = tonumber(host.get_last_error(host, buf, n))
  return ffi.string(buf, n)
end
NOJIT[#NOJIT + 1] = take_last_error

local function clear_last_error(host) host.get_last_error(host, nil, 0) end
NOJIT[#NOJIT + 1] = clear_last_error

-- Raises for a failed AbiError: its message, and the last_error text when it adds to it.
local function raise_abi(host, err, what)
  local code = tonumber(err[0].code)
  local msg = sv_string(err[0].message)
  local last = take_last_error(host)
  if last ~= "" and not msg:find(last, 1, true) then
    msg = msg ~= "" and (msg .. ": " .. last) or last
  end
  if msg == "" then msg = "failed without a message" end
  raise(code, what .. ": " .. msg)
end

local function new_err()
  local e = t_err()
  return e
end

local function check_open(rt) return host_of(rt) end

local function lang_loader_candidates(rt, lang)
  local file = "libpolyplug-loader-" .. lang .. ".so"
  local list = {}
  local env = os.getenv("POLYPLUG_LOADER_DIR")
  if rt._loader_dir then
    list[#list + 1] = rt._loader_dir .. "/" .. file
    list[#list + 1] = rt._loader_dir .. "/" .. lang .. "/" .. file
  end
  if env and env ~= "" then
    list[#list + 1] = env .. "/" .. file
    list[#list + 1] = env .. "/" .. lang .. "/" .. file
  end
  if rt._lib_dir then
    list[#list + 1] = rt._lib_dir .. "/loaders/" .. lang .. "/" .. file
    list[#list + 1] = rt._lib_dir .. "/" .. file
  end
  return list
end

--- Loads libpolyplug-loader-<lang>.so (from `path`, or beside libpolyplug.so, or
--- $POLYPLUG_LOADER_DIR; the Lua loader with RTLD_DEEPBIND) and registers its loader.
function Runtime:add_loader(lang, path)
  local host = check_open(self)
  if not valid_name(lang) then bad_arg("add_loader: the language must be a name like \"lua\", got " .. describe_value(lang)) end
  if self._loaders[lang] then bad_arg("add_loader: a " .. lang .. " loader is already registered") end
  local candidates = path and { path } or lang_loader_candidates(self, lang)
  local handle, tried = nil, {}
  for _, p in ipairs(candidates) do
    if file_exists(p) or p:sub(1, 1) ~= "/" and not p:find("/") then
      -- RTLD_DEEPBIND for the Lua loader: its own liblua5.4 must come before the lua_* symbols
      -- the luajit executable exports globally. Only there: the other loaders clash with
      -- nothing, and the sanitizer runtimes refuse DEEPBIND (google/sanitizers#611).
      local flags = bit.bor(RTLD_NOW, RTLD_LOCAL)
      if lang == "lua" then flags = bit.bor(flags, RTLD_DEEPBIND) end
      local h = C.dlopen(p, flags)
      if h ~= nil then handle = h path = p break end
      tried[#tried + 1] = p .. ": " .. ffi.string(C.dlerror())
    else
      tried[#tried + 1] = p .. ": no such file"
    end
  end
  if handle == nil then
    raise(4, "add_loader(" .. lang .. "): libpolyplug-loader-" .. lang .. ".so not found; pass its " ..
             "path, or set POLYPLUG_LOADER_DIR or the loader_dir option:\n  " .. table.concat(tried, "\n  "))
  end
  local sym = C.dlsym(handle, "polyplug_loader_" .. lang .. "_create")
  if sym == nil then
    raise(4, "add_loader(" .. lang .. "): " .. path .. " does not export polyplug_loader_" .. lang .. "_create")
  end
  local loader = ffi.cast("void*(*)(void)", sym)()
  if loader == nil then raise(1, "add_loader(" .. lang .. "): polyplug_loader_" .. lang .. "_create returned NULL") end
  local err = new_err()
  clear_last_error(host)
  host.register_loader(host, loader, err)
  if err[0].code ~= 0 then raise_abi(host, err, "add_loader(" .. lang .. ")") end
  -- The module stays mapped for the life of the process: the runtime calls its destroy at close.
  self._loaders[lang] = { path = path, handle = handle }
  return path
end

local function path_arg(p, what)
  if type(p) ~= "string" or p == "" then bad_arg(what .. ": needs a path string, got " .. describe_value(p)) end
  return p
end

-- load and reload: HostApi.<entry>(host, path, len, err), raising the runtime's error.
local function by_path(self, entry, what, path)
  local host = check_open(self)
  path_arg(path, what)
  local err = new_err()
  clear_last_error(host)
  host[entry](host, ffi.cast(t_cu8p, path), #path, err)
  if err[0].code ~= 0 then raise_abi(host, err, what .. "(" .. path .. ")") end
  return self
end

function Runtime:load(path) return by_path(self, "load_bundle", "load", path) end

function Runtime:reload(path) return by_path(self, "reload_bundle", "reload", path) end

local function bundle_id_of(v, what)
  if type(v) == "string" then
    if v == "" then bad_arg(what .. ": empty bundle name") end
    return M.fnv1a64(v)
  end
  if type(v) == "number" or type(v) == "cdata" then return to_u64(v, what) end
  bad_arg(what .. ": needs a bundle name (string) or id (uint64_t cdata), got " .. describe_value(v))
end
M.bundle_id = function(name) return M.fnv1a64(name) end
--- HostApi handles are declared as one uint64_t (see handle_of): these convert to and from the
--- { index, generation } struct.
M.unpack_handle = handle_of
M.pack_handle = packed_handle

function Runtime:unload(name_or_id)
  local host = check_open(self)
  local id = bundle_id_of(name_or_id, "unload")
  local err = new_err()
  clear_last_error(host)
  host.unload_bundle(host, id, err)
  if err[0].code ~= 0 then raise_abi(host, err, "unload(" .. tostring(name_or_id) .. ")") end
  return self
end

-- host.polyplug.Runtime@1: interface, instance, and a function by id.
local function runtime_fn(rt, fn_id, what)
  local host = check_open(rt)
  if rt._rc == nil then
    local iface = host.resolve_host_contract_interface(host, RUNTIME_CONTRACT_ID, 0)
    if iface == nil then raise(100, what .. ": the runtime has no host.polyplug.Runtime@1 contract") end
    rt._rc = iface
    rt._rc_self = host.get_host_contract(host, RUNTIME_CONTRACT_ID, 0)
  end
  if fn_id >= rt._rc.dispatch.native.function_count then
    raise(6, what .. ": this libpolyplug.so's host.polyplug.Runtime@1 has no function " .. fn_id ..
             " (it is older than this polyplug.lua; rebuild libpolyplug.so)")
  end
  local fn = ffi.cast(t_hostfn, rt._rc.dispatch.native.functions[fn_id])
  if fn == nil then raise(6, what .. ": host.polyplug.Runtime@1 function " .. fn_id .. " is empty") end
  return host, fn
end

local function call_runtime(rt, fn_id, args, out, what)
  local host, fn = runtime_fn(rt, fn_id, what)
  local err = new_err()
  clear_last_error(host)
  fn(rt._rc_self, args, out, err)
  if err[0].code ~= 0 then raise_abi(host, err, what) end
  return host
end
NOJIT[#NOJIT + 1] = call_runtime
NOJIT[#NOJIT + 1] = runtime_fn

function Runtime:unload_cascade(name_or_id)
  check_open(self)
  local args = ffi.new("polyplug_BundleIdArgs")
  args.bundle_id = bundle_id_of(name_or_id, "unload_cascade")
  local out = ffi.new("uint32_t[1]")
  call_runtime(self, FN.UnloadCascade, args, out, "unload_cascade(" .. tostring(name_or_id) .. ")")
  return tonumber(out[0])
end

local function dir_list(dirs, what)
  if type(dirs) == "string" then dirs = { dirs } end
  if type(dirs) ~= "table" or #dirs == 0 then bad_arg(what .. ": needs a directory or a list of directories") end
  local arr = ffi.new("polyplug_StringView[?]", #dirs)
  for i, d in ipairs(dirs) do
    path_arg(d, what .. " dirs[" .. i .. "]")
    arr[i - 1].ptr = ffi.cast(t_cu8p, d)
    arr[i - 1].len = #d
  end
  return arr, #dirs, dirs
end

--- Discovers and loads every bundle under the plugin directories; returns
--- { loaded = n, skipped = n, diagnostics = text }.
function Runtime:load_dirs(dirs)
  check_open(self)
  local arr, n, keep = dir_list(dirs, "load_dirs")
  local args = ffi.new("polyplug_LoadDirsArgs")
  args.dirs = arr
  args.count = n
  local out = ffi.new("polyplug_LoadDirsResult")
  local ok, e = pcall(call_runtime, self, FN.LoadDirs, args, out, "load_dirs")
  local host = self._host
  local diagnostics = ""
  if out.diagnostics.ptr ~= nil then
    diagnostics = ffi.string(out.diagnostics.ptr, out.diagnostics.len)
    host.free(host, out.diagnostics.ptr, out.diagnostics.cap, 1)
  end
  local _ = keep
  if not ok then
    if M.is_error(e) and diagnostics ~= "" then e.message = e.message .. "\n" .. diagnostics end
    error(e, 0)
  end
  return { loaded = tonumber(out.loaded), skipped = tonumber(out.skipped), diagnostics = diagnostics }
end

local function take_buffer(host, b)
  if b.ptr == nil then return "" end
  local s = ffi.string(b.ptr, b.len)
  host.free(host, b.ptr, b.cap, 1)
  b.ptr = nil
  return s
end

--- Metadata of one loaded bundle (by name or id).
function Runtime:bundle(name_or_id)
  check_open(self)
  local args = ffi.new("polyplug_BundleIdArgs")
  args.bundle_id = bundle_id_of(name_or_id, "bundle")
  local info = ffi.new("polyplug_BundleInfo")
  local ok, e = pcall(call_runtime, self, FN.BundleInfo, args, info, "bundle(" .. tostring(name_or_id) .. ")")
  local host = self._host
  local r = {
    id = info.id + 0ULL,
    version = string.format("%d.%d.%d", info.version.major, info.version.minor, info.version.patch),
    language = LANGUAGES[tonumber(info.language)] or tostring(info.language),
    name = take_buffer(host, info.name), path = take_buffer(host, info.path),
    loader = take_buffer(host, info.loader), contracts = {},
  }
  if info.contracts.items ~= nil then
    local items = ffi.cast("uint64_t*", info.contracts.items)
    for i = 0, tonumber(info.contracts.len) - 1 do r.contracts[i + 1] = items[i] + 0ULL end
    host.free(host, ffi.cast(t_u8p, info.contracts.items), info.contracts.len * 8, info.contracts.align)
  end
  if not ok then error(e, 0) end
  return r
end

--- Every loaded bundle's metadata (list_bundles + BundleInfo).
function Runtime:bundles()
  local host = check_open(self)
  local ids = host.list_bundles(host)
  local list = {}
  for i = 0, tonumber(ids.len) - 1 do list[#list + 1] = ffi.cast("uint64_t*", ids.items)[i] + 0ULL end
  if ids.items ~= nil then host.free(host, ffi.cast(t_u8p, ids.items), ids.len * 8, ids.align) end
  local out = {}
  for _, id in ipairs(list) do
    local ok, info = pcall(self.bundle, self, id)
    if ok then out[#out + 1] = info
    elseif not (M.is_error(info) and info.code == 4) then error(info, 0) end
  end
  return out
end

--- Watches plugin directories; changes are acted on in rt:poll() (always manual: a runtime thread
--- must never run Lua callbacks).
function Runtime:watch(dirs, opts)
  check_open(self)
  opts = opts or {}
  local arr, n = dir_list(dirs, "watch")
  local args = ffi.new("polyplug_WatchArgs")
  args.dirs = arr
  args.count = n
  args.debounce_ms = check_int("u32", opts.debounce_ms or 250, "watch debounce_ms")
  args.flags = 1
  call_runtime(self, FN.Watch, args, nil, "watch")
  self._watch_dirs = arr
end

function Runtime:unwatch()
  call_runtime(self, FN.Unwatch, nil, nil, "unwatch")
  self._watch_dirs = nil
end

--- Acts on watched changes; returns the number of bundles reloaded or loaded.
function Runtime:poll()
  local out = ffi.new("uint32_t[1]")
  call_runtime(self, FN.PollWatch, nil, out, "poll")
  return tonumber(out[0])
end

function Runtime:set_unmap_policy(policy, grace_ms)
  local args = ffi.new("polyplug_UnmapPolicyArgs")
  if policy == "grace" or policy == 0 then args.policy = 0
  elseif policy == "never" or policy == 1 then args.policy = 1
  else bad_arg("set_unmap_policy: policy must be \"grace\" or \"never\", got " .. describe_value(policy)) end
  args.grace_ms = check_int("u32", grace_ms or 0, "set_unmap_policy grace_ms")
  call_runtime(self, FN.SetUnmapPolicy, args, nil, "set_unmap_policy")
end

--- The runtime's description text of a contract file.
function Runtime:describe_text(api)
  check_open(self)
  path_arg(api, "describe")
  local args = ffi.new("polyplug_DescribeArgs")
  args.path.ptr = ffi.cast(t_cu8p, api)
  args.path.len = #api
  local out = ffi.new("polyplug_Buffer")
  local ok, e = pcall(call_runtime, self, FN.DescribeContractFile, args, out, "contract file " .. api)
  local text = take_buffer(self._host, out)
  if not ok then error(e, 0) end
  return text
end

--- The parsed contract file: { enums, structs, contracts } with FFI types built and checked.
function Runtime:describe(api)
  local cached = self._described[api]
  if cached then return cached end
  local text = self:describe_text(api)
  local set = described[text]
  if not set then
    set = make_set(text, api)
    described[text] = set
  end
  self._described[api] = set
  return set
end

local function pick_contract(rt, name, opts, side, what)
  if type(name) ~= "string" or name == "" then bad_arg(what .. ": needs a contract name, got " .. describe_value(name)) end
  if type(opts) ~= "table" or type(opts.api) ~= "string" then
    bad_arg(what .. "(" .. name .. "): needs { api = \"path/to/contract.api.toml\" }")
  end
  local base, major = name:match("^(.-)@(%d+)$")
  base = base or name
  major = major and tonumber(major)
  local set = rt:describe(opts.api)
  local names = {}
  for _, c in ipairs(set.contracts) do
    if c.side == side and c.name == base and (major == nil or c.major == major) then return c, set end
    if c.side == side then names[#names + 1] = c.name .. "@" .. c.major end
  end
  raise(4, what .. ": " .. opts.api .. " has no " .. side .. " contract " .. name ..
           " (its " .. side .. " contracts: " .. (#names > 0 and table.concat(names, ", ") or "none") .. ")")
end

---------------------------------------------------------------------------------------------------
-- Contract objects: one guest instance each
---------------------------------------------------------------------------------------------------
local ARENA_SIZE = 4096

local OVERFLOW_HEADER = 24 -- sizeof(polyplug_OverflowBlock): a rewound block's `used`

-- Each arena's first block: the arena struct holds only raw pointers into it.
local ARENA_STORAGE = setmetatable({}, { __mode = "k" })

-- Points an arena at its first block (ARENA_SIZE bytes).
local function arena_init(arena, storage, host)
  arena.cur = storage
  arena.base = storage
  arena["end"] = storage + ARENA_SIZE
  arena.host = host
  return arena
end

local function new_arena(host)
  local storage = t_u8arr(ARENA_SIZE)
  local arena = arena_init(ffi.new("polyplug_CallArena"), storage, host)
  ARENA_STORAGE[arena] = storage
  return arena
end

-- Rewinds an arena's overflow blocks and keeps them for the next call (retain and rewind, spec 5.4).
local function arena_rewind_blocks(a)
  local block = a.first_overflow
  while block ~= nil do
    block.used = OVERFLOW_HEADER
    block = block.next
  end
end

-- Teardown: frees the arena's overflow blocks.
local function arena_free(a, host)
  local block = a.first_overflow
  while block ~= nil do
    local nxt = block.next
    host.free(host, ffi.cast(t_u8p, block), block.capacity, 8)
    block = nxt
  end
  a.first_overflow = nil
  a.cur = a.base
end

-- Before every VM call: the arena is rewound, keeping its overflow blocks, whatever the previous
-- call left (also when it raised). The loop sits in a function of its own, so a call without
-- overflow blocks traces no loop.
local function arena_start(a)
  if a.first_overflow ~= nil then arena_rewind_blocks(a) end
  a.cur = a.base
end

-- After a nested VM call: its arena (a fresh one, see the call path) gives its overflow blocks back.
local function arena_done_nested(obj, a)
  if a.first_overflow ~= nil then arena_free(a, obj._rt._host) end
end

-- What a contract object's revision pointer points to while it has no instance (closed, or its
-- provider gone): a value no revision counter reaches. The one compare a call makes,
-- `rev_ptr[0] ~= rev`, so catches these states too, and never reads a closed runtime's counter.
local NO_INSTANCE = ffi.new("uint64_t[1]", 0xffffffffffffffffULL)

-- A contract object's call state, one cdata per object (`obj._st`): what every call reads (the
-- revision check, the instance, the dispatch, whether to take the safe path) and the storage it
-- reuses (the AbiError, the VM call arena with its first block, each function's argument struct
-- and result), all at fixed offsets the JIT reads without a table lookup or type check each.
local CALL_STATE_HEAD = [[
  const uint64_t* rev_ptr; uint64_t rev; void* data; uint64_t contract_id;
  polyplug_VmCallFnSplit vmcall; void* vmdata; polyplug_AbiError err[1]; polyplug_CallArena arena;
  bool busy; bool native; bool nojit;]]
local state_count = 0

local function state_type(c)
  if c.state_ct then return c.state_ct end
  local nfns = 1
  for _, f in ipairs(c.functions) do if f.id + 1 > nfns then nfns = f.id + 1 end end
  local body = { CALL_STATE_HEAD, "  polyplug_GuestFnSplit fns[" .. nfns .. "];" }
  for _, f in ipairs(c.functions) do
    if f.args_cname then body[#body + 1] = "  " .. f.args_cname .. " args_" .. f.name .. ";" end
    if f.result then body[#body + 1] = "  " .. f.result.ctype .. " out_" .. f.name .. "[1];" end
  end
  body[#body + 1] = "  uint8_t arena_first[" .. ARENA_SIZE .. "] __attribute__((aligned(16)));"
  state_count = state_count + 1
  local cname = c.set.prefix .. "call_state_" .. state_count
  ffi.cdef("typedef struct " .. cname .. " {\n" .. table.concat(body, "\n") .. "\n} " .. cname .. ";")
  c.state_ct = ffi.typeof(cname)
  return c.state_ct
end

local function detach(obj)
  local host = obj._rt._host
  if obj._iface ~= nil and host ~= nil then
    host.destroy_guest_instance(host, obj._iface, obj._inst[0])
  end
  obj._iface = nil
  obj._st.rev_ptr = NO_INSTANCE
end
NOJIT[#NOJIT + 1] = detach

-- Caches what a call needs from the interface. Read again after every revision change: a reload
-- may update the runtime's copy of an interface in place (same pointer, new tables).
local function cache_dispatch(obj, iface)
  local st = obj._st
  st.native = iface.dispatch_type == 0
  ffi.fill(st.fns, ffi.sizeof(st.fns))  -- native_fn looks each up again at its next call
  if iface.dispatch_type == 1 then
    st.vmcall = ffi.cast(t_vmfn, iface.dispatch.vm.call)
    st.vmdata = iface.dispatch.vm.loader_data.data
  elseif iface.dispatch_type ~= 0 then
    obj._iface = nil
    st.rev_ptr = NO_INSTANCE
    raise(6, obj._label .. ": the provider has an unknown dispatch type " .. tonumber(iface.dispatch_type))
  end
end
NOJIT[#NOJIT + 1] = cache_dispatch

local function attach(obj, handle, iface)
  local rt = obj._rt
  local host = rt._host
  local inst = t_inst1()
  host.create_guest_instance(host, iface, nil, inst)
  if inst[0].data == nil and inst[0].contract_id == 0 then
    raise(1, obj._label .. ": create_guest_instance failed: " .. take_last_error(host))
  end
  obj._handle = handle
  obj._iface = iface
  obj._inst = inst
  local st = obj._st
  st.data = inst[0].data
  st.contract_id = inst[0].contract_id
  cache_dispatch(obj, iface)
  st.rev_ptr = rt._rev_ptr
end
NOJIT[#NOJIT + 1] = attach

-- Resolves again after a load, unload or reload: keeps the instance when the provider is the same,
-- otherwise moves to the current one. Never calls through a stale interface pointer.
-- `what` names the caller in the closed errors: a closed object is never attached again.
local function refresh(obj, what)
  if obj._closed then raise(-2, what .. ": the contract object is closed") end
  local rt = obj._rt
  if rt._host == nil then raise(-2, what .. ": the runtime is closed") end
  local host = host_of(rt)
  obj._st.rev = rt._rev_ptr[0]
  local handle = obj._handle
  if obj._by_contract then handle = handle_of(host.find_guest_contract(host, obj._c.id, obj._min)) end
  if handle.index == 0xffffffff then
    detach(obj)
    raise(4, obj._label .. ": no provider is loaded any more")
  end
  local iface = host.resolve_guest_contract(host, packed_handle(handle))
  if iface == nil then
    detach(obj)
    raise(5, obj._label .. ": the provider is gone (unloaded); find the contract again")
  end
  if obj._iface ~= nil and iface == obj._iface and handle.index == obj._handle.index and
     handle.generation == obj._handle.generation then
    cache_dispatch(obj, iface)
    return
  end
  detach(obj)
  attach(obj, t_handle(handle), iface)
end
NOJIT[#NOJIT + 1] = refresh

-- Whether calls on the runtime's contract objects take the safe path (see the call path below);
-- set once a Lua callback is reachable from guest code, and never cleared.
local function set_nojit(rt)
  rt._nojit = true
  for obj in pairs(rt._contracts) do obj._st.nojit = true end
end

---------------------------------------------------------------------------------------------------
-- The call path
--
-- Every contract function gets a method generated from its description when it is first used
-- (method_for): a fixed number of arguments, each stored by its parameter type's `store` (the one
-- marshalling implementation, which host contracts and struct fields use too) into the argument
-- struct in the object's call state, one FFI call, and the result type's `load` from the result
-- in the call state. No loops over parameters, no per-call tables, cdata or string building
-- (except the anchors of arguments that allocate, see `allocates`), and the revision check, which
-- also catches closed objects and runtimes, is one compare.
--
-- Each method is compiled twice from its one source: the fast copy may be JIT-compiled; the safe
-- copy never is and runs while Lua callbacks are reachable from guest code (a log callback or a
-- Lua host contract; LuaJIT aborts if a callback arrives while a trace is inside the FFI call).
-- Only then can a call re-enter the same object while another runs (the callback calls back in):
-- `busy` says so, and the inner call gets storage of its own (nested_storage).
---------------------------------------------------------------------------------------------------
local function native_fn(obj, f)
  local iface = obj._iface
  if f.id >= iface.dispatch.native.function_count then
    raise(6, f.signature .. ": the provider's table has no function " .. f.id)
  end
  local fn = ffi.cast(t_guestfn, iface.dispatch.native.functions[f.id])
  if fn == nil then raise(6, f.signature .. ": the provider's table entry is empty") end
  obj._st.fns[f.id] = fn
  return fn
end

-- The revision compare and its slow path: closed object or runtime, a load, unload or reload since
-- the last call, or no instance.
-- the last call, or no instance. Calls inline the compare; everything else calls this.
local function ensure_current(obj, what)
  local st = obj._st
  if st.rev_ptr[0] ~= st.rev then refresh(obj, what) end
end
NOJIT[#NOJIT + 1] = ensure_current

local function bad_count(f, n)
  bad_arg(f.signature .. ": expects " .. #f.params .. " argument(s), got " .. n)
end

-- A call made while another call on the same object runs: storage of its own (its arena, for a
-- VM provider, is made after the revision check).
local function nested_storage(f)
  return f.args_ct and f.args_ct() or nil, f.out_ct and f.out_ct() or nil, t_err()
end
NOJIT[#NOJIT + 1] = nested_storage

local function nested_arena(obj) return new_arena(obj._rt._host) end
NOJIT[#NOJIT + 1] = nested_arena

-- A failed call: the AbiError's message (copied before a nested arena is freed), or the runtime's
-- last error when it has none. The object's own arena is rewound by its next call.
local function fail(obj, f, err, arena, nested, native)
  local code = err[0].code
  local msg = sv_string(err[0].message)
  if nested and not native then arena_done_nested(obj, arena) end
  if msg == "" then msg = take_last_error(obj._rt._host) end
  raise(tonumber(code), f.signature .. ": " .. msg)
end
NOJIT[#NOJIT + 1] = fail

-- A nested call's end: its arena is its own, freed even when reading the result raises.
local function finish_nested(obj, f, out, arena, native)
  local ok, result = true, nil
  if f.result then ok, result = pcall(f.result.load, out, 0) end
  if not native then arena_done_nested(obj, arena) end
  if not ok then error(result, 0) end
  return result
end
NOJIT[#NOJIT + 1] = finish_nested

local CALL_KIT = { refresh = refresh, native_fn = native_fn, nested_storage = nested_storage,
                   nested_arena = nested_arena, arena_start = arena_start, fail = fail,
                   finish_nested = finish_nested, bad_count = bad_count, fill = ffi.fill }

-- $-names are filled in per function by method_source. The order matters: the argument stores
-- come first (a struct or array argument's metamethods may run Lua code that calls this object,
-- closes it or reloads its provider), then the revision check and everything that may raise,
-- and only then `busy` and the anchors, set for exactly the FFI call.
local METHOD_TEMPLATE = [[
local K, F, SAFE = ...
local refresh, native_fn, nested_storage, nested_arena, arena_start, fail, finish_nested, bad_count, fill =
  K.refresh, K.native_fn, K.nested_storage, K.nested_arena, K.arena_start, K.fail, K.finish_nested,
  K.bad_count, K.fill
local SIG = F.signature
$UPVALUES
return function(self, ...)
  local st = self._st
$TO_SAFE
  local n = select("#", ...)
  if n ~= $NPARAMS then bad_count(F, n) end
  local args, out, err = $ARGS, $OUT, st.err
  local nested = st.busy
  if nested then args, out, err = nested_storage(F) end
$STORE
  if st.rev_ptr[0] ~= st.rev then refresh(self, SIG) end
$CLEAR_OUT
  err[0].code = 0
  err[0].message.ptr = nil
  err[0].message.len = 0
  local native, fn, arena = st.native, nil, st.arena
  if native then
    fn = st.fns[$ID]
    if fn == nil then fn = native_fn(self, F) end
  else
    if nested then arena = nested_arena(self) end
    arena_start(arena)
  end
$ANCHOR
  st.busy = true
  if native then
    fn(st.data, st.contract_id, args, out, err)
  else
    st.vmcall(st.vmdata, st.data, st.contract_id, $ID, args, out, arena, err)
  end
  st.busy = nested
$UNANCHOR
  if err[0].code ~= 0 then fail(self, F, err, arena, nested, native) end
  if nested then return finish_nested(self, F, out, arena, native) end
  return $LOAD
end
]]

-- Whether storing a value of this type allocates memory that must outlive the store (a Buffer's
-- copy, an array's items, and what a struct's fields allocate): such a call anchors what its
-- stores allocate in the object. A StringView or Ptr argument is not anchored: the caller's frame
-- holds it, and in compiled code nothing between its store and the end of the FFI call allocates
-- or runs Lua code while `nojit` is false (no callback can arrive), so no garbage collection step
-- can run there to free it even when the trace no longer keeps the value. Keep it that way: an
-- allocation or a Lua call added between the stores and the FFI call must anchor every argument.
local function allocates(t)
  return t.kind == "buf" or t.kind == "array" or t.kind == "struct"
end

-- Whether storing a value of this type may run Lua code (a struct's or array's metamethods, such as
-- an __index that calls this object): such a call's own stores could overwrite the reused argument
-- struct, so its arguments go into a fresh one every call.
local function runs_code(t)
  return t.kind == "array" or t.kind == "struct"
end

local function method_source(f, safe)
  local up, vars, stores, anchored, fresh = {}, {}, {}, false, false
  for i, p in ipairs(f.params) do
    up[i] = string.format("local store%d, WHAT%d = F.params[%d].type.store, F.params[%d].what", i, i, i, i)
    vars[i] = "a" .. i
    if allocates(p.type) then anchored = true end
    if runs_code(p.type) then fresh = true end
  end
  for i, p in ipairs(f.params) do
    stores[i] = string.format("  store%d(args, %q, a%d, %s, WHAT%d)", i, p.cname, i, anchored and "anchors" or "nil", i)
  end
  if #vars > 0 then table.insert(stores, 1, "  local " .. table.concat(vars, ", ") .. " = ...") end
  if anchored then table.insert(stores, 2, "  local anchors = {}") end
  if f.result then up[#up + 1] = "local load_result = F.result.load" end
  local fill = {
    UPVALUES = table.concat(up, "\n"),
    TO_SAFE = safe and "" or "  if st.nojit then return SAFE(self, ...) end",
    NPARAMS = tostring(#f.params),
    ID = tostring(f.id),
    ARGS = not f.args_cname and "nil" or fresh and "F.args_ct()" or ("st.args_" .. f.name),
    OUT = f.result and ("st.out_" .. f.name) or "nil",
    STORE = table.concat(stores, "\n"),
    -- A reused result is cleared: a provider that reports success without writing it must not
    -- return the previous call's result.
    CLEAR_OUT = f.result and ("  fill(out, " .. ffi.sizeof(f.out_ct) .. ")") or "",
    -- Kept reachable from the object while the call runs (and restored for an outer call).
    ANCHOR = anchored and "  local prev_anchors = self._anchors\n  self._anchors = anchors" or "",
    UNANCHOR = anchored and "  self._anchors = prev_anchors" or "",
    LOAD = f.result and "load_result(out, 0)" or "nil",
  }
  return (METHOD_TEMPLATE:gsub("%$([%u_]+)", function(k) return assert(fill[k], k) end))
end

local function method_for(f)
  if f.method then return f.method end
  local function compile(safe, safe_copy)
    local name = "=polyplug " .. f.contract.name .. "." .. f.name .. (safe and " (safe)" or "")
    return assert(loadstring(method_source(f, safe), name))(CALL_KIT, f, safe_copy)
  end
  local safe = compile(true)
  jit.off(safe)
  f.method = compile(false, safe)
  return f.method
end

Contract.__index = function(obj, key)
  local m = Contract[key]
  if m ~= nil then return m end
  local c = rawget(obj, "_c")
  if type(key) == "string" and key:sub(1, 1) ~= "_" then
    bad_arg((c and (c.name .. "@" .. c.major) or "contract") .. " has no function " .. key)
  end
  return nil
end
Contract.__tostring = function(obj)
  return "polyplug contract " .. obj._label .. (obj._closed and " (closed)" or "")
end

local function new_contract(rt, c, handle, by_contract, min)
  local host = host_of(rt)
  local st = state_type(c)()
  st.rev_ptr = NO_INSTANCE
  st.rev = rt._rev_ptr[0]
  st.nojit = rt._nojit
  arena_init(st.arena, st.arena_first, host)
  local obj = setmetatable({
    _rt = rt, _c = c, _by_contract = by_contract, _min = min, _st = st,
    _label = c.name .. "@" .. c.major, _closed = false,
  }, Contract)
  for _, f in ipairs(c.functions) do obj[f.name] = method_for(f) end
  local iface = host.resolve_guest_contract(host, packed_handle(handle))
  if iface == nil then raise(5, obj._label .. ": the provider's handle does not resolve") end
  attach(obj, t_handle(handle), iface)
  rt._contracts[obj] = true
  return obj
end
NOJIT[#NOJIT + 1] = new_contract

local function check_find_opts(opts, what)
  for k in pairs(opts) do
    if k ~= "api" and k ~= "min_version" then bad_arg(what .. ": unknown option " .. tostring(k) .. " (api, min_version)") end
  end
  return opts.min_version and check_int("u32", opts.min_version, what .. " min_version") or 0
end

--- The first provider of a guest contract; a contract object with its own instance. It follows
--- reloads and moves to another provider when this one is unloaded.
function Runtime:find(name, opts)
  local host = check_open(self)
  local c = pick_contract(self, name, opts, "guest", "find")
  local min = check_find_opts(opts, "find(" .. name .. ")")
  local handle = handle_of(host.find_guest_contract(host, c.id, min))
  if handle.index == 0xffffffff then
    raise(4, "find: no provider of " .. c.name .. "@" .. c.major .. " is loaded")
  end
  return new_contract(self, c, handle, true, min)
end

--- Every provider of a guest contract, one contract object each (pinned to its provider).
function Runtime:find_all(name, opts)
  local host = check_open(self)
  local c = pick_contract(self, name, opts, "guest", "find_all")
  local min = check_find_opts(opts, "find_all(" .. name .. ")")
  local arr = host.find_all_guest_contracts(host, c.id, min)
  local handles = {}
  local items = ffi.cast("polyplug_Handle*", arr.items)
  for i = 0, tonumber(arr.len) - 1 do handles[#handles + 1] = t_handle(items[i]) end
  if arr.items ~= nil then host.free(host, ffi.cast(t_u8p, arr.items), arr.len * 8, arr.align) end
  local out = {}
  for i, h in ipairs(handles) do out[i] = new_contract(self, c, h, false, min) end
  return out
end

--- The number of providers of a guest contract (find_all without instances).
function Runtime:count(name, opts)
  local host = check_open(self)
  local c = pick_contract(self, name, opts, "guest", "count")
  local min = check_find_opts(opts, "count(" .. name .. ")")
  local arr = host.find_all_guest_contracts(host, c.id, min)
  local n = tonumber(arr.len)
  if arr.items ~= nil then host.free(host, ffi.cast(t_u8p, arr.items), arr.len * 8, arr.align) end
  return n
end

function Contract:close()
  if self._closed then return end
  self._closed = true
  self._st.rev_ptr = NO_INSTANCE  -- first: calls must not read the runtime's counter any more
  if self._rt._host ~= nil then
    detach(self)
    arena_free(self._st.arena, self._rt._host)
  end
  self._rt._contracts[self] = nil
end
NOJIT[#NOJIT + 1] = Contract.close

--- Calls a function by name (also when its name is one of these methods').
function Contract:call(name, ...)
  local f = self._c.by_name[name]
  if not f then bad_arg(self._label .. " has no function " .. tostring(name)) end
  return method_for(f)(self, ...)
end

--- Value of an enum variant by name, or (given a number) the variant's name.
function Contract:enum(enum_name, v)
  local e = self._c.set.enums[enum_name]
  if not e then bad_arg(self._label .. ": the contract file has no enum " .. tostring(enum_name)) end
  if type(v) == "string" then
    local value = e.by_name[v]
    if value == nil then bad_arg(enum_name .. " has no variant " .. v) end
    return value
  end
  return e.by_value[tostring(v)]
end

function Contract:is_closed() return self._closed end
function Contract:contract() return self._c end
--- Whether the current provider dispatches through a VM (Lua, Python, JS bundles).
function Contract:is_vm()
  ensure_current(self, self._label .. ":is_vm()")
  return not self._st.native
end

---------------------------------------------------------------------------------------------------
-- Host contracts implemented in Lua
---------------------------------------------------------------------------------------------------
function Runtime:register_host_contract(name, opts)
  local host = check_open(self)
  local c = pick_contract(self, name, opts, "host", "register_host_contract")
  local impl = opts.implementation
  if type(impl) ~= "table" then
    bad_arg("register_host_contract(" .. name .. "): needs implementation = { <function name> = function(...) end }")
  end
  for k in pairs(opts) do
    if k ~= "api" and k ~= "implementation" then bad_arg("register_host_contract: unknown option " .. tostring(k)) end
  end
  local missing = {}
  for _, f in ipairs(c.functions) do
    if type(impl[f.name]) ~= "function" then missing[#missing + 1] = f.signature end
  end
  if #missing > 0 then
    bad_arg("register_host_contract(" .. name .. "): the implementation lacks: " .. table.concat(missing, ", "))
  end
  local count = 0
  for _, f in ipairs(c.functions) do if f.id + 1 > count then count = f.id + 1 end end
  local state = { contract = c, callbacks = {}, keep = {} }
  local table_mem = ffi.new("const void*[?]", count > 0 and count or 1)
  for _, f in ipairs(c.functions) do
    local handler = impl[f.name]
    local fstate = {}
    local function body(args, out)
      local values = {}
      if f.args_ptr_ct then
        local a = ffi.cast(f.args_ptr_ct, args)
        for i, p in ipairs(f.params) do values[i] = p.type.load(a, p.cname) end
      end
      local r = handler(unpack(values, 1, #f.params))
      if f.result then
        if out == nil then error("the caller passed no result storage", 0) end
        local anchors = {}
        f.result.store(ffi.cast(f.out_ptr_ct, out), 0, r, anchors, f.signature .. " result")
        fstate.anchors = anchors   -- a StringView result stays valid until the next call
      end
    end
    local cb = ffi.cast("polyplug_HostFnCb", function(_, args, out, err)
      local ok, e = pcall(body, args, out)
      if not ok then
        local msg = M.is_error(e) and e.message or tostring(e)
        fstate.message = msg  -- kept alive until the next call
        if err ~= nil then
          err.code = 3
          err.message.ptr = ffi.cast(t_cu8p, msg)
          err.message.len = #msg
        end
      end
    end)
    state.callbacks[#state.callbacks + 1] = cb
    state.keep[#state.keep + 1] = fstate
    table_mem[f.id] = ffi.cast("const void*", cb)
  end
  local create = ffi.cast("polyplug_HostCreateCb", function(iface, _, out)
    if out ~= nil then out.data = ffi.cast("void*", iface) end  -- never NULL: NULL means "not found"
  end)
  local destroy = ffi.cast("polyplug_HostDestroyCb", function() end)
  state.callbacks[#state.callbacks + 1] = create
  state.callbacks[#state.callbacks + 1] = destroy
  local iface = ffi.new("polyplug_HostIface")
  iface.contract_id = c.id
  iface.contract_version.major = c.major
  iface.contract_version.minor = c.minor
  iface.contract_version.patch = c.patch
  iface.singleton = c.singleton
  iface.dispatch_type = 0
  iface.create_instance = create
  iface.destroy_instance = destroy
  iface.dispatch.native.function_count = count
  iface.dispatch.native.functions = table_mem
  state.iface = iface
  state.table_mem = table_mem
  -- Anchored before registering: the runtime stores the interface by reference.
  self._host_contracts[#self._host_contracts + 1] = state
  set_nojit(self)
  local err = new_err()
  clear_last_error(host)
  host.register_host_contract(host, iface, err)
  if err[0].code ~= 0 then
    raise_abi(host, err, "register_host_contract(" .. name .. ")")
  end
  return self
end

---------------------------------------------------------------------------------------------------
-- Creating and closing
---------------------------------------------------------------------------------------------------
local RUNTIME_OPTIONS = { library = true, loaders = true, loader_dir = true, hot_reload = true,
                          compatibility = true, log_level = true, log = true, on_reload = true }

local function level_of(v, what)
  if type(v) == "string" then
    local n = LOG_LEVELS[v]
    if not n then bad_arg(what .. ": unknown log level " .. v .. " (error, warn, info, debug, trace)") end
    return n
  end
  local n = check_int("u32", v, what)
  if n < 1 or n > 5 then bad_arg(what .. ": log level must be 1..5, got " .. n) end
  return n
end

-- Destroys the runtime, then frees the callbacks it could still call. Once only.
destroy_core = function(core)
  local host = core.host
  if host == nil then return end
  core.host = nil
  core.lib.polyplug_runtime_destroy(host)
  for _, cb in ipairs(core.callbacks) do cb:free() end
  for _, st in ipairs(core.host_contracts) do
    for _, cb in ipairs(st.callbacks) do cb:free() end
  end
  core.callbacks = {}
  core.host_contracts = {}
end

local function report_callback_error(core, where, e)
  core.callback_errors = core.callback_errors + 1
  io.stderr:write("polyplug.lua: error in the " .. where .. " callback: " .. tostring(e) .. "\n")
end

--- Creates a runtime. Options: library, loaders = {"lua", ...}, loader_dir, hot_reload,
--- compatibility ("strict"|"relaxed"|"yolo"), log_level ("error".."trace"),
--- log = function(level, scope, message), on_reload = function(phase).
function M.runtime(opts)
  opts = opts or {}
  if type(opts) ~= "table" then bad_arg("polyplug.runtime: options must be a table") end
  for k in pairs(opts) do
    if not RUNTIME_OPTIONS[k] then
      local names = {}
      for n in pairs(RUNTIME_OPTIONS) do names[#names + 1] = n end
      table.sort(names)
      bad_arg("polyplug.runtime: unknown option " .. tostring(k) .. " (known: " .. table.concat(names, ", ") .. ")")
    end
  end
  if opts.log ~= nil and type(opts.log) ~= "function" then bad_arg("polyplug.runtime: log must be a function") end
  if opts.on_reload ~= nil and type(opts.on_reload) ~= "function" then bad_arg("polyplug.runtime: on_reload must be a function") end
  local compat = opts.compatibility or "strict"
  if type(compat) == "string" then
    compat = COMPAT[compat] or bad_arg("polyplug.runtime: compatibility must be strict, relaxed or yolo, got " .. compat)
  else
    compat = check_int("u32", compat, "polyplug.runtime compatibility")
  end
  local level = level_of(opts.log_level or "warn", "polyplug.runtime log_level")
  local lib, libpath = open_library(opts.library)

  local rt = setmetatable({ _lib = lib, library = libpath, _loaders = {}, _described = {},
                            _contracts = setmetatable({}, { __mode = "k" }), _host_contracts = {},
                            _callbacks = {}, _loader_dir = opts.loader_dir, _nojit = false }, Runtime)
  -- What destroying needs, apart from rt: the callbacks must not reference rt (the FFI keeps
  -- callback functions alive), or rt could never be collected.
  local core = { lib = lib, callbacks = rt._callbacks, host_contracts = rt._host_contracts, callback_errors = 0 }
  rt._core = core
  local info = ffi.new("polyplug_DlInfo")
  if C.dladdr(ffi.cast("const void*", lib.polyplug_runtime_create), info) ~= 0 and info.dli_fname ~= nil then
    rt.library = ffi.string(info.dli_fname)
    rt._lib_dir = dirname(rt.library)
  elseif libpath:find("/") then
    rt._lib_dir = dirname(libpath)
  end

  local config = ffi.new("polyplug_RuntimeConfig")
  config.compatibility = compat
  config.hot_reload_enabled = opts.hot_reload and true or false
  config.log_max_level = level
  if opts.on_reload then
    local user = opts.on_reload
    local cb = ffi.cast("polyplug_ReloadCb", function(_, phase)
      local ok, e = pcall(function()
        local p = phase[0]
        local reason = sv_string(p.reason)
        user({ phase = PHASES[tonumber(p.phase_type)] or tostring(p.phase_type),
               phase_type = tonumber(p.phase_type), bundle_id = p.bundle_id + 0ULL,
               bundle_name = sv_string(p.bundle_name), reason = reason ~= "" and reason or nil })
      end)
      if not ok then report_callback_error(core, "on_reload", e) end
    end)
    rt._callbacks[#rt._callbacks + 1] = cb
    config.on_reload = cb
  end
  if opts.log then
    local user = opts.log
    local cb = ffi.cast("polyplug_LogCb", function(_, lvl, sp, sl, mp, ml)
      local ok, e = pcall(user, tonumber(lvl), sp ~= nil and ffi.string(sp, sl) or "",
                          mp ~= nil and ffi.string(mp, ml) or "")
      if not ok then report_callback_error(core, "log", e) end
    end)
    rt._callbacks[#rt._callbacks + 1] = cb
    config.log = cb
    rt._nojit = true  -- guest code may log through the runtime during any call
  end
  local host = lib.polyplug_runtime_create(config)
  if host == nil then
    for _, cb in ipairs(rt._callbacks) do cb:free() end
    raise(1, "polyplug_runtime_create failed (see the runtime's log on stderr)")
  end
  rt._host = ffi.cast("const polyplug_HostApi*", host)
  rt._raw_host = host
  rt._rev_ptr = rt._host.revision_counter(rt._host)
  if rt._rev_ptr == nil then
    rt:close()
    raise(1, "this libpolyplug.so has no revision counter")
  end
  -- __gc fallback (LuaJIT has no __gc on tables): a cdata proxy whose finalizer destroys the
  -- runtime. The finalizer holds only the core, never rt, so rt can become unreachable.
  core.host = rt._host
  rt._gc = ffi.gc(ffi.new("char[1]"), function() destroy_core(core) end)
  local loaders = opts.loaders or {}
  if type(loaders) ~= "table" then rt:close() bad_arg("polyplug.runtime: loaders must be a list like {\"lua\", \"js\"}") end
  for _, lang in ipairs(loaders) do
    local ok, e = pcall(rt.add_loader, rt, lang)
    if not ok then rt:close() error(e, 0) end
  end
  return rt
end

--- The raw `const HostApi*` (cdata) for calls this module does not wrap.
function Runtime:host_api() return check_open(self) end
function Runtime:is_closed() return self._host == nil end
--- How many errors the log and on_reload callbacks raised (each was printed to stderr).
function Runtime:callback_errors() return self._core.callback_errors end
function Runtime:revision() check_open(self) return self._rev_ptr[0] + 0ULL end
function Runtime:last_error() return take_last_error(check_open(self)) end

--- Destroys the runtime (idempotent): contract objects first, then the runtime, then callbacks.
function Runtime:close()
  local host = self._host
  if host == nil then return end
  for obj in pairs(self._contracts) do pcall(Contract.close, obj) end
  self._host = nil
  self._rc = nil
  if self._core then destroy_core(self._core) else self._lib.polyplug_runtime_destroy(host) end
  if self._gc then ffi.gc(self._gc, nil) self._gc = nil end
end

Runtime.__tostring = function(rt)
  return "polyplug runtime (" .. (rt._host == nil and "closed" or "open") .. ")"
end

for _, f in pairs(Runtime) do if type(f) == "function" then jit.off(f) end end
for _, f in ipairs(NOJIT) do jit.off(f) end
jit.off(M.runtime)
jit.off(destroy_core)

return M
