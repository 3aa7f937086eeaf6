// SPDX-License-Identifier: MIT
/// @file polyplug.hpp
/// Umbrella header for C++ hosts: the runtime, its native loader and everything they use.
///
/// In compiled-once mode (POLYPLUG_HEADER_ONLY=0, config.hpp) it brings what a host needs to make
/// a runtime and call plugins; the engine's own headers (manifest and contract-file parsing, the
/// dependency graph, the registry, runtime_core and the HostApi thunks) are then included only
/// where they are used, so that a host translation unit compiles none of them.
#pragma once

#include <polyplug/abi.h>
#include <polyplug/bundle_info.hpp>
#include <polyplug/client.hpp>
#include <polyplug/config.hpp>
#include <polyplug/contract.hpp>
#include <polyplug/dispatch.hpp>
#include <polyplug/error.hpp>
#include <polyplug/guest.hpp>
#include <polyplug/ids.hpp>
#include <polyplug/loader.hpp>
#include <polyplug/loaders/native.hpp>
#include <polyplug/manifest_model.hpp>
#include <polyplug/runtime.hpp>
#include <polyplug/runtime_options.hpp>
#include <polyplug/state_handover.hpp>
#include <polyplug/version.hpp>

#if POLYPLUG_HEADER_ONLY
#include <polyplug/contract_file.hpp>
#include <polyplug/graph.hpp>
#include <polyplug/host_api.hpp>
#include <polyplug/host_contracts.hpp>
#include <polyplug/manifest.hpp>
#include <polyplug/registry.hpp>
#include <polyplug/runtime_contract.hpp>
#include <polyplug/runtime_core.hpp>
#endif
