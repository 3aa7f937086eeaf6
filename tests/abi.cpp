// SPDX-License-Identifier: MIT
/// @file abi.cpp
/// Pins every size, offset and enum value of the 0.1.1 C ABI at run time too, so a failure is
/// reported as a test (abi.h also asserts them at compile time).
#include "catch.hpp"

#include <polyplug/abi.h>

#include <cstddef>

TEST_CASE("abi - primitive sizes and offsets", "[abi]") {
    CHECK(sizeof(StringView) == 16);
    CHECK(offsetof(StringView, len) == 8);
    CHECK(sizeof(Buffer) == 24);
    CHECK(offsetof(Buffer, cap) == 16);
    CHECK(sizeof(Array) == 24);
    CHECK(offsetof(Array, align) == 16);
    CHECK(sizeof(Version) == 12);
    CHECK(alignof(Version) == 4);
    CHECK(sizeof(AbiError) == 24);
    CHECK(offsetof(AbiError, message) == 8);
    CHECK(sizeof(GuestContractHandle) == 8);
    CHECK(alignof(GuestContractHandle) == 4);
    CHECK(sizeof(GuestContractInstance) == 16);
    CHECK(offsetof(GuestContractInstance, contract_id) == 8);
    CHECK(sizeof(HostContractInstance) == 8);
    CHECK(sizeof(VmLoaderData) == 8);
}

TEST_CASE("abi - dispatch and interface layouts", "[abi]") {
    CHECK(sizeof(NativeDispatch) == 16);
    CHECK(offsetof(NativeDispatch, functions) == 8);
    CHECK(sizeof(VmDispatch) == 16);
    CHECK(offsetof(VmDispatch, loader_data) == 8);
    CHECK(sizeof(DispatchMechanisms) == 16);
    CHECK(sizeof(CallArena) == 40);
    CHECK(offsetof(CallArena, host) == 24);
    CHECK(offsetof(CallArena, first_overflow) == 32);
    CHECK(sizeof(ArenaOverflowBlock) == 24);  // retain and rewind (spec 5.4, corrected)
    CHECK(offsetof(ArenaOverflowBlock, next) == 0);
    CHECK(offsetof(ArenaOverflowBlock, capacity) == 8);
    CHECK(offsetof(ArenaOverflowBlock, used) == 16);
    CHECK(sizeof(GuestContractInterface) == 56);
    CHECK(offsetof(GuestContractInterface, contract_version) == 8);
    CHECK(offsetof(GuestContractInterface, dispatch_type) == 20);
    CHECK(offsetof(GuestContractInterface, create_instance) == 24);
    CHECK(offsetof(GuestContractInterface, destroy_instance) == 32);
    CHECK(offsetof(GuestContractInterface, dispatch) == 40);
    CHECK(sizeof(HostContractInterface) == 80);
    CHECK(offsetof(HostContractInterface, singleton) == 20);
    CHECK(offsetof(HostContractInterface, dispatch_type) == 24);
    CHECK(offsetof(HostContractInterface, runtime) == 32);
    CHECK(offsetof(HostContractInterface, user_data) == 40);
    CHECK(offsetof(HostContractInterface, create_instance) == 48);
    CHECK(offsetof(HostContractInterface, destroy_instance) == 56);
    CHECK(offsetof(HostContractInterface, dispatch) == 64);
}

TEST_CASE("abi - data structs", "[abi]") {
    CHECK(sizeof(PluginDescriptor) == 48);
    CHECK(offsetof(PluginDescriptor, contract_name) == 16);
    CHECK(offsetof(PluginDescriptor, version) == 32);
    CHECK(sizeof(BundleInitContext) == 24);
    CHECK(offsetof(BundleInitContext, bundle_path) == 8);
    CHECK(sizeof(DependencyInfo) == 24);
    CHECK(offsetof(DependencyInfo, min_version) == 8);
    CHECK(offsetof(DependencyInfo, bundle_id) == 16);
    CHECK(sizeof(ReloadPhase) == 48);
    CHECK(offsetof(ReloadPhase, bundle_id) == 8);
    CHECK(offsetof(ReloadPhase, bundle_name) == 16);
    CHECK(offsetof(ReloadPhase, reason) == 32);
    CHECK(sizeof(RuntimeConfig) == 48);
    CHECK(offsetof(RuntimeConfig, hot_reload_enabled) == 4);
    CHECK(offsetof(RuntimeConfig, on_reload) == 8);
    CHECK(offsetof(RuntimeConfig, on_reload_user_data) == 16);
    CHECK(offsetof(RuntimeConfig, log) == 24);
    CHECK(offsetof(RuntimeConfig, log_user_data) == 32);
    CHECK(offsetof(RuntimeConfig, log_max_level) == 40);
}

TEST_CASE("abi - HostApi is 184 bytes with 23 fields in order", "[abi]") {
    CHECK(sizeof(HostApi) == 184);
    CHECK(alignof(HostApi) == 8);
    const std::size_t offsets[] = {offsetof(HostApi, runtime),
                                   offsetof(HostApi, register_guest_contract),
                                   offsetof(HostApi, alloc),
                                   offsetof(HostApi, free),
                                   offsetof(HostApi, find_guest_contract),
                                   offsetof(HostApi, find_all_guest_contracts),
                                   offsetof(HostApi, resolve_guest_contract),
                                   offsetof(HostApi, get_host_contract),
                                   offsetof(HostApi, resolve_host_contract_interface),
                                   offsetof(HostApi, list_bundles),
                                   offsetof(HostApi, get_dependencies),
                                   offsetof(HostApi, load_bundle),
                                   offsetof(HostApi, reload_bundle),
                                   offsetof(HostApi, register_host_contract),
                                   offsetof(HostApi, register_loader),
                                   offsetof(HostApi, get_last_error),
                                   offsetof(HostApi, get_error_len),
                                   offsetof(HostApi, unload_bundle),
                                   offsetof(HostApi, log),
                                   offsetof(HostApi, create_guest_instance),
                                   offsetof(HostApi, destroy_guest_instance),
                                   offsetof(HostApi, revision_counter),
                                   offsetof(HostApi, reserved)};
    for (std::size_t i = 0; i < std::size(offsets); ++i) {
        INFO("field " << i);
        CHECK(offsets[i] == i * 8);
    }
}

TEST_CASE("abi - enum values", "[abi]") {
    CHECK(POLYPLUG_ABI_VERSION == 1u);
    CHECK(AbiErrorCode_Ok == 0);
    CHECK(AbiErrorCode_Generic == 1);
    CHECK(AbiErrorCode_BufferTooSmall == 2);
    CHECK(AbiErrorCode_Panic == 3);
    CHECK(AbiErrorCode_NotFound == 4);
    CHECK(AbiErrorCode_StaleHandle == 5);
    CHECK(AbiErrorCode_FunctionNotAvailable == 6);
    CHECK(AbiErrorCode_DuplicateProvider == 7);
    CHECK(AbiErrorCode_InvalidPointer == 8);
    CHECK(AbiErrorCode_ReentrantCall == 9);
    CHECK(AbiErrorCode_HostContractNotFound == 100);
    CHECK(AbiErrorCode_HostContractVersionMismatch == 101);
    CHECK(AbiErrorCode_HostContractCallFailed == 102);
    CHECK(DispatchType_Native == 0);
    CHECK(DispatchType_VirtualMachine == 1);
    CHECK(Compatibility_Strict == 0);
    CHECK(Compatibility_Relaxed == 1);
    CHECK(Compatibility_Yolo == 2);
    CHECK(ReloadPhaseType_Preparing == 0);
    CHECK(ReloadPhaseType_Reloaded == 1);
    CHECK(ReloadPhaseType_Failed == 2);
    CHECK(ReloadPhaseType_Unloading == 3);
    CHECK(LogLevel_Error == 1);
    CHECK(LogLevel_Trace == 5);
    CHECK(SupportedLanguage_Rust == 0);
    CHECK(SupportedLanguage_Cpp == 1);
    CHECK(SupportedLanguage_Dotnet == 2);
    CHECK(SupportedLanguage_Python == 3);
    CHECK(SupportedLanguage_Lua == 4);
    CHECK(SupportedLanguage_JavaScript == 5);
}

TEST_CASE("abi - null handle packs to u64 max", "[abi]") {
    const GuestContractHandle null = polyplug_null_handle();
    CHECK(null.index == UINT32_MAX);
    CHECK(null.generation == 0);
    CHECK(polyplug_handle_is_null(null));
    CHECK(polyplug_handle_pack(null) == UINT64_MAX);
    CHECK(polyplug_handle_pack(GuestContractHandle{3, 7}) == ((std::uint64_t{7} << 32) | 3));
}
