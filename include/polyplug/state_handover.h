/* SPDX-License-Identifier: MIT */
/**
 * @file state_handover.h
 * host.polyplug.StateHandover@1: the built-in host contract through which a bundle hands its
 * state from the version being replaced to the version replacing it on a hot reload.
 *
 * A version that wants to take part calls Offer during its init (polyplug_init, or the loader's
 * load for VM bundles), giving a schema version and two plain C callbacks:
 *   - save: serialise the state into bytes allocated with HostApi.alloc;
 *   - restore: rebuild the state from the bytes a previous version saved, told that version's
 *     schema, so it can migrate an older schema or refuse one it does not understand.
 * On reload, once the new version's init has succeeded and before the swap, the runtime calls
 * the old version's save and hands the bytes to the new version's restore. A failing save or a
 * refusing restore fails the whole reload: the old version keeps serving, with its state, and
 * on_reload sees `Failed` with the reason. If the old version saves nothing (no Offer, or a NULL
 * save) the new version starts from its own init; if the new version restores nothing, the old
 * state is dropped and the runtime logs it.
 *
 * The save runs while the old version still serves calls; calls that reach it between the save
 * and the swap are not carried over. Hosts needing an exact count quiesce their callers around
 * the reload.
 *
 * Usage from a C plugin's polyplug_init:
 * @code
 * PolyplugStateOffer offer = {COUNTER_SCHEMA, 0, &save_counter, &restore_counter, NULL};
 * AbiError err = polyplug_offer_state(host, &offer);
 * @endcode
 */
#ifndef POLYPLUG_STATE_HANDOVER_H
#define POLYPLUG_STATE_HANDOVER_H

#include <polyplug/abi.h>

#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define POLYPLUG_STATE_HANDOVER_CONTRACT_NAME "host.polyplug.StateHandover"
#define POLYPLUG_STATE_HANDOVER_CONTRACT_MAJOR 1u
#define POLYPLUG_STATE_HANDOVER_CONTRACT_MINOR 0u
/** host_contract_id("host.polyplug.StateHandover", 1) */
#define POLYPLUG_STATE_HANDOVER_CONTRACT_ID 0xe28b87851de05291ull

/** Function ids (declaration order; new functions are only ever appended). */
enum {
    PolyplugStateHandoverFn_Offer = 0, /**< PolyplugStateOffer -> nothing (out NULL) */
    PolyplugStateHandoverFn_Count = 1
};

/** Serialises the state into `*out_state`, allocated with `host->alloc(host, cap, 1)`; the
 * runtime frees it. Leaving `out_state->ptr` NULL hands over zero bytes. A non-Ok `out_err`
 * fails the reload. */
typedef void (*PolyplugStateSaveFn)(void* user, const HostApi* host, Buffer* out_state,
                                    AbiError* out_err);

/** Rebuilds the state from `len` bytes that a version with schema `schema_version` saved. The
 * bytes are borrowed for the call. A non-Ok `out_err` refuses the hand-over and fails the
 * reload (the old version keeps serving). */
typedef void (*PolyplugStateRestoreFn)(void* user, const HostApi* host, uint32_t schema_version,
                                       const uint8_t* data, size_t len, AbiError* out_err);

/** What a version offers, given to Offer during its init. Either callback may be NULL. The
 * callbacks and `user` must stay valid while the version is loaded. */
typedef struct PolyplugStateOffer {
    uint32_t schema_version; /**< schema of the bytes this version saves */
    uint32_t reserved;       /**< must be 0 */
    PolyplugStateSaveFn save;
    PolyplugStateRestoreFn restore;
    void* user; /**< passed back to both callbacks */
} PolyplugStateOffer;

POLYPLUG_ABI_ASSERT(sizeof(PolyplugStateOffer) == 32, "PolyplugStateOffer is 32 bytes");

/** Offers `offer` for the version whose init is running on this thread. Refused (Generic, with
 * the detail in get_last_error) outside an init or with a non-zero `reserved`; InvalidPointer for
 * a NULL host or offer; HostContractNotFound from a runtime without the contract. */
static inline AbiError polyplug_offer_state(const HostApi* host, const PolyplugStateOffer* offer) {
    AbiError err = {AbiErrorCode_HostContractNotFound, {NULL, 0}};
    const HostContractInterface* iface;
    HostContractInstance self;
    HostContractFn fn = NULL;
    if (host == NULL) {
        err.code = AbiErrorCode_InvalidPointer;
        return err;
    }
    iface = host->resolve_host_contract_interface(host, POLYPLUG_STATE_HANDOVER_CONTRACT_ID, 0);
    if (iface == NULL || iface->dispatch_type != DispatchType_Native ||
        iface->dispatch.native.function_count <= PolyplugStateHandoverFn_Offer)
        return err;
    self = host->get_host_contract(host, POLYPLUG_STATE_HANDOVER_CONTRACT_ID, 0);
    memcpy(&fn, &iface->dispatch.native.functions[PolyplugStateHandoverFn_Offer], sizeof fn);
    err.code = AbiErrorCode_Ok;
    fn(self, offer, NULL, &err);
    return err;
}

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* POLYPLUG_STATE_HANDOVER_H */
