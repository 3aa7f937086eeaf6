// SPDX-License-Identifier: MIT
// example.calc@1 in JavaScript (ES5.1, run by Duktape): a constructor and its prototype. No
// generated code: the loader reads the contract file and converts the values itself.
function Calc() {}

// add wraps at 32 bits, as the contract says: `| 0` is JavaScript's int32 conversion.
Calc.prototype.add = function (a, b) { return (a + b) | 0; };

Calc.prototype.describe = function () { return "JavaScript calc (Duktape)"; };

contracts = { "example.calc": Calc };
