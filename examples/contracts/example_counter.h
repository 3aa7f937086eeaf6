/* SPDX-License-Identifier: MIT */
/* The example.counter@1 contract: a stateful plugin whose count survives hot reloads through the
 * state hand-over (C11, also C++). Needs only <polyplug/abi.h>. */
#ifndef POLYPLUG_EXAMPLE_COUNTER_H
#define POLYPLUG_EXAMPLE_COUNTER_H

#include <polyplug/abi.h>

#define EXAMPLE_COUNTER_NAME "example.counter"
#define EXAMPLE_COUNTER_VERSION_MAJOR 1u

/** guest_contract_id("example.counter", 1) */
#define EXAMPLE_COUNTER_CONTRACT_ID UINT64_C(0x6cdcff388d23c1c3)

enum {
    EXAMPLE_COUNTER_FN_INCREMENT = 0, /**< args: NULL; out: uint64_t (the count after it) */
    EXAMPLE_COUNTER_FN_DESCRIBE = 1,  /**< args: NULL; out: StringView (static UTF-8 text) */
    EXAMPLE_COUNTER_FUNCTION_COUNT = 2
};

#endif /* POLYPLUG_EXAMPLE_COUNTER_H */
