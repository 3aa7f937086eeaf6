-- SPDX-License-Identifier: MIT
-- example.calc@1 in Lua: a table of methods. No generated code: the loader reads the contract
-- file and converts the arguments and results itself.
local Calc = {}

-- add wraps at 32 bits, as the contract says (Lua integers are 64-bit).
function Calc:add(a, b)
    local sum = (a + b) % 4294967296
    if sum >= 2147483648 then sum = sum - 4294967296 end
    return sum
end

function Calc:describe()
    return "Lua calc (" .. _VERSION .. ")"
end

contracts = { ["example.calc"] = Calc }
