// SPDX-License-Identifier: MIT
// A C# host on libpolyplug.so through Polyplug.dll (bindings/csharp, P/Invoke only), run by mono:
// discovers the example bundles of every language that is built, calls each provider of
// example.calc@1, implements host.example.Log@1 (which the C bundle calls on every add), and
// hot-reloads the C bundle, printing the phases.
//
//     mcs -r:build/bindings/csharp/Polyplug.dll -out:csharp_host.exe examples/hosts/csharp_host.cs
//     MONO_PATH=build/bindings/csharp mono csharp_host.exe --library build/shim/libpolyplug.so \
//         --bundles build/examples/bundles --scripts build/examples/scripts --loaders lua,python,js
using System;
using System.Collections.Generic;
using System.Linq;
using Polyplug;

static class CSharpHost
{
    // host.example.Log@1, implemented here: the runtime calls Write with the plugin's line.
    sealed class Log
    {
        public readonly List<string> Lines = new List<string>();

        public void Write(string line)
        {
            Lines.Add(line);
            Console.WriteLine($"  [plugin log] {line}");
        }
    }

    static int Main(string[] argv)
    {
        var opts = new Dictionary<string, string> { ["--api"] = "examples/contracts/example_calc.api.toml", ["--loaders"] = "" };
        for (int i = 0; i + 1 < argv.Length; i += 2) opts[argv[i]] = argv[i + 1];
        if (!opts.ContainsKey("--bundles"))
        {
            Console.Error.WriteLine("usage: csharp_host.exe --bundles DIR [--scripts DIR] [--loaders lua,python,js] " +
                                    "[--library libpolyplug.so] [--api example_calc.api.toml]");
            return 2;
        }
        string api = opts["--api"];
        var loaders = opts["--loaders"].Split(',').Where(l => l.Length > 0).ToList();
        opts.TryGetValue("--library", out string library);
        opts.TryGetValue("--scripts", out string scripts);

        var phases = new List<string>();
        var log = new Log();
        int failures = 0;
        using (var rt = new Runtime(library, loaders, hotReload: true,
                                    onReload: e => { phases.Add(e.Phase); Console.WriteLine($"  [reload] {e}"); },
                                    log: r => Console.Error.WriteLine($"  [runtime {r.Level}] {r.Scope}: {r.Message}")))
        {
            rt.RegisterHostContract("host.example.Log", api, log);
            var dirs = new List<string> { opts["--bundles"] };
            if (scripts != null && loaders.Count > 0) dirs.Add(scripts);
            LoadDirsResult found = rt.LoadDirs(dirs.ToArray());
            Console.WriteLine($"discovered and loaded {found.Loaded} bundle(s), skipped {found.Skipped}");
            if (found.Skipped > 0)
            {
                Console.Error.WriteLine(found.Diagnostics);
                failures++;
            }
            foreach (Bundle bundle in rt.Bundles()) Console.WriteLine($"bundle {bundle}");

            List<GuestContract> providers = rt.FindAll("example.calc", api);
            foreach (GuestContract calc in providers)
                using (calc)
                {
                    int total = calc.Call<int>("add", 2, 40);
                    Console.WriteLine($"{calc.Dispatch,-6} provider: add(2, 40) = {total}, describe() = \"{calc.Call("describe")}\"");
                    if (total != 42) failures++;
                }
            var seen = rt.Bundles().Select(b => b.Loader).ToList();
            foreach (string lang in loaders.Where(l => !seen.Contains(l)))
            {
                Console.Error.WriteLine($"no {lang} bundle was loaded");
                failures++;
            }
            if (log.Lines.Count == 0)
            {
                Console.Error.WriteLine("c-calc never called host.example.Log");
                failures++;
            }

            // Hot reload: a contract object found before keeps working afterwards.
            using (GuestContract calc = rt.Find("example.calc", api))
            {
                rt.Reload("c-calc");
                if (!phases.Skip(phases.Count - 2).SequenceEqual(new[] { "Preparing", "Reloaded" }))
                {
                    Console.Error.WriteLine($"reload phases: {string.Join(", ", phases)}");
                    failures++;
                }
                int after = calc.Call<int>("add", 2, 40);
                Console.WriteLine($"after the reload: add(2, 40) = {after}");
                if (after != 42) failures++;

                // An error path: a typed refusal before any call is made.
                try
                {
                    calc.Call("add", 1L << 31, 0);
                    failures++;
                }
                catch (ValueOutOfRangeException e)
                {
                    Console.WriteLine($"expected: {e}");
                }
            }
            Console.WriteLine($"{providers.Count} providers called, {failures} failures");
        }
        return failures == 0 ? 0 : 1;
    }
}
