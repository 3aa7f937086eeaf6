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

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_set>
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

/// Why a value did not convert, and where inside the value (".field", "[3]"), built from the
/// inside out as the conversion unwinds.
struct conversion_error {
    std::string path;
    std::string what;
};

/// The ABI's `ArrayOf_T`.
struct raw_array {
    const void* items;
    std::size_t len;
};

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
        if (!read_source(script.script, source, error)) return nullptr;
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
            for (PyObject* instance : instances_) Py_DECREF(instance);
            instances_.clear();
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

    /// Finds `contracts[decl.name]`, checks it is a class with every function of the contract
    /// and keeps the functions' names interned for calls.
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
        im.contract = decl.name;
        std::vector<std::string> missing;
        for (const function_decl& fn : decl.functions) {
            detail::python::ref name(PyUnicode_InternFromString(fn.name.c_str()));
            if (!name) return fail_with_exception(error);
            detail::python::ref attr(PyObject_GetAttr(cls.get(), name.get()));
            if (!attr || !PyCallable_Check(attr.get())) {
                PyErr_Clear();
                missing.push_back("'" + fn.name + "'");
            }
            im.names.push_back(std::move(name));
        }
        if (!missing.empty()) {
            error = name_ + ": contracts['" + decl.name + "'] has no function" +
                    (missing.size() > 1 ? "s " : " ");
            for (std::size_t i = 0; i < missing.size(); ++i)
                error += (i == 0 ? "" : ", ") + missing[i];
            return false;
        }
        im.cls = std::move(cls);
        impl = static_cast<std::uint32_t>(impls_.size());
        impls_.push_back(std::move(im));
        return true;
    }

    /// `Impl()`; the engine keeps the object until destroy_instance or teardown.
    void* create_instance(std::uint32_t impl, std::string& error) {
        const entry in(*this);
        detail::python::ref object(PyObject_CallNoArgs(impls_.at(impl).cls.get()));
        if (!object) {
            fail_with_exception(error);
            return nullptr;
        }
        instances_.insert(object.get());
        return object.release();
    }

    void destroy_instance(std::uint32_t, void* instance) noexcept {
        auto* object = static_cast<PyObject*>(instance);
        if (instances_.find(object) == instances_.end()) return;  // not ours (any more)
        try {
            const entry in(*this);
            instances_.erase(object);
            Py_DECREF(object);
        } catch (...) {  // no thread state for this thread: the teardown releases it
        }
    }

    /// Calls `fn` on the instance: C arguments to Python values, the method through
    /// vectorcall, the returned value into `out`.
    bool call(std::uint32_t impl, void* instance, const function_decl& fn, const void* args,
              void* out, const result_allocator& alloc, std::string& error) {
        const implementation& im = impls_[impl];
        // An instance of the version before a reload (or a destroyed one) would be a dangling
        // object of another interpreter: refused, at the cost of one hash lookup.
        if (fn.id >= im.names.size() ||
            instances_.find(static_cast<PyObject*>(instance)) == instances_.end()) {
            error = im.contract + "." + fn.name +
                    ": not an instance of this bundle version (destroyed, or created before a "
                    "reload)";
            return false;
        }
        const entry in(*this);
        const std::size_t count = fn.args.fields.size();
        // Slot 0 stays free so that vectorcall may use it (PY_VECTORCALL_ARGUMENTS_OFFSET),
        // slot 1 is `self`.
        constexpr std::size_t inline_slots = 18;
        PyObject* inline_argv[inline_slots];
        std::unique_ptr<PyObject*[]> heap_argv;
        PyObject** argv = inline_argv;
        if (count + 2 > inline_slots) {
            heap_argv = std::make_unique<PyObject*[]>(count + 2);
            argv = heap_argv.get();
        }
        argv[1] = static_cast<PyObject*>(instance);
        const auto* base = static_cast<const std::uint8_t*>(args);
        for (std::size_t i = 0; i < count; ++i) {
            const field_decl& param = fn.args.fields[i];
            argv[i + 2] = to_py(param.type, base + param.offset);
            if (argv[i + 2] == nullptr) {
                for (std::size_t j = 0; j < i; ++j) Py_DECREF(argv[j + 2]);
                std::string why;
                fail_with_exception(why);
                error = im.contract + "." + fn.name + ": argument '" + param.name + "': " + why;
                return false;
            }
        }
        detail::python::ref result(
            PyObject_VectorcallMethod(im.names[fn.id].get(), argv + 1,
                                      (count + 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
        for (std::size_t i = 0; i < count; ++i) Py_DECREF(argv[i + 2]);
        if (!result) return fail_with_exception(error);
        if (fn.result.is_void()) return true;
        detail::python::conversion_error why;
        if (!to_c(fn.result, result.get(), static_cast<std::uint8_t*>(out), alloc, why)) {
            error = im.contract + "." + fn.name + ": result" + why.path + ": " + why.what;
            return false;
        }
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
    /// One implemented contract: its class and its functions' names, by function id.
    struct implementation {
        std::string contract;
        detail::python::ref cls;
        std::vector<detail::python::ref> names;
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
          name_(script.bundle != nullptr && !script.bundle->file.empty()
                    ? script.bundle->file
                    : script.script.filename().string()),
          dir_(script.bundle != nullptr ? script.bundle->dir.string()
                                        : script.script.parent_path().string()),
          bundle_name_(script.bundle != nullptr ? script.bundle->name : std::string()),
          path_(script.script.string()) {}

    static bool read_source(const std::filesystem::path& path, std::string& source,
                            std::string& error) {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            error = "cannot read the script " + path.string();
            return false;
        }
        std::ostringstream text;
        text << in.rdbuf();
        source = std::move(text).str();
        return true;
    }

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

    // ---- C to Python ---------------------------------------------------------------------------

    /// A new reference to the Python value of the C value at `src`; nullptr with an exception.
    PyObject* to_py(const type_ref& type, const std::uint8_t* src) {
        if (type.kind != type_kind::array) return plain_to_py(type, src);
        detail::python::raw_array array;
        std::memcpy(&array, src, sizeof array);
        if (array.len != 0 && array.items == nullptr)
            return PyErr_Format(PyExc_ValueError, "an array of %zu items at NULL", array.len);
        detail::python::ref list(PyList_New(static_cast<Py_ssize_t>(array.len)));
        if (!list) return nullptr;
        const auto* items = static_cast<const std::uint8_t*>(array.items);
        for (std::size_t i = 0; i < array.len; ++i) {
            PyObject* item = plain_to_py(type.element, items + i * type.element.size);
            if (item == nullptr) return nullptr;
            PyList_SET_ITEM(list.get(), static_cast<Py_ssize_t>(i), item);
        }
        return list.release();
    }

    PyObject* plain_to_py(const plain_type& type, const std::uint8_t* src) {
        switch (type.kind) {
            case type_kind::primitive:
            case type_kind::enum_ref:
                return primitive_to_py(type.primitive, src);
            case type_kind::string_view: {
                StringView sv;
                std::memcpy(&sv, src, sizeof sv);
                if (sv.len != 0 && sv.ptr == nullptr)
                    return PyErr_Format(PyExc_ValueError, "a StringView of %zu bytes at NULL",
                                        sv.len);
                return PyUnicode_DecodeUTF8(reinterpret_cast<const char*>(sv.ptr),
                                            static_cast<Py_ssize_t>(sv.len), "surrogateescape");
            }
            case type_kind::buffer: {
                Buffer b;
                std::memcpy(&b, src, sizeof b);
                if (b.len != 0 && b.ptr == nullptr)
                    return PyErr_Format(PyExc_ValueError, "a Buffer of %zu bytes at NULL", b.len);
                return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(b.ptr),
                                                 static_cast<Py_ssize_t>(b.len));
            }
            case type_kind::ptr: {
                void* p = nullptr;
                std::memcpy(&p, src, sizeof p);
                if (p == nullptr) Py_RETURN_NONE;
                return PyLong_FromVoidPtr(p);
            }
            case type_kind::struct_ref: {
                const struct_decl& s = api_->structs[type.index];
                const std::vector<detail::python::ref>& names = struct_fields_[type.index];
                detail::python::ref dict(PyDict_New());
                if (!dict) return nullptr;
                for (std::size_t i = 0; i < s.layout.fields.size(); ++i) {
                    const field_decl& f = s.layout.fields[i];
                    detail::python::ref value(to_py(f.type, src + f.offset));
                    if (!value || PyDict_SetItem(dict.get(), names[i].get(), value.get()) != 0)
                        return nullptr;
                }
                return dict.release();
            }
            case type_kind::void_:
            case type_kind::array:
                break;
        }
        return PyErr_Format(PyExc_TypeError, "a type the Python loader cannot pass");
    }

    static PyObject* primitive_to_py(primitive_type type, const std::uint8_t* src) {
        auto read = [src]<class T>(T) {
            T value;
            std::memcpy(&value, src, sizeof value);
            return value;
        };
        switch (type) {
            case primitive_type::u8:
                return PyLong_FromLong(read(std::uint8_t{}));
            case primitive_type::u16:
                return PyLong_FromLong(read(std::uint16_t{}));
            case primitive_type::u32:
                return PyLong_FromUnsignedLong(read(std::uint32_t{}));
            case primitive_type::u64:
                return PyLong_FromUnsignedLongLong(read(std::uint64_t{}));
            case primitive_type::i8:
                return PyLong_FromLong(read(std::int8_t{}));
            case primitive_type::i16:
                return PyLong_FromLong(read(std::int16_t{}));
            case primitive_type::i32:
                return PyLong_FromLong(read(std::int32_t{}));
            case primitive_type::i64:
                return PyLong_FromLongLong(read(std::int64_t{}));
            case primitive_type::f32:
                return PyFloat_FromDouble(static_cast<double>(read(float{})));
            case primitive_type::f64:
                return PyFloat_FromDouble(read(double{}));
            case primitive_type::bool_:
                return PyBool_FromLong(read(std::uint8_t{}) != 0 ? 1 : 0);
        }
        return PyErr_Format(PyExc_TypeError, "an unknown primitive type");
    }

    // ---- Python to C ---------------------------------------------------------------------------

    /// How a type is named in messages: "u8", "Color (u16)", "Point", "StringView".
    [[nodiscard]] std::string type_name(const plain_type& type) const {
        switch (type.kind) {
            case type_kind::primitive:
                return std::string(primitive_name(type.primitive));
            case type_kind::enum_ref:
                return api_->enums[type.index].name + " (" +
                       std::string(primitive_name(type.primitive)) + ")";
            case type_kind::struct_ref:
                return api_->structs[type.index].name;
            case type_kind::string_view:
                return "StringView";
            case type_kind::buffer:
                return "Buffer";
            case type_kind::ptr:
                return "Ptr";
            case type_kind::void_:
            case type_kind::array:
                break;
        }
        return "?";
    }

    /// Writes `value` as `type` at `dst`; variable-size parts through `alloc`. On failure `why`
    /// says what did not fit and no Python exception is left pending.
    bool to_c(const type_ref& type, PyObject* value, std::uint8_t* dst,
              const result_allocator& alloc, detail::python::conversion_error& why) {
        if (type.kind != type_kind::array) return plain_to_c(type, value, dst, alloc, why);
        if (!PyList_Check(value) && !PyTuple_Check(value)) {
            why.what =
                "expected " + type.name + " (a list), got " + detail::python::describe(value);
            return false;
        }
        const bool is_list = PyList_Check(value);
        const auto count =
            static_cast<std::size_t>(is_list ? PyList_GET_SIZE(value) : PyTuple_GET_SIZE(value));
        detail::python::raw_array array{nullptr, 0};
        if (count != 0) {
            const std::size_t element = type.element.size;
            if (count > std::numeric_limits<std::size_t>::max() / element) {
                why.what = "an array too large for memory";
                return false;
            }
            auto* items =
                static_cast<std::uint8_t*>(alloc.allocate(count * element, type.element.align));
            if (items == nullptr) {
                why.what = "out of memory for " + std::to_string(count) + " array items";
                return false;
            }
            std::memset(items, 0, count * element);
            for (std::size_t i = 0; i < count; ++i) {
                const auto at = static_cast<Py_ssize_t>(i);
                PyObject* item = is_list ? PyList_GET_ITEM(value, at) : PyTuple_GET_ITEM(value, at);
                if (!plain_to_c(type.element, item, items + i * element, alloc, why)) {
                    why.path = "[" + std::to_string(i) + "]" + why.path;
                    return false;
                }
            }
            array = {items, count};
        }
        std::memcpy(dst, &array, sizeof array);
        return true;
    }

    bool plain_to_c(const plain_type& type, PyObject* value, std::uint8_t* dst,
                    const result_allocator& alloc, detail::python::conversion_error& why) {
        switch (type.kind) {
            case type_kind::primitive:
            case type_kind::enum_ref:
                return primitive_to_c(type, value, dst, why);
            case type_kind::string_view: {
                if (!PyUnicode_Check(value)) {
                    why.what =
                        "expected StringView (a str), got " + detail::python::describe(value);
                    return false;
                }
                Py_ssize_t size = 0;
                const char* text = PyUnicode_AsUTF8AndSize(value, &size);
                detail::python::ref escaped;
                if (text == nullptr) {  // lone surrogates: the bytes surrogateescape stands for
                    PyErr_Clear();
                    escaped.reset(PyUnicode_AsEncodedString(value, "utf-8", "surrogateescape"));
                    if (!escaped) return fail_conversion(why);
                    text = PyBytes_AS_STRING(escaped.get());
                    size = PyBytes_GET_SIZE(escaped.get());
                }
                StringView sv{nullptr, 0};
                if (!copy_bytes(text, static_cast<std::size_t>(size), alloc, sv.ptr, why))
                    return false;
                sv.len = static_cast<std::size_t>(size);
                std::memcpy(dst, &sv, sizeof sv);
                return true;
            }
            case type_kind::buffer: {
                if (!PyBytes_Check(value) && !PyByteArray_Check(value) &&
                    !PyMemoryView_Check(value)) {
                    why.what = "expected Buffer (bytes, bytearray or memoryview), got " +
                               detail::python::describe(value);
                    return false;
                }
                Py_buffer view;
                if (PyObject_GetBuffer(value, &view, PyBUF_CONTIG_RO) != 0)
                    return fail_conversion(why);
                Buffer b{nullptr, 0, 0};
                const auto len = static_cast<std::size_t>(view.len);
                const std::uint8_t* copied = nullptr;
                const bool ok = copy_bytes(view.buf, len, alloc, copied, why);
                PyBuffer_Release(&view);
                if (!ok) return false;
                b = {const_cast<std::uint8_t*>(copied), len, len};
                std::memcpy(dst, &b, sizeof b);
                return true;
            }
            case type_kind::ptr: {
                void* p = nullptr;
                if (value != Py_None) {
                    if (!PyLong_Check(value) || PyBool_Check(value)) {
                        why.what = "expected Ptr (an int address or None), got " +
                                   detail::python::describe(value);
                        return false;
                    }
                    const unsigned long long address = PyLong_AsUnsignedLongLong(value);
                    if (PyErr_Occurred() != nullptr ||
                        address > std::numeric_limits<std::uintptr_t>::max()) {
                        PyErr_Clear();
                        why.what = "expected Ptr, got " + detail::python::describe(value) +
                                   " (not an address)";
                        return false;
                    }
                    p = reinterpret_cast<void*>(static_cast<std::uintptr_t>(address));
                }
                std::memcpy(dst, &p, sizeof p);
                return true;
            }
            case type_kind::struct_ref: {
                const struct_decl& s = api_->structs[type.index];
                if (!PyDict_Check(value)) {
                    why.what = "expected struct " + s.name + " (a dict), got " +
                               detail::python::describe(value);
                    return false;
                }
                std::memset(dst, 0, s.layout.size);
                const std::vector<detail::python::ref>& names = struct_fields_[type.index];
                for (std::size_t i = 0; i < s.layout.fields.size(); ++i) {
                    const field_decl& f = s.layout.fields[i];
                    PyObject* field = PyDict_GetItemWithError(value, names[i].get());  // borrowed
                    if (field == nullptr) {
                        if (PyErr_Occurred() != nullptr) return fail_conversion(why);
                        why.what = "expected struct " + s.name + ", got a dict without field '" +
                                   f.name + "'";
                        return false;
                    }
                    if (!to_c(f.type, field, dst + f.offset, alloc, why)) {
                        why.path = "." + f.name + why.path;
                        return false;
                    }
                }
                return true;
            }
            case type_kind::void_:
            case type_kind::array:
                break;
        }
        why.what = "a type the Python loader cannot convert";
        return false;
    }

    /// An int (never a bool) in range for integer and enum types, a float or int for f32/f64,
    /// a bool for bool.
    bool primitive_to_c(const plain_type& type, PyObject* value, std::uint8_t* dst,
                        detail::python::conversion_error& why) {
        const primitive_type p = type.primitive;
        auto write = [dst](auto v) { std::memcpy(dst, &v, sizeof v); };
        if (p == primitive_type::bool_) {
            if (!PyBool_Check(value)) {
                why.what = "expected bool, got " + detail::python::describe(value);
                return false;
            }
            write(static_cast<std::uint8_t>(value == Py_True ? 1 : 0));
            return true;
        }
        if (p == primitive_type::f32 || p == primitive_type::f64) {
            double number = 0;
            if (PyFloat_Check(value)) {
                number = PyFloat_AS_DOUBLE(value);
            } else if (PyLong_Check(value) && !PyBool_Check(value)) {
                number = PyLong_AsDouble(value);
                if (number == -1.0 && PyErr_Occurred() != nullptr) {
                    PyErr_Clear();
                    why.what = "expected " + type_name(type) + ", got " +
                               detail::python::describe(value) + " (out of range)";
                    return false;
                }
            } else {
                why.what = "expected " + type_name(type) + " (a float), got " +
                           detail::python::describe(value);
                return false;
            }
            if (p == primitive_type::f64) {
                write(number);
                return true;
            }
            if (std::isfinite(number) && std::fabs(number) > static_cast<double>(FLT_MAX)) {
                why.what =
                    "expected f32, got " + detail::python::describe(value) + " (out of range)";
                return false;
            }
            write(static_cast<float>(number));
            return true;
        }
        if (!PyLong_Check(value) || PyBool_Check(value)) {
            why.what =
                "expected " + type_name(type) + " (an int), got " + detail::python::describe(value);
            return false;
        }
        const bool is_signed = p == primitive_type::i8 || p == primitive_type::i16 ||
                               p == primitive_type::i32 || p == primitive_type::i64;
        const unsigned bits = primitive_size(p) * 8;
        int overflow = 0;
        const long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (number == -1 && overflow == 0 && PyErr_Occurred() != nullptr)
            return fail_conversion(why);
        bool in_range = false;
        unsigned long long bits_value = 0;
        if (is_signed) {
            const long long max = static_cast<long long>((1ULL << (bits - 1)) - 1);
            in_range = overflow == 0 && number >= -max - 1 && number <= max;
            bits_value = static_cast<unsigned long long>(number);
        } else if (overflow == 0) {
            const unsigned long long max = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
            in_range = number >= 0 && static_cast<unsigned long long>(number) <= max;
            bits_value = static_cast<unsigned long long>(number);
        } else if (overflow > 0 && bits == 64) {
            bits_value = PyLong_AsUnsignedLongLong(value);
            in_range = PyErr_Occurred() == nullptr;
            PyErr_Clear();
        }
        if (!in_range) {
            const std::string range =
                is_signed ? std::to_string(-(1LL << (bits - 2)) * 2) + " to " +
                                std::to_string(static_cast<long long>((1ULL << (bits - 1)) - 1))
                          : "0 to " + std::to_string(bits == 64 ? ~0ULL : (1ULL << bits) - 1);
            why.what = "expected " + type_name(type) + ", got " + detail::python::describe(value) +
                       " (out of range " + range + ")";
            return false;
        }
        switch (bits) {
            case 8:
                write(static_cast<std::uint8_t>(bits_value));
                break;
            case 16:
                write(static_cast<std::uint16_t>(bits_value));
                break;
            case 32:
                write(static_cast<std::uint32_t>(bits_value));
                break;
            default:
                write(static_cast<std::uint64_t>(bits_value));
                break;
        }
        return true;
    }

    /// `len` bytes of `data` copied through `alloc` into `out` ({NULL, 0} when empty).
    static bool copy_bytes(const void* data, std::size_t len, const result_allocator& alloc,
                           const std::uint8_t*& out, detail::python::conversion_error& why) {
        out = nullptr;
        if (len == 0) return true;
        auto* copy = static_cast<std::uint8_t*>(alloc.allocate(len, 1));
        if (copy == nullptr) {
            why.what = "out of memory for " + std::to_string(len) + " bytes";
            return false;
        }
        std::memcpy(copy, data, len);
        out = copy;
        return true;
    }

    bool fail_conversion(detail::python::conversion_error& why) {
        fail_with_exception(why.what);
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
            const auto clamped = static_cast<std::uint32_t>(level < 0 || level > 5 ? 3 : level);
            PyThreadState* state = PyEval_SaveThread();  // the log callback is host code
            engine->services_->log(clamped, message);
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

    /// polyplug.call: the script's arguments into a C argument struct in a local arena, the
    /// call with the GIL released, the result back into a Python value.
    PyObject* call_out(PyObject* const* args, std::size_t nargs) {
        if (nargs < 2 || !PyUnicode_Check(args[0]) || !PyUnicode_Check(args[1])) {
            PyErr_SetString(PyExc_TypeError,
                            "polyplug.call(contract, function, *args): contract and function "
                            "are str");
            return nullptr;
        }
        const std::string contract_name = detail::python::utf8_of(args[0]);
        const std::string function_name = detail::python::utf8_of(args[1]);
        std::string error;
        const contract_decl* decl = services_->find_contract(contract_name, error);
        if (decl == nullptr) {
            PyErr_SetString(PyExc_LookupError, error.c_str());
            return nullptr;
        }
        const function_decl* fn = decl->find_function(function_name);
        if (fn == nullptr) {
            PyErr_Format(PyExc_LookupError, "contract '%s' has no function '%s'",
                         contract_name.c_str(), function_name.c_str());
            return nullptr;
        }
        const std::string qualified = contract_name + "." + function_name;
        if (nargs - 2 != fn->args.fields.size()) {
            PyErr_Format(PyExc_TypeError, "%s takes %zu arguments (%zu given)", qualified.c_str(),
                         fn->args.fields.size(), nargs - 2);
            return nullptr;
        }
        alignas(16) std::uint8_t storage[2048];
        CallArena arena;
        polyplug_arena_init(&arena, storage, sizeof storage, services_->host());
        struct arena_teardown {
            CallArena* arena;
            ~arena_teardown() { polyplug_arena_free(arena); }
        } const teardown{&arena};
        const result_allocator alloc(&arena, services_->host());

        std::uint8_t* arg_struct = nullptr;
        if (fn->args.size != 0) {
            arg_struct = static_cast<std::uint8_t*>(alloc.allocate(fn->args.size, fn->args.align));
            if (arg_struct == nullptr) return PyErr_NoMemory();
            std::memset(arg_struct, 0, fn->args.size);
        }
        for (std::size_t i = 0; i < fn->args.fields.size(); ++i) {
            const field_decl& param = fn->args.fields[i];
            detail::python::conversion_error why;
            if (!to_c(param.type, args[i + 2], arg_struct + param.offset, alloc, why)) {
                PyErr_Format(PyExc_TypeError, "%s: argument '%s'%s: %s", qualified.c_str(),
                             param.name.c_str(), why.path.c_str(), why.what.c_str());
                return nullptr;
            }
        }
        std::uint8_t* out = nullptr;
        if (!fn->result.is_void()) {
            out = static_cast<std::uint8_t*>(alloc.allocate(fn->result.size, fn->result.align));
            if (out == nullptr) return PyErr_NoMemory();
            std::memset(out, 0, fn->result.size);
        }
        PyThreadState* state = PyEval_SaveThread();
        AbiError err{AbiErrorCode_Ok, {nullptr, 0}};
        std::string message;
        try {
            err = services_->call(*decl, *fn, arg_struct, out, &arena);
            if (err.code != AbiErrorCode_Ok)
                message = detail::copy_plugin_message(err.message.ptr, err.message.len);
        } catch (...) {
            PyEval_RestoreThread(state);
            throw;
        }
        PyEval_RestoreThread(state);
        if (err.code != AbiErrorCode_Ok) {
            if (message.empty())
                message = qualified + " failed (code " + std::to_string(err.code) + ")";
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
        if (fn->result.is_void()) Py_RETURN_NONE;
        return to_py(fn->result, out);
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
    std::unordered_set<PyObject*> instances_;
};

static_assert(vm_engine<python_engine>, "python_engine must satisfy polyplug::vm_engine");

/// The Python bundle loader: `loader = "python"` in a bundle's manifest.
using python_loader = vm_loader<python_engine>;

POLYPLUG_END_NAMESPACE
