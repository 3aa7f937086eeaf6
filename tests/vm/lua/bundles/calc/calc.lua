-- SPDX-License-Identifier: MIT
-- example.calc@1 in Lua (docs/VM_BUNDLES.md).
local Calc = {}
function Calc:add(a, b) return a + b end
function Calc:describe() return "Lua calc" end
contracts = { ["example.calc"] = Calc }
