// SPDX-License-Identifier: MIT
/// @file detail/state_handover_contract.hpp
/// The implementation of host.polyplug.StateHandover@1 (declared for C in state_handover.h).
/// Every runtime registers it at construction; the hand-over itself happens in reload_bundle.
#pragma once

#include <polyplug/runtime_core.hpp>
#include <polyplug/state_handover.h>

POLYPLUG_BEGIN_NAMESPACE
namespace detail {

struct state_handover_functions {
    static void offer(HostContractInstance self, const void* args, void*, AbiError* err) {
        auto* core = static_cast<runtime_core*>(self.data);
        if (core == nullptr) {
            if (err != nullptr)
                *err = {AbiErrorCode_InvalidPointer, string_view_of("null instance")};
            return;
        }
        status st;
        try {
            st = core->offer_state(static_cast<const PolyplugStateOffer*>(args));
        } catch (const std::exception&) {  // allocation failure while recording
            st = {errc::generic, "host.polyplug.StateHandover.Offer: internal error"};
        }
        if (err != nullptr) *err = {to_abi_code(st.code()), {nullptr, 0}};
    }
};

}  // namespace detail

/// Fills and registers host.polyplug.StateHandover@1 for `core` (basic_runtime does this).
inline void install_state_handover_contract(runtime_core& core) {
    using f = detail::state_handover_functions;
    runtime_core::handover_contract_storage& storage = core.builtin_handover_contract();
    storage.table[PolyplugStateHandoverFn_Offer] = reinterpret_cast<const void*>(&f::offer);
    core.install_builtin_contract(
        storage,
        host_contract_id(POLYPLUG_STATE_HANDOVER_CONTRACT_NAME,
                         POLYPLUG_STATE_HANDOVER_CONTRACT_MAJOR),
        {POLYPLUG_STATE_HANDOVER_CONTRACT_MAJOR, POLYPLUG_STATE_HANDOVER_CONTRACT_MINOR, 0});
}

static_assert(host_contract_id(POLYPLUG_STATE_HANDOVER_CONTRACT_NAME,
                               POLYPLUG_STATE_HANDOVER_CONTRACT_MAJOR) ==
                  POLYPLUG_STATE_HANDOVER_CONTRACT_ID,
              "state_handover.h's POLYPLUG_STATE_HANDOVER_CONTRACT_ID must match the name");

POLYPLUG_END_NAMESPACE
