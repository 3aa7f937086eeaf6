// SPDX-License-Identifier: MIT
// ns/call of the C# host library (Polyplug.dll) against plain P/Invoke calls (not a pass/fail
// test; docs/CSHARP_HOST.md has the figures).
//
//     mcs -unsafe -r:build-bench/bindings/csharp/Polyplug.dll -out:/tmp/host_csharp_bench.exe \
//         tests/bench/host_csharp_bench.cs
//     MONO_PATH=build-bench/bindings/csharp mono /tmp/host_csharp_bench.exe \
//         --library build-bench/shim/libpolyplug.so --parity build-bench/tests/parity/c \
//         --api tests/parity/parity.api.toml [-n 2000000]
//
// Rows: a plain P/Invoke of libc's abs (the baseline: what any [DllImport] call costs under mono),
// the same function called through a delegate over its address (how Polyplug.dll reaches every
// HostApi entry and contract function: C# 7 has no function pointers), find_guest_contract
// through the library (Runtime.FindGuestContract), and typed calls of the parity contract on the
// C bundle. Each figure is the best of 5 runs of N iterations, with its ratio to the baseline.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Polyplug;

static class HostCSharpBench
{
    [DllImport("libc.so.6")] static extern int abs(int x);
    [DllImport("libdl.so.2")] static extern IntPtr dlsym(IntPtr handle, string name);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] delegate int IntFn(int x);

    static double BestNs(Action<int> body, int n)
    {
        body(n / 10); // warm-up: JIT and caches
        double best = double.MaxValue;
        for (int run = 0; run < 5; run++)
        {
            var watch = Stopwatch.StartNew();
            body(n);
            watch.Stop();
            best = Math.Min(best, watch.Elapsed.TotalMilliseconds * 1e6 / n);
        }
        return best;
    }

    static int Main(string[] argv)
    {
        var opts = new Dictionary<string, string> { ["-n"] = "2000000" };
        for (int i = 0; i + 1 < argv.Length; i += 2) opts[argv[i]] = argv[i + 1];
        int n = int.Parse(opts["-n"]);
        opts.TryGetValue("--library", out string library);
        int sink = 0;

        double baseline = BestNs(k => { for (int i = 0; i < k; i++) sink += abs(i); }, n);
        var rows = new List<(string, double)> { ("P/Invoke abs(i) [baseline]", baseline) };
        // RTLD_DEFAULT (NULL): abs as the process already has it.
        var viaDelegate = (IntFn)Marshal.GetDelegateForFunctionPointer(dlsym(IntPtr.Zero, "abs"), typeof(IntFn));
        rows.Add(("delegate over abs's address", BestNs(k => { for (int i = 0; i < k; i++) sink += viaDelegate(i); }, n)));

        using (var rt = new Runtime(library))
        {
            ulong id = Abi.GuestContractId("test.parity.Kit", 1);
            if (opts.TryGetValue("--parity", out string parity)) rt.Load(parity);
            rows.Add(("Runtime.FindGuestContract (find_guest_contract)",
                      BestNs(k => { for (int i = 0; i < k; i++) sink += rt.FindGuestContract(id, 1).HasValue ? 1 : 0; }, n)));
            if (parity != null && opts.TryGetValue("--api", out string api))
            {
                GuestContract kit = rt.Find("test.parity.Kit", api);
                Function add = kit.Contract.Function("add_i32");
                Function greet = kit.Contract.Function("greet");
                int m = Math.Max(1, n / 10);
                rows.Add(("kit.Invoke(add_i32, 2, 40) on the C bundle", BestNs(k => { for (int i = 0; i < k; i++) sink += (int)kit.Invoke(add, 2, 40); }, m)));
                rows.Add(("kit.Call(\"add_i32\", 2, 40) on the C bundle", BestNs(k => { for (int i = 0; i < k; i++) sink += (int)kit.Call("add_i32", 2, 40); }, m)));
                rows.Add(("kit.Invoke(greet, \"world\") on the C bundle", BestNs(k => { for (int i = 0; i < k; i++) sink += ((string)kit.Invoke(greet, "world")).Length; }, m)));
            }
        }
        Type mono = Type.GetType("Mono.Runtime");
        object version = mono?.GetMethod("GetDisplayName", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)?.Invoke(null, null);
        Console.WriteLine($"C# host bench, mono {version ?? "?"}, {Environment.ProcessorCount} cores, n={n} ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
        foreach (var row in rows) Console.WriteLine($"{row.Item1,-50} {row.Item2,8:F1} ns  {row.Item2 / baseline,6:F2}x");
        return sink == 42 ? 1 : 0; // keeps the loops' results alive
    }
}
