// SPDX-License-Identifier: MIT
/// @file detail/manifest_cache.hpp
/// read_manifest that parses a manifest's text only once per process: the file is read every
/// time, and parsed again only when its bytes differ from the last ones parsed for that path.
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
/// the same few manifests again and again. The cache key is the file's path and its whole
/// content, so an edited manifest is always parsed again and a cached result is exactly what
/// parsing the same bytes would give (validation included: only valid manifests are kept).
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

    /// Same contract as polyplug::read_manifest (errors, `dir` and `path` set, `out` untouched
    /// on failure).
    [[nodiscard]] status read(const std::filesystem::path& bundle_dir, manifest& out) {
        std::filesystem::path file = bundle_dir / "manifest.toml";
        const reporter report = reporter::for_source(file.string());
        return guard_exceptions(report, [&]() -> status {
            std::string text;
            if (status s = read_manifest_text(file, report, text); !s) return s;
            store& shared = shared_store();
            std::shared_ptr<const manifest> hit;
            {
                std::lock_guard lock(shared.mutex);
                if (const auto it = shared.entries.find(file.native());
                    it != shared.entries.end() && it->second.text == text)
                    hit = it->second.parsed;
            }
            if (hit) {
                // Copied outside the lock: the entry is immutable, the pointer keeps it alive.
                out = *hit;
                out.dir = bundle_dir;
                out.path = std::move(file);  // not used below: a path copy saved per load
                return {};
            }
            auto parsed = std::make_shared<manifest>();
            if (status s = parse_manifest(text, file.string(), *parsed); !s) return s;
            out = *parsed;
            out.dir = bundle_dir;
            out.path = file;
            if (text.size() <= max_cached_text) {
                std::lock_guard lock(shared.mutex);
                if (shared.entries.size() >= max_entries ||
                    shared.text_bytes + text.size() > max_text_bytes) {
                    shared.entries.clear();
                    shared.text_bytes = 0;
                }
                const std::size_t size = text.size();
                auto [it, inserted] = shared.entries.try_emplace(file.native());
                if (!inserted) shared.text_bytes -= it->second.text.size();
                it->second = entry{std::move(text), std::move(parsed)};
                shared.text_bytes += size;
            }
            return {};
        });
    }

private:
    struct entry {
        std::string text;
        std::shared_ptr<const manifest> parsed;  // dir and path left empty: set per read
    };
    struct store {
        std::mutex mutex;
        std::unordered_map<std::string, entry> entries;  // by manifest.toml's path (mutex)
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
