// SPDX-License-Identifier: MIT
// Version 2 of the C# calc (Calc.cs), which the demo hot-reloads into a new application domain.
namespace example {

public class calc {
    public int add(int a, int b) { return unchecked(a + b); }

    public string describe() { return "C# calc, version 2"; }
}

}
