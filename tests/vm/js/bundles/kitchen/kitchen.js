// SPDX-License-Identifier: MIT
// The JavaScript loader's test script (ES5.1, Duktape): implements test.js.Kitchen.

function Kitchen() {
    this.counter = 0;
}

function identity(x) { return x; }

var widths = ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"];
for (var i = 0; i < widths.length; i++) {
    Kitchen.prototype["echo_" + widths[i]] = identity;
    Kitchen.prototype["to_" + widths[i]] = identity;
}
Kitchen.prototype.echo_f32 = identity;
Kitchen.prototype.echo_f64 = identity;
Kitchen.prototype.to_f32 = identity;

Kitchen.prototype.negate = function (b) {
    if (typeof b !== "boolean") throw new TypeError("negate wants a boolean");
    return !b;
};

Kitchen.prototype.mix = function (a, b, c, d, e, f, g, h) {
    return a + b + c + d + e + f + (g ? 1000 : 0) + h;
};

Kitchen.prototype.wrap = function (s) { return "<" + s + ">"; };
Kitchen.prototype.utf16_length = function (s) { return s.length; };
Kitchen.prototype.is_plug = function (s) { return s === "\uD83D\uDD0C"; };
Kitchen.prototype.literal = function () { return "café 🔌"; };

Kitchen.prototype.reverse = function (b) {
    if (!(b instanceof Uint8Array)) throw new TypeError("reverse wants a Uint8Array");
    var out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) out[i] = b[b.length - 1 - i];
    return out;
};

Kitchen.prototype.bytes_of = function (n) {
    var buffer = new ArrayBuffer(n);
    var view = new Uint8Array(buffer);
    for (var i = 0; i < n; i++) view[i] = (i * 3) & 255;
    return buffer;
};

Kitchen.prototype.echo_ptr = identity;
Kitchen.prototype.is_null = function (p) { return p === null; };

Kitchen.prototype.scale = function (m, by) {
    return { tag: m.tag + 1, value: m.value * by, small: m.small * by };
};

Kitchen.prototype.describe = function (r) {
    var points = [];
    for (var i = 0; i < r.points.length; i++) {
        points.push({ x: r.points[i].y, y: r.points[i].x });
    }
    var payload = new Uint8Array(r.payload.length + 1);
    payload.set(r.payload, 0);
    payload[r.payload.length] = 0xff;
    return {
        flag: !r.flag,
        inner: { a: r.inner.c, b: r.inner.b + 1, c: r.inner.a },
        label: r.label + "/" + r.points.length,
        points: points,
        color: r.color === 1 ? 256 : 1,
        payload: payload,
        opaque: r.opaque,
        half: -r.half
    };
};

Kitchen.prototype.sum_points = function (points) {
    var sum = { x: 0, y: 0 };
    for (var i = 0; i < points.length; i++) {
        sum.x += points[i].x;
        sum.y += points[i].y;
    }
    return sum;
};

Kitchen.prototype.shout = function (words) {
    var out = [];
    for (var i = 0; i < words.length; i++) out.push(words[i].toUpperCase() + "!");
    return out;
};

Kitchen.prototype.squares = function (n) {
    var out = [];
    for (var i = 0; i < n; i++) out.push(i * i);
    return out;
};

Kitchen.prototype.rainbow = function () { return [1, 2, 256]; };
Kitchen.prototype.next_color = function (c) { return c === 1 ? 2 : c === 2 ? 256 : 1; };
Kitchen.prototype.grant = function (a) { return a | 2; };

Kitchen.prototype.bump = function () { this.counter += 1; };
Kitchen.prototype.count = function () { return this.counter; };

Kitchen.prototype.bad_point = function (kind) {
    if (kind === 0) return { x: 1 };
    if (kind === 1) return "nope";
    if (kind === 2) return { x: 1, y: 1.5 };
    return { x: 1, y: 2 };
};
Kitchen.prototype.bad_color = identity;
Kitchen.prototype.bad_text = function () { return 42; };
Kitchen.prototype.bad_list = function () { return [{ x: 1, y: 2 }, { x: "a", y: 0 }]; };

Kitchen.prototype.fail = function (n) {
    if (n > 2) throw new RangeError("bad n " + n);
    return n;
};

Kitchen.prototype.say = function (level, message) { polyplug.log(level, message); };
Kitchen.prototype.bundle = function () { return polyplug.bundle; };

Kitchen.prototype.greet = function (name) {
    return polyplug.call("host.test.js.Greeter", "greet", name) + "!";
};
Kitchen.prototype.host_sum = function (a, b) {
    return polyplug.call("host.test.js.Greeter", "sum", a, b);
};
Kitchen.prototype.host_refuses = function () {
    return polyplug.call("host.test.js.Greeter", "refuse");
};
Kitchen.prototype.calc_add = function (a, b) {
    return polyplug.call("test.js.Calc", "add", a, b);
};

Kitchen.prototype.reenter = function () {
    return polyplug.call("test.js.Kitchen", "echo_i32", 5);
};
Kitchen.prototype.reenter_message = function () {
    try {
        polyplug.call("test.js.Kitchen", "echo_i32", 5);
        return "no error";
    } catch (e) {
        return e.message + " [code " + e.code + "]";
    }
};
Kitchen.prototype.call_unknown = function () {
    var messages = [];
    var attempts = [
        function () { polyplug.call("test.js.Nope", "x"); },
        function () { polyplug.call("test.js.Calc", "subtract", 1, 2); },
        function () { polyplug.call("test.js.Calc", "add", 1); },
        function () { polyplug.call("test.js.Calc", "add", 1, "two"); }
    ];
    for (var i = 0; i < attempts.length; i++) {
        try {
            attempts[i]();
            messages.push("no error");
        } catch (e) {
            messages.push(e.message);
        }
    }
    return messages.join("\n");
};

Kitchen.prototype.throw_string = function () { throw "boom"; };
Kitchen.prototype.big = function (d, e) { return d + e; };
Kitchen.prototype.lone = function () { return "a\uD800b"; };
Kitchen.prototype.symbol = function () { return Symbol("s"); };

contracts = { "test.js.Kitchen": Kitchen };
