// SPDX-License-Identifier: MIT
/// @file polyplug.hpp
/// Umbrella header for C++ hosts: the runtime, its native loader and everything they use.
#pragma once

#include <polyplug/abi.h>
#include <polyplug/client.hpp>
#include <polyplug/config.hpp>
#include <polyplug/contract.hpp>
#include <polyplug/contract_file.hpp>
#include <polyplug/dispatch.hpp>
#include <polyplug/error.hpp>
#include <polyplug/graph.hpp>
#include <polyplug/guest.hpp>
#include <polyplug/host_api.hpp>
#include <polyplug/host_contracts.hpp>
#include <polyplug/ids.hpp>
#include <polyplug/loader.hpp>
#include <polyplug/loaders/native.hpp>
#include <polyplug/manifest.hpp>
#include <polyplug/registry.hpp>
#include <polyplug/runtime.hpp>
#include <polyplug/runtime_contract.hpp>
#include <polyplug/runtime_core.hpp>
#include <polyplug/runtime_options.hpp>
#include <polyplug/state_handover.hpp>
#include <polyplug/version.hpp>
