// SPDX-License-Identifier: MIT
// test.parity.Kit@1 in C#: a plain class named like the contract, no generated code.
using System;

namespace test.parity {

public enum Color : ushort { Red = 1, Green = 2, Blue = 256 }

public class Ints {
    public sbyte a; public byte b; public short c; public ushort d;
    public int e; public uint f; public long g; public ulong h;
}

public class Point { public int x; public int y; }

public class Shape { public byte tag; public double weight; public Color color; public string label; }

public class Kit {
    public int add_i32(int a, int b) { return unchecked(a + b); }

    public Ints echo_ints(Ints v) { return v; }

    public double scale(float x, double y) { return (double)x * 2.0 + y; }

    public bool differ(bool a, bool b) { return a != b; }

    public string greet(string name) { return "hello, " + name + "!"; }

    public byte[] reverse(byte[] data) {
        var copy = (byte[])data.Clone();
        Array.Reverse(copy);
        return copy;
    }

    public Point total(Point[] points) {
        var sum = new Point();
        foreach (var p in points) unchecked { sum.x += p.x; sum.y += p.y; }
        return sum;
    }

    public Shape describe(Shape s) {
        Color next;
        switch (s.color) {
            case Color.Red: next = Color.Green; break;
            case Color.Green: next = Color.Blue; break;
            case Color.Blue: next = Color.Red; break;
            default: throw new ArgumentException("unknown color " + (int)s.color);
        }
        return new Shape { tag = unchecked((byte)(s.tag + 1)), weight = s.weight * 2,
                           color = next, label = s.label + "!" };
    }

    public Color[] colors(uint n) {
        if (n > 3) throw new ArgumentException("n too large: " + n);
        var all = new[] { Color.Red, Color.Green, Color.Blue };
        var some = new Color[n];
        Array.Copy(all, some, (int)n);
        return some;
    }

    public void fail(int code) { throw new InvalidOperationException("parity failure " + code); }
}

}
