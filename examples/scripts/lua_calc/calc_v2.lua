-- SPDX-License-Identifier: MIT
-- Version 2 of the Lua calc: the demo copies it over calc.lua while the host runs, and the
-- runtime's watcher reloads the bundle into a fresh Lua state.
local Calc = {}

function Calc:add(a, b)
    local sum = (a + b) % 4294967296
    if sum >= 2147483648 then sum = sum - 4294967296 end
    return sum
end

function Calc:describe()
    return "Lua calc, version 2"
end

contracts = { ["example.calc"] = Calc }
