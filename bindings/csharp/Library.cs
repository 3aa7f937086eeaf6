// SPDX-License-Identifier: MIT
// Finding and opening libpolyplug.so and the loader modules (libpolyplug-loader-<lang>.so).
// They are opened with dlopen (P/Invoke into libdl), not through a [DllImport("polyplug")] name:
// the library to use is chosen at run time (an argument, $POLYPLUG_LIBRARY, or the soname), and
// only the one chosen may be tried, which Mono's DllImport probing (dllmap, several name
// variants) would not guarantee.
using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;

namespace Polyplug
{
    internal static class Library
    {
        public const string Soname = "libpolyplug.so.0";
        public const string LibraryEnv = "POLYPLUG_LIBRARY";
        public const string LoaderDirEnv = "POLYPLUG_LOADER_DIR";
        const int RtldNow = 2;
        const int RtldDiLinkmap = 2;

        [DllImport("libdl.so.2")] static extern IntPtr dlopen(string file, int mode);
        [DllImport("libdl.so.2")] static extern IntPtr dlsym(IntPtr handle, string name);
        [DllImport("libdl.so.2")] static extern IntPtr dlerror();
        [DllImport("libdl.so.2")] static extern int dlinfo(IntPtr handle, int request, out IntPtr info);

        static string LastDlError()
        {
            IntPtr e = dlerror();
            return e == IntPtr.Zero ? "unknown dlopen failure" : Marshal.PtrToStringAnsi(e);
        }

        /// <summary>dlopen; the handle, or Zero with the reason.</summary>
        public static IntPtr Open(string path, out string failure)
        {
            dlerror();
            IntPtr h = dlopen(path, RtldNow);
            failure = h == IntPtr.Zero ? LastDlError() : null;
            return h;
        }

        public static IntPtr Symbol(IntPtr handle, string name) => dlsym(handle, name);

        /// <summary>The file a handle was loaded from (its link map's l_name), or null.</summary>
        public static string PathOf(IntPtr handle)
        {
            if (dlinfo(handle, RtldDiLinkmap, out IntPtr map) != 0 || map == IntPtr.Zero) return null;
            IntPtr name = Marshal.ReadIntPtr(map, 8);
            return name == IntPtr.Zero ? null : Marshal.PtrToStringAnsi(name);
        }

        /// <summary>Opens libpolyplug.so: `library` if given, else $POLYPLUG_LIBRARY, else the soname
        /// through the dynamic loader. Only the first of these that is set is tried, so a wrong
        /// explicit choice is never replaced silently by another library.</summary>
        public static IntPtr OpenRuntime(string library, out string foundPath)
        {
            string how = "pass the path to new Runtime(library: \"/path/to/libpolyplug.so\"), or set " +
                         $"{LibraryEnv} to its path, or make {Soname} findable by the dynamic loader " +
                         "(LD_LIBRARY_PATH, ldconfig)";
            string source, target;
            string env = Environment.GetEnvironmentVariable(LibraryEnv);
            if (library != null) { source = "library: argument"; target = library; }
            else if (!string.IsNullOrEmpty(env)) { source = "$" + LibraryEnv; target = env; }
            else { source = "the dynamic loader"; target = Soname; }
            IntPtr h = Open(target, out string failure);
            if (h == IntPtr.Zero)
                throw new LibraryNotFoundException($"cannot open libpolyplug ('{target}', from {source}): {failure}; {how}");
            foreach (string symbol in new[] { "polyplug_runtime_create", "polyplug_runtime_destroy" })
                if (dlsym(h, symbol) == IntPtr.Zero)
                    throw new LibraryNotFoundException($"'{target}' (from {source}) does not export {symbol}: it is not libpolyplug.so");
            foundPath = PathOf(h) ?? target;
            if (foundPath.Contains("/")) foundPath = Path.GetFullPath(foundPath);
            return h;
        }

        /// <summary>Where libpolyplug-loader-&lt;lang&gt;.so is looked for, in order: $POLYPLUG_LOADER_DIR
        /// (itself and its &lt;lang&gt;/), beside libpolyplug.so (itself, loaders/&lt;lang&gt;/ as in
        /// the build tree, polyplug/), then the dynamic loader.</summary>
        public static List<string> LoaderCandidates(string lang, string runtimePath)
        {
            string name = $"libpolyplug-loader-{lang}.so";
            var output = new List<string>();
            string env = Environment.GetEnvironmentVariable(LoaderDirEnv);
            if (!string.IsNullOrEmpty(env)) { output.Add(Path.Combine(env, name)); output.Add(Path.Combine(env, lang, name)); }
            if (runtimePath != null && runtimePath.Contains("/"))
            {
                string here = Path.GetDirectoryName(Path.GetFullPath(runtimePath));
                output.Add(Path.Combine(here, name));
                output.Add(Path.Combine(here, "loaders", lang, name));
                output.Add(Path.Combine(here, "polyplug", name));
            }
            output.Add(name);
            return output;
        }

        /// <summary>The handle of a loader module and its create function, checked.</summary>
        public static IntPtr OpenLoader(string lang, string path, string runtimePath, out IntPtr create, out string where)
        {
            string symbol = $"polyplug_loader_{lang}_create";
            var tried = path != null ? new List<string> { path } : LoaderCandidates(lang, runtimePath);
            var failures = new List<string>();
            foreach (string candidate in tried)
            {
                if (candidate.Contains("/") && !File.Exists(candidate)) { failures.Add($"{candidate}: no such file"); continue; }
                IntPtr h = Open(candidate, out string failure);
                if (h == IntPtr.Zero) { failures.Add($"{candidate}: {failure}"); continue; }
                create = dlsym(h, symbol);
                if (create == IntPtr.Zero) { failures.Add($"{candidate}: does not export {symbol}"); continue; }
                where = candidate;
                return h;
            }
            throw new LibraryNotFoundException($"no loader module for '{lang}': tried {string.Join("; ", failures)}. " +
                                               $"Pass path:, set {LoaderDirEnv}, or build it (-D{lang}=enabled)");
        }
    }
}
