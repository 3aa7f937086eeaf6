-- SPDX-License-Identifier: MIT
-- test.lua.Peer: a second bundle the kitchen calls through polyplug.call. Its global `counter`
-- has the same name as the kitchen's, and it looks for what the kitchen put into its own
-- globals and standard library: each bundle has its own VM, so it finds nothing.
counter = 1000
local Peer = {}
function Peer:greet(name)
    counter = counter + 1
    local seen = (string.kitchen_mark or "") .. (rawget(_G, "kitchen_only") or "")
    return "hello, " .. name .. " from " .. polyplug.bundle .. " #" .. counter ..
        (seen == "" and " (clean)" or " (sees " .. seen .. ")")
end
function Peer:sum(points)
    local x, y = 0, 0
    for _, p in ipairs(points) do x, y = x + p.x, y + p.y end
    return { x = x * 10, y = y * 10 }
end
contracts = { ["test.lua.Peer"] = Peer }
