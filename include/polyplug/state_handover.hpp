// SPDX-License-Identifier: MIT
/// @file state_handover.hpp
/// Plugin side, C++: offer a state object for the hand-over between versions on hot reload
/// (host.polyplug.StateHandover@1, see state_handover.h). Needs only the C ABI headers, so a
/// plugin can include it without the runtime.
///
/// @code
/// struct counter_state {
///     std::uint64_t count = 0;
///     std::vector<std::uint8_t> save() const;                            // schema 1 bytes
///     void restore(std::uint32_t schema, std::span<const std::uint8_t>); // throws to refuse
/// };
/// static counter_state state;
/// static polyplug::state_handover<counter_state> handover(state, /*schema_version=*/1);
///
/// POLYPLUG_PLUGIN_EXPORT AbiError polyplug_init(const HostApi* host, const BundleInitContext*) {
///     ... register contracts ...
///     return handover.offer(host);
/// }
/// @endcode
/// An exception from save() or restore() becomes an AbiError (code Panic) carrying its what():
/// the reload fails and the old version keeps serving with its state.
#pragma once

#include <polyplug/config.hpp>
#include <polyplug/state_handover.h>

#include <concepts>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iterator>
#include <span>
#include <string>

POLYPLUG_BEGIN_NAMESPACE

/// A state object: `save()` returns a contiguous range of bytes (std::vector<std::uint8_t>,
/// std::string...), `restore(schema, bytes)` rebuilds from what a version with `schema` saved and
/// throws to refuse.
template <class State>
concept handover_state = requires(State& state, const State& saved, std::uint32_t schema,
                                  std::span<const std::uint8_t> bytes) {
    {std::data(saved.save())};
    { std::size(saved.save()) } -> std::convertible_to<std::size_t>;
    state.restore(schema, bytes);
};

/// Offers `State` for hand-overs. Keep it alive while the version is loaded (a static in the
/// plugin): the runtime calls back into it during a later reload.
template <handover_state State>
class state_handover {
public:
    state_handover(State& state, std::uint32_t schema_version) noexcept
        : state_(state), schema_(schema_version) {}
    state_handover(const state_handover&) = delete;
    state_handover& operator=(const state_handover&) = delete;

    /// Offers save and restore for the version whose init is running (call it from init).
    [[nodiscard]] AbiError offer(const HostApi* host) noexcept {
        const PolyplugStateOffer offer{schema_, 0, &save, &restore, this};
        return polyplug_offer_state(host, &offer);
    }

private:
    static void save(void* user, const HostApi* host, Buffer* out, AbiError* err) noexcept {
        auto* self = static_cast<state_handover*>(user);
        try {
            const auto bytes = self->state_.save();
            const auto* data = reinterpret_cast<const std::uint8_t*>(std::data(bytes));
            const std::size_t size = std::size(bytes) * sizeof(*std::data(bytes));
            *out = {nullptr, 0, 0};
            if (size == 0) return;
            out->ptr = host->alloc(host, size, 1);
            if (out->ptr == nullptr) return self->report(err, "out of memory saving state");
            std::memcpy(out->ptr, data, size);
            out->len = out->cap = size;
        } catch (const std::exception& e) {
            self->report(err, e.what());
        } catch (...) {
            self->report(err, "save() threw a non-standard exception");
        }
    }

    static void restore(void* user, const HostApi*, std::uint32_t schema, const std::uint8_t* data,
                        std::size_t len, AbiError* err) noexcept {
        auto* self = static_cast<state_handover*>(user);
        try {
            self->state_.restore(schema, std::span<const std::uint8_t>(data, len));
        } catch (const std::exception& e) {
            self->report(err, e.what());
        } catch (...) {
            self->report(err, "restore() threw a non-standard exception");
        }
    }

    // The message stays valid until the next hand-over of this version; the runtime copies it
    // before that.
    void report(AbiError* err, const char* what) noexcept {
        try {
            message_ = what;
        } catch (...) {
            message_.clear();
        }
        err->code = AbiErrorCode_Panic;
        err->message = {reinterpret_cast<const std::uint8_t*>(message_.data()), message_.size()};
    }

    State& state_;
    std::uint32_t schema_;
    std::string message_;
};

POLYPLUG_END_NAMESPACE
