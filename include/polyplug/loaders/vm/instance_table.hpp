// SPDX-License-Identifier: MIT
/// @file loaders/vm/instance_table.hpp
/// The instances an engine made, by the handle it gave out (the record's address), for engines
/// whose handles are plain pointers (Python, JavaScript). A call finds its instance here rather
/// than trusting the handle, so that an instance a reload replaced (made by another VM) or one
/// already destroyed is refused instead of dereferenced; the last one found is remembered, so a
/// host calling one instance in a loop pays no lookup.
#pragma once

#include <polyplug/config.hpp>

#include <memory>
#include <unordered_map>
#include <utility>

POLYPLUG_BEGIN_NAMESPACE

namespace vm {

template <class Record>
class instance_table {
public:
    /// Keeps `record`; its handle is its address.
    [[nodiscard]] void* add(std::unique_ptr<Record> record) {
        void* handle = record.get();
        records_.emplace(handle, std::move(record));
        return handle;
    }

    /// The record `handle` names, or nullptr when this engine did not make it (or destroyed it).
    /// The remembered handle is checked inline, the table out of line: a call's hot path gets two
    /// compares, not the hash lookup's frame.
    [[nodiscard]] const Record* find(const void* handle) {
        const Record* found = last_record_;
        if (handle != last_handle_ || found == nullptr) [[unlikely]]
            found = look_up(handle);
        return found;
    }

    /// Destroys the record `handle` names (nothing when there is none).
    void erase(const void* handle) noexcept {
        if (last_handle_ == handle) last_handle_ = nullptr, last_record_ = nullptr;
        records_.erase(handle);
    }

    /// Destroys every record (an engine's teardown, in its own order).
    void clear() noexcept {
        last_handle_ = nullptr, last_record_ = nullptr;
        records_.clear();
    }

private:
    [[gnu::noinline]] const Record* look_up(const void* handle) {
        const auto it = records_.find(handle);
        const Record* found = it == records_.end() ? nullptr : it->second.get();
        if (found != nullptr) last_handle_ = handle, last_record_ = found;
        return found;
    }

    std::unordered_map<const void*, std::unique_ptr<Record>> records_;
    const void* last_handle_ = nullptr;
    const Record* last_record_ = nullptr;
};

}  // namespace vm

POLYPLUG_END_NAMESPACE
