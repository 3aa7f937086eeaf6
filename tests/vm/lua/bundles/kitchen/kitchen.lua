-- SPDX-License-Identifier: MIT
-- test.lua.Kitchen: one function per type category, the errors a script can make, and calls out
-- through the polyplug module. Line numbers matter to the tests: add new code at the end. The
-- calls whose error lines are checked are not tail calls: LuaJIT drops a tail caller's frame.
counter = 0
kitchen_only = "kitchen global"
string.kitchen_mark = "kitchen mark"

local K = {}
K.__index = K
function K.new() return setmetatable({ touched = 0 }, K) end

local function divide(a, b)
    if b == 0 then error("division by zero") end  -- line 14
    return math.floor(a / b)
end

function K:echo_u8(v) return v end
function K:echo_u16(v) return v end
function K:echo_u32(v) return v end
function K:echo_u64(v) return v end
function K:echo_i8(v) return v end
function K:echo_i16(v) return v end
function K:echo_i32(v) return v end
function K:echo_i64(v) return v end
function K:echo_f32(v) return v end
function K:echo_f64(v) return v end
function K:negate(v) return not v end

function K:mix(a, b, c, d, e, f, g, h)
    return string.format("%d|%d|%d|%d|%.2f|%.3f|%s|%d", a, b, c, d, e, f, tostring(g), h)
end

function K:narrow(v) return v end
function K:truncate(v) return v end
function K:to_f32(v) return v end
function K:wrong(which)
    if which == 1 then return "seven" end
    if which == 2 then return {} end
    if which == 3 then return nil end
    return true
end

function K:echo(text) return text .. "!" end
function K:length(text) return #text end
function K:reverse(data) return data:reverse() end
function K:same_ptr(p) return p end
function K:is_null(p) return p == nil end

function K:scale(m, by)
    return {
        tag = m.tag + by,
        value = m.value * by,
        small = m.small + by,
        inner = { a = m.inner.a + 1, b = m.inner.b * 2, c = m.inner.c + by },
        flag = not m.flag,
        label = m.label:upper(),
    }
end

function K:sum_points(points)
    local x, y = 0, 0
    for _, p in ipairs(points) do x, y = x + p.x, y + p.y end
    return { x = x, y = y }
end

function K:make_points(n)
    local out = {}
    for i = 1, n do out[i] = { x = i, y = -i } end
    return out
end

function K:shout(words)
    local out = {}
    for i = #words, 1, -1 do out[#out + 1] = words[i]:upper() end
    return out
end

function K:bump(bytes)
    local out = {}
    for i, b in ipairs(bytes) do out[i] = (b + 1) % 256 end
    return out
end

function K:describe(r)
    local points = {}
    for i, p in ipairs(r.points) do points[i] = { x = p.y, y = p.x } end
    return {
        label = r.label .. " (" .. #r.points .. " points)",
        points = points,
        payload = r.payload .. "\0tail",
        opaque = r.opaque,
        color = r.color == 1 and 256 or 1,
        half = -r.half,
    }
end

function K:next_color(c)
    if c == 1 then return 2 elseif c == 2 then return 256 end
    return 3  -- not a Color
end

-- Lua 5.4 has the | operator, LuaJIT the bit library (and no | in its syntax).
local bor = bit and bit.bor or load("return function(a, b) return a | b end")()
function K:grant(a, extra) return bor(a, extra) end

function K:touch()
    self.touched = self.touched + 1
    counter = counter + 1
end
function K:touches() return self.touched * 1000 + counter end

function K:divide(a, b) return divide(a, b) end
function K:missing_field() return { x = 1 } end
function K:bad_point_in_array() return { { x = 1, y = 2 }, { x = 3, y = 4.5 } } end

function K:greet_via_peer(name) return polyplug.call("test.lua.Peer", "greet", name) end
function K:peer_sum(points) return polyplug.call("test.lua.Peer", "sum", points) end
function K:host_scale(x) return polyplug.call("host.test.lua.Math", "scale", x, 2.5) end
function K:host_name() return polyplug.call("host.test.lua.Math", "name") end
function K:myself() local n = polyplug.call("test.lua.Kitchen", "touches"); return n end
function K:log(level, text) polyplug.log(level, text) end
function K:bundle() return polyplug.bundle end

function K:call_errors()
    local out = {}
    local function try(f)
        local ok, message = pcall(f)
        out[#out + 1] = ok and "no error" or message
    end
    try(function() local r = polyplug.call("no.such", "f"); return r end)  -- line 131
    try(function() local r = polyplug.call("test.lua.Peer", "nope"); return r end)
    try(function() local r = polyplug.call("test.lua.Peer", "greet"); return r end)
    try(function() local r = polyplug.call("test.lua.Peer", "greet", 12); return r end)
    try(function() local r = polyplug.call("test.lua.Peer", "sum", { { x = 1 } }); return r end)
    return table.concat(out, "\n")
end

contracts = { ["test.lua.Kitchen"] = K }
