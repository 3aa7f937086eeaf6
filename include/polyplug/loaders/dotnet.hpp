// SPDX-License-Identifier: MIT
/// @file loaders/dotnet.hpp
/// The .NET engine: C# bundles run by Debian's Mono (the embedding API of libmonosgen-2.0). A
/// bundle is a compiled assembly (`file = "calc.dll"`), its manifest and its contract file; each
/// provided contract is implemented by the public class whose full name is the contract's name
/// (`example.calc`: `namespace example { public class calc { ... } }`), one public method per
/// function, with the contract's C# types (docs/VM_BUNDLES.md). No generated glue.
///
/// - **One application domain per loaded version.** The assembly is read into memory and loaded
///   into a new domain, so a reload runs beside the old version and the old domain is unloaded
///   once nothing calls into it. The file is not kept open or mapped: rebuilding it in place
///   cannot change a version that runs.
/// - **Calls go through an unmanaged thunk** made once per function at bind
///   (`mono_method_get_unmanaged_thunk`), called with the arguments in registers: no boxing, no
///   `mono_runtime_invoke`. On x86-64 a thunk whose integer-class arguments (the instance, the
///   parameters, the exception slot) fit the six integer registers and whose floating-point ones
///   fit the eight vector registers is called through one fixed function type, since the System
///   V ABI assigns each class its registers in order whatever the interleaving; any other
///   function (more parameters, another architecture) goes through `mono_runtime_invoke`.
/// - **Types are checked at bind, not per call.** C# is typed: a parameter declared `int` for an
///   `i32` is all the checking a call needs; a mismatch fails the load with both types named.
///   Contract structs are C# classes (a C# struct would travel by value, which the thunks do not
///   do); enums are C# enums with the contract's underlying type, or that integer type itself.
/// - **Managed exceptions** become `Panic` with the exception's type, message and the method
///   that threw; nothing unwinds into native frames (the thunk returns the exception).
/// - **Threads.** Any thread may call: a thread is attached to Mono on its first call and
///   detached when it ends. Mono starts once per process and is never shut down (it cannot
///   restart in the same process); its domains are.
#pragma once

#include <polyplug/abi.h>
#include <polyplug/config.hpp>
#include <polyplug/contract_file.hpp>
#include <polyplug/loaders/vm.hpp>
#include <polyplug/loaders/vm/instance_table.hpp>
#include <polyplug/loaders/vm/messages.hpp>
#include <polyplug/loaders/vm/plan.hpp>

// Mono's headers use C extensions (anonymous structs, zero-size arrays) that -Wpedantic names.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <mono/jit/jit.h>
#include <mono/metadata/appdomain.h>
#include <mono/metadata/assembly.h>
#include <mono/metadata/class.h>
#include <mono/metadata/debug-helpers.h>
#include <mono/metadata/mono-debug.h>
#include <mono/metadata/mono-gc.h>
#include <mono/metadata/object.h>
#include <mono/metadata/threads.h>
#pragma GCC diagnostic pop

// Mono's thread-state transitions: exported by libmonosgen-2.0 and declared in its
// mono-threads-api.h, which Debian's libmono-2.0-dev does not install.
extern "C" {
void* mono_threads_enter_gc_unsafe_region_unbalanced(void** stackdata);
void mono_threads_exit_gc_unsafe_region_unbalanced(void* cookie, void** stackdata);
void* mono_threads_enter_gc_safe_region_unbalanced(void** stackdata);
}

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

POLYPLUG_BEGIN_NAMESPACE

namespace detail::dotnet {

// Metadata flags (ECMA-335 II.23.1.10 and II.23.1.5); Mono installs no header with them.
inline constexpr std::uint32_t method_access_mask = 0x0007;
inline constexpr std::uint32_t method_public = 0x0006;
inline constexpr std::uint32_t method_static = 0x0010;
inline constexpr std::uint32_t field_static = 0x0010;
inline constexpr std::uint32_t type_abstract = 0x0080;
inline constexpr std::uint32_t type_interface = 0x0020;

/// Mono, started once for the process (it cannot be stopped and started again).
struct process_runtime {
    std::mutex mutex;
    bool attempted = false;
    std::atomic<MonoDomain*> root{nullptr};  // set once, read by every engine entry
    std::string error;
    std::atomic<std::uint64_t> domains{0};  // for unique domain names
};

inline process_runtime& runtime_state() {
    static auto* state = new process_runtime;  // never destroyed: Mono outlives every static
    return *state;
}

/// Leaves the current thread (attached to Mono) in Mono's "GC safe" state, the state of a thread
/// running native code that touches no managed object (see managed_region).
inline void leave_managed_state() {
    void* here = nullptr;
    (void)mono_threads_enter_gc_safe_region_unbalanced(&here);
}

/// The root domain, starting Mono on first use; nullptr with `error` when it cannot start.
inline MonoDomain* start_mono(std::string& error) {
    process_runtime& p = runtime_state();
    const std::lock_guard guard(p.mutex);
    if (!p.attempted) {
        p.attempted = true;
        // Faults that are not managed code's go to the handlers installed before Mono (a host's,
        // a sanitizer's) instead of Mono's crash report.
        mono_set_signal_chaining(1);
        mono_debug_init(MONO_DEBUG_FORMAT_MONO);  // file and line in exceptions, with .mdb files
        // This thread is attached now, and left in the safe state (the embedding API's own).
        p.root.store(mono_jit_init_version("polyplug", "v4.0.30319"), std::memory_order_release);
        if (p.root.load() == nullptr)
            p.error = "the Mono runtime did not start (mono_jit_init_version)";
    }
    MonoDomain* root = p.root.load(std::memory_order_acquire);
    if (root == nullptr) error = p.error;
    return root;
}

/// Detaches a thread that polyplug attached to Mono when the thread ends: Mono's collector stops
/// every attached thread, and a thread that is gone cannot be stopped. The process's main thread
/// stays attached; it ends with the process.
struct thread_attachment {
    MonoThread* thread = nullptr;
    thread_attachment() = default;
    thread_attachment(const thread_attachment&) = delete;
    thread_attachment& operator=(const thread_attachment&) = delete;
    ~thread_attachment() {
        if (thread == nullptr || ::syscall(SYS_gettid) == ::getpid()) return;
        void* here = nullptr;
        (void)mono_threads_enter_gc_unsafe_region_unbalanced(&here);
        mono_thread_detach(thread);
    }
};

/// One stretch of polyplug's work inside Mono on this thread: attaches the thread the first time,
/// puts it in Mono's running ("GC unsafe") state for the stretch and back into the safe state
/// after it, with `domain` as its current domain for the stretch and the root domain again after
/// it. Every engine entry holds one, taken after the VM's lock: a thread never waits for that
/// lock, nor runs the host's code, in the running state, where a collection started by another
/// thread would wait for it to reach a safepoint; and no thread is left inside a version's domain
/// between calls, where unloading that domain would try to abort it.
class managed_region {
public:
    explicit managed_region(MonoDomain* domain)
        : root_(runtime_state().root.load(std::memory_order_acquire)) {
        if (mono_domain_get() == nullptr) {
            thread_local thread_attachment attachment;
            attachment.thread = mono_thread_attach(root_);
            leave_managed_state();  // mono_thread_attach leaves it running
        }
        cookie_ = mono_threads_enter_gc_unsafe_region_unbalanced(&stack_mark_);
        if (domain != root_) (void)mono_domain_set(domain, 0);
        switched_ = domain != root_;
    }
    ~managed_region() {
        if (switched_) (void)mono_domain_set(root_, 0);
        mono_threads_exit_gc_unsafe_region_unbalanced(cookie_, &stack_mark_);
    }
    managed_region(const managed_region&) = delete;
    managed_region& operator=(const managed_region&) = delete;

private:
    MonoDomain* root_;
    void* stack_mark_ = nullptr;
    void* cookie_ = nullptr;
    bool switched_ = false;
};

/// A Mono string as UTF-8 (mono_free'd); "" for null.
inline std::string utf8_of(MonoString* s) {
    if (s == nullptr) return {};
    char* text = mono_string_to_utf8(s);
    if (text == nullptr) return {};
    std::string out(text);
    mono_free(text);
    return out;
}

/// A type as C# names it ("System.Int32", "test.Point[]").
inline std::string type_name(MonoType* t) {
    char* text = mono_type_get_name(t);
    std::string out = text != nullptr ? text : "?";
    mono_free(text);
    return out;
}

/// The C# type a contract primitive must be.
[[nodiscard]] inline int mono_type_of(primitive_type p) noexcept {
    switch (p) {
        case primitive_type::u8:
            return MONO_TYPE_U1;
        case primitive_type::u16:
            return MONO_TYPE_U2;
        case primitive_type::u32:
            return MONO_TYPE_U4;
        case primitive_type::u64:
            return MONO_TYPE_U8;
        case primitive_type::i8:
            return MONO_TYPE_I1;
        case primitive_type::i16:
            return MONO_TYPE_I2;
        case primitive_type::i32:
            return MONO_TYPE_I4;
        case primitive_type::i64:
            return MONO_TYPE_I8;
        case primitive_type::f32:
            return MONO_TYPE_R4;
        case primitive_type::f64:
            return MONO_TYPE_R8;
        case primitive_type::bool_:
            return MONO_TYPE_BOOLEAN;
    }
    return MONO_TYPE_END;
}

/// The C# keyword of a contract primitive, for messages.
[[nodiscard]] inline std::string_view csharp_name(primitive_type p) noexcept {
    switch (p) {
        case primitive_type::u8:
            return "byte";
        case primitive_type::u16:
            return "ushort";
        case primitive_type::u32:
            return "uint";
        case primitive_type::u64:
            return "ulong";
        case primitive_type::i8:
            return "sbyte";
        case primitive_type::i16:
            return "short";
        case primitive_type::i32:
            return "int";
        case primitive_type::i64:
            return "long";
        case primitive_type::f32:
            return "float";
        case primitive_type::f64:
            return "double";
        case primitive_type::bool_:
            return "bool";
    }
    return "?";
}

// The thunk types of the register path: six integer-class words and eight doubles, whatever the
// function's own signature (see the file comment).
using int_thunk = std::uint64_t (*)(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                    std::uint64_t, std::uint64_t, double, double, double, double,
                                    double, double, double, double);
using real_thunk = double (*)(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                              std::uint64_t, std::uint64_t, double, double, double, double, double,
                              double, double, double);

/// A double register holding `bits` unchanged (an f32's bits in the low half for a float).
[[nodiscard]] inline double as_register(std::uint64_t bits) noexcept {
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
}

[[nodiscard]] inline std::uint64_t float_bits(double d) noexcept {
    const auto f = static_cast<float>(d);
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

}  // namespace detail::dotnet

/// The engine behind `loader = "dotnet"` (see the file comment and vm_engine).
class dotnet_engine {
public:
    static constexpr std::string_view loader_name = "dotnet";
    static constexpr std::uint32_t language = SupportedLanguage_Dotnet;

    /// How many values a call holds at most on its own stack (parameters, and the objects and
    /// arrays being built around the deepest value); a contract that needs more fails at bind.
    static constexpr std::uint32_t max_values = 64;

    dotnet_engine(const dotnet_engine&) = delete;
    dotnet_engine& operator=(const dotnet_engine&) = delete;

    /// A new domain with the bundle's assembly loaded; nullptr with the reason.
    static std::unique_ptr<dotnet_engine> open(const vm_script& script, std::string& error) {
        MonoDomain* root = detail::dotnet::start_mono(error);
        if (root == nullptr) return nullptr;
        std::string bytes;
        if (!script.read(bytes)) {
            error = "cannot read the assembly " + script.script.string();
            return nullptr;
        }
        std::unique_ptr<dotnet_engine> engine(new dotnet_engine(script, root));
        if (!engine->start(bytes, error)) return nullptr;
        return engine;
    }

    /// Frees the instances and unloads the version's domain (its assembly, statics, objects).
    ~dotnet_engine() {
        if (domain_ == nullptr) return;
        const detail::dotnet::managed_region region(root_);  // a domain unloads from another
        instances_.clear();                                  // frees their GC handles
        mono_domain_unload(domain_);
    }

    /// Finds the class named like the contract, each function as a public method with the
    /// contract's types, its parameterless constructor, and makes each function's thunk.
    bool bind(const contract_decl& decl, std::uint32_t& impl, std::string& error) {
        const detail::dotnet::managed_region region(domain_);
        const std::size_t dot = decl.name.rfind('.');
        const std::string space = dot == std::string::npos ? "" : decl.name.substr(0, dot);
        const std::string cls = dot == std::string::npos ? decl.name : decl.name.substr(dot + 1);
        MonoClass* klass = mono_class_from_name(image_, space.c_str(), cls.c_str());
        if (klass == nullptr) {
            error = name_ + ": has no public class '" + decl.name + "' (namespace '" + space +
                    "', class '" + cls + "') implementing contract " + decl.name;
            return false;
        }
        const std::uint32_t type_flags = mono_class_get_flags(klass);
        if (mono_class_is_valuetype(klass) ||
            (type_flags & (detail::dotnet::type_abstract | detail::dotnet::type_interface)) != 0) {
            error = name_ + ": '" + decl.name +
                    "' must be a class that can be instantiated (not a struct, an interface or "
                    "abstract)";
            return false;
        }
        implementation im;
        im.decl = &decl;
        im.klass = klass;
        im.plan = vm::compile(*api_, decl);  // once per version: calls only run it
        im.steps.resize(im.plan.steps.size());
        im.constructor = mono_class_get_method_from_name(klass, ".ctor", 0);
        if (im.constructor == nullptr) {
            error = name_ + ": class '" + decl.name + "' has no constructor without parameters";
            return false;
        }
        std::vector<std::size_t> missing;
        for (const function_decl& fn : decl.functions) {
            const vm::function_plan& f = im.plan.functions[fn.id];
            MonoMethod* m =
                mono_class_get_method_from_name(klass, fn.name.c_str(), static_cast<int>(f.params));
            std::uint32_t iflags = 0;
            if (m == nullptr ||
                (mono_method_get_flags(m, &iflags) & detail::dotnet::method_access_mask) !=
                    detail::dotnet::method_public) {
                missing.push_back(fn.id);
                im.methods.emplace_back();
                continue;
            }
            method made;
            made.method = m;
            made.is_static =
                (mono_method_get_flags(m, &iflags) & detail::dotnet::method_static) != 0;
            if (!check_signature(im, f, made, error)) return false;
            im.methods.push_back(made);
        }
        if (!missing.empty()) {
            error = name_ + ": class '" + decl.name + "' " + vm::lacking_functions(decl, missing) +
                    " (public methods with the contract's parameters)";
            return false;
        }
        impl = static_cast<std::uint32_t>(impls_.size());
        impls_.push_back(std::move(im));
        return true;
    }

    /// `new Impl()`, held by a GC handle until destroy_instance or the domain's unload.
    void* create_instance(std::uint32_t impl, std::string& error) {
        const detail::dotnet::managed_region region(domain_);
        const implementation& im = impls_.at(impl);
        MonoObject* object = mono_object_new(domain_, im.klass);
        if (object == nullptr) {
            error = name_ + ": out of memory creating " + im.decl->name;
            return nullptr;
        }
        MonoObject* exception = nullptr;
        (void)mono_runtime_invoke(im.constructor, object, nullptr, &exception);
        if (exception != nullptr) {
            error = describe_exception(exception);
            return nullptr;
        }
        auto record = std::make_unique<instance_record>();
        record->impl = impl;
        record->handle = mono_gchandle_new(object, 0);
        return instances_.add(std::move(record));
    }

    void destroy_instance(std::uint32_t, void* instance) noexcept {
        if (instances_.find(instance) == nullptr) return;  // not ours (any more)
        const detail::dotnet::managed_region region(domain_);
        instances_.erase(instance);
    }

    /// Calls `fn` on `instance` by its plan: the parameters into C# values on this frame's
    /// stack (where Mono's collector sees and pins them), the thunk, the result into `out`.
    bool call(std::uint32_t impl, void* instance, const function_decl& fn, const void* args,
              void* out, const result_allocator& alloc, std::string& error) {
        // Looked up rather than trusted: an instance of the version before a reload (or a
        // destroyed one) would be a handle of another domain.
        const instance_record* target = instances_.find(instance);
        const implementation& im = impls_[impl];
        if (target == nullptr || target->impl != impl) [[unlikely]] {
            error = im.decl->name + "." + fn.name +
                    ": not an instance of this bundle version (destroyed, or created before a "
                    "reload)";
            return false;
        }
        const vm::function_plan& f = im.plan.functions[fn.id];
        if ((args == nullptr && fn.args.size != 0) || (out == nullptr && f.has_result))
            [[unlikely]] {
            error = im.decl->name + "." + fn.name + ": called with a null " +
                    (args == nullptr && fn.args.size != 0 ? "argument struct" : "result pointer");
            return false;
        }
        const detail::dotnet::managed_region region(domain_);
        vm::trail where;
        where.contract = im.decl->name.c_str();
        where.function = fn.name.c_str();
        std::uint64_t values[max_values];  // on this stack: Mono scans it, pinning the objects
        const vm::step* elements[max_values];
        codec c{*this, im, alloc, values, elements, 0, &where};
        if (!vm::push_params(c, im.plan, f, static_cast<const std::uint8_t*>(args), where))
            [[unlikely]]
            return conversion_error(error);
        const method& m = im.methods[fn.id];
        auto* self = m.is_static ? nullptr : mono_gchandle_get_target(target->handle);
        std::uint64_t result = 0;
        MonoObject* exception = nullptr;
        if (m.registers) [[likely]]
            result = call_registers(im, f, m, self, values, exception);
        else
            result = call_invoke(im, f, m, self, values, exception);
        if (exception != nullptr) [[unlikely]] {
            error = describe_exception(exception, im.decl->name + "." + fn.name);
            return false;
        }
        if (f.has_result && !vm::pull_result(c, im.plan, f, result, static_cast<std::uint8_t*>(out),
                                             where)) [[unlikely]]
            return conversion_error(error);
        return true;
    }

    /// True when the assembly has a `BundleState` class (checked when the version opened).
    bool state_schema(std::uint32_t& schema) {
        if (save_ == nullptr || restore_ == nullptr) return false;
        schema = schema_;
        return true;
    }

    bool save_state(std::string& bytes, std::string& error) {
        const detail::dotnet::managed_region region(domain_);
        MonoObject* exception = nullptr;
        MonoObject* saved = mono_runtime_invoke(save_, nullptr, nullptr, &exception);
        if (exception != nullptr) {
            error = "BundleState.save_state: " + describe_exception(exception);
            return false;
        }
        if (saved == nullptr) {  // declared byte[] (checked at open): an array or null
            error = "BundleState.save_state returned null";
            return false;
        }
        auto* array = reinterpret_cast<MonoArray*>(saved);
        const std::size_t len = mono_array_length(array);
        const char* data = len > 0 ? mono_array_addr_with_size(array, 1, 0) : nullptr;
        bytes.assign(data != nullptr ? data : "", len);
        return true;
    }

    bool restore_state(std::uint32_t schema, std::string_view bytes, std::string& error) {
        const detail::dotnet::managed_region region(domain_);
        if (restore_ == nullptr) {
            error = "the new version has no BundleState.restore_state";
            return false;
        }
        MonoArray* array = mono_array_new(domain_, mono_get_byte_class(), bytes.size());
        if (array == nullptr) {
            error = "out of memory restoring state";
            return false;
        }
        if (!bytes.empty())
            std::memcpy(mono_array_addr_with_size(array, 1, 0), bytes.data(), bytes.size());
        auto old_schema = static_cast<std::int32_t>(schema);
        void* params[2] = {&old_schema, array};
        MonoObject* exception = nullptr;
        (void)mono_runtime_invoke(restore_, nullptr, params, &exception);
        if (exception != nullptr) {
            error = "BundleState.restore_state: " + describe_exception(exception);
            return false;
        }
        return true;
    }

private:
    /// What a step is in C#: its class (a struct's class; an array's element class), where a
    /// struct field sits in its object, how big an array element is, whether the value is an
    /// object reference.
    struct step_info {
        MonoClass* klass = nullptr;
        std::uint32_t offset = 0;        // a struct field: its offset in the object
        std::uint32_t element_size = 0;  // an array: one element's size in the C# array
        bool reference = false;          // the C# value is a reference (string, array, class)
    };

    struct method {
        MonoMethod* method = nullptr;
        void* thunk = nullptr;
        bool is_static = false;
        bool registers = false;  // called through the register path
    };

    struct implementation {
        const contract_decl* decl = nullptr;
        MonoClass* klass = nullptr;
        MonoMethod* constructor = nullptr;
        vm::contract_plan plan;
        std::vector<step_info> steps;  // by plan step
        std::vector<method> methods;   // by function id
    };

    struct instance_record {
        std::uint32_t impl = 0;
        std::uint32_t handle = 0;  // the GC handle that keeps the object
        instance_record() = default;
        instance_record(const instance_record&) = delete;
        instance_record& operator=(const instance_record&) = delete;
        ~instance_record() {
            if (handle != 0) mono_gchandle_free(handle);
        }
    };

    dotnet_engine(const vm_script& script, MonoDomain* root)
        : api_(script.api),
          root_(root),
          name_(script.shown_name()),
          path_(script.script.string()) {}

    bool start(const std::string& bytes, std::string& error) {
        detail::dotnet::process_runtime& p = detail::dotnet::runtime_state();
        const std::uint64_t number = ++p.domains;
        std::string domain_name = "polyplug " + name_ + " #" + std::to_string(number);
        {
            const detail::dotnet::managed_region region(root_);
            domain_ = mono_domain_create_appdomain(domain_name.data(), nullptr);
        }
        if (domain_ == nullptr) {
            error = name_ + ": Mono could not create an application domain";
            return false;
        }
        const detail::dotnet::managed_region region(domain_);
        MonoImageOpenStatus status = MONO_IMAGE_OK;
        // From memory, copied by Mono: the file may change under a running version. Mono keeps
        // one image per name, so each version's image has its own (the path and the domain's
        // number): under the path alone, a reload would be handed the old version's image.
        const std::string image_name = path_ + "#" + std::to_string(number);
        MonoImage* image = mono_image_open_from_data_with_name(
            const_cast<char*>(bytes.data()), static_cast<std::uint32_t>(bytes.size()), 1, &status,
            0, image_name.c_str());
        if (image == nullptr || status != MONO_IMAGE_OK) {
            error = name_ + ": not a .NET assembly (" + mono_image_strerror(status) + ")";
            return false;
        }
        // Its debug symbols (mcs -debug writes <file>.mdb beside it), read the same way, before
        // the assembly loads: file and line in the messages of exceptions.
        vm_script symbols;
        symbols.script = path_ + ".mdb";
        if (std::error_code ec; std::filesystem::is_regular_file(symbols.script, ec) &&
                                symbols.read(symbols_) && !symbols_.empty()) {
            mono_debug_open_image_from_memory(image,
                                              reinterpret_cast<const mono_byte*>(symbols_.data()),
                                              static_cast<int>(symbols_.size()));
        }
        MonoAssembly* assembly =
            mono_assembly_load_from_full(image, image_name.c_str(), &status, 0);
        mono_image_close(image);  // the assembly holds its own reference
        if (assembly == nullptr || status != MONO_IMAGE_OK) {
            error =
                name_ + ": Mono could not load the assembly (" + mono_image_strerror(status) + ")";
            return false;
        }
        image_ = mono_assembly_get_image(assembly);
        return check_state_class(error);
    }

    /// `BundleState`, when the assembly has one, must be exactly what the hand-over calls: its
    /// methods are invoked with an int and a byte[], so other parameter types would be read as
    /// those. Fails the open otherwise; fills schema_, save_ and restore_.
    bool check_state_class(std::string& error) {
        MonoClass* state = mono_class_from_name(image_, "", "BundleState");
        if (state == nullptr) return true;  // no hand-over
        const auto is_static = [](MonoMethod* m) {
            std::uint32_t iflags = 0;
            return (mono_method_get_flags(m, &iflags) & detail::dotnet::method_static) != 0;
        };
        const auto is_bytes = [](MonoType* t) {
            return mono_type_get_type(t) == MONO_TYPE_SZARRAY &&
                   mono_class_get_element_class(mono_class_from_mono_type(t)) ==
                       mono_get_byte_class();
        };
        MonoClassField* field = mono_class_get_field_from_name(state, "state_schema");
        MonoMethod* save = mono_class_get_method_from_name(state, "save_state", 0);
        MonoMethod* restore = mono_class_get_method_from_name(state, "restore_state", 2);
        bool ok = field != nullptr && save != nullptr && restore != nullptr &&
                  (mono_field_get_flags(field) & detail::dotnet::field_static) != 0 &&
                  mono_type_get_type(mono_field_get_type(field)) == MONO_TYPE_I4 &&
                  is_static(save) && is_static(restore) &&
                  is_bytes(mono_signature_get_return_type(mono_method_signature(save)));
        if (ok) {
            MonoMethodSignature* sig = mono_method_signature(restore);
            void* iter = nullptr;
            MonoType* first = mono_signature_get_params(sig, &iter);
            MonoType* second = mono_signature_get_params(sig, &iter);
            ok = first != nullptr && second != nullptr &&
                 mono_type_get_type(first) == MONO_TYPE_I4 && !mono_type_is_byref(first) &&
                 is_bytes(second) && !mono_type_is_byref(second) &&
                 mono_type_get_type(mono_signature_get_return_type(sig)) == MONO_TYPE_VOID;
        }
        std::int32_t value = -1;
        if (ok) {
            MonoVTable* vtable = mono_class_vtable(domain_, state);
            if (vtable != nullptr) mono_field_static_get_value(vtable, field, &value);
            ok = value >= 0;
        }
        if (!ok) {
            error = name_ +
                    ": class BundleState must have a static int state_schema (0 or more), static "
                    "byte[] save_state() and static void restore_state(int schema, byte[] data)";
            return false;
        }
        schema_ = static_cast<std::uint32_t>(value);
        save_ = save;
        restore_ = restore;
        return true;
    }

    // ---- bind: the contract's types against the C# signature -----------------------------------

    /// Checks `f`'s parameters and result against `made.method`'s signature, fills the steps'
    /// C# facts, makes the thunk and picks the call path.
    bool check_signature(implementation& im, const vm::function_plan& f, method& made,
                         std::string& error) {
        MonoMethodSignature* sig = mono_method_signature(made.method);
        const std::string where = name_ + ": " + im.decl->name + "." + f.decl->name;
        void* iter = nullptr;
        std::uint32_t ints = made.is_static ? 0 : 1, reals = 0;
        for (std::uint32_t p = 0; p < f.params; ++p) {
            MonoType* t = mono_signature_get_params(sig, &iter);
            const vm::step& s = im.plan.at(f.first_param + p);
            std::string why;
            if (t == nullptr || !match(im, f.first_param + p, t, why)) {
                error = where + ": parameter '" + s.name + "' " + why;
                return false;
            }
            if (s.code == vm::op::real)
                ++reals;
            else
                ++ints;
        }
        MonoType* r = mono_signature_get_return_type(sig);
        if (!f.has_result) {
            if (mono_type_get_type(r) != MONO_TYPE_VOID) {
                error = where + ": returns " + detail::dotnet::type_name(r) +
                        ", but the contract's function returns nothing (void)";
                return false;
            }
        } else if (std::string why; !match(im, f.result, r, why)) {
            error = where + ": the result " + why;
            return false;
        }
        std::uint32_t deepest = 0;
        for (std::uint32_t p = 0; p <= f.params; ++p)
            deepest = std::max(deepest, nesting(im.plan, im.plan.at(f.first_param + p)));
        if (f.params + deepest > max_values) {
            error = where + ": too many parameters or nested values for one call (" +
                    std::to_string(max_values) + " at most)";
            return false;
        }
        made.thunk = mono_method_get_unmanaged_thunk(made.method);
#if defined(__x86_64__)
        made.registers = made.thunk != nullptr && ints + 1 <= 6 && reals <= 8;
#endif
        return true;
    }

    /// Whether C# type `t` is the contract's type of step `at`; fills steps[at]. `why` says
    /// what the C# type should have been.
    bool match(implementation& im, std::uint32_t at, MonoType* t, std::string& why) {
        const vm::step& s = im.plan.at(at);
        step_info& info = im.steps[at];
        const int code = mono_type_get_type(t);
        auto refuse = [&](std::string_view wanted) {
            why = "is " + detail::dotnet::type_name(t) + ", but the contract's " +
                  std::string(s.type_name) + " is " + std::string(wanted) + " in C#";
            return false;
        };
        if (mono_type_is_byref(t)) return refuse("passed by value (not ref or out)");
        switch (s.code) {
            case vm::op::integer:
            case vm::op::real:
            case vm::op::boolean: {
                if (code == detail::dotnet::mono_type_of(s.primitive)) return true;
                return refuse(detail::dotnet::csharp_name(s.primitive));
            }
            case vm::op::enumeration: {
                const int wanted = detail::dotnet::mono_type_of(s.primitive);
                if (code == wanted) return true;
                if (code == MONO_TYPE_VALUETYPE) {
                    MonoClass* k = mono_class_from_mono_type(t);
                    if (mono_class_is_enum(k) &&
                        mono_type_get_type(mono_class_enum_basetype(k)) == wanted)
                        return true;
                }
                const std::string repr(detail::dotnet::csharp_name(s.primitive));
                return refuse(repr + " or an enum whose underlying type is " + repr);
            }
            case vm::op::string_view:
                info.reference = true;
                return code == MONO_TYPE_STRING || refuse("string");
            case vm::op::buffer:
                info.reference = true;
                if (code == MONO_TYPE_SZARRAY &&
                    mono_class_get_element_class(mono_class_from_mono_type(t)) ==
                        mono_get_byte_class())
                    return true;
                return refuse("byte[]");
            case vm::op::pointer:
                return code == MONO_TYPE_I || code == MONO_TYPE_U || code == MONO_TYPE_PTR ||
                       refuse("IntPtr");
            case vm::op::record: {
                info.reference = true;
                if (code != MONO_TYPE_CLASS)
                    return refuse("a class with its fields (a C# struct would be passed by value)");
                MonoClass* k = mono_class_from_mono_type(t);
                info.klass = k;
                for (std::uint32_t i = 0; i < s.count; ++i) {
                    const vm::step& field = im.plan.at(s.first + i);
                    MonoClassField* cf = mono_class_get_field_from_name(k, field.name);
                    if (cf == nullptr ||
                        (mono_field_get_flags(cf) & detail::dotnet::field_static) != 0) {
                        why = "is " + detail::dotnet::type_name(t) + ", which has no field '" +
                              field.name + "' (struct " + std::string(s.type_name) + ")";
                        return false;
                    }
                    std::string inner;
                    if (!match(im, s.first + i, mono_field_get_type(cf), inner)) {
                        why = "is " + detail::dotnet::type_name(t) + ", whose field '" +
                              field.name + "' " + inner;
                        return false;
                    }
                    im.steps[s.first + i].offset = mono_field_get_offset(cf);
                }
                return true;
            }
            case vm::op::array: {
                info.reference = true;
                if (code != MONO_TYPE_SZARRAY) return refuse("an array (T[])");
                MonoClass* array_class = mono_class_from_mono_type(t);
                MonoClass* element = mono_class_get_element_class(array_class);
                info.klass = element;
                info.element_size =
                    static_cast<std::uint32_t>(mono_array_element_size(array_class));
                std::string inner;
                if (!match(im, s.first, mono_class_get_type(element), inner)) {
                    why = "is " + detail::dotnet::type_name(t) + ", whose element " + inner;
                    return false;
                }
                return true;
            }
            case vm::op::nothing:
                break;
        }
        return refuse("not convertible");
    }

    /// How many values above its parameter a call holds at most for `s`.
    static std::uint32_t nesting(const vm::contract_plan& plan, const vm::step& s) {
        if (s.code == vm::op::array) return 1 + nesting(plan, plan.at(s.first));
        if (s.code != vm::op::record) return 0;
        std::uint32_t deepest = 0;
        for (std::uint32_t f = 0; f < s.count; ++f)
            deepest = std::max(deepest, nesting(plan, plan.at(s.first + f)));
        return 1 + deepest;
    }

    // ---- the two call paths --------------------------------------------------------------------

    /// The thunk through the fixed register type: integer-class arguments in order (the
    /// instance, the parameters, the exception slot), doubles in order (an f32 as its bits).
    static std::uint64_t call_registers(const implementation& im, const vm::function_plan& f,
                                        const method& m, MonoObject* self,
                                        const std::uint64_t* values, MonoObject*& exception) {
        std::uint64_t ints[6] = {};
        double reals[8] = {};
        unsigned ni = 0, nr = 0;
        if (!m.is_static) ints[ni++] = reinterpret_cast<std::uintptr_t>(self);
        for (std::uint32_t p = 0; p < f.params; ++p) {
            const vm::step& s = im.plan.at(f.first_param + p);
            if (s.code != vm::op::real) {
                ints[ni++] = values[p];
            } else {
                const double d = detail::dotnet::as_register(values[p]);
                reals[nr++] = s.primitive == primitive_type::f32
                                  ? detail::dotnet::as_register(detail::dotnet::float_bits(d))
                                  : d;
            }
        }
        ints[ni] = reinterpret_cast<std::uintptr_t>(&exception);
        const vm::step& result = im.plan.at(f.result);
        if (result.code == vm::op::real) {
            const double r = reinterpret_cast<detail::dotnet::real_thunk>(m.thunk)(
                ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], reals[0], reals[1], reals[2],
                reals[3], reals[4], reals[5], reals[6], reals[7]);
            std::uint64_t bits;
            std::memcpy(&bits, &r, sizeof bits);
            return bits;
        }
        return reinterpret_cast<detail::dotnet::int_thunk>(m.thunk)(
            ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], reals[0], reals[1], reals[2],
            reals[3], reals[4], reals[5], reals[6], reals[7]);
    }

    /// mono_runtime_invoke: value parameters by address, references as they are; a value
    /// result comes back boxed.
    static std::uint64_t call_invoke(const implementation& im, const vm::function_plan& f,
                                     const method& m, MonoObject* self, std::uint64_t* values,
                                     MonoObject*& exception) {
        void* params[max_values];
        for (std::uint32_t p = 0; p < f.params; ++p) {
            const vm::step& s = im.plan.at(f.first_param + p);
            if (s.code == vm::op::real && s.primitive == primitive_type::f32)
                values[p] = detail::dotnet::float_bits(detail::dotnet::as_register(values[p]));
            params[p] = im.steps[f.first_param + p].reference
                            ? reinterpret_cast<void*>(static_cast<std::uintptr_t>(values[p]))
                            : static_cast<void*>(&values[p]);
        }
        MonoObject* r = mono_runtime_invoke(m.method, self, params, &exception);
        const vm::step& result = im.plan.at(f.result);
        if (exception != nullptr || r == nullptr || !f.has_result) return 0;
        if (im.steps[f.result].reference) return reinterpret_cast<std::uintptr_t>(r);
        std::uint64_t bits = 0;
        std::memcpy(&bits, mono_object_unbox(r), std::min<std::uint32_t>(result.size, 8));
        return bits;
    }

    // ---- values through the plan ---------------------------------------------------------------

    /// How the plan executor reads and makes C# values (vm::vm_codec). A value is 64 bits: an
    /// object reference, or a primitive's bytes zero-extended (an f32 as its bits when read
    /// from C#, as a double when pushed: the destination converts). Values made live in the
    /// call's stack array, where the collector finds them.
    struct codec {
        using value = std::uint64_t;

        dotnet_engine& engine;
        const implementation& im;
        const result_allocator& alloc;
        std::uint64_t* stack;
        const vm::step** elements;  // beside an array on the stack: its element step
        std::uint32_t top;
        const vm::trail* where;
        MonoClass* sized_class = nullptr;  // the array class whose element size is cached
        std::uint32_t sized = 0;

        [[nodiscard]] std::uint32_t index_of(const vm::step& s) const noexcept {
            return static_cast<std::uint32_t>(&s - im.plan.steps.data());
        }
        [[nodiscard]] const step_info& info(const vm::step& s) const noexcept {
            return im.steps[index_of(s)];
        }
        bool put(std::uint64_t v) {
            stack[top++] = v;
            return true;
        }
        bool put_object(void* object) {
            if (object == nullptr) [[unlikely]]
                return fail(*where, "out of memory in the .NET runtime");
            return put(reinterpret_cast<std::uintptr_t>(object));
        }
        /// Writes value `v` of step `s` at `dst` inside `owner` (an object or an array).
        void store_value(MonoObject* owner, std::uint8_t* dst, const vm::step& s, std::uint64_t v,
                         bool array) {
            if (info(s).reference) {
                auto* object = reinterpret_cast<MonoObject*>(static_cast<std::uintptr_t>(v));
                if (array)
                    mono_gc_wbarrier_set_arrayref(reinterpret_cast<MonoArray*>(owner), dst, object);
                else
                    mono_gc_wbarrier_set_field(owner, dst, object);
                return;
            }
            if (s.code == vm::op::real && s.primitive == primitive_type::f32)
                v = detail::dotnet::float_bits(detail::dotnet::as_register(v));
            std::memcpy(dst, &v, s.size);
        }

        bool push_integer(const vm::step&, std::int64_t v) {
            return put(static_cast<std::uint64_t>(v));
        }
        bool push_unsigned(const vm::step&, const vm::trail&, std::uint64_t v) { return put(v); }
        bool push_real(double v) {
            std::uint64_t bits;
            std::memcpy(&bits, &v, sizeof bits);
            return put(bits);
        }
        bool push_boolean(bool v) { return put(v ? 1 : 0); }
        bool push_bytes(const vm::step& s, const std::uint8_t* p, std::size_t len) {
            if (s.code == vm::op::string_view) {
                engine.utf16_.clear();
                decode_utf8(p, len, engine.utf16_);
                return put_object(mono_string_new_utf16(
                    engine.domain_, reinterpret_cast<const mono_unichar2*>(engine.utf16_.data()),
                    static_cast<std::int32_t>(engine.utf16_.size())));
            }
            MonoArray* bytes = mono_array_new(engine.domain_, mono_get_byte_class(), len);
            if (bytes != nullptr && len > 0)
                std::memcpy(mono_array_addr_with_size(bytes, 1, 0), p, len);
            return put_object(bytes);
        }
        bool push_pointer(void* p) { return put(reinterpret_cast<std::uintptr_t>(p)); }
        bool begin_record(const vm::step& s) {
            return put_object(mono_object_new(engine.domain_, info(s).klass));
        }
        bool end_field(const vm::step&, const vm::step& field) {
            const std::uint64_t v = stack[--top];
            auto* object =
                reinterpret_cast<MonoObject*>(static_cast<std::uintptr_t>(stack[top - 1]));
            store_value(object, reinterpret_cast<std::uint8_t*>(object) + info(field).offset, field,
                        v, false);
            return true;
        }
        bool begin_array(const vm::step& s, const vm::trail& t, std::size_t len) {
            if (len > static_cast<std::size_t>(INT32_MAX))
                return fail(t, "an array too long for .NET");
            elements[top] = &im.plan.at(s.first);
            return put_object(mono_array_new(engine.domain_, info(s).klass, len));
        }
        bool end_element(std::size_t i) {
            const std::uint64_t v = stack[--top];
            auto* array = reinterpret_cast<MonoArray*>(static_cast<std::uintptr_t>(stack[top - 1]));
            const vm::step& element = *elements[top - 1];
            const std::uint32_t size = info(element).reference ? sizeof(void*) : element.size;
            auto* dst = reinterpret_cast<std::uint8_t*>(
                mono_array_addr_with_size(array, static_cast<int>(size), i));
            store_value(reinterpret_cast<MonoObject*>(array), dst, element, v, true);
            return true;
        }
        bool fail(const vm::trail& t, std::string_view text) {
            return engine.fail_text(t, text, false);
        }

        bool to_number(const vm::step& s, std::uint64_t v, vm::number& n) {
            number_of(s, v, n);
            return true;
        }
        bool to_boolean(const vm::step&, std::uint64_t v, bool& b) {
            b = static_cast<std::uint8_t>(v) != 0;
            return true;
        }
        /// A string's UTF-8 (a lone surrogate is refused), or a byte[]'s bytes in place: no
        /// managed code runs before the executor copies them, so they stay where they are.
        bool to_bytes(const vm::step& s, std::uint64_t v, const std::uint8_t*& p,
                      std::size_t& len) {
            if (v == 0) return false;  // null: refuse says so
            if (s.code == vm::op::string_view) {
                auto* str = reinterpret_cast<MonoString*>(static_cast<std::uintptr_t>(v));
                engine.utf8_.clear();
                if (!encode_utf8(reinterpret_cast<const char16_t*>(mono_string_chars(str)),
                                 static_cast<std::size_t>(mono_string_length(str)), engine.utf8_))
                    return engine.lone_surrogate_ = true, false;
                p = reinterpret_cast<const std::uint8_t*>(engine.utf8_.data());
                len = engine.utf8_.size();
                return true;
            }
            auto* array = reinterpret_cast<MonoArray*>(static_cast<std::uintptr_t>(v));
            len = mono_array_length(array);
            p = reinterpret_cast<const std::uint8_t*>(mono_array_addr_with_size(array, 1, 0));
            return true;
        }
        bool to_pointer(const vm::step&, std::uint64_t v, void*& p) {
            p = reinterpret_cast<void*>(static_cast<std::uintptr_t>(v));
            return true;
        }
        bool is_record(const vm::step&, std::uint64_t v) { return v != 0; }
        bool get_field(const vm::step&, const vm::step& field, std::uint64_t v,
                       std::uint64_t& out) {
            const auto* at = reinterpret_cast<const std::uint8_t*>(static_cast<std::uintptr_t>(v)) +
                             info(field).offset;
            out = 0;
            std::memcpy(&out, at, info(field).reference ? sizeof(void*) : field.size);
            return true;
        }
        bool is_missing(const vm::step&, std::uint64_t) { return false; }  // C# fields exist
        bool missing(const vm::trail& t, const vm::step&, const vm::step&, std::uint64_t) {
            return fail(t, "a missing field");
        }
        bool sequence(const vm::step&, std::uint64_t v, std::size_t& len) {
            if (v == 0) return false;
            len = mono_array_length(reinterpret_cast<MonoArray*>(static_cast<std::uintptr_t>(v)));
            return true;
        }
        bool get_element(std::uint64_t v, std::size_t i, std::uint64_t& out) {
            auto* array = reinterpret_cast<MonoArray*>(static_cast<std::uintptr_t>(v));
            MonoClass* k = mono_object_get_class(reinterpret_cast<MonoObject*>(array));
            if (k != sized_class) {
                sized_class = k;
                sized = static_cast<std::uint32_t>(mono_array_element_size(k));
            }
            out = 0;
            std::memcpy(&out, mono_array_addr_with_size(array, static_cast<int>(sized), i),
                        std::min<std::uint32_t>(sized, 8));
            return true;
        }
        void release(std::uint64_t) noexcept {}
        std::uint8_t* allocate(std::size_t size, std::size_t align) {
            return static_cast<std::uint8_t*>(alloc.allocate(size, align));
        }
        std::uint8_t* keep_bytes(const vm::step&, std::uint64_t, const std::uint8_t* text,
                                 std::size_t& len, bool&) {
            auto* p = allocate(len, 1);
            if (p != nullptr) std::memcpy(p, text, len);
            return p;
        }
        bool refuse(const vm::trail& t, const vm::step& s, std::uint64_t v, vm::misfit why) {
            return engine.fail_expected(t, s, v, why);
        }
    };

    /// The number a C# value of step `s` holds (its bytes zero-extended in `v`).
    static void number_of(const vm::step& s, std::uint64_t v, vm::number& n) {
        using kind = vm::number::kind;
        switch (s.primitive) {
            case primitive_type::f32: {
                float f;
                const auto low = static_cast<std::uint32_t>(v);
                std::memcpy(&f, &low, sizeof f);
                n.tag = kind::real;
                n.d = f;
                return;
            }
            case primitive_type::f64:
                n.tag = kind::real;
                std::memcpy(&n.d, &v, sizeof n.d);
                return;
            case primitive_type::i8:
                n.i = static_cast<std::int8_t>(v);
                break;
            case primitive_type::i16:
                n.i = static_cast<std::int16_t>(v);
                break;
            case primitive_type::i32:
                n.i = static_cast<std::int32_t>(v);
                break;
            case primitive_type::i64:
                n.i = static_cast<std::int64_t>(v);
                break;
            case primitive_type::u8:
                n.i = static_cast<std::uint8_t>(v);
                break;
            case primitive_type::u16:
                n.i = static_cast<std::uint16_t>(v);
                break;
            case primitive_type::u32:
                n.i = static_cast<std::uint32_t>(v);
                break;
            case primitive_type::u64:
                n.tag = kind::unsigned_integer;
                n.u = v;
                return;
            case primitive_type::bool_:
                n.i = static_cast<std::uint8_t>(v);
                break;
        }
        n.tag = kind::integer;
    }

    /// UTF-8 into UTF-16; a byte that starts no valid sequence becomes U+FFFD (as in
    /// JavaScript), so every C string reaches C# and valid text round-trips exactly.
    static void decode_utf8(const std::uint8_t* p, std::size_t len, std::u16string& out) {
        out.reserve(len);
        for (std::size_t i = 0; i < len;) {
            const std::size_t n = detail::utf8_sequence_length(p, len, i);
            if (n == 0) {
                out.push_back(u'\uFFFD');
                ++i;
                continue;
            }
            std::uint32_t cp = n == 1   ? p[i]
                               : n == 2 ? (p[i] & 0x1Fu)
                               : n == 3 ? (p[i] & 0x0Fu)
                                        : (p[i] & 0x07u);
            for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (p[i + k] & 0x3Fu);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
                out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
            } else {
                out.push_back(static_cast<char16_t>(cp));
            }
            i += n;
        }
    }

    /// UTF-16 into UTF-8; false at a lone surrogate (which no UTF-8 string holds).
    static bool encode_utf8(const char16_t* s, std::size_t len, std::string& out) {
        out.reserve(len);
        for (std::size_t i = 0; i < len; ++i) {
            std::uint32_t cp = s[i];
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                if (cp > 0xDBFF || i + 1 >= len || s[i + 1] < 0xDC00 || s[i + 1] > 0xDFFF)
                    return false;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (s[i + 1] - 0xDC00u);
                ++i;
            }
            if (cp < 0x80) {
                out.push_back(static_cast<char>(cp));
            } else if (cp < 0x800) {
                out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
                out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
            } else if (cp < 0x10000) {
                out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
                out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
                out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
            } else {
                out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
                out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
                out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
                out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
            }
        }
        return true;
    }

    // ---- messages ------------------------------------------------------------------------------

    /// "System.InvalidOperationException: parity failure 7 (at test.parity.Kit.fail (System.Int32
    /// code), Kit.cs:9)": the type, the message and the innermost frame of the stack trace, or
    /// `called` (the method the call ran) when the trace has no frame of user code.
    std::string describe_exception(MonoObject* exception, std::string_view called = {}) {
        MonoClass* k = mono_object_get_class(exception);
        std::string text = mono_class_get_namespace(k);
        if (!text.empty()) text += ".";
        text += mono_class_get_name(k);
        MonoClass* base = mono_get_exception_class();
        MonoObject* nested = nullptr;
        if (MonoProperty* message = mono_class_get_property_from_name(base, "Message")) {
            auto* value = reinterpret_cast<MonoString*>(
                mono_property_get_value(message, exception, nullptr, &nested));
            if (nested == nullptr && value != nullptr)
                text += ": " + detail::dotnet::utf8_of(value);
        }
        nested = nullptr;
        if (MonoProperty* trace = mono_class_get_property_from_name(base, "StackTrace")) {
            auto* value = reinterpret_cast<MonoString*>(
                mono_property_get_value(trace, exception, nullptr, &nested));
            if (nested == nullptr && value != nullptr) {
                const std::string frames = detail::dotnet::utf8_of(value);
                if (std::string frame = innermost_frame(frames); !frame.empty())
                    text += " (at " + frame + ")";
                else if (!called.empty())
                    text += " (in " + std::string(called) + ")";
            }
        }
        return text;
    }

    /// "test.parity.Kit.fail (System.Int32 code), Kit.cs:9" from "  at test.parity.Kit.fail
    /// (System.Int32 code) [0x0000b] in /src/Kit.cs:9": the innermost frame of user code, its
    /// file by name when Mono has the symbols; empty when every frame is a wrapper (a method the
    /// JIT inlined into the call's thunk has no frame of its own).
    static std::string innermost_frame(const std::string& frames) {
        std::size_t start = 0;
        while (start < frames.size()) {
            const std::size_t end = std::min(frames.find('\n', start), frames.size());
            std::string line = frames.substr(start, end - start);
            start = end + 1;
            const std::size_t at = line.find("at ");
            if (at == std::string::npos) continue;
            line.erase(0, at + 3);
            if (line.rfind("(wrapper", 0) == 0) continue;
            std::string file;
            if (const std::size_t in = line.find("] in "); in != std::string::npos) {
                file = line.substr(in + 5);
                if (!file.empty() && file[0] == '<') file.clear();  // no symbols: "<guid>:0"
                if (const std::size_t slash = file.rfind('/'); slash != std::string::npos)
                    file.erase(0, slash + 1);
                while (!file.empty() && (file.back() == '\r' || file.back() == ' '))
                    file.pop_back();
            }
            if (const std::size_t offset = line.find(" [0x"); offset != std::string::npos)
                line.erase(offset);
            while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
            return file.empty() ? line : line + ", " + file;
        }
        return {};
    }

    void begin_failure(const vm::trail& t, bool drop_last) {
        constexpr vm::trail_words words{false, 0};  // names quoted, elements from [0]
        failure_.assign(t.contract).append(".").append(t.function).append(": ");
        vm::append_root(failure_, t, words);
        vm::append_places(failure_, t, words, drop_last);
        failure_.append(": ");
    }

    bool fail_text(const vm::trail& t, std::string_view text, bool drop_last) {
        begin_failure(t, drop_last);
        failure_.append(text);
        return false;
    }

    /// "expected StringView (a string), got null", "expected Color (u16), got 7 (not one of its
    /// values)", "expected StringView, got a string with a lone surrogate".
    bool fail_expected(const vm::trail& t, const vm::step& s, std::uint64_t v, vm::misfit why) {
        begin_failure(t, false);
        std::string type(s.type_name);
        if (s.code == vm::op::enumeration)
            type += " (" + std::string(primitive_name(s.primitive)) + ")";
        if (s.code == vm::op::record) type = "struct " + type;
        failure_ += "expected " + type + ", got ";
        if (lone_surrogate_) {
            lone_surrogate_ = false;
            failure_ += "a string with a lone surrogate (not valid UTF-16)";
        } else if (v == 0 && (s.code == vm::op::string_view || s.code == vm::op::buffer ||
                              s.code == vm::op::record || s.code == vm::op::array)) {
            failure_ += "null";
        } else {
            vm::number n;
            number_of(s, v, n);
            if (n.tag == vm::number::kind::unsigned_integer)
                vm::append_unsigned(failure_, n.u);
            else
                failure_ += std::to_string(n.i);
            if (const char* reason = vm::misfit_reason(why))
                failure_ += std::string(" (") + reason + ")";
        }
        return false;
    }

    bool conversion_error(std::string& error) {
        error = std::move(failure_);
        failure_.clear();
        return false;
    }

    const contract_file* api_;
    MonoDomain* root_;
    MonoDomain* domain_ = nullptr;
    MonoImage* image_ = nullptr;
    std::string name_;  // the assembly as messages name it: the manifest's `file`
    std::string path_;
    std::string symbols_;  // the .mdb file's bytes, which Mono reads in place
    std::vector<implementation> impls_;
    vm::instance_table<instance_record> instances_;
    MonoMethod* save_ = nullptr;     // BundleState.save_state
    MonoMethod* restore_ = nullptr;  // BundleState.restore_state
    std::uint32_t schema_ = 0;       // BundleState.state_schema
    std::string failure_;            // the latest conversion's failure, as the call's message
    std::u16string utf16_;           // a pushed string's text (reused: no per-call allocation)
    std::string utf8_;               // a result string's text
    bool lone_surrogate_ = false;    // why the latest to_bytes refused
};

static_assert(vm_engine<dotnet_engine>, "dotnet_engine must satisfy polyplug::vm_engine");

/// The .NET bundle loader: `loader = "dotnet"` in a bundle's manifest.
using dotnet_loader = vm_loader<dotnet_engine>;

POLYPLUG_END_NAMESPACE
