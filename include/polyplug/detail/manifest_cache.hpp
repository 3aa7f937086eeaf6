// SPDX-License-Identifier: MIT
/// @file detail/manifest_cache.hpp
/// read_manifest that parses a manifest's text only once per process: the file is read every
/// time, and parsed again only when its bytes differ from the last ones parsed for that bundle
/// directory.
#pragma once

#include <polyplug/manifest.hpp>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// Why: TOML parsing is most of what a warm load or a reload costs outside dlopen (tens of
/// thousands of instructions for a 150-byte manifest), and loads, reloads and the watcher read
/// the same few manifests again and again. The cache key is the bundle directory as spelled and
/// the file's whole content, so an edited manifest is always parsed again and a cached result is
/// exactly what parsing the same bytes would give (validation included: only valid manifests are
/// kept).
///
/// The parsed results live in one store per process (per shared object that instantiates this
/// header), not per runtime, so that a runtime created for one load does not parse again what
/// another runtime parsed before. What is shared is only a memo of a pure function (bytes and
/// source name in, immutable manifest out): no runtime can observe another through it except by
/// its speed, which keeps the house rule that runtimes share no state.
class manifest_cache {
public:
    /// Bounded: at more distinct manifests than this, or more text than max_text_bytes in all,
    /// the store starts over.
    static constexpr std::size_t max_entries = 4096;
    static constexpr std::size_t max_text_bytes = std::size_t{16} << 20;
    /// Larger manifests are parsed every time (and hold no memory after the load). A manifest
    /// declaring 10,000 contracts is about 400 KiB: kept.
    static constexpr std::size_t max_cached_text = max_manifest_bytes;

    /// Same contract as polyplug::read_manifest (errors; `dir` and `path` set), but the result is
    /// shared and immutable: a load holds the cached manifest itself rather than a copy of it
    /// (copying a manifest, its strings, vectors and two filesystem paths, was a sixth of a warm
    /// load). `out` is untouched on failure.
    [[nodiscard]] status read(const std::filesystem::path& bundle_dir, shared_manifest& out) {
        // The file's name as text: `bundle_dir / "manifest.toml"` would build a path and split
        // it into components on every load, for one open(). Equal to what operator/ gives.
        const std::string& dir = bundle_dir.native();
        std::string file;
        file.reserve(dir.size() + 14);
        file = dir;
        if (!file.empty() && file.back() != '/') file += '/';
        file += "manifest.toml";
        std::string text;
        // Nothing here throws but bad_alloc, which goes to the caller as everywhere else.
        if (status s = read_manifest_text(file, text); !s) return s;
        store& shared = shared_store();
        {
            std::lock_guard lock(shared.mutex);
            if (const auto it = shared.entries.find(dir);
                it != shared.entries.end() && it->second.text == text) {
                out = it->second.parsed;
                return {};
            }
        }
        const reporter report = reporter::for_source(file);
        return guard_exceptions(report, [&]() -> status {
            auto parsed = std::make_shared<manifest>();
            if (status s = parse_manifest(text, file, *parsed); !s) return s;
            parsed->dir = bundle_dir;
            parsed->path = std::filesystem::path(std::move(file));
            out = parsed;
            if (text.size() <= max_cached_text) {
                std::lock_guard lock(shared.mutex);
                if (shared.entries.size() >= max_entries ||
                    shared.text_bytes + text.size() > max_text_bytes) {
                    shared.entries.clear();
                    shared.text_bytes = 0;
                }
                const std::size_t size = text.size();
                auto [it, inserted] = shared.entries.try_emplace(dir);
                if (!inserted) shared.text_bytes -= it->second.text.size();
                it->second = entry{std::move(text), std::move(parsed)};
                shared.text_bytes += size;
            }
            return {};
        });
    }

    /// The same, into a manifest of the caller's (a copy of the shared one).
    [[nodiscard]] status read(const std::filesystem::path& bundle_dir, manifest& out) {
        shared_manifest shared;
        if (status s = read(bundle_dir, shared); !s) return s;
        out = *shared;
        return {};
    }

private:
    struct entry {
        std::string text;
        shared_manifest parsed;  // dir is the key, as spelled by the caller
    };
    struct store {
        std::mutex mutex;
        std::unordered_map<std::string, entry> entries;  // by the bundle directory (mutex)
        std::size_t text_bytes = 0;                      // sum of the entries' texts (mutex)
    };
    // Never destroyed: a runtime may still read manifests from a static destructor.
    static store& shared_store() {
        static store* const instance = new store;
        return *instance;
    }
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
