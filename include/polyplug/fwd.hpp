// SPDX-License-Identifier: MIT
/// @file fwd.hpp
/// Forward declarations of polyplug's public C++ types, for headers that only name them.
#pragma once

#include <polyplug/config.hpp>

#include <cstdint>

POLYPLUG_BEGIN_NAMESPACE

class error;
class status;
enum class errc : int;
struct version;
struct manifest;
struct runtime_options;
struct bundle_info;
struct bundle_context;
struct contract_info;
struct load_report;
struct discovery_diagnostic;
enum class unmap_policy : std::uint32_t;
class registry;
class host_contract_registry;
class loader_handle;
class runtime_core;
class native_loader;
template <class... Loaders>
class basic_runtime;
using runtime = basic_runtime<native_loader>;

POLYPLUG_END_NAMESPACE
