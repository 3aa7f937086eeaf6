// SPDX-License-Identifier: MIT
// example.calc@1 in C#: the class named like the contract (namespace example, class calc), one
// method per function with the contract's C# types. No generated code: the dotnet loader reads
// the contract file, checks these types against it at load and converts the values itself.
namespace example {

public class calc {
    // add wraps at 32 bits, as the contract says.
    public int add(int a, int b) { return unchecked(a + b); }

    public string describe() { return "C# calc (Mono, .NET " + System.Environment.Version + ")"; }
}

}
