// SPDX-License-Identifier: MIT
/// @file detail/state_handovers.hpp
/// What each loaded version of a bundle offered through host.polyplug.StateHandover@1, keyed by
/// the version's load id, and the hand-over itself: the old version's save feeding the new
/// version's restore during a reload.
#pragma once

#include <polyplug/detail/plugin_message.hpp>
#include <polyplug/detail/utf8.hpp>
#include <polyplug/error.hpp>
#include <polyplug/state_handover.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

class state_handovers {
public:
    /// Records (or replaces) what version `load_id` offers.
    void offer(std::uint64_t load_id, const PolyplugStateOffer& offer) {
        std::lock_guard lock(mutex_);
        offers_[load_id] = offer;
    }

    [[nodiscard]] std::optional<PolyplugStateOffer> find(std::uint64_t load_id) const {
        std::lock_guard lock(mutex_);
        const auto it = offers_.find(load_id);
        if (it == offers_.end()) return std::nullopt;
        return it->second;
    }

    /// Forgets a version's offer (it is unloaded, or its load or reload failed).
    void forget(std::uint64_t load_id) {
        std::lock_guard lock(mutex_);
        offers_.erase(load_id);
    }

    /// What happened in one hand-over, for the log.
    enum class outcome { handed_over, nothing_saved, dropped };

    /// Hands bundle `name`'s state from version `from` to version `to`: the old save, then the new
    /// restore, told the old schema. A failing save or a refusing restore is an error naming
    /// which side and why; neither version's loaded code is touched otherwise.
    [[nodiscard]] status hand_over(const HostApi* host, const std::string& name, std::uint64_t from,
                                   std::uint64_t to, outcome& result) const {
        const std::optional<PolyplugStateOffer> old_offer = find(from);
        const std::optional<PolyplugStateOffer> new_offer = find(to);
        result = outcome::nothing_saved;
        if (!old_offer || old_offer->save == nullptr) return {};
        if (!new_offer || new_offer->restore == nullptr) {
            result = outcome::dropped;
            return {};
        }
        Buffer saved{nullptr, 0, 0};
        AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
        old_offer->save(old_offer->user, host, &saved, &err);
        if (err.code != AbiErrorCode_Ok) {
            release(host, saved);
            return {errc::state_handover_failed,
                    "bundle '" + name + "': state hand-over: the old version's save failed" +
                        describe(err)};
        }
        if (saved.len > saved.cap || (saved.ptr == nullptr && saved.len != 0)) {
            release(host, saved);
            return {errc::state_handover_failed,
                    "bundle '" + name +
                        "': state hand-over: the old version's save returned a "
                        "malformed Buffer (len " +
                        std::to_string(saved.len) + ", cap " + std::to_string(saved.cap) + ")"};
        }
        err = {AbiErrorCode_Ok, {nullptr, 0}};
        new_offer->restore(new_offer->user, host, old_offer->schema_version, saved.ptr, saved.len,
                           &err);
        release(host, saved);
        if (err.code != AbiErrorCode_Ok)
            return {errc::state_handover_failed,
                    "bundle '" + name + "': state hand-over: the new version refused the state " +
                        "(schema " + std::to_string(old_offer->schema_version) + ")" +
                        describe(err)};
        result = outcome::handed_over;
        return {};
    }

private:
    static void release(const HostApi* host, Buffer& buffer) noexcept {
        if (buffer.ptr != nullptr) host->free(host, buffer.ptr, buffer.cap, 1);
        buffer = {nullptr, 0, 0};
    }

    // ": <message> (code N)" for a plugin's error, or " (code N)" without a message.
    static std::string describe(const AbiError& err) {
        const std::string message = copy_plugin_message(err.message.ptr, err.message.len);
        return (message.empty() ? std::string() : ": " + message) + " (code " +
               std::to_string(err.code) + ")";
    }

    mutable std::mutex mutex_;
    std::unordered_map<std::uint64_t, PolyplugStateOffer> offers_;
};

}  // namespace detail
POLYPLUG_END_NAMESPACE
