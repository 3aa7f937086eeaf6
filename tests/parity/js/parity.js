// SPDX-License-Identifier: MIT
// test.parity.Kit@1 in JavaScript (ES5.1, Duktape): a constructor and its prototype.
var NEXT_COLOR = { 1: 2, 2: 256, 256: 1 };

function Kit() {}
Kit.prototype.add_i32 = function (a, b) { return (a + b) | 0; };
Kit.prototype.echo_ints = function (v) { return v; };
Kit.prototype.scale = function (x, y) { return x * 2 + y; };
Kit.prototype.differ = function (a, b) { return a !== b; };
Kit.prototype.greet = function (name) { return "hello, " + name + "!"; };
Kit.prototype.reverse = function (data) {
    var out = new Uint8Array(data.length);
    for (var i = 0; i < data.length; i++) out[i] = data[data.length - 1 - i];
    return out;
};
Kit.prototype.total = function (points) {
    var x = 0, y = 0;
    for (var i = 0; i < points.length; i++) {
        x = (x + points[i].x) | 0;
        y = (y + points[i].y) | 0;
    }
    return { x: x, y: y };
};
Kit.prototype.describe = function (s) {
    var color = NEXT_COLOR[s.color];
    if (color === undefined) throw new Error("unknown color " + s.color);
    return { tag: (s.tag + 1) & 0xFF, weight: s.weight * 2, color: color, label: s.label + "!" };
};
Kit.prototype.colors = function (n) {
    if (n > 3) throw new RangeError("n too large: " + n);
    return [1, 2, 256].slice(0, n);
};
Kit.prototype.fail = function (code) { throw new Error("parity failure " + code); };

contracts = { "test.parity.Kit": Kit };
