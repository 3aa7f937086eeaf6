// SPDX-License-Identifier: MIT
// The C# host library (bindings/csharp, Polyplug.dll) against the real libpolyplug.so, under mono:
// the parity contract in every built bundle language, reloads with their phases, a host contract
// implemented in C# and called by the kitchen plugin (from two threads at once too), the error
// paths (codes and messages), bad pointers and short function tables from plugins, Close refused
// during a call, a closed runtime, and memory over many calls. A plain console program
// (no test framework is available offline): every check prints what failed, the program ends
// with "N passed, M failed" and exits non-zero on any failure. Run by Meson
// (tests/hosts/csharp/meson.build), which passes every path in the environment:
//
//   POLYPLUG_LIBRARY        libpolyplug.so           CSHOST_SOURCE     the source tree
//   CSHOST_EXAMPLE_BUNDLES  native example bundles   CSHOST_EXAMPLE_SCRIPTS  script bundles
//   CSHOST_PARITY_DIR       build/tests/parity       CSHOST_KITCHEN    the kitchen bundle dir
//   CSHOST_LANGUAGES        parity languages built, comma-separated (c,cpp,rust,lua,python,js)
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using Polyplug;

static class Tests
{
    static int passed, failed;
    static string section = "";

    // ---- check helpers: each one can fail, and says what failed ----
    static void Check(bool condition, string what)
    {
        if (condition) { passed++; return; }
        failed++;
        Console.WriteLine($"FAIL [{section}] {what}");
    }

    static void Equal(object expected, object actual, string what)
    {
        if (Values.Same(expected, actual)) { passed++; return; }
        failed++;
        Console.WriteLine($"FAIL [{section}] {what}: expected {Values.Show(expected)}, got {Values.Show(actual)}");
    }

    static void Contains(string haystack, string needle, string what) =>
        Check(haystack != null && haystack.Contains(needle), $"{what}: '{needle}' not in '{haystack}'");

    /// <summary>Runs `action`, expecting exactly an exception of type T (or a subclass); returns it
    /// (null when it did not come, which is a failure).</summary>
    static T Throws<T>(Action action, string what) where T : Exception
    {
        try
        {
            action();
        }
        catch (T e)
        {
            passed++;
            return e;
        }
        catch (Exception e)
        {
            failed++;
            Console.WriteLine($"FAIL [{section}] {what}: expected {typeof(T).Name}, got {e.GetType().Name}: {e.Message}");
            return null;
        }
        failed++;
        Console.WriteLine($"FAIL [{section}] {what}: expected {typeof(T).Name}, nothing was thrown");
        return null;
    }

    static void Run(string name, Action body)
    {
        section = name;
        try { body(); }
        catch (Exception e)
        {
            failed++;
            Console.WriteLine($"FAIL [{name}] unexpected {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
        }
        Console.WriteLine($"  {name}: done ({passed} passed, {failed} failed so far)");
    }

    // ---- environment ----
    static string Env(string name) =>
        Environment.GetEnvironmentVariable(name) ?? throw new Exception($"{name} is not set (run through meson test)");

    static string Src(params string[] parts) => Path.Combine(new[] { Env("CSHOST_SOURCE") }.Concat(parts).ToArray());
    static string CalcApi => Src("examples", "contracts", "example_calc.api.toml");
    static string ParityApi => Src("tests", "parity", "parity.api.toml");
    static string KitchenApi => Src("tests", "cli", "kitchen.api.toml");
    static List<string> Langs => Env("CSHOST_LANGUAGES").Split(',').Where(l => l.Length > 0).ToList();
    static List<string> ScriptLangs => Langs.Where(l => l == "lua" || l == "js" || l == "python").ToList();
    static string ExampleBundles => Env("CSHOST_EXAMPLE_BUNDLES");
    static string CCalc => Path.Combine(ExampleBundles, "c_calc");

    static Runtime NewRuntime(bool scripts = true, bool hotReload = false, Action<ReloadEvent> onReload = null,
                              Action<LogRecord> log = null, LogLevel logLevel = LogLevel.Warn) =>
        new Runtime(loaders: scripts ? ScriptLangs : null, hotReload: hotReload, onReload: onReload, log: log, logLevel: logLevel);

    const int I32Min = int.MinValue, I32Max = int.MaxValue;

    static int Main()
    {
        Run("library lookup", LibraryLookup);
        Run("example bundles", Examples);
        Run("load returns the bundle", LoadReturnsTheBundle);
        foreach (string lang in Langs) Run($"parity {lang}", () => Parity(lang));
        Run("marshalling errors", Marshalling);
        Run("native reload in place", NativeReload);
        Run("script reload and failed reload", ScriptReload);
        Run("pinned provider goes stale", PinnedGoesStale);
        Run("reload refused without hot reload", ReloadRefused);
        Run("callback exception surfaces", CallbackException);
        Run("error paths", ErrorPaths);
        Run("load_dirs diagnostics", LoadDirsDiagnostics);
        Run("after close", AfterClose);
        Run("runtime contract calls", RuntimeContractCalls);
        Run("host contract in C#", HostContract);
        Run("host contract exceptions become Panic", HostContractPanics);
        Run("incomplete implementation", IncompleteImplementation);
        Run("bad pointers from plugins", BadPointers);
        Run("results and errors cleared", ResultsCleared);
        Run("host contract storage per thread", HostContractPerThread);
        Run("host contract called from two plugin threads", HostContractTwoThreads);
        Run("close refused while busy", CloseWhileBusy);
        Run("a table shorter than its count", ShortTable);
        Run("memory", MemoryBound);
        Console.WriteLine($"{passed} passed, {failed} failed");
        return failed == 0 && passed > 0 ? 0 : 1;
    }

    // ---- the checks ----
    static void LibraryLookup()
    {
        var e = Throws<LibraryNotFoundException>(() => new Runtime(library: "/nonexistent/libpolyplug.so"), "bad explicit library");
        if (e != null)
            foreach (string needle in new[] { "/nonexistent/libpolyplug.so", "POLYPLUG_LIBRARY", "libpolyplug.so.0", "library:" })
                Contains(e.Message, needle, "the lookup error names every way");
        e = Throws<LibraryNotFoundException>(() => new Runtime(library: "libc.so.6"), "not a polyplug library");
        if (e != null) Contains(e.Message, "polyplug_runtime_create", "names the missing export");
        using (var rt = new Runtime())
        {
            e = Throws<LibraryNotFoundException>(() => rt.AddLoader("cobol"), "missing loader module");
            if (e != null) Contains(e.Message, "libpolyplug-loader-cobol.so", "names the module");
            Throws<ArgumentMismatchException>(() => rt.AddLoader("../evil"), "a path is not a language");
            Contains(rt.LibraryPath, "libpolyplug", "LibraryPath");
        }
    }

    static void Examples()
    {
        using (var rt = NewRuntime())
        {
            var dirs = new List<string> { ExampleBundles };
            if (ScriptLangs.Count > 0) dirs.Add(Env("CSHOST_EXAMPLE_SCRIPTS"));
            LoadDirsResult found = rt.LoadDirs(dirs.ToArray());
            Check(found.Loaded >= 4 + ScriptLangs.Count, $"LoadDirs loaded {found.Loaded} bundles");
            Equal(0u, found.Skipped, "nothing skipped: " + found.Diagnostics);
            Equal("", found.Diagnostics, "no diagnostics");
            var providers = rt.FindAll("example.calc", CalcApi);
            int calcBundles = rt.Bundles().Count(b => b.Contracts.Contains(Abi.GuestContractId("example.calc", 1)));
            Equal(calcBundles, providers.Count, "one contract object per provider");
            var kinds = new HashSet<string>();
            foreach (GuestContract p in providers)
                using (p)
                {
                    Equal(42, p.Call("add", 2, 40), $"add on {p.Dispatch}");
                    Equal(I32Min, p.Call("add", I32Max, 1), "add wraps");
                    Check(p.Call<string>("describe").Length > 0, "describe gives a text");
                    kinds.Add(p.Dispatch);
                }
            Check(kinds.Contains("native"), "a native provider");
            Check(ScriptLangs.Count == 0 || kinds.Contains("vm"), "a VM provider");
            var loaders = rt.Bundles().Select(b => b.Loader).ToList();
            foreach (string lang in ScriptLangs) Check(loaders.Contains(lang), $"a {lang} bundle was loaded");
        }
    }

    static void LoadReturnsTheBundle()
    {
        using (var rt = NewRuntime(scripts: false))
        {
            Bundle b = rt.Load(CCalc);
            Equal("c-calc", b.Name, "name");
            Equal(Abi.BundleId("c-calc"), b.Id, "id");
            Equal("native", b.Loader, "loader");
            Equal(new uint[] { 1, 0, 0 }, b.Version, "version");
            Equal(Path.GetFullPath(CCalc), Path.GetFullPath(b.Path), "path");
            Equal(new[] { Abi.GuestContractId("example.calc", 1) }, b.Contracts, "contracts");
            GuestContract calc = rt.Find("example.calc", CalcApi);
            Equal(42, calc.Call("add", 2, 40), "add");
            Equal(new[] { "add(a: i32, b: i32) -> i32", "describe() -> StringView" }, calc.Functions, "signatures");
            Function add = calc.Contract.Function("add");
            Equal(3, calc.Invoke(add, 1, 2), "Invoke with a Function");
            Equal("c-calc", rt.Bundle("c-calc").Name, "Bundle by name");
        }
    }

    static bool SameDouble(double a, double b) => BitConverter.DoubleToInt64Bits(a) == BitConverter.DoubleToInt64Bits(b);

    static void Parity(string lang)
    {
        string path = Path.Combine(Env("CSHOST_PARITY_DIR"), lang);
        Check(File.Exists(Path.Combine(path, "manifest.toml")), $"{lang} is listed as built but {path} has no manifest");
        using (var rt = NewRuntime())
        {
            Bundle bundle = rt.Load(path);
            var kits = rt.FindAll("test.parity.Kit", ParityApi);
            Equal(1, kits.Count, "one provider");
            GuestContract kit = kits.Last();
            Description t = kit.Types;
            string name = new Dictionary<string, string> { ["c"] = "C", ["cpp"] = "C++", ["rust"] = "Rust", ["lua"] = "Lua", ["python"] = "Python", ["js"] = "JavaScript" }[lang];
            foreach (var c in new[] { (2, 40, 42), (I32Max, 1, I32Min), (I32Min, -1, I32Max), (-7, 7, 0) })
                Equal(c.Item3, kit.Call("add_i32", c.Item1, c.Item2), $"add_i32({c.Item1}, {c.Item2})");
            var minimum = new Dictionary<string, object> { ["a"] = -128, ["b"] = 0, ["c"] = -32768, ["d"] = 0, ["e"] = I32Min, ["f"] = 0, ["g"] = long.MinValue, ["h"] = 0 };
            var maximum = new Dictionary<string, object> { ["a"] = 127, ["b"] = 255, ["c"] = 32767, ["d"] = 65535, ["e"] = I32Max, ["f"] = uint.MaxValue, ["g"] = long.MaxValue, ["h"] = ulong.MaxValue };
            var safe = new Dictionary<string, object> { ["a"] = -1, ["b"] = 200, ["c"] = -300, ["d"] = 60000, ["e"] = -70000, ["f"] = 4000000000u, ["g"] = -(1L << 53), ["h"] = 1UL << 53 };
            foreach (var c in new[] { ("minimum", minimum, new[] { "JavaScript" }), ("maximum", maximum, new[] { "JavaScript", "Lua" }), ("2^53", safe, new string[0]) })
            {
                string label = c.Item1;
                var v = c.Item2;
                var refusers = c.Item3;
                if (refusers.Contains(name))
                    Throws<PanicException>(() => kit.Call("echo_ints", v), $"{name} refuses echo_ints({label})");
                else
                {
                    var got = kit.Call<Struct>("echo_ints", v);
                    foreach (var field in v) Equal(field.Value, got[field.Key], $"echo_ints({label}).{field.Key}");
                    Equal(got, kit.Call("echo_ints", got), $"echo_ints of a Struct ({label})");
                }
            }
            foreach (var c in new[] { (1.5f, 0.25), (-0.0f, -0.0), (3.4028235e38f, 1e308), (1e-45f, -2.5) })
            {
                float x = c.Item1;
                double y = c.Item2;
                double got = kit.Call<double>("scale", x, y);
                Check(SameDouble(got, (double)x * 2.0 + y), $"scale({x}, {y}) = {got:R}, expected {(double)x * 2.0 + y:R}");
            }
            Equal(3.4028234663852886e38 * 2 + 1, kit.Call("scale", 3.4028235e38, 1.0), "a double that rounds to the largest f32 is accepted");
            foreach (bool a in new[] { false, true })
                foreach (bool b in new[] { false, true })
                    Equal(a != b, kit.Call("differ", a, b), $"differ({a}, {b})");
            foreach (string text in new[] { "world", "", "nul\0in", "gr\u00fc\u00df \u20ac \U0001f50c" })
            {
                Equal($"hello, {text}!", kit.Call("greet", text), $"greet(\"{text}\")");
                Equal($"hello, {text}!", kit.Call("greet", Encoding.UTF8.GetBytes(text)), "greet of bytes");
            }
            foreach (byte[] data in new[] { new byte[0], new byte[] { 1, 0, 255 }, Encoding.ASCII.GetBytes("abc") })
                Equal(data.Reverse().ToArray(), kit.Call("reverse", data), $"reverse({BitConverter.ToString(data)})");
            StructType point = t.Struct("Point");
            var pts = new object[] { point.New(1, 2), new Dictionary<string, object> { ["x"] = I32Max, ["y"] = -3 }, new { x = 1, y = I32Min } };
            Equal(point.New(I32Min + 1, I32Max), kit.Call("total", (object)pts), "total wraps");
            Equal(point.New(0, 0), kit.Call("total", (object)new object[0]), "total of nothing");
            EnumType color = t.Enum("Color");
            var shape = kit.Call<Struct>("describe", new Dictionary<string, object> { ["tag"] = 255, ["weight"] = 1.25, ["color"] = "Blue", ["label"] = "\u00e9t\u00e9" });
            Equal(t.Struct("Shape").New((byte)0, 2.5, color.Parse("Red"), "\u00e9t\u00e9!"), shape, "describe");
            Check(shape["color"] is EnumValue, "an enum field comes back as an EnumValue");
            Equal("x!", kit.Call<Struct>("describe", t.Struct("Shape").New(255, 1.25, color.Parse("Blue"), "x"))["label"], "describe of a Struct");
            Equal(new object[0], kit.Call("colors", 0u), "colors(0)");
            Equal(new[] { color.Parse("Red"), color.Parse("Green") }, kit.Call("colors", 2u), "colors(2)");
            Equal(new[] { 1, 2, 256 }, kit.Call("colors", 3u), "colors(3) by value");
            var e = Throws<PanicException>(() => kit.Call("colors", 4u), "colors(4) fails");
            if (e != null)
            {
                Equal(3u, e.Code, "code of a plugin's error");
                Equal("Panic", e.CodeName, "code name");
                Contains(e.Message, "n too large", "the plugin's message");
            }
            e = Throws<PanicException>(() => kit.Call("fail", -7), "fail(-7)");
            if (e != null) Contains(e.Message, "parity failure -7", "fail's message");
            Equal(2, kit.Call("add_i32", 1, 1), "still serving after the errors");
            kit.Close();
            rt.Unload(bundle.Id);
            Equal(0, rt.Bundles().Count, "unloaded");
        }
    }

    static void Marshalling()
    {
        using (var rt = NewRuntime(scripts: false))
        {
            rt.Load(Path.Combine(Env("CSHOST_PARITY_DIR"), "c"));
            var kit = rt.Find("test.parity.Kit", ParityApi);
            foreach (object bad in new object[] { 1L << 31, (long)I32Min - 1, 1L << 40, ulong.MaxValue })
            {
                var e = Throws<ValueOutOfRangeException>(() => kit.Call("add_i32", bad, 0), $"add_i32({bad}) is refused");
                if (e != null) Contains(e.Message, bad.ToString(), "names the value");
            }
            var ints = new Dictionary<string, object> { ["a"] = 0, ["b"] = 0, ["c"] = 0, ["d"] = 0, ["e"] = 0, ["f"] = 0, ["g"] = 0, ["h"] = 0 };
            foreach (var c in new (string, object)[] { ("a", 128), ("b", -1), ("b", 256), ("d", 65536), ("f", 1L << 32), ("h", -1) })
            {
                var v = new Dictionary<string, object>(ints) { [c.Item1] = c.Item2 };
                Throws<ValueOutOfRangeException>(() => kit.Call("echo_ints", v), $"echo_ints with {c.Item1}={c.Item2}");
            }
            Throws<ArgumentMismatchException>(() => kit.Call("add_i32", 1.5, 0), "a double for i32");
            Throws<ArgumentMismatchException>(() => kit.Call("add_i32", true, 0), "a bool for i32");
            Throws<ArgumentMismatchException>(() => kit.Call("add_i32", "1", 0), "a string for i32");
            Throws<ArgumentMismatchException>(() => kit.Call("differ", 1, 0), "an int for bool");
            Throws<ArgumentMismatchException>(() => kit.Call("greet", 5), "an int for StringView");
            Throws<ArgumentMismatchException>(() => kit.Call("reverse", "text"), "a string for Buffer");
            Throws<ArgumentMismatchException>(() => kit.Call("add_i32", 1), "too few arguments");
            Throws<ValueOutOfRangeException>(() => kit.Call("scale", 1e39, 0.0), "beyond f32");
            var missing = Throws<ArgumentMismatchException>(() => kit.Call("total", (object)new object[] { new Dictionary<string, object> { ["x"] = 1 } }), "a struct with a field missing");
            if (missing != null) Contains(missing.Message, "missing y", "names the missing field");
            Throws<ArgumentMismatchException>(() => kit.Call("describe", new { tag = 1, weight = 1.0, color = "Purple", label = "" }), "an unknown enum variant");
            Throws<ArgumentMismatchException>(() => kit.Call("describe", new { tag = 1, weight = 1.0, color = 3, label = "" }), "an undeclared enum value");
            var unknown = Throws<UnknownFunctionException>(() => kit.Call("nope"), "unknown function");
            if (unknown != null) Contains(unknown.Message, "add_i32", "lists the functions");
            Throws<ContractFileException>(() => rt.Find("test.parity.Nope", ParityApi), "unknown contract");
            Equal(2, kit.Call("add_i32", 1, 1), "nothing was called by the refused calls");
            string dir = Path.Combine(Path.GetTempPath(), "polyplug-cshost-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            try
            {
                string bad = Path.Combine(dir, "bad.api.toml");
                File.WriteAllText(bad, "[[guest_contract]]\nname = \"x.y\"\nversion = \"banana\"\n");
                var e = Throws<ContractFileException>(() => rt.Find("x.y", bad), "a contract file that does not parse");
                if (e != null) Check(System.Text.RegularExpressions.Regex.IsMatch(e.Message, System.Text.RegularExpressions.Regex.Escape(bad) + @":\d+:\d+: "),
                                     $"file:line:column in '{e.Message}'");
                Throws<ContractFileException>(() => rt.DescribeContractFile(Path.Combine(dir, "none.api.toml")), "a missing contract file");
            }
            finally { Directory.Delete(dir, true); }
        }
    }

    static void NativeReload()
    {
        var events = new List<ReloadEvent>();
        using (var rt = NewRuntime(scripts: false, hotReload: true, onReload: events.Add))
        {
            rt.Load(CCalc);
            var calc = rt.Find("example.calc", CalcApi);
            Equal(42, calc.Call("add", 2, 40), "before");
            ulong before = rt.Revision;
            rt.Reload("c-calc");
            Check(rt.Revision != before, "the revision moved");
            Equal(new[] { "Preparing", "Reloaded" }, events.Select(ev => ev.Phase).ToList(), "phases");
            Check(events.All(e => e.BundleName == "c-calc"), "the events name the bundle");
            Equal(42, calc.Call("add", 2, 40), "after the reload: re-resolved");
            rt.Unload("c-calc");
            var gone = Throws<PolyplugException>(() => calc.Call("add", 1, 1), "no provider after unload");
            if (gone != null) Check(gone is NotFoundException || gone is StaleHandleException, $"NotFound or StaleHandle, got {gone.CodeName}");
            rt.Load(CCalc);
            Equal(2, calc.Call("add", 1, 1), "moves to the new provider");
        }
    }

    static void ScriptReload()
    {
        if (!ScriptLangs.Contains("lua")) { Console.WriteLine("  skipped: the Lua loader is not built (-Dlua)"); return; }
        var events = new List<ReloadEvent>();
        string tmp = Path.Combine(Path.GetTempPath(), "polyplug-cshost-" + Guid.NewGuid().ToString("N"));
        string bundle = Path.Combine(tmp, "lua_calc");
        Directory.CreateDirectory(bundle);
        try
        {
            foreach (string f in Directory.GetFiles(Path.Combine(Env("CSHOST_EXAMPLE_SCRIPTS"), "lua_calc")))
                File.Copy(f, Path.Combine(bundle, Path.GetFileName(f)));
            string script = Path.Combine(bundle, "calc.lua");
            using (var rt = new Runtime(loaders: new[] { "lua" }, hotReload: true, onReload: events.Add))
            {
                rt.Load(bundle);
                var calc = rt.Find("example.calc", CalcApi);
                Equal(42, calc.Call("add", 2, 40), "v1");
                File.WriteAllText(script, "local Calc = {}\nfunction Calc:add(a, b) return a + b + 1000 end\n" +
                                          "function Calc:describe() return \"Lua calc v2\" end\ncontracts = { [\"example.calc\"] = Calc }\n");
                rt.Reload("lua-calc");
                Equal(new[] { "Preparing", "Reloaded" }, events.Select(ev => ev.Phase).ToList(), "phases");
                Equal(1042, calc.Call("add", 2, 40), "v2 serves");
                Equal("Lua calc v2", calc.Call("describe"), "v2 describe");
                events.Clear();
                File.WriteAllText(script, "this is not lua (\n");
                var e = Throws<PolyplugException>(() => rt.Reload(bundle), "a failed reload throws");
                if (e != null) Contains(e.Message, "calc.lua", "names the script");
                Equal("Preparing", events.Select(ev => ev.Phase).FirstOrDefault(), "Preparing first");
                var failedEvent = events.FirstOrDefault(ev => ev.Phase == "Failed");
                Check(failedEvent != null && failedEvent.Reason.Length > 0, "a Failed event with its reason");
                Equal(1042, calc.Call("add", 2, 40), "the old version keeps serving");
            }
        }
        finally { Directory.Delete(tmp, true); }
    }

    static void PinnedGoesStale()
    {
        using (var rt = NewRuntime(scripts: false))
        {
            rt.Load(CCalc);
            var calc = rt.FindAll("example.calc", CalcApi).Single();
            rt.Unload("c-calc");
            var e = Throws<StaleHandleException>(() => calc.Call("add", 1, 1), "pinned and gone");
            if (e != null) Equal(5u, e.Code, "StaleHandle's code");
        }
    }

    static void ReloadRefused()
    {
        using (var rt = NewRuntime(scripts: false))
        {
            rt.Load(CCalc);
            var e = Throws<PolyplugException>(() => rt.Reload("c-calc"), "reload without hot reload");
            if (e != null) Contains(e.Message, "hot_reload", "says why");
        }
    }

    static void CallbackException()
    {
        using (var rt = NewRuntime(scripts: false, hotReload: true, onReload: ev => throw new InvalidOperationException("callback says no")))
        {
            rt.Load(CCalc);
            var e = Throws<Polyplug.CallbackException>(() => rt.Reload("c-calc"), "a throwing callback surfaces");
            if (e != null) Check(e.InnerException is InvalidOperationException, "the callback's exception is the inner one");
            Equal(1, rt.Bundles().Count, "the runtime carries on");
        }
    }

    static void ErrorPaths()
    {
        var logs = new List<LogRecord>();
        using (var rt = NewRuntime(scripts: false, log: logs.Add, logLevel: LogLevel.Debug))
        {
            var e = Throws<PolyplugException>(() => rt.Load("/nonexistent/polyplug-bundle"), "unknown bundle path");
            if (e != null)
            {
                Check(e.Code != 0, "a nonzero code");
                Contains(e.Message, "/nonexistent/polyplug-bundle", "names the path");
            }
            var nf = Throws<NotFoundException>(() => rt.Unload("no-such-bundle"), "unload of an unknown name");
            if (nf != null) Equal(4u, nf.Code, "NotFound's code");
            Throws<PolyplugException>(() => rt.Unload(42UL), "unload of an unknown id");
            Equal(0, rt.Bundles().Count, "nothing loaded");
            Check(logs.Count > 0, "log level debug: the runtime's failure records arrive");
            Throws<HostContractNotFoundException>(() => rt.HostContract("host.test.cli.Log", KitchenApi), "an unregistered host contract");
            var nothing = Throws<NotFoundException>(() => rt.Find("example.calc", CalcApi), "find with no provider");
            if (nothing != null) Equal("NotFound", nothing.CodeName, "code name");
        }
    }

    static void LoadDirsDiagnostics()
    {
        string tmp = Path.Combine(Path.GetTempPath(), "polyplug-cshost-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(tmp, "broken"));
        try
        {
            File.WriteAllText(Path.Combine(tmp, "broken", "manifest.toml"), "name = \n");
            using (var rt = NewRuntime(scripts: false))
            {
                LoadDirsResult result = rt.LoadDirs(tmp);
                Equal(0u, result.Loaded, "loaded");
                Equal(1u, result.Skipped, "skipped");
                Contains(result.Diagnostics, "broken", "the diagnostics name it");
            }
        }
        finally { Directory.Delete(tmp, true); }
    }

    static void AfterClose()
    {
        var rt = NewRuntime(scripts: false);
        rt.Load(CCalc);
        var calc = rt.Find("example.calc", CalcApi);
        var other = rt.Find("example.calc", CalcApi);
        other.Close();
        other.Close(); // idempotent
        Throws<ClosedException>(() => other.Call("add", 1, 2), "a closed contract object");
        Equal(3, calc.Call("add", 1, 2), "the other one serves");
        rt.Close();
        rt.Close(); // idempotent
        Check(rt.IsClosed, "IsClosed");
        Check(calc.IsClosed, "the runtime closed its contract objects");
        Throws<ClosedException>(() => calc.Call("add", 1, 2), "a call after close");
        Throws<ClosedException>(() => rt.Bundles(), "Bundles after close");
        Throws<ClosedException>(() => rt.Load("x"), "Load after close");
        Throws<ClosedException>(() => rt.Find("example.calc", CalcApi), "Find after close");
        Throws<ClosedException>(() => { var r = rt.Revision; }, "Revision after close");
    }

    static void RuntimeContractCalls()
    {
        var logs = new List<LogRecord>();
        using (var rt = NewRuntime(scripts: false, hotReload: true, log: logs.Add, logLevel: LogLevel.Info))
        {
            rt.Log(LogLevel.Warn, "cshost", "hello \u00fc");
            Check(logs.Any(r => r.Scope == "cshost" && r.Message == "hello \u00fc" && r.Level == "warn"), "a record through the runtime's logger comes back");
            rt.SetUnmapPolicy(never: false, graceMs: 0);
            rt.Load(CCalc);
            Contains(rt.DescribeContractFileText(CalcApi), "contract guest example.calc 1", "the description text");
            rt.Watch(new[] { ExampleBundles }, debounceMs: 10, manual: true);
            Equal(0u, rt.PollWatch(), "nothing changed under the watched directory");
            rt.Unwatch();
            var handle = rt.FindGuestContract(Abi.GuestContractId("example.calc", 1), 1);
            Check(handle.HasValue, "find_guest_contract finds c-calc");
            Check(!rt.FindGuestContract(Abi.GuestContractId("example.calc", 9), 9).HasValue, "and nothing at major 9");
            Equal(1u, rt.UnloadCascade("c-calc"), "a cascade of one");
            Equal(0, rt.Bundles().Count, "nothing left");
        }
    }

    sealed class Log
    {
        public readonly List<(byte, string)> Lines = new List<(byte, string)>();
        public bool Write(byte level, string message)
        {
            Lines.Add((level, message));
            return true;
        }
    }

    static (GuestContract, HostContractImplementation, Log) Kitchen(Runtime rt)
    {
        var log = new Log();
        var registration = rt.RegisterHostContract("host.test.cli.Log", KitchenApi, log);
        rt.Load(Env("CSHOST_KITCHEN"));
        return (rt.Find("test.cli.Kitchen", KitchenApi), registration, log);
    }

    static void HostContract()
    {
        using (var rt = NewRuntime(scripts: false))
        {
            var kitchen = Kitchen(rt);
            GuestContract k = kitchen.Item1;
            var reg = kitchen.Item2;
            Log log = kitchen.Item3;
            Description t = k.Types;
            string text = "a\0b \u00fc\U0001f50c";
            Equal("v1:" + text, k.Call("echo", text), "echo");
            Equal(1, log.Lines.Count, "the plugin called the C# host contract once");
            if (log.Lines.Count == 1)
            {
                Equal((byte)3, log.Lines[0].Item1, "its level");
                Equal("v1:" + text, log.Lines[0].Item2, "its message");
            }
            Equal(1, reg.Calls, "the registration counts the call");
            Equal(-1 + 2 - 3 + 4 + 3 + 1 + 1000 + 256, k.Call("mix", -1, 2, -3, 4, 1.5, 0.25, true, "Blue"), "mix");
            Equal(1UL + 4 + 9, k.Call("checksum", new byte[] { 1, 2, 3 }), "checksum");
            StructType point = t.Struct("Point");
            Equal(point.New(4, 6), k.Call("sum_points", (object)new[] { point.New(1, 2), point.New(3, 4) }), "sum_points");
            Equal(t.Struct("Mixed").New((byte)7, 3.0, (ushort)6), k.Call("scale", t.Struct("Mixed").New(7, 1.5, 3), 2), "scale");
            var rec = k.Call<Struct>("describe", new
            {
                flag = false, inner = new { a = 1, b = 2, c = 3 }, label = "lbl", points = new[] { point.New(5, 6) },
                color = "Red", payload = Encoding.ASCII.GetBytes("xyz"), opaque = (object)null, half = -7,
            });
            Equal(true, rec["flag"], "describe: flag");
            Equal(t.Struct("Inner").New(2, 3, 4), rec["inner"], "describe: inner");
            Equal("v1:lbl", rec["label"], "describe: label");
            Equal(new[] { point.New(5, 6) }, rec["points"], "describe: points");
            Equal(t.Enum("Color").Parse("Blue"), rec["color"], "describe: color");
            Equal(Encoding.ASCII.GetBytes("xyz"), rec["payload"], "describe: payload");
            Equal(IntPtr.Zero, rec["opaque"], "describe: opaque");
            Equal(7, rec["half"], "describe: half");
            Equal(2 + 3 + 257 + 1 + 2 + 4, k.Call("lists", Encoding.ASCII.GetBytes("ab"), new[] { "x", "yz" },
                                                   new object[] { "Red", t.Enum("Color").Parse("Blue") }, new object[] { null, 8 },
                                                   new[] { true, false, true }, new[] { Encoding.ASCII.GetBytes("123"), Encoding.ASCII.GetBytes("4") }), "lists");
            var access = k.Call<EnumValue>("grant", "Write|Exec", 0x1000);
            Equal(t.Enum("Access").Parse("All"), access, "grant");
            Equal("All", access?.Name, "the variant's name");
            var e = Throws<PanicException>(() => k.Call("grant", t.Enum("Access").Parse("Read"), null), "grant without a target");
            if (e != null) Contains(e.Message, "nichts zu tun", "the plugin's exception text");
            Equal(null, k.Call("reset"), "a Void function");
            // The host contract called directly, as a plugin does.
            var client = rt.HostContract("host.test.cli.Log", KitchenApi);
            Equal(true, client.Call("write", 1, "direct"), "the host contract called directly");
            Equal("direct", log.Lines.Last().Item2, "it reached the C# object");
            var dup = Throws<PolyplugException>(() => rt.RegisterHostContract("host.test.cli.Log", KitchenApi, new Log()), "a second registration");
            if (dup != null) Contains(dup.Message, "duplicate", "says duplicate");
            Equal("v1:again", k.Call("echo", "again"), "the first registration serves on");
            // A dictionary of functions implements one as well.
            using (var rt2 = NewRuntime(scripts: false))
            {
                var seen = new List<string>();
                rt2.RegisterHostContract("host.test.cli.Log", KitchenApi,
                    new Dictionary<string, Func<object[], object>> { ["write"] = a => { seen.Add((string)a[1]); return true; } });
                rt2.Load(Env("CSHOST_KITCHEN"));
                Equal("v1:d", rt2.Find("test.cli.Kitchen", KitchenApi).Call("echo", "d"), "echo through a dictionary host contract");
                Equal(new[] { "v1:d" }, seen, "the dictionary's function was called");
            }
        }
    }

    sealed class ThrowingLog
    {
        public bool Write(byte level, string message)
        {
            if (level == 3) throw new ArgumentException($"refusing '{message}'");
            return false;
        }
    }

    sealed class WrongLog
    {
        public object Write(byte level, string message) => "not a bool";
    }

    static void HostContractPanics()
    {
        using (var rt = NewRuntime(scripts: false))
        {
            var reg = rt.RegisterHostContract("host.test.cli.Log", KitchenApi, new ThrowingLog());
            rt.Load(Env("CSHOST_KITCHEN"));
            var k = rt.Find("test.cli.Kitchen", KitchenApi);
            var e = Throws<PanicException>(() => k.Call("echo", "hi"), "the plugin sees our exception as Panic");
            if (e != null) Contains(e.Message, "ArgumentException: refusing 'v1:hi'", "with its type and text");
            Equal(1, reg.Failures, "counted");
            var log = rt.HostContract("host.test.cli.Log", KitchenApi);
            e = Throws<PanicException>(() => log.Call("write", 3, "boom"), "called directly");
            if (e != null)
            {
                Equal(3u, e.Code, "Panic's code");
                Contains(e.Message, "ArgumentException: refusing 'boom'", "the text");
            }
        }
        using (var rt = NewRuntime(scripts: false))
        {
            rt.RegisterHostContract("host.test.cli.Log", KitchenApi, new WrongLog());
            var log = rt.HostContract("host.test.cli.Log", KitchenApi);
            var e = Throws<PanicException>(() => log.Call("write", 1, "x"), "a result of the wrong type is refused");
            if (e != null) Contains(e.Message, "bool", "says what was expected");
        }
    }

    static void IncompleteImplementation()
    {
        using (var rt = NewRuntime(scripts: false))
        {
            var e = Throws<ArgumentMismatchException>(() => rt.RegisterHostContract("host.test.cli.Log", KitchenApi, new Dictionary<string, Func<object[], object>>()), "an empty implementation");
            if (e != null) Contains(e.Message, "write", "names the missing function");
            Throws<ArgumentMismatchException>(() => rt.RegisterHostContract("host.test.cli.Log", KitchenApi,
                new Dictionary<string, Func<object[], object>> { ["write"] = a => true, ["extra"] = a => null }), "an extra function");
            Throws<ContractFileException>(() => rt.RegisterHostContract("test.cli.Kitchen", KitchenApi, new Log()), "a guest contract is not a host contract");
            Throws<ArgumentMismatchException>(() => rt.RegisterHostContract("host.test.cli.Log", KitchenApi, new object()), "an object without the methods");
        }
    }

    static unsafe void BadPointers()
    {
        // Lengths and pointers a plugin hands back are checked before anything is read: beyond
        // 2^31-1 bytes, NULL with a length, or past the address space -> InvalidPointerException.
        IntPtr good = Marshal.AllocHGlobal(8);
        Marshal.Copy(Encoding.ASCII.GetBytes("hello\0\0\0"), 0, good, 8);
        var cases = new (IntPtr, ulong)[] { (good, 1UL << 31), (good, (1UL << 32) + 5), (new IntPtr(long.MinValue), 5), (new IntPtr(-3), 2), (IntPtr.Zero, 5) };
        try
        {
            using (var rt = NewRuntime(scripts: false))
            {
                var kitchen = Kitchen(rt);
                GuestContract k = kitchen.Item1;
                var registration = kitchen.Item2;
                foreach (var c in cases.Concat(new[] { (good, 5UL) }))
                {
                    IntPtr ptr = c.Item1;
                    ulong length = c.Item2;
                    GuestContractFn liar = (instance, args, output, err) =>
                    {
                        var view = (StringView*)output;
                        view->Ptr = ptr;
                        view->Len = (UIntPtr)length;
                    };
                    GuestContractFn saved = k.ReplaceEntry("echo", liar);
                    try
                    {
                        if (ptr == good && length == 5) Equal("hello", k.Call("echo", "x"), "a good pointer is read");
                        else
                        {
                            var e = Throws<InvalidPointerException>(() => k.Call("echo", "x"), $"StringView 0x{ptr.ToInt64():x} + {length}");
                            if (e != null) Equal(8u, e.Code, "InvalidPointer's code");
                        }
                    }
                    finally { k.ReplaceEntry("echo", saved); }
                }
                Equal("v1:fine", k.Call("echo", "fine"), "the real entry serves again");
                // A Buffer and an array of such a claim are refused likewise.
                Function write = registration.Contract.Function("write");
                HostContractFn thunk = registration.Thunks[write.Id];
                // A host contract implemented in C#, called with a bad StringView: the plugin gets
                // Panic back (nothing read, nothing thrown into C), and the result is left alone.
                foreach (var c in cases)
                {
                    IntPtr ptr = c.Item1;
                    ulong length = c.Item2;
                    IntPtr args = Marshal.AllocHGlobal(write.ArgsSize);
                    try
                    {
                        *(byte*)args = 1;
                        var view = (StringView*)((byte*)args + write.Params[1].Offset);
                        view->Ptr = ptr;
                        view->Len = (UIntPtr)length;
                        byte result = 0;
                        AbiError err = default(AbiError);
                        thunk(default(HostContractInstance), args, (IntPtr)(&result), (IntPtr)(&err));
                        Equal(3u, err.Code, $"Panic for 0x{ptr.ToInt64():x} + {length}");
                        Contains(Memory.Text(err.Message), "InvalidPointerException", "names the refusal");
                        Equal((byte)0, result, "the result is not written");
                    }
                    finally { Marshal.FreeHGlobal(args); }
                }
            }
        }
        finally { Marshal.FreeHGlobal(good); }
    }

    static unsafe void ResultsCleared()
    {
        // The call storage is reused: a provider that reports success without writing its result
        // (or fails without a message) must not show the previous call's result (or message).
        using (var rt = NewRuntime(scripts: false))
        {
            GuestContract k = Kitchen(rt).Item1;
            Equal("v1:secret", k.Call("echo", "secret"), "echo");
            Equal(13L, k.Call("mix", 1, 2, 3, 4, 0.5, 0.25, false, "Red"), "mix");
            var first = Throws<PanicException>(() => k.Call("grant", "Read", null), "grant fails");
            if (first != null) Contains(first.Message, "no target", "with a message");
            GuestContractFn lazy = (instance, args, output, err) => { };
            GuestContractFn codeOnly = (instance, args, output, err) => *(uint*)err = 3;
            var savedEcho = k.ReplaceEntry("echo", lazy);
            var savedMix = k.ReplaceEntry("mix", lazy);
            var savedGrant = k.ReplaceEntry("grant", codeOnly);
            try
            {
                Equal("", k.Call("echo", "bob"), "an unwritten StringView result is empty");
                Equal(0L, k.Call("mix", 1, 2, 3, 4, 0.5, 0.25, false, "Red"), "an unwritten i64 result is 0");
                var e = Throws<PanicException>(() => k.Call("grant", "Read", null), "a code without a message");
                if (e != null) Equal("test.cli.Kitchen.grant: failed", e.Message, "no older message shows");
            }
            finally
            {
                k.ReplaceEntry("echo", savedEcho);
                k.ReplaceEntry("mix", savedMix);
                k.ReplaceEntry("grant", savedGrant);
            }
            Equal("v1:again", k.Call("echo", "again"), "serves again");
        }
    }

    // A fixed-length text for the host contract's StringView argument, in unmanaged memory.
    static unsafe IntPtr WriteArgs(Function write, byte level, IntPtr text, int length)
    {
        IntPtr args = Marshal.AllocHGlobal(write.ArgsSize);
        for (int i = 0; i < write.ArgsSize; i++) ((byte*)args)[i] = 0;
        *(byte*)args = level;
        var view = (StringView*)((byte*)args + write.Params[1].Offset);
        view->Ptr = text;
        view->Len = (UIntPtr)(ulong)length;
        return args;
    }

    static unsafe void HostContractPerThread()
    {
        // A plugin calls a host contract from two threads: the message (and result) one thread's
        // call returns must stay readable while another thread calls the same function. Played
        // through the table entry the plugin calls, so the order is fixed: A's call returns, B's
        // whole call runs, then A reads its message.
        using (var rt = NewRuntime(scripts: false))
        {
            var reg = rt.RegisterHostContract("host.test.cli.Log", KitchenApi, new ThrowingLog());
            Function write = reg.Contract.Function("write");
            HostContractFn thunk = reg.Thunks[write.Id];
            IntPtr textA = Marshal.AllocHGlobal(4), textB = Marshal.AllocHGlobal(4);
            Marshal.Copy(Encoding.ASCII.GetBytes("AAAA"), 0, textA, 4);
            Marshal.Copy(Encoding.ASCII.GetBytes("BBBB"), 0, textB, 4);
            IntPtr argsA = WriteArgs(write, 3, textA, 4), argsB = WriteArgs(write, 3, textB, 4);
            try
            {
                byte resultA = 0;
                AbiError errA = default(AbiError);
                thunk(default(HostContractInstance), argsA, (IntPtr)(&resultA), (IntPtr)(&errA));
                Equal(3u, errA.Code, "thread A's call fails with Panic");
                string messageB = null;
                uint codeB = 0;
                var other = new Thread(() =>
                {
                    byte resultB = 0;
                    AbiError errB = default(AbiError);
                    thunk(default(HostContractInstance), argsB, (IntPtr)(&resultB), (IntPtr)(&errB));
                    codeB = errB.Code;
                    messageB = Memory.Text(errB.Message);
                });
                other.Start();
                other.Join();
                Equal(3u, codeB, "thread B's call fails with Panic");
                Contains(messageB, "refusing 'BBBB'", "thread B's message");
                Contains(Memory.Text(errA.Message), "refusing 'AAAA'", "thread A's message is still its own after B's call");
                // The same thread's next call of the function replaces it (the documented lifetime).
                AbiError errA2 = default(AbiError);
                thunk(default(HostContractInstance), argsB, (IntPtr)(&resultA), (IntPtr)(&errA2));
                Contains(Memory.Text(errA2.Message), "refusing 'BBBB'", "A's next call's message");
            }
            finally
            {
                Marshal.FreeHGlobal(argsA);
                Marshal.FreeHGlobal(argsB);
                Marshal.FreeHGlobal(textA);
                Marshal.FreeHGlobal(textB);
            }
        }
    }

    static void HostContractTwoThreads()
    {
        // Two threads call the kitchen plugin's echo at once (one contract object each), and echo
        // calls the C# host contract on the caller's thread: every result and every error message
        // the plugin copies must be the one of its own call.
        const int rounds = 3000;
        using (var rt = NewRuntime(scripts: false))
        {
            rt.RegisterHostContract("host.test.cli.Log", KitchenApi, new Dictionary<string, Func<object[], object>>
            {
                ["write"] = a =>
                {
                    string message = (string)a[1];
                    if (message.EndsWith("!")) throw new ArgumentException($"refusing '{message}'");
                    return true;
                },
            });
            rt.Load(Env("CSHOST_KITCHEN"));
            var contracts = new[] { rt.Find("test.cli.Kitchen", KitchenApi), rt.Find("test.cli.Kitchen", KitchenApi) };
            var wrong = new List<string>[] { new List<string>(), new List<string>() };
            var threads = new Thread[2];
            for (int t = 0; t < 2; t++)
            {
                int me = t;
                threads[t] = new Thread(() =>
                {
                    GuestContract k = contracts[me];
                    for (int i = 0; i < rounds; i++)
                    {
                        string text = $"{(char)('A' + me)}{i:D6}" + (i % 2 == 0 ? "!" : "");
                        try
                        {
                            string got = k.Call<string>("echo", text);
                            if (i % 2 == 0 || got != "v1:" + text) wrong[me].Add($"echo({text}) returned '{got}'");
                        }
                        catch (PanicException e)
                        {
                            if (i % 2 != 0 || !e.Message.Contains($"refusing 'v1:{text}'")) wrong[me].Add($"echo({text}) failed: {e.Message}");
                        }
                        catch (Exception e) { wrong[me].Add($"echo({text}): {e.GetType().Name}: {e.Message}"); }
                        if (wrong[me].Count > 5) break;
                    }
                });
            }
            foreach (Thread th in threads) th.Start();
            foreach (Thread th in threads) th.Join();
            for (int t = 0; t < 2; t++)
                Check(wrong[t].Count == 0, $"thread {t}: {wrong[t].Count} calls saw another call's result or message: {string.Join("; ", wrong[t])}");
            Equal("v1:after", contracts[0].Call("echo", "after"), "serves on");
        }
    }

    static unsafe void CloseWhileBusy()
    {
        // Closing from inside a call (a host contract implementation, the log or onReload
        // callback) would destroy what that call runs on: refused with BusyException
        // (a ReentrantCallException, code 9), nothing changed.
        using (var rt = NewRuntime(scripts: false))
        {
            GuestContract k = null;
            string mode = "";
            var reg = rt.RegisterHostContract("host.test.cli.Log", KitchenApi, new Dictionary<string, Func<object[], object>>
            {
                ["write"] = a =>
                {
                    if (mode == "runtime") rt.Close();
                    if (mode == "contract") k.Close();
                    return true;
                },
            });
            rt.Load(Env("CSHOST_KITCHEN"));
            k = rt.Find("test.cli.Kitchen", KitchenApi);
            foreach (string m in new[] { "runtime", "contract" })
            {
                mode = m;
                var e = Throws<PanicException>(() => k.Call("echo", "x"), $"closing the {m} during the call fails the call");
                if (e != null)
                {
                    Contains(e.Message, "BusyException", $"{m}: the implementation got BusyException");
                    Contains(e.Message, "in progress", $"{m}: which says why");
                }
                mode = "";
                Check(!rt.IsClosed, $"{m}: the runtime is still open");
                Check(!k.IsClosed, $"{m}: the contract object is still open");
                Equal("v1:again", k.Call("echo", "again"), $"{m}: the contract object serves on");
            }
            // A plugin thread of its own calls the host contract, inside no call made from C#.
            mode = "runtime";
            Function write = reg.Contract.Function("write");
            IntPtr text = Marshal.AllocHGlobal(1);
            IntPtr args = WriteArgs(write, 1, text, 1);
            try
            {
                byte result = 0;
                AbiError err = default(AbiError);
                reg.Thunks[write.Id](default(HostContractInstance), args, (IntPtr)(&result), (IntPtr)(&err));
                Equal(3u, err.Code, "closing the runtime from a plugin thread's host contract call: Panic");
                Contains(Memory.Text(err.Message), "BusyException", "naming BusyException");
                Check(!rt.IsClosed, "the runtime is still open after the plugin thread's call");
            }
            finally
            {
                mode = "";
                Marshal.FreeHGlobal(args);
                Marshal.FreeHGlobal(text);
            }
            k.Close();
            Check(k.IsClosed, "closed after its call returned");
        }
        Runtime logged = null;
        Exception fromLog = null;
        logged = NewRuntime(scripts: false, log: r =>
        {
            try { logged.Close(); }
            catch (Exception e) { fromLog = e; }
        });
        using (logged)
        {
            logged.Log(LogLevel.Warn, "test", "close me");
            Check(fromLog is ReentrantCallException, $"Close in the log callback: {fromLog?.GetType().Name ?? "nothing"} thrown");
            Equal("BusyException", fromLog?.GetType().Name, "its class");
            Check(!logged.IsClosed, "the runtime is still open");
            Equal(0, logged.Bundles().Count, "and usable");
        }
        Check(logged.IsClosed, "closed afterwards");
        Runtime reloading = null;
        Exception fromReload = null;
        var phases = new List<string>();
        reloading = NewRuntime(scripts: false, hotReload: true, onReload: ev =>
        {
            phases.Add(ev.Phase);
            try { reloading.Close(); }
            catch (Exception e) { fromReload = fromReload ?? e; }
        });
        using (reloading)
        {
            reloading.Load(CCalc);
            var calc = reloading.Find("example.calc", CalcApi);
            reloading.Reload("c-calc");
            Equal(new[] { "Preparing", "Reloaded" }, phases, "the reload ran through");
            Check(fromReload is ReentrantCallException, $"Close in onReload: {fromReload?.GetType().Name ?? "nothing"} thrown");
            Equal(42, calc.Call("add", 2, 40), "the runtime serves on");
        }
    }

    [DllImport("libc.so.6")] static extern IntPtr mmap(IntPtr addr, UIntPtr length, int prot, int flags, int fd, IntPtr offset);
    [DllImport("libc.so.6")] static extern int mprotect(IntPtr addr, UIntPtr length, int prot);
    [DllImport("libc.so.6")] static extern int munmap(IntPtr addr, UIntPtr length);

    static unsafe void ShortTable()
    {
        // A function table shorter than the count beside it: only the entries the contract file
        // describes may be read. The table is put at the end of a page whose next page cannot
        // be read, and claims 100,000 entries (reading past its one would fault).
        const int page = 4096;
        IntPtr pages = mmap(IntPtr.Zero, (UIntPtr)(2 * page), 3 /* read|write */, 0x22 /* private|anonymous */, -1, IntPtr.Zero);
        Check(pages != new IntPtr(-1), "mmap");
        if (pages == new IntPtr(-1)) return;
        try
        {
            Equal(0, mprotect(pages + page, (UIntPtr)page, 0), "mprotect of the guard page");
            using (var rt = NewRuntime(scripts: false))
            {
                var log = new Log();
                var reg = rt.RegisterHostContract("host.test.cli.Log", KitchenApi, log);
                var iface = (HostContractInterface*)reg.Interface;
                IntPtr table = pages + page - 8;
                *(IntPtr*)table = *(IntPtr*)iface->Functions;
                IntPtr savedTable = iface->Functions;
                uint savedCount = iface->FunctionCount;
                iface->Functions = table;
                iface->FunctionCount = 100000;
                try
                {
                    var client = rt.HostContract("host.test.cli.Log", KitchenApi);
                    Equal(true, client.Call("write", 1, "short table"), "the one described entry is called");
                    Equal("short table", log.Lines.LastOrDefault().Item2, "it reached the C# object");
                    client.Close();
                }
                finally
                {
                    iface->Functions = savedTable;
                    iface->FunctionCount = savedCount;
                }
            }
        }
        finally { munmap(pages, (UIntPtr)(2 * page)); }
    }

    static long RssKiB()
    {
        string[] fields = File.ReadAllText("/proc/self/statm").Split(' ');
        return long.Parse(fields[1]) * Environment.SystemPageSize / 1024;
    }

    static void MemoryBound()
    {
        if (Environment.GetEnvironmentVariable("POLYPLUG_TEST_SANITIZED") != null)
        {
            Console.WriteLine("  skipped the RSS bound: under AddressSanitizer it would measure the quarantine of freed memory");
            return;
        }
        using (var rt = NewRuntime(scripts: false))
        {
            rt.Load(Path.Combine(Env("CSHOST_PARITY_DIR"), "c"));
            var kit = rt.Find("test.parity.Kit", ParityApi);
            var pts = new object[] { new { x = 1, y = 2 }, new { x = 3, y = 4 } };
            Action round = () =>
            {
                kit.Call("greet", "memory");
                kit.Call("reverse", new byte[64]);
                kit.Call("total", (object)pts);
                rt.Bundles();
            };
            for (int i = 0; i < 2000; i++) round();
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long before = RssKiB();
            for (int i = 0; i < 10000; i++) round();
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long grown = RssKiB() - before;
            Check(grown < 8 * 1024, $"10,000 rounds of calls grew RSS by {grown} KiB (bound 8 MiB)");
        }
    }
}
