// SPDX-License-Identifier: MIT
/// @file detail/parse_memo.hpp
/// A process-wide memo of a parser: the file's whole text in, the immutable parsed value out,
/// so that a file read again with the same bytes is not parsed again.
#pragma once

#include <polyplug/config.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

/// Why: TOML parsing is most of what a warm load or a reload costs outside dlopen or the VM's
/// start (tens of thousands of instructions for a 150-byte manifest, about 50 µs for a small
/// contract file), and loads, reloads and the watcher read the same few files again and again.
/// The key is the file as spelled by the caller and the file's whole content, so an edited file
/// is always parsed again and a remembered result is exactly what parsing the same bytes would
/// give (validation included: only valid results are kept).
///
/// One store per process and per `Parsed` type (per shared object that instantiates this
/// header), not per runtime, so that a runtime created for one load does not parse again what
/// another runtime parsed before. What is shared is only a memo of a pure function (bytes and
/// source name in, immutable value out): no runtime can observe another through it except by
/// its speed, which keeps the house rule that runtimes share no state.
template <class Parsed>
class parse_memo {
public:
    /// Bounded: at more distinct files than this, or more text than max_text_bytes in all, the
    /// store starts over.
    static constexpr std::size_t max_entries = 4096;
    static constexpr std::size_t max_text_bytes = std::size_t{16} << 20;

    /// The store of this process.
    static parse_memo& shared() {
        // Never destroyed: a runtime may still read files from a static destructor.
        static parse_memo* const instance = new parse_memo;
        return *instance;
    }

    /// What parsing `text` gave for the file `key` before, or nullptr.
    [[nodiscard]] std::shared_ptr<const Parsed> find(const std::string& key,
                                                     const std::string& text) {
        std::lock_guard lock(mutex_);
        const auto it = entries_.find(key);
        if (it == entries_.end() || it->second.text != text) return nullptr;
        return it->second.parsed;
    }

    /// Remembers that `text`, the content of `key`, parses to `parsed` (texts larger than
    /// `max_kept_text` are not kept: they hold no memory after their load).
    void keep(const std::string& key, std::string text, std::shared_ptr<const Parsed> parsed,
              std::size_t max_kept_text) {
        if (text.size() > max_kept_text) return;
        std::lock_guard lock(mutex_);
        if (entries_.size() >= max_entries || text_bytes_ + text.size() > max_text_bytes) {
            entries_.clear();
            text_bytes_ = 0;
        }
        const std::size_t size = text.size();
        auto [it, inserted] = entries_.try_emplace(key);
        if (!inserted) text_bytes_ -= it->second.text.size();
        it->second = entry{std::move(text), std::move(parsed)};
        text_bytes_ += size;
    }

private:
    parse_memo() = default;

    struct entry {
        std::string text;
        std::shared_ptr<const Parsed> parsed;
    };
    std::mutex mutex_;
    std::unordered_map<std::string, entry> entries_;  // by the file as spelled (mutex_)
    std::size_t text_bytes_ = 0;                      // sum of the entries' texts (mutex_)
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
