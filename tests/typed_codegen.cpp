// SPDX-License-Identifier: MIT
/// @file typed_codegen.cpp
/// Zero overhead, shown in the machine code: the same call written against the raw table and
/// through polyplug::client, each in its own noinline function. tests/typed_codegen.py
/// disassembles both (objdump) and compares their instruction counts.
#include <polyplug/client.hpp>
#include <polyplug/contract.hpp>

#include <cstdint>
#include <tuple>

namespace {

struct calc {
    static constexpr polyplug::guest_contract_name name{"codegen.calc", 1};
    static constexpr polyplug::function<0, std::int32_t(std::int32_t, std::int32_t)> add{"add"};
    static constexpr std::tuple functions{add};
};

// What a careful raw caller keeps: the resolved interface and its instance.
struct raw_calc {
    const GuestContractInterface* iface;
    GuestContractInstance instance;
};

struct add_args {
    std::int32_t a;
    std::int32_t b;
};

}  // namespace

/// The raw table call: fill the C struct, call functions[0], test the error code.
extern "C" POLYPLUG_NOINLINE std::int32_t polyplug_codegen_raw(const raw_calc& c, std::int32_t a,
                                                               std::int32_t b) {
    const add_args args{a, b};
    std::int32_t out = 0;
    AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
    const auto fn = polyplug::function_cast<GuestContractFn>(c.iface->dispatch.native.functions[0]);
    fn(c.instance, &args, &out, &err);
    return err.code == AbiErrorCode_Ok ? out : -1;
}

/// The same call typed, with the interface already resolved (the client holds it).
extern "C" POLYPLUG_NOINLINE std::int32_t polyplug_codegen_typed(polyplug::client<calc>& c,
                                                                 std::int32_t a, std::int32_t b) {
    std::int32_t out = 0;
    const AbiError err = c.invoke(calc::add, &out, a, b);
    return err.code == AbiErrorCode_Ok ? out : -1;
}

/// For reference (not compared): call() adds only the cold path that throws polyplug::error.
extern "C" POLYPLUG_NOINLINE std::int32_t polyplug_codegen_typed_call(polyplug::client<calc>& c,
                                                                      std::int32_t a,
                                                                      std::int32_t b) {
    return c.call(calc::add, a, b);
}
