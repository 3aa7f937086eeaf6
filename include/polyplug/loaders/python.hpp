// SPDX-License-Identifier: MIT
/// @file python.hpp
/// The Python loader: `python_engine`, one CPython 3.11 sub-interpreter per loaded bundle version,
/// and `python_loader = vm_loader<python_engine>` (docs/VM_BUNDLES.md).
///
/// @code
/// polyplug::basic_runtime<polyplug::native_loader, polyplug::python_loader> rt;
/// rt.load_bundle("plugins/calc-py");  // manifest.toml: loader = "python", file = "calc.py"
/// @endcode
///
/// The process has one CPython runtime. The first engine initialises the main interpreter
/// (isolated configuration: no environment variables, no site-packages, no signal handlers, no
/// bytecode written next to bundles) and releases its GIL; a host that embedded Python itself
/// first keeps its interpreter (it must not hold the GIL while calling into bundles). Each
/// engine then runs its bundle in its own sub-interpreter (`Py_NewInterpreter`; in 3.11 every
/// interpreter shares the one GIL), so modules and globals never collide between bundles and a
/// reload starts from a fresh interpreter. The main interpreter is never finalised while an
/// engine may still need it: an atexit handler finalises it at process exit, and only when this
/// copy of the loader initialised it and no engine is alive (otherwise the process exits with
/// the interpreter as it is, which is what every embedding does when it cannot finalise).
///
/// Calls come from any host thread: each engine keeps one thread state per OS thread that
/// entered it (created on first use), and takes the GIL only for the duration of an entry.
/// `polyplug.call` and `polyplug.log` release the GIL while the host runs, so a call into
/// another bundle (or another thread) can take it. Threads the script starts itself must be
/// finished before the bundle is unloaded, and may not use the `polyplug` module.
///
/// Values (docs/VM_BUNDLES.md): integers are `int` (never `bool`; an out-of-range value or a
/// `float` is refused), `f32`/`f64` are `float` (an `int` is accepted), `bool` is `bool` only,
/// `StringView` is `str` (UTF-8, invalid bytes round-trip through `surrogateescape`), `Buffer`
/// is `bytes` (`bytearray` and `memoryview` accepted as results), `Ptr` is an `int` address or
/// `None`, an enum is its `int`, a struct a `dict` (extra keys ignored), `Array<T>` a `list`
/// (`tuple` accepted as a result). Zero-length strings, buffers and arrays are passed as
/// `{NULL, 0}`.
///
/// The `polyplug` module (importable, and a global of the script): `log(level, message)`,
/// `call(contract, function, *args)` and `bundle`. A failing callee raises `polyplug.CallError`
/// (a RuntimeError whose `code` is the callee's AbiErrorCode); arguments that do not fit their
/// type raise TypeError, an unknown contract or function LookupError. The state hand-over's
/// `save_state()` returns str (saved as UTF-8) or bytes; `restore_state(schema, data)` always
/// receives bytes.
#pragma once

// Python.h first: it sets feature macros the standard headers must see.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#include <polyplug/abi.h>
#include <polyplug/call_arena.h>
#include <polyplug/config.hpp>
#include <polyplug/contract_file.hpp>
#include <polyplug/detail/utf8.hpp>
#include <polyplug/loaders/vm.hpp>
#include <polyplug/loaders/vm/instance_table.hpp>
#include <polyplug/loaders/vm/messages.hpp>
#include <polyplug/loaders/vm/script_call.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#if PY_VERSION_HEX < 0x030B0000
#error "polyplug/loaders/python.hpp needs CPython 3.11 or later (python3-embed >= 3.11)"
#endif

// Under AddressSanitizer the interpreter allocates with malloc instead of pymalloc: pymalloc's
// arenas are mmap'ed, so LeakSanitizer would not see the pointers stored in them and would report
// every large object they reference as leaked.
#if defined(__SANITIZE_ADDRESS__)
#define POLYPLUG_PYTHON_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POLYPLUG_PYTHON_MALLOC 1
#endif
#endif

POLYPLUG_BEGIN_NAMESPACE

class python_engine;

namespace detail::python {

/// The process-wide CPython state this copy of the loader manages. Leaked on purpose: the
/// atexit handler and late engine teardowns may run after static destructors.
struct process_state {
    std::mutex mutex;
    bool started = false;    // initialisation was attempted
    bool owned = false;      // this copy initialised the interpreter (and may finalise it)
    bool finalised = false;  // finalised at exit: no engine may open any more
    std::string error;       // why initialisation failed
    std::size_t live = 0;    // engines alive
};

inline process_state& process() {
    static process_state* state = new process_state;
    return *state;
}

/// At exit (or when a loader module holding this copy is dlclose'd): finalises the interpreter
/// when this copy made it and no engine is alive. With an engine alive (a runtime destroyed later
/// by a static destructor, or leaked) the interpreter is left as it is: finalising would pull it
/// from under that engine.
inline void finalise_at_exit() noexcept {
    process_state& p = process();
    const std::lock_guard guard(p.mutex);
    if (!p.owned || p.live != 0 || p.finalised) return;
    PyThreadState* temporary = PyThreadState_New(PyInterpreterState_Main());
    if (temporary == nullptr) return;
    PyEval_RestoreThread(temporary);
    (void)Py_FinalizeEx();  // deletes every thread state, ours included
    p.finalised = true;
}

/// Counts an engine in, initialising the main interpreter the first time.
inline bool acquire_interpreter(std::string& error) {
    process_state& p = process();
    const std::lock_guard guard(p.mutex);
    if (p.finalised) {
        error = "the Python interpreter was finalised at process exit";
        return false;
    }
    if (!p.started) {
        p.started = true;
        if (!Py_IsInitialized()) {
            PyPreConfig pre;
            PyPreConfig_InitIsolatedConfig(&pre);
            pre.utf8_mode = 1;  // paths and streams in UTF-8 whatever the locale
#ifdef POLYPLUG_PYTHON_MALLOC
            pre.allocator = PYMEM_ALLOCATOR_MALLOC;
#endif
            PyStatus status = Py_PreInitialize(&pre);
            PyConfig config;
            PyConfig_InitIsolatedConfig(&config);
            config.install_signal_handlers = 0;  // the host owns SIGINT and friends
            config.site_import = 0;              // the stdlib and the bundle's directory only
            config.write_bytecode = 0;           // no __pycache__ in bundle directories
            config.parse_argv = 0;
            config.buffered_stdio = 0;  // a script's print() shows up at once, in order
            // The host's own executable, so that sys.executable is not whatever `python3` the
            // PATH finds (the prefix still comes from libpython's build, e.g. /usr).
            std::error_code ec;
            const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
            if (!PyStatus_Exception(status) && !ec) {
                status = PyConfig_SetBytesString(&config, &config.program_name, exe.c_str());
            }
            if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
            PyConfig_Clear(&config);
            if (PyStatus_Exception(status)) {
                p.error = std::string("initialising Python failed: ") +
                          (status.err_msg != nullptr ? status.err_msg : "unknown error");
            } else {
                p.owned = true;
                // What `site` would have imported. CPython 3.11 keeps the subclass registry of a
                // static type (types.GenericAlias, subclassed by _collections_abc, which os
                // imports) in the type itself: made by the first sub-interpreter that subclasses
                // it, it leaks (one dict) when another sub-interpreter frees it, which is what a
                // reload does. Made here, the main interpreter owns it for the process's life.
                PyObject* os = PyImport_ImportModule("os");
                if (os == nullptr) PyErr_Clear();
                Py_XDECREF(os);
                (void)PyEval_SaveThread();  // nobody holds the GIL between entries
                std::atexit(&finalise_at_exit);
            }
        }
    }
    if (!p.error.empty()) {
        error = p.error;
        return false;
    }
    ++p.live;
    return true;
}

inline void release_interpreter() noexcept {
    process_state& p = process();
    const std::lock_guard guard(p.mutex);
    --p.live;
}

/// A strong reference, released on destruction (with the GIL held: owners make sure of it).
class ref {
public:
    ref() noexcept = default;
    explicit ref(PyObject* owned) noexcept : p_(owned) {}
    ref(const ref&) = delete;
    ref& operator=(const ref&) = delete;
    ref(ref&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
    ref& operator=(ref&& other) noexcept {
        if (this != &other) reset(std::exchange(other.p_, nullptr));
        return *this;
    }
    ~ref() { Py_XDECREF(p_); }
    void reset(PyObject* owned = nullptr) noexcept { Py_XDECREF(std::exchange(p_, owned)); }
    [[nodiscard]] PyObject* get() const noexcept { return p_; }
    [[nodiscard]] PyObject* release() noexcept { return std::exchange(p_, nullptr); }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    PyObject* p_ = nullptr;
};

/// UTF-8 of a str (surrogate escapes encoded back to their bytes); "" for anything else.
inline std::string utf8_of(PyObject* text) {
    if (text == nullptr || !PyUnicode_Check(text)) return {};
    ref bytes(PyUnicode_AsEncodedString(text, "utf-8", "surrogateescape"));
    if (!bytes) {
        PyErr_Clear();
        bytes.reset(PyUnicode_AsEncodedString(text, "utf-8", "replace"));
        if (!bytes) {
            PyErr_Clear();
            return {};
        }
    }
    return {PyBytes_AS_STRING(bytes.get()),
            static_cast<std::size_t>(PyBytes_GET_SIZE(bytes.get()))};
}

/// "int 300", "str 'abc'": a value for messages, its repr cut at 80 bytes.
inline std::string describe(PyObject* value) {
    std::string text = Py_TYPE(value)->tp_name;
    ref repr(PyObject_Repr(value));
    if (!repr) {
        PyErr_Clear();
        return text;
    }
    std::string shown = utf8_of(repr.get());
    if (shown.size() > 80) shown = shown.substr(0, 77) + "...";
    return text + " " + shown;
}

}  // namespace detail::python

/// A script engine for `vm_loader`: one Python sub-interpreter running one version of one
/// bundle. See the file comment for the interpreter's life and threads, and vm_engine in vm.hpp
/// for the members.
class python_engine {
public:
    static constexpr std::string_view loader_name = "python";
    static constexpr std::uint32_t language = SupportedLanguage_Python;

    python_engine(const python_engine&) = delete;
    python_engine& operator=(const python_engine&) = delete;

    /// A new sub-interpreter that has run `script.script`; nullptr with the script's error.
    static std::unique_ptr<python_engine> open(const vm_script& script, std::string& error) {
        std::string source;
        if (!script.read(source)) {
            error = "cannot read the script " + script.script.string();
            return nullptr;
        }
        std::unique_ptr<python_engine> engine(new python_engine(script));
        if (!detail::python::acquire_interpreter(error)) return nullptr;
        engine->counted_ = true;
        if (!engine->start(source, error)) return nullptr;
        return engine;
    }

    /// Releases every object the engine holds and ends the sub-interpreter.
    ~python_engine() {
        if (interp_ != nullptr) {
            PyThreadState* temporary = PyThreadState_New(PyInterpreterState_Main());
            PyEval_RestoreThread(temporary);
            (void)PyThreadState_Swap(main_thread_);
            instances_.clear();
            targets_.clear();
            impls_.clear();
            struct_fields_.clear();
            contracts_.reset();
            globals_.reset();
            call_error_.reset();
            if (module_) {
                // A finaliser running during the teardown finds no engine behind the module.
                *static_cast<python_engine**>(PyModule_GetState(module_.get())) = nullptr;
                module_.reset();
            }
            PyErr_Clear();
            for (const thread_slot& slot : threads_) {
                if (slot.state == main_thread_) continue;
                PyThreadState_Clear(slot.state);
                PyThreadState_Delete(slot.state);
            }
            Py_EndInterpreter(main_thread_);
            (void)PyThreadState_Swap(temporary);
            PyThreadState_Clear(temporary);
            PyThreadState_DeleteCurrent();  // and the GIL with it
        }
        if (counted_) detail::python::release_interpreter();
    }

    /// Finds `contracts[decl.name]`, checks it is a class with every function of the contract,
    /// keeps the functions' names interned and compiles the contract's marshalling plan.
    bool bind(const contract_decl& decl, std::uint32_t& impl, std::string& error) {
        const entry in(*this);
        detail::python::ref key(PyUnicode_FromStringAndSize(
            decl.name.data(), static_cast<Py_ssize_t>(decl.name.size())));
        if (!key) return fail_with_exception(error);
        detail::python::ref cls(PyObject_GetItem(contracts_.get(), key.get()));
        if (!cls) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) return fail_with_exception(error);
            PyErr_Clear();
            error = name_ + ": contracts has no entry '" + decl.name + "'";
            return false;
        }
        if (!PyCallable_Check(cls.get())) {
            error = name_ + ": contracts['" + decl.name + "'] must be a class, got " +
                    detail::python::describe(cls.get());
            return false;
        }
        implementation im;
        im.decl = &decl;
        std::vector<std::size_t> missing;
        for (const function_decl& fn : decl.functions) {
            detail::python::ref name(PyUnicode_InternFromString(fn.name.c_str()));
            if (!name) return fail_with_exception(error);
            detail::python::ref attr(PyObject_GetAttr(cls.get(), name.get()));
            if (!attr || !PyCallable_Check(attr.get())) {
                PyErr_Clear();
                missing.push_back(fn.id);
            }
            im.names.push_back(std::move(name));
        }
        if (!missing.empty()) {
            error =
                name_ + ": contracts['" + decl.name + "'] " + vm::lacking_functions(decl, missing);
            return false;
        }
        im.cls = std::move(cls);
        im.plan = vm::compile(*api_, decl);  // once per version: calls only run it
        for (const vm::function_plan& f : im.plan.functions) {
            std::uint32_t slots = 2 + f.params;  // see `call`
            for (std::uint32_t p = 0; p < f.params; ++p)
                slots = std::max(slots, 3 + p + nesting(im.plan, im.plan.at(f.first_param + p)));
            if (argv_.size() < slots) argv_.resize(slots);
        }
        impl = static_cast<std::uint32_t>(impls_.size());
        impls_.push_back(std::move(im));
        return true;
    }

    /// `Impl()`, and each of the contract's functions taken from the new object once, so that a
    /// call looks nothing up; the engine keeps them until destroy_instance or teardown.
    void* create_instance(std::uint32_t impl, std::string& error) {
        const entry in(*this);
        const implementation& im = impls_.at(impl);
        auto record = std::make_unique<instance_record>();
        record->impl = impl;
        record->object.reset(PyObject_CallNoArgs(im.cls.get()));
        if (!record->object) {
            fail_with_exception(error);
            return nullptr;
        }
        record->methods.resize(im.names.size());
        for (std::size_t i = 0; i < im.names.size(); ++i) {
            detail::python::ref attr(PyObject_GetAttr(record->object.get(), im.names[i].get()));
            if (!attr || !PyCallable_Check(attr.get())) {
                PyErr_Clear();
                error = name_ + ": the instance of contracts['" + im.decl->name +
                        "'] has no function '" + im.decl->functions[i].name + "'";
                return nullptr;
            }
            // A bound method is split into its function and `self`: the call then puts `self`
            // in the argument vector's spare slot instead of making a bound method per call.
            method& m = record->methods[i];
            if (PyMethod_Check(attr.get())) {
                m.function.reset(Py_NewRef(PyMethod_GET_FUNCTION(attr.get())));
                m.self.reset(Py_NewRef(PyMethod_GET_SELF(attr.get())));
            } else {
                m.function = std::move(attr);
            }
        }
        return instances_.add(std::move(record));
    }

    void destroy_instance(std::uint32_t, void* instance) noexcept {
        if (instances_.find(instance) == nullptr) return;  // not ours (any more)
        try {
            const entry in(*this);
            instances_.erase(instance);
        } catch (...) {  // no thread state for this thread: the teardown releases it
        }
    }

    /// Calls `fn` on `instance` by its plan: the parameters from the C struct at `args` into
    /// Python values, the function through vectorcall, its result back into C memory at `out`.
    bool call(std::uint32_t impl, void* instance, const function_decl& fn, const void* args,
              void* out, const result_allocator& alloc, std::string& error) {
        // Looked up rather than trusted: an instance of the version before a reload (or a
        // destroyed one) would be a dangling object of another interpreter.
        const instance_record* target = instances_.find(instance);
        const implementation& im = impls_[impl];
        if (target == nullptr || target->impl != impl || fn.id >= target->methods.size())
            [[unlikely]] {
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
        // argv_: slot 0 stays free so that vectorcall may use it (PY_VECTORCALL_ARGUMENTS_
        // OFFSET), slot 1 is `self`, the parameters follow, and above them the values of a
        // struct or a list being built. Sized at bind; a call never nests inside another.
        PyObject** argv = argv_.data();
        vm::trail where;
        where.contract = im.decl->name.c_str();
        where.function = fn.name.c_str();
        const entry in(*this);
        codec c{*this, alloc, argv, 2, &where};
        if (!vm::push_params(c, im.plan, f, static_cast<const std::uint8_t*>(args), where))
            [[unlikely]] {
            c.drop();
            return conversion_error(error);
        }
        const method& m = target->methods[fn.id];
        PyObject* result = nullptr;
        if (m.self) {
            argv[1] = m.self.get();
            result = PyObject_Vectorcall(m.function.get(), argv + 1,
                                         (f.params + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
        } else {
            result = PyObject_Vectorcall(m.function.get(), argv + 2,
                                         f.params | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
        }
        c.drop();
        const detail::python::ref value(result);
        if (!value) [[unlikely]]
            return fail_with_exception(error);
        if (f.has_result && !vm::pull_result(c, im.plan, f, value.get(),
                                             static_cast<std::uint8_t*>(out), where)) [[unlikely]]
            return conversion_error(error);
        return true;
    }

    /// True when the script defines `state_schema` (an int) and `save_state`/`restore_state`.
    bool state_schema(std::uint32_t& schema) {
        const entry in(*this);
        PyObject* value = PyDict_GetItemString(globals_.get(), "state_schema");  // borrowed
        PyObject* save = PyDict_GetItemString(globals_.get(), "save_state");
        PyObject* restore = PyDict_GetItemString(globals_.get(), "restore_state");
        if (value == nullptr || save == nullptr || restore == nullptr) return false;
        if (!PyLong_Check(value) || PyBool_Check(value) || !PyCallable_Check(save) ||
            !PyCallable_Check(restore))
            return false;
        const unsigned long long number = PyLong_AsUnsignedLongLong(value);
        if (PyErr_Occurred() != nullptr || number > std::numeric_limits<std::uint32_t>::max()) {
            PyErr_Clear();
            return false;
        }
        schema = static_cast<std::uint32_t>(number);
        return true;
    }

    /// `save_state()`: a str (as UTF-8) or bytes-like.
    bool save_state(std::string& bytes, std::string& error) {
        const entry in(*this);
        PyObject* save = PyDict_GetItemString(globals_.get(), "save_state");
        if (save == nullptr) {
            error = name_ + ": save_state is gone";
            return false;
        }
        detail::python::ref saved(PyObject_CallNoArgs(save));
        if (!saved) return fail_with_exception(error);
        if (PyUnicode_Check(saved.get())) {
            bytes = detail::python::utf8_of(saved.get());
            return true;
        }
        Py_buffer view;
        if (!(PyBytes_Check(saved.get()) || PyByteArray_Check(saved.get()) ||
              PyMemoryView_Check(saved.get())) ||
            PyObject_GetBuffer(saved.get(), &view, PyBUF_CONTIG_RO) != 0) {
            PyErr_Clear();
            error = name_ + ": save_state must return str or bytes, got " +
                    detail::python::describe(saved.get());
            return false;
        }
        bytes.assign(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len));
        PyBuffer_Release(&view);
        return true;
    }

    /// `restore_state(schema, data)` with the old version's schema and its bytes.
    bool restore_state(std::uint32_t schema, std::string_view bytes, std::string& error) {
        const entry in(*this);
        PyObject* restore = PyDict_GetItemString(globals_.get(), "restore_state");
        if (restore == nullptr) {
            error = name_ + ": restore_state is gone";
            return false;
        }
        detail::python::ref number(PyLong_FromUnsignedLong(schema));
        detail::python::ref data(
            PyBytes_FromStringAndSize(bytes.data(), static_cast<Py_ssize_t>(bytes.size())));
        if (!number || !data) return fail_with_exception(error);
        detail::python::ref done(
            PyObject_CallFunctionObjArgs(restore, number.get(), data.get(), nullptr));
        if (!done) return fail_with_exception(error);
        return true;
    }

private:
    /// One implemented contract: its class, its functions' names (by function id) and its plan.
    struct implementation {
        const contract_decl* decl = nullptr;
        detail::python::ref cls;
        std::vector<detail::python::ref> names;
        vm::contract_plan plan;  // compiled at bind
    };

    /// A function of an instance: a bound method as its function and `self` (or any other
    /// callable, with no `self`).
    struct method {
        detail::python::ref function;
        detail::python::ref self;
    };

    /// What create_instance returns: the object and its functions, by function id.
    struct instance_record {
        std::uint32_t impl = 0;
        detail::python::ref object;
        std::vector<method> methods;
    };

    struct thread_slot {
        std::thread::id thread;
        PyThreadState* state;
    };

    /// Holds the GIL in this engine's interpreter for one entry from the host.
    class entry {
    public:
        explicit entry(python_engine& engine) : engine_(engine) {
            engine.enter();
            engine.inside_ = std::this_thread::get_id();
        }
        ~entry() {
            engine_.inside_ = std::thread::id();
            (void)PyEval_SaveThread();
        }
        entry(const entry&) = delete;
        entry& operator=(const entry&) = delete;

    private:
        python_engine& engine_;
    };

    explicit python_engine(const vm_script& script)
        : services_(script.services),
          api_(script.api),
          name_(script.shown_name()),
          dir_(script.bundle != nullptr ? script.bundle->dir.string()
                                        : script.script.parent_path().string()),
          bundle_name_(script.bundle != nullptr ? script.bundle->name : std::string()),
          path_(script.script.string()) {}

    /// Takes the GIL with this thread's thread state of the sub-interpreter, making one the first
    /// time a thread enters. A new thread state is made while a temporary main-interpreter one
    /// occupies the thread's PyGILState slot, so ours never lands there: the teardown may delete
    /// it from another thread, which would leave that slot dangling.
    void enter() {
        const std::thread::id self = std::this_thread::get_id();
        if (last_ < threads_.size() && threads_[last_].thread == self) {
            PyEval_RestoreThread(threads_[last_].state);
            return;
        }
        for (std::size_t i = 0; i < threads_.size(); ++i) {
            if (threads_[i].thread == self) {
                last_ = i;
                PyEval_RestoreThread(threads_[i].state);
                return;
            }
        }
        threads_.reserve(threads_.size() + 1);
        PyThreadState* temporary = PyThreadState_New(PyInterpreterState_Main());
        if (temporary == nullptr) throw std::bad_alloc();
        PyEval_RestoreThread(temporary);
        PyThreadState* state = PyThreadState_New(interp_);
        PyThreadState_Clear(temporary);
        if (state == nullptr) {
            PyThreadState_DeleteCurrent();
            throw std::bad_alloc();
        }
        (void)PyThreadState_Swap(state);
        PyThreadState_Delete(temporary);
        threads_.push_back({self, state});
        last_ = threads_.size() - 1;
    }

    /// Makes the sub-interpreter, installs `polyplug`, runs the script, reads `contracts`.
    bool start(const std::string& source, std::string& error) {
        PyThreadState* temporary = PyThreadState_New(PyInterpreterState_Main());
        if (temporary == nullptr) {
            error = "out of memory creating a Python thread state";
            return false;
        }
        PyEval_RestoreThread(temporary);
        // Fails only by ending the process (3.11 calls Py_ExitStatusException).
        main_thread_ = Py_NewInterpreter();
        interp_ = PyThreadState_GetInterpreter(main_thread_);
        threads_.push_back({std::this_thread::get_id(), main_thread_});
        inside_ = std::this_thread::get_id();
        const bool ok = setup(source, error);
        inside_ = std::thread::id();
        (void)PyThreadState_Swap(temporary);
        PyThreadState_Clear(temporary);
        PyThreadState_DeleteCurrent();
        return ok;
    }

    bool setup(const std::string& source, std::string& error) {
        namespace py = detail::python;
        // sys.path[0]: the bundle's directory, for its own helper modules.
        PyObject* path = PySys_GetObject("path");  // borrowed
        py::ref dir(
            PyUnicode_DecodeFSDefaultAndSize(dir_.data(), static_cast<Py_ssize_t>(dir_.size())));
        if (path == nullptr || !dir || PyList_Insert(path, 0, dir.get()) != 0)
            return fail_with_exception(error);

        // The polyplug module, importable and a global of the script.
        module_.reset(PyModule_Create(&module_definition()));
        if (!module_) return fail_with_exception(error);
        *static_cast<python_engine**>(PyModule_GetState(module_.get())) = this;
        call_error_.reset(PyErr_NewExceptionWithDoc(
            "polyplug.CallError",
            "A call through polyplug.call failed; `code` is the callee's AbiErrorCode.",
            PyExc_RuntimeError, nullptr));
        py::ref bundle(PyUnicode_FromStringAndSize(bundle_name_.data(),
                                                   static_cast<Py_ssize_t>(bundle_name_.size())));
        if (!call_error_ || !bundle ||
            PyModule_AddObjectRef(module_.get(), "CallError", call_error_.get()) != 0 ||
            PyModule_AddObjectRef(module_.get(), "bundle", bundle.get()) != 0 ||
            PyDict_SetItemString(PyImport_GetModuleDict(), "polyplug", module_.get()) != 0)
            return fail_with_exception(error);

        // The script runs in the interpreter's own __main__, with its path as __file__.
        PyObject* main = PyImport_AddModule("__main__");  // borrowed
        if (main == nullptr) return fail_with_exception(error);
        globals_.reset(Py_NewRef(PyModule_GetDict(main)));
        py::ref file(
            PyUnicode_DecodeFSDefaultAndSize(path_.data(), static_cast<Py_ssize_t>(path_.size())));
        py::ref shown(
            PyUnicode_DecodeFSDefaultAndSize(name_.data(), static_cast<Py_ssize_t>(name_.size())));
        if (!file || !shown || PyDict_SetItemString(globals_.get(), "__file__", file.get()) != 0 ||
            PyDict_SetItemString(globals_.get(), "polyplug", module_.get()) != 0)
            return fail_with_exception(error);
        py::ref code(
            Py_CompileStringObject(source.c_str(), shown.get(), Py_file_input, nullptr, -1));
        if (!code) return fail_with_exception(error);
        py::ref done(PyEval_EvalCode(code.get(), globals_.get(), globals_.get()));
        if (!done) return fail_with_exception(error);

        PyObject* contracts = PyDict_GetItemString(globals_.get(), "contracts");  // borrowed
        if (contracts == nullptr) {
            error = name_ + ": the script defines no global 'contracts'";
            return false;
        }
        if (!PyMapping_Check(contracts)) {
            error = name_ + ": 'contracts' must be a dict, got " + py::describe(contracts);
            return false;
        }
        contracts_.reset(Py_NewRef(contracts));

        // Struct field names as interned keys, for the dicts of every call.
        for (const struct_decl& s : api_->structs) {
            std::vector<py::ref> names;
            for (const field_decl& f : s.layout.fields) {
                names.emplace_back(PyUnicode_InternFromString(f.name.c_str()));
                if (!names.back()) return fail_with_exception(error);
            }
            struct_fields_.push_back(std::move(names));
        }
        return true;
    }

    /// The pending exception as "<Type>: <message> (<file>, line <n>, in <function>)", from the
    /// innermost traceback frame; clears it. Always false, for `return fail_with_exception(e)`.
    bool fail_with_exception(std::string& error) {
        namespace py = detail::python;
        PyObject* raw_type = nullptr;
        PyObject* raw_value = nullptr;
        PyObject* raw_tb = nullptr;
        PyErr_Fetch(&raw_type, &raw_value, &raw_tb);
        if (raw_type == nullptr) {
            error = name_ + ": unknown Python error";
            return false;
        }
        PyErr_NormalizeException(&raw_type, &raw_value, &raw_tb);
        const py::ref type(raw_type), value(raw_value), tb(raw_tb);
        std::string type_name = PyType_Check(type.get())
                                    ? reinterpret_cast<PyTypeObject*>(type.get())->tp_name
                                    : "Exception";
        if (const auto dot = type_name.rfind('.'); dot != std::string::npos)
            type_name.erase(0, dot + 1);
        std::string text;
        if (value) {
            py::ref str(PyObject_Str(value.get()));
            if (str) text = py::utf8_of(str.get());
        }
        PyErr_Clear();
        error = text.empty() ? type_name : type_name + ": " + text;
        // A syntax error's text already carries its file and line.
        if (!tb || PyErr_GivenExceptionMatches(type.get(), PyExc_SyntaxError)) return false;
        auto* innermost = reinterpret_cast<PyTracebackObject*>(tb.get());
        while (innermost->tb_next != nullptr) innermost = innermost->tb_next;
        const py::ref code(reinterpret_cast<PyObject*>(PyFrame_GetCode(innermost->tb_frame)));
        const py::ref line(
            PyObject_GetAttrString(reinterpret_cast<PyObject*>(innermost), "tb_lineno"));
        if (!code || !line) {
            PyErr_Clear();
            return false;
        }
        const auto* co = reinterpret_cast<PyCodeObject*>(code.get());
        std::string file = py::utf8_of(co->co_filename);
        if (file.size() > dir_.size() + 1 && file.compare(0, dir_.size(), dir_) == 0 &&
            file[dir_.size()] == '/')
            file.erase(0, dir_.size() + 1);
        const long number = PyLong_AsLong(line.get());
        PyErr_Clear();
        error += " (" + file + ", line " + std::to_string(number) + ", in " +
                 py::utf8_of(co->co_name) + ")";
        return false;
    }

    // ---- values through the plan ---------------------------------------------------------------

    /// How the plan executor reads and makes Python values (vm::vm_codec). Values read are
    /// borrowed; values made are new references on `stack` (the argument vector of a call, or
    /// polyplug.call's result) until the dict or list being built above them takes them. A
    /// refusal or a Python error is written into the engine's failure_ and returned as false.
    struct codec {
        using value = PyObject*;

        python_engine& engine;
        const result_allocator& alloc;
        PyObject** stack;
        std::size_t top;  // starts at the first slot of this codec's values
        const vm::trail* where;
        std::size_t bottom = top;
        detail::python::ref scratch{};  // a str's bytes re-encoded with surrogateescape

        ~codec() { drop(); }

        /// Releases every value still on the stack.
        void drop() noexcept {
            while (top > bottom) Py_DECREF(stack[--top]);
        }

        bool put(PyObject* made) {
            if (made == nullptr) [[unlikely]]
                return engine.fail_python(*where);
            stack[top++] = made;
            return true;
        }
        bool push_integer(const vm::step&, std::int64_t v) { return put(PyLong_FromLongLong(v)); }
        bool push_unsigned(const vm::step&, const vm::trail&, std::uint64_t v) {
            return put(PyLong_FromUnsignedLongLong(v));
        }
        bool push_real(double v) { return put(PyFloat_FromDouble(v)); }
        bool push_boolean(bool v) { return put(Py_NewRef(v ? Py_True : Py_False)); }
        bool push_bytes(const vm::step& s, const std::uint8_t* p, std::size_t len) {
            const auto* text = reinterpret_cast<const char*>(p);
            const auto size = static_cast<Py_ssize_t>(len);
            // Invalid UTF-8 round-trips: each bad byte becomes a lone surrogate and back.
            return put(s.code == vm::op::string_view
                           ? PyUnicode_DecodeUTF8(text, size, "surrogateescape")
                           : PyBytes_FromStringAndSize(text, size));
        }
        bool push_pointer(void* p) {
            return put(p == nullptr ? Py_NewRef(Py_None) : PyLong_FromVoidPtr(p));
        }
        bool begin_record(const vm::step&) { return put(PyDict_New()); }
        bool end_field(const vm::step& record, const vm::step& field) {
            PyObject* v = stack[--top];
            const int rc = PyDict_SetItem(
                stack[top - 1], engine.struct_fields_[record.index][field.field].get(), v);
            Py_DECREF(v);
            return rc == 0 || engine.fail_python(*where);
        }
        bool begin_array(const vm::step&, const vm::trail& t, std::size_t len) {
            if (len > static_cast<std::size_t>(PY_SSIZE_T_MAX))
                return fail(t, "an array too long for Python");
            return put(PyList_New(static_cast<Py_ssize_t>(len)));
        }
        bool end_element(std::size_t i) {
            PyObject* item = stack[--top];
            PyList_SET_ITEM(stack[top - 1], static_cast<Py_ssize_t>(i), item);  // takes it
            return true;
        }
        bool fail(const vm::trail& t, std::string_view text) {
            return engine.fail_text(t, text, false);
        }

        /// Integers are int (never bool); f32 and f64 take a float or an int.
        bool to_number(const vm::step& s, PyObject* v, vm::number& n) {
            using kind = vm::number::kind;
            const bool real = s.code == vm::op::real;
            if (PyFloat_Check(v)) {
                n.tag = kind::real;
                n.d = PyFloat_AS_DOUBLE(v);
                return real;
            }
            if (!PyLong_Check(v) || PyBool_Check(v)) return false;
            if (real) {
                n.tag = kind::real;
                n.d = PyLong_AsDouble(v);
                if (n.d != -1.0 || PyErr_Occurred() == nullptr) return true;
                PyErr_Clear();
                return false;  // beyond a double: refuse says "out of range"
            }
            int overflow = 0;
            n.i = PyLong_AsLongLongAndOverflow(v, &overflow);
            n.tag = overflow == 0 ? kind::integer : kind::huge;  // huge: out of range
            if (overflow > 0) {
                n.u = PyLong_AsUnsignedLongLong(v);
                if (PyErr_Occurred() == nullptr) n.tag = kind::unsigned_integer;
                PyErr_Clear();
            }
            return true;
        }
        bool to_boolean(const vm::step&, PyObject* v, bool& b) {
            if (!PyBool_Check(v)) return false;
            b = v == Py_True;
            return true;
        }
        /// A str's UTF-8 (lone surrogates: the bytes surrogateescape stands for); bytes,
        /// bytearray or a C-contiguous memoryview for a Buffer. No Python code runs before the
        /// executor copies the bytes, so they stay where they are.
        bool to_bytes(const vm::step& s, PyObject* v, const std::uint8_t*& p, std::size_t& len) {
            const char* text = nullptr;
            Py_ssize_t size = 0;
            if (s.code == vm::op::string_view) {
                if (!PyUnicode_Check(v)) return false;
                text = PyUnicode_AsUTF8AndSize(v, &size);
                if (text == nullptr) {
                    PyErr_Clear();
                    scratch.reset(PyUnicode_AsEncodedString(v, "utf-8", "surrogateescape"));
                    if (!scratch) return false;  // refuse reports the exception
                    text = PyBytes_AS_STRING(scratch.get());
                    size = PyBytes_GET_SIZE(scratch.get());
                }
            } else {
                if (!PyBytes_Check(v) && !PyByteArray_Check(v) && !PyMemoryView_Check(v))
                    return false;
                Py_buffer view;  // only checks (C-contiguous): the object keeps its bytes
                if (PyObject_GetBuffer(v, &view, PyBUF_CONTIG_RO) != 0) return false;
                text = static_cast<const char*>(view.buf);
                size = view.len;
                PyBuffer_Release(&view);
            }
            p = reinterpret_cast<const std::uint8_t*>(text);
            len = static_cast<std::size_t>(size);
            return true;
        }
        bool to_pointer(const vm::step&, PyObject* v, void*& p) {
            p = nullptr;
            if (v == Py_None) return true;
            if (!PyLong_Check(v) || PyBool_Check(v)) return false;
            const unsigned long long address = PyLong_AsUnsignedLongLong(v);
            if ((address == ~0ULL && PyErr_Occurred() != nullptr) ||
                address > std::numeric_limits<std::uintptr_t>::max()) {
                PyErr_Clear();
                return false;  // refuse says "not an address"
            }
            p = reinterpret_cast<void*>(static_cast<std::uintptr_t>(address));
            return true;
        }
        bool is_record(const vm::step&, PyObject* v) { return PyDict_Check(v); }
        bool get_field(const vm::step& record, const vm::step& field, PyObject* v, PyObject*& out) {
            out = PyDict_GetItemWithError(
                v, engine.struct_fields_[record.index][field.field].get());  // borrowed
            return out != nullptr || PyErr_Occurred() == nullptr || engine.fail_python(*where);
        }
        bool is_missing(const vm::step&, PyObject* v) { return v == nullptr; }
        bool missing(const vm::trail& t, const vm::step& record, const vm::step& field, PyObject*) {
            return engine.fail_text(t,
                                    "expected struct " + std::string(record.type_name) +
                                        ", got a dict without field '" + field.name + "'",
                                    true);
        }
        bool sequence(const vm::step&, PyObject* v, std::size_t& len) {
            if (!PyList_Check(v) && !PyTuple_Check(v)) return false;
            len = static_cast<std::size_t>(Py_SIZE(v));
            return true;
        }
        bool get_element(PyObject* v, std::size_t i, PyObject*& out) {
            // Borrowed. The length is read again: a dict key's __eq__, run by a lookup of an
            // element's field, may have shortened the list.
            const auto at = static_cast<Py_ssize_t>(i);
            out = at < Py_SIZE(v) ? PySequence_Fast_GET_ITEM(v, at) : nullptr;
            return out != nullptr || fail(*where, "a list that changed while it was read");
        }
        void release(PyObject*) noexcept {}
        std::uint8_t* allocate(std::size_t size, std::size_t align) {
            return static_cast<std::uint8_t*>(alloc.allocate(size, align));
        }
        std::uint8_t* keep_bytes(const vm::step&, PyObject*, const std::uint8_t* text,
                                 std::size_t& len, bool&) {
            auto* p = allocate(len, 1);
            if (p != nullptr) std::memcpy(p, text, len);
            return p;
        }
        bool refuse(const vm::trail& t, const vm::step& s, PyObject* v, vm::misfit why) {
            if (PyErr_Occurred() != nullptr) return engine.fail_python(t);
            return engine.fail_expected(t, s, v, why);
        }
    };

    /// How many values above its parameters a call holds at most: one per dict or list being
    /// built around the deepest value.
    static std::uint32_t nesting(const vm::contract_plan& plan, const vm::step& s) {
        if (s.code == vm::op::array) return 1 + nesting(plan, plan.at(s.first));
        if (s.code != vm::op::record) return 0;
        std::uint32_t deepest = 0;
        for (std::uint32_t f = 0; f < s.count; ++f)
            deepest = std::max(deepest, nesting(plan, plan.at(s.first + f)));
        return 1 + deepest;
    }

    /// "test.py.Kitchen.int_as: result.points[1]: " for a failure at `t` (without its last
    /// place when the failure is the place's parent's).
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

    /// The pending exception as the failure at `t`.
    bool fail_python(const vm::trail& t) {
        std::string text;
        fail_with_exception(text);
        return fail_text(t, text, false);
    }

    /// "expected u8, got int 300 (out of range 0 to 255)", "expected struct Point (a dict),
    /// got str 'x'".
    bool fail_expected(const vm::trail& t, const vm::step& s, PyObject* v, vm::misfit why) {
        // What each kind of value must be, by vm::op.
        // clang-format off
        static constexpr std::string_view wanted[] = {
            " (an int)", " (an int)", " (a float)", "", " (a str)",
            " (bytes, bytearray or memoryview)", " (an int address or None)", " (a dict)",
            " (a list)", ""};
        // clang-format on
        std::string type(s.type_name), because;
        if (s.code == vm::op::enumeration)
            type += " (" + std::string(primitive_name(s.primitive)) + ")";
        if (s.code == vm::op::record) type = "struct " + type;
        const bool is_int = PyLong_Check(v) && !PyBool_Check(v);
        if (why == vm::misfit::out_of_range && s.code != vm::op::real) {
            because = "out of range ";
            vm::append_integer_range(because, s.primitive);
        } else if (why != vm::misfit::wrong_type) {
            because = vm::misfit_reason(why);
        } else if (is_int && (s.code == vm::op::real || s.code == vm::op::pointer)) {
            because = s.code == vm::op::real ? "out of range" : "not an address";
        } else {
            type += wanted[static_cast<int>(s.code)];
        }
        begin_failure(t, false);
        failure_ += "expected " + type + ", got " + detail::python::describe(v);
        if (!because.empty()) failure_ += " (" + because + ")";
        return false;
    }

    /// The failure of the latest conversion as the call's error.
    bool conversion_error(std::string& error) {
        error = std::move(failure_);
        failure_.clear();
        return false;
    }

    // ---- the polyplug module -------------------------------------------------------------------

    static PyModuleDef& module_definition() {
        static PyMethodDef methods[] = {
            {"log", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&module_log)),
             METH_FASTCALL,
             "log(level, message): a record through the runtime's logger (1 error ... 5 trace)"},
            {"call", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&module_call)),
             METH_FASTCALL,
             "call(contract, function, *args): calls a host contract or another bundle's guest "
             "contract that the bundle's contract file declares"},
            {nullptr, nullptr, 0, nullptr}};
        static PyModuleDef definition = [] {
            PyModuleDef d{};
            d.m_base = PyModuleDef_HEAD_INIT;
            d.m_name = "polyplug";
            d.m_doc = "The runtime, as seen by a Python bundle (docs/VM_BUNDLES.md).";
            d.m_size = sizeof(python_engine*);
            d.m_methods = methods;
            return d;
        }();
        return definition;
    }

    /// The engine behind the module, when called on the thread that is inside it.
    static python_engine* engine_of(PyObject* module) {
        auto* engine = *static_cast<python_engine**>(PyModule_GetState(module));
        if (engine == nullptr) {
            PyErr_SetString(PyExc_RuntimeError, "the bundle is being unloaded");
            return nullptr;
        }
        if (engine->inside_ != std::this_thread::get_id()) {
            PyErr_SetString(PyExc_RuntimeError,
                            "the polyplug module is only available on the thread that called "
                            "into the bundle");
            return nullptr;
        }
        return engine;
    }

    static PyObject* module_log(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
        python_engine* engine = engine_of(module);
        if (engine == nullptr) return nullptr;
        if (nargs != 2 || !PyLong_Check(args[0]) || !PyUnicode_Check(args[1])) {
            PyErr_SetString(PyExc_TypeError, "polyplug.log(level, message): an int and a str");
            return nullptr;
        }
        const long level = PyLong_AsLong(args[0]);
        if (level == -1 && PyErr_Occurred() != nullptr) return nullptr;
        try {
            const std::string message = detail::python::utf8_of(args[1]);
            PyThreadState* state = PyEval_SaveThread();  // the log callback is host code
            engine->services_->log(vm_services::log_level(static_cast<double>(level)), message);
            PyEval_RestoreThread(state);
        } catch (const std::bad_alloc&) {
            return PyErr_NoMemory();
        }
        Py_RETURN_NONE;
    }

    static PyObject* module_call(PyObject* module, PyObject* const* args, Py_ssize_t nargs) {
        python_engine* engine = engine_of(module);
        if (engine == nullptr) return nullptr;
        try {
            return engine->call_out(args, static_cast<std::size_t>(nargs));
        } catch (const std::bad_alloc&) {
            return PyErr_NoMemory();
        } catch (const std::exception& e) {
            return PyErr_Format(PyExc_RuntimeError, "polyplug.call: %s", e.what());
        }
    }

    /// polyplug.call: the script's arguments into a C argument struct in a local arena by the
    /// called contract's plan, the call with the GIL released, the result back into a Python
    /// value.
    PyObject* call_out(PyObject* const* args, std::size_t nargs) {
        if (nargs < 2 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1])) {
            PyErr_SetString(PyExc_TypeError,
                            "polyplug.call(contract, function, *args): contract and function "
                            "are str");
            return nullptr;
        }
        const std::string contract_name = detail::python::utf8_of(args[0]);
        const std::string function_name = detail::python::utf8_of(args[1]);
        const vm::contract_plan* target = nullptr;
        const vm::function_plan* called = nullptr;
        std::string error;
        if (!targets_.find(*services_, contract_name, function_name, target, called, error)) {
            PyErr_SetString(PyExc_LookupError, error.c_str());
            return nullptr;
        }
        const vm::contract_plan& plan = *target;
        const vm::function_plan& f = *called;
        const contract_decl* decl = plan.decl;
        const function_decl* fn = f.decl;
        if (nargs - 2 != fn->args.fields.size()) {
            PyErr_Format(PyExc_TypeError, "%s.%s takes %zu arguments (%zu given)",
                         contract_name.c_str(), function_name.c_str(), fn->args.fields.size(),
                         nargs - 2);
            return nullptr;
        }
        vm::call_scratch scratch(services_->host());
        struct teardown {
            vm::call_scratch& scratch;
            ~teardown() { scratch.free(); }
        } const freed{scratch};
        const result_allocator alloc(scratch.arena(), services_->host());
        std::uint8_t* arg_struct = scratch.zeroed(fn->args.size, fn->args.align);
        if (fn->args.size != 0 && arg_struct == nullptr) return PyErr_NoMemory();
        vm::trail where;
        where.contract = decl->name.c_str();
        where.function = fn->name.c_str();
        const std::uint32_t result_slots = 1 + nesting(plan, plan.at(f.result));
        std::vector<PyObject*> stack(result_slots);
        codec c{*this, alloc, stack.data(), 0, &where};
        const auto argument = [args](std::uint32_t i) { return args[i + 2]; };
        if (!vm::pull_arguments(c, plan, f, argument, arg_struct, where)) {
            PyErr_SetString(PyExc_TypeError, failure_.c_str());
            return nullptr;
        }
        std::uint8_t* out = nullptr;
        if (f.has_result) {
            out = scratch.zeroed(fn->result.size, fn->result.align);
            if (out == nullptr) return PyErr_NoMemory();
        }
        PyThreadState* state = PyEval_SaveThread();
        AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
        std::string message;
        try {
            err = services_->call(*decl, *fn, arg_struct, out, scratch.arena());
            if (err.code != AbiErrorCode_Ok)
                message = detail::copy_plugin_message(err.message.ptr, err.message.len);
        } catch (...) {
            PyEval_RestoreThread(state);
            throw;
        }
        PyEval_RestoreThread(state);
        if (err.code != AbiErrorCode_Ok) {
            if (message.empty())
                message =
                    decl->name + "." + fn->name + " failed (code " + std::to_string(err.code) + ")";
            detail::python::ref text(PyUnicode_DecodeUTF8(
                message.data(), static_cast<Py_ssize_t>(message.size()), "replace"));
            if (!text) return nullptr;
            detail::python::ref exception(PyObject_CallOneArg(call_error_.get(), text.get()));
            detail::python::ref code(PyLong_FromUnsignedLong(err.code));
            if (!exception || !code ||
                PyObject_SetAttrString(exception.get(), "code", code.get()) != 0)
                return nullptr;
            PyErr_SetObject(call_error_.get(), exception.get());
            return nullptr;
        }
        if (!f.has_result) Py_RETURN_NONE;
        if (!vm::push(c, plan, plan.at(f.result), out, where)) {
            c.drop();
            PyErr_SetString(PyExc_ValueError, failure_.c_str());
            return nullptr;
        }
        c.bottom = c.top;  // the result is the caller's now
        return stack[0];
    }

    vm_services* services_;
    const contract_file* api_;
    std::string name_;         // the script as messages name it: the manifest's `file`
    std::string dir_;          // the bundle directory, sys.path[0]
    std::string bundle_name_;  // polyplug.bundle
    std::string path_;         // __file__

    bool counted_ = false;  // counted in by acquire_interpreter
    PyInterpreterState* interp_ = nullptr;
    PyThreadState* main_thread_ = nullptr;  // from Py_NewInterpreter; ends the interpreter
    std::vector<thread_slot> threads_;      // one thread state per OS thread that entered
    std::size_t last_ = 0;                  // the slot of the latest entry, tried first
    std::thread::id inside_;                // the thread inside the interpreter now

    detail::python::ref module_;
    detail::python::ref call_error_;
    detail::python::ref globals_;
    detail::python::ref contracts_;
    std::vector<implementation> impls_;
    std::vector<std::vector<detail::python::ref>> struct_fields_;
    vm::instance_table<instance_record> instances_;
    vm::call_targets targets_;     // polyplug.call
    std::string failure_;          // the latest conversion's failure, as the call's message
    std::vector<PyObject*> argv_;  // a call's argument vector and the values it builds
};

static_assert(vm_engine<python_engine>, "python_engine must satisfy polyplug::vm_engine");

/// The Python bundle loader: `loader = "python"` in a bundle's manifest.
using python_loader = vm_loader<python_engine>;

POLYPLUG_END_NAMESPACE
