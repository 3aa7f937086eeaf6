-- SPDX-License-Identifier: MIT
-- test.parity.Kit@1 in Lua: a plain table of methods, no generated code. Arithmetic only (no
-- bitwise operators), so the same script runs on Lua 5.4 and on LuaJIT.
local Kit = {}

local function wrap32(v)  -- two's complement at 32 bits
    v = v % 4294967296
    if v >= 2147483648 then v = v - 4294967296 end
    return v
end

local next_color = { [1] = 2, [2] = 256, [256] = 1 }

function Kit:add_i32(a, b) return wrap32(a + b) end
function Kit:echo_ints(v) return v end
function Kit:scale(x, y) return x * 2.0 + y end
function Kit:differ(a, b) return a ~= b end
function Kit:greet(name) return "hello, " .. name .. "!" end
function Kit:reverse(data) return data:reverse() end
function Kit:total(points)
    local x, y = 0, 0
    for _, p in ipairs(points) do
        x, y = wrap32(x + p.x), wrap32(y + p.y)
    end
    return { x = x, y = y }
end
function Kit:describe(s)
    local color = next_color[s.color]
    if color == nil then error("unknown color " .. s.color) end
    return { tag = (s.tag + 1) % 256, weight = s.weight * 2, color = color, label = s.label .. "!" }
end
function Kit:colors(n)
    if n > 3 then error("n too large: " .. n) end
    local all, out = { 1, 2, 256 }, {}
    for i = 1, n do out[i] = all[i] end
    return out
end
function Kit:fail(code) error("parity failure " .. code) end

contracts = { ["test.parity.Kit"] = Kit }
