// SPDX-License-Identifier: MIT
// A plain-object implementation (Object.create per instance) with a global of the same name as
// one the kitchen script could define: each bundle has its own heap.
var label = "calc";

var Calc = {
    add: function (a, b) { return a + b; },
    describe: function () { return "JS calc (" + label + ")"; }
};

contracts = { "test.js.Calc": Calc };
