# SPDX-License-Identifier: MIT
"""Contract descriptions ("polyplug-contracts 1", from DescribeContractFile) turned into ctypes
layouts, and the conversions between Python values and those layouts.

Nothing here computes a C layout: every size and offset comes from the runtime's description,
and the ctypes structures built from it are checked against it (a disagreement raises
ContractFileError instead of calling with a wrong layout).
"""
import collections
import collections.abc
import ctypes as C
import enum
import math
import operator
import struct

from . import _abi
from ._errors import ArgumentError, ContractFileError, InvalidPointerError, OutOfRangeError

HEADER = "polyplug-contracts 1"

_cast = C.cast
_c_void_p = C.c_void_p


def _address_of_bytes(data: bytes) -> int:
    """The address of an immutable bytes object's contents (valid while `data` lives)."""
    return _cast(data, _c_void_p).value


# A char array over the whole address space: slicing it reads memory into bytes without a foreign
# call (string_at is one: a ctypes call of a C helper, about as dear as the guest call itself).
# 64-bit only (_abi refuses anything else at import; checked again here, where it matters).
if C.sizeof(C.c_void_p) != 8:  # pragma: no cover
    raise ImportError("polyplug's C ABI is defined for 64-bit targets only")
_MEMORY_END = 1 << 62
_MEMORY = (C.c_char * _MEMORY_END).from_address(0)

# The longest run of bytes read from a pointer a plugin (or the runtime) hands over: 2^31-1, the
# limit the package had with string_at (a C int length). A longer length, a NULL pointer with a
# nonzero length or a range past _MEMORY_END raises InvalidPointerError instead of reading.
MAX_READ = (1 << 31) - 1


def _bad_range(ptr, length):
    """None when [ptr, ptr+length) may be read (length > 0), else why not."""
    if not ptr:
        return f"NULL pointer with length {length}"
    if length > MAX_READ:
        return f"length {length} is beyond the limit of {MAX_READ} bytes"
    if ptr + length > _MEMORY_END:
        return f"pointer 0x{ptr:x} + length {length} is beyond the address space"
    return None


def _read(ptr, length, what="a plugin-provided pointer"):
    """The `length` bytes at address `ptr` (ptr/len as a plugin or the runtime gave them): b""
    when length is 0, InvalidPointerError when the range cannot be valid. Every read of such a
    pointer goes through here (or _check_range)."""
    if not length:
        return b""
    if not ptr or length > MAX_READ or ptr + length > _MEMORY_END:
        raise InvalidPointerError(f"{what}: {_bad_range(ptr, length)}")
    return _MEMORY[ptr:ptr + length]


def _check_range(ptr, length, what):
    """Raises InvalidPointerError when `length` bytes at `ptr` cannot be a valid range."""
    problem = _bad_range(ptr, length) if length else None
    if problem is not None:
        raise InvalidPointerError(f"{what}: {problem}")


# ---- types --------------------------------------------------------------------------------------
class Type:
    """One contract type: its ctypes type, and encode (Python -> C field value) / decode."""
    name = "?"
    ctype = None
    simple = True  # reading a field of this type gives a Python value (not a ctypes object)

    def encode(self, value, keep, where):  # pragma: no cover - overridden
        raise NotImplementedError

    def decode(self, value):
        return value

    def describe(self):
        return self.name

    # How a call's argument structure is written. Calls write their arguments through a "writer"
    # layout over the argument structure (Function.args_writer): the same offsets, but a type
    # may split its field so that writing it needs no temporary objects.
    def writer_fields(self, field, offset):
        """The (name, ctype, offset) fields of this type's part of a writer layout."""
        return [(field, self.ctype, offset)]

    def held_fields(self, field):
        """The writer fields of this type that hold a Python object after a store."""
        return []

    def storer(self, field, where, index):
        """store(writer, values, keep): encodes values[index] into the writer's `field` part;
        objects the C side points into go to `keep` unless the writer itself holds them."""
        encode = self.encode

        def store(writer, values, keep):
            setattr(writer, field, encode(values[index], keep, where))
        return store

    def reader(self):
        """read(out): the Python value of a call's result storage (a ctypes object of `ctype`)."""
        if not self.simple:
            return self.decode
        if type(self).decode is Type.decode:
            return operator.attrgetter("value")  # no Python frame
        decode = self.decode
        return lambda out: decode(out.value)


class IntType(Type):
    def __init__(self, name, ctype, bits, signed):
        self.name, self.ctype = name, ctype
        self.lo = -(1 << (bits - 1)) if signed else 0
        self.hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1

    def encode(self, value, keep, where):
        if type(value) is not int:
            if isinstance(value, (bool, float)) or not hasattr(value, "__index__"):
                raise ArgumentError(f"{where}: expected an integer ({self.name}), got "
                                    f"{type(value).__name__} {value!r}")
            value = operator.index(value)
        if value < self.lo or value > self.hi:
            raise OutOfRangeError(f"{where}: {value} is outside the range of {self.name} "
                                  f"[{self.lo}, {self.hi}]; nothing is truncated")
        return value

    def storer(self, field, where, index):
        encode, lo, hi = self.encode, self.lo, self.hi

        def store(writer, values, keep):
            value = values[index]
            # An int in range needs no conversion: checked inline; anything else goes through
            # encode (its conversions and its errors).
            if type(value) is not int or value < lo or value > hi:
                value = encode(value, keep, where)
            setattr(writer, field, value)
        return store


class FloatType(Type):
    def __init__(self, name, ctype):
        self.name, self.ctype = name, ctype
        self.single = name == "f32"

    def encode(self, value, keep, where):
        if type(value) is not float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ArgumentError(f"{where}: expected a number ({self.name}), got "
                                    f"{type(value).__name__} {value!r}")
            try:
                value = float(value)
            except OverflowError:
                raise OutOfRangeError(f"{where}: {value} does not fit {self.name}") from None
        if self.single and math.isfinite(value):
            try:
                struct.pack("<f", value)
            except OverflowError:
                raise OutOfRangeError(f"{where}: {value!r} is beyond the largest f32 "
                                      f"(3.4028234663852886e+38); pass inf explicitly if that "
                                      f"is what you mean") from None
        return value


class BoolType(Type):
    name, ctype = "bool", C.c_bool

    def encode(self, value, keep, where):
        if value is True or value is False:
            return value
        raise ArgumentError(f"{where}: expected a bool, got {type(value).__name__} {value!r}")

    def decode(self, value):
        return bool(value)


class PtrType(Type):
    name, ctype = "Ptr", C.c_void_p

    def encode(self, value, keep, where):
        if value is None:
            return None
        if isinstance(value, (C._SimpleCData, C._Pointer)) and not isinstance(value, bool):
            keep.append(value)
            return _cast(value, _c_void_p).value
        if type(value) is int or (hasattr(value, "__index__") and not isinstance(value, bool)):
            value = operator.index(value)
            if 0 <= value < (1 << 64):
                return value or None
            raise OutOfRangeError(f"{where}: {value} is not an address (0 ... 2^64-1)")
        raise ArgumentError(f"{where}: expected an address (int), a ctypes pointer or None, got "
                            f"{type(value).__name__}")

    def decode(self, value):
        return value  # int or None


def _bytes_of(value, where, what):
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise ArgumentError(f"{where}: expected {what}, got {type(value).__name__}")


class StringViewType(Type):
    """str (encoded UTF-8, surrogateescape) or bytes in; str out (decoded with
    surrogateescape, so invalid UTF-8 survives a round trip: `.encode('utf-8',
    'surrogateescape')` gives the exact bytes back)."""
    name, ctype, simple = "StringView", _abi.StringView, False

    @staticmethod
    def data(value, where):
        if type(value) is str:
            return value.encode("utf-8", "surrogateescape")
        return _bytes_of(value, where, "str or bytes (StringView)")

    def encode(self, value, keep, where):
        data = self.data(value, where)
        if not data:
            return _abi.StringView(None, 0)
        keep.append(data)
        return _abi.StringView(_address_of_bytes(data), len(data))

    def writer_fields(self, field, offset):
        # ptr as c_char_p: assigning bytes stores their address and keeps them alive in the
        # writer, with no cast (a foreign call) and no StringView object.
        return [(field + ".ptr", C.c_char_p, offset), (field + ".len", C.c_size_t, offset + 8)]

    def held_fields(self, field):
        return [field + ".ptr"]

    def storer(self, field, where, index):
        data_of, ptr_field, len_field = self.data, field + ".ptr", field + ".len"

        def store(writer, values, keep):
            value = values[index]
            # str first, inline: the common case, without the call of data_of.
            data = value.encode("utf-8", "surrogateescape") if type(value) is str else \
                data_of(value, where)
            setattr(writer, ptr_field, data or None)
            setattr(writer, len_field, len(data))
        return store

    def decode(self, value):
        return _read(value.ptr, value.len, "a StringView").decode("utf-8", "surrogateescape")


class BufferType(Type):
    """bytes, bytearray or memoryview in (bytes are copied so the callee cannot write into an
    immutable object; a bytearray is passed in place), bytes out."""
    name, ctype, simple = "Buffer", _abi.Buffer, False

    def encode(self, value, keep, where):
        if isinstance(value, bytearray):
            if not value:
                return _abi.Buffer(None, 0, 0)
            storage = (C.c_uint8 * len(value)).from_buffer(value)
        else:
            data = _bytes_of(value, where, "bytes, bytearray or memoryview (Buffer)")
            if not data:
                return _abi.Buffer(None, 0, 0)
            storage = (C.c_uint8 * len(data)).from_buffer_copy(data)
        keep.append(storage)
        return _abi.Buffer(C.addressof(storage), len(storage), len(storage))

    def decode(self, value):
        return _read(value.ptr, value.len, "a Buffer")


class EnumType(Type):
    def __init__(self, name, repr_type, bitflag, variants):
        self.name, self.repr, self.bitflag = name, repr_type, bitflag
        self.ctype = repr_type.ctype
        self.variants = dict(variants)
        base = enum.IntFlag if bitflag else enum.IntEnum
        self.py = base(name, self.variants)
        self.values = set(self.variants.values())

    def encode(self, value, keep, where):
        if isinstance(value, str):
            total = 0
            for part in value.split("|") if self.bitflag else [value]:
                part = part.strip()
                if part not in self.variants:
                    raise ArgumentError(f"{where}: {value!r} is not a variant of {self.name} "
                                        f"({', '.join(self.variants)})")
                total |= self.variants[part]
            return total
        if isinstance(value, enum.Enum) and not isinstance(value, self.py):
            raise ArgumentError(f"{where}: {value!r} is not a {self.name}")
        number = self.repr.encode(value, keep, f"{where} ({self.name})")
        if not self.bitflag and number not in self.values:
            raise ArgumentError(f"{where}: {number} is not a value of {self.name} ("
                                + ", ".join(f"{k}={v}" for k, v in self.variants.items()) + ")")
        return number

    def decode(self, value):
        if self.bitflag or value in self.values:
            return self.py(value)
        return value  # a value this description does not know (a newer provider): the raw int

    def describe(self):
        return f"{self.name} ({'flags' if self.bitflag else 'enum'} {self.repr.name}: " + \
            ", ".join(self.variants) + ")"


class StructType(Type):
    """dict (or any mapping) or the struct's own class (a namedtuple: `kit.types.Point(x=1,
    y=2)`) in; that namedtuple out."""
    simple = False

    def __init__(self, name, size, align, fields):
        self.name, self.size, self.align, self.fields = name, size, align, fields
        self.ctype = build_structure(name, [(f, t.ctype, off) for f, t, off in fields], size,
                                     align)
        self.py = collections.namedtuple(name, [f for f, _, _ in fields], rename=False)
        self.field_names = [f for f, _, _ in fields]
        self.field_set = set(self.field_names)

    def encode(self, value, keep, where):
        if isinstance(value, self.py):
            items = zip(self.field_names, value)
        elif isinstance(value, collections.abc.Mapping):
            keys = set(value)
            if keys != self.field_set:
                missing = [f for f in self.field_names if f not in keys]
                extra = sorted(str(k) for k in keys - self.field_set)
                raise ArgumentError(f"{where}: a {self.name} needs exactly the fields "
                                    f"{', '.join(self.field_names)}"
                                    + (f"; missing {', '.join(missing)}" if missing else "")
                                    + (f"; unknown {', '.join(extra)}" if extra else ""))
            items = ((f, value[f]) for f in self.field_names)
        else:
            raise ArgumentError(f"{where}: expected a {self.name} (a dict with the fields "
                                f"{', '.join(self.field_names)}, or {self.name}(...)), got "
                                f"{type(value).__name__}")
        out = self.ctype()
        types = self.types_by_name
        for field, item in items:
            setattr(out, field, types[field].encode(item, keep, f"{where}.{field}"))
        return out

    @property
    def types_by_name(self):
        cache = self.__dict__.get("_types_by_name")
        if cache is None:
            cache = self.__dict__["_types_by_name"] = {f: t for f, t, _ in self.fields}
        return cache

    def decode(self, value):
        return self.py(*[t.decode(getattr(value, f)) for f, t, _ in self.fields])

    def describe(self):
        return f"{self.name} {{" + ", ".join(f"{f}: {t.name}" for f, t, _ in self.fields) + "}"


class ArrayType(Type):
    """list or tuple in (also bytes for Array<u8>); list out."""
    ctype, simple = _abi.ContractArray, False

    def __init__(self, element):
        self.element = element
        self.name = f"Array<{element.name}>"

    def encode(self, value, keep, where):
        element = self.element
        if isinstance(value, (bytes, bytearray)) and element.name == "u8":
            if not value:
                return _abi.ContractArray(None, 0)
            storage = (C.c_uint8 * len(value)).from_buffer_copy(value)
        elif isinstance(value, (list, tuple)):
            if not value:
                return _abi.ContractArray(None, 0)
            storage = (element.ctype * len(value))()
            for i, item in enumerate(value):
                storage[i] = element.encode(item, keep, f"{where}[{i}]")
        else:
            raise ArgumentError(f"{where}: expected a list or tuple ({self.name}), got "
                                f"{type(value).__name__}")
        keep.append(storage)
        return _abi.ContractArray(C.addressof(storage), len(storage))

    def decode(self, value):
        if not value.len:
            return []
        _check_range(value.items, value.len * C.sizeof(self.element.ctype), f"an {self.name}")
        items = (self.element.ctype * value.len).from_address(value.items)
        decode = self.element.decode
        return [decode(items[i]) for i in range(value.len)]


PRIMITIVES = {
    "u8": IntType("u8", C.c_uint8, 8, False), "u16": IntType("u16", C.c_uint16, 16, False),
    "u32": IntType("u32", C.c_uint32, 32, False), "u64": IntType("u64", C.c_uint64, 64, False),
    "i8": IntType("i8", C.c_int8, 8, True), "i16": IntType("i16", C.c_int16, 16, True),
    "i32": IntType("i32", C.c_int32, 32, True), "i64": IntType("i64", C.c_int64, 64, True),
    "f32": FloatType("f32", C.c_float), "f64": FloatType("f64", C.c_double),
    "bool": BoolType(), "Ptr": PtrType(), "StringView": StringViewType(), "Buffer": BufferType(),
}


def build_structure(name, fields, size, align):
    """A ctypes Structure with `fields` [(name, ctype, offset)] at exactly those offsets, checked
    against `size` and `align` from the description."""
    cfields, position, pads = [], 0, 0
    for field, ctype, offset in fields:
        if offset < position:
            raise ContractFileError(f"{name}.{field}: offset {offset} overlaps the previous "
                                    f"field (which ends at {position})")
        if offset > position:
            cfields.append((f"_polyplug_pad{pads}", C.c_uint8 * (offset - position)))
            pads += 1
        cfields.append((field, ctype))
        position = offset + C.sizeof(ctype)
    if size > position:
        cfields.append((f"_polyplug_pad{pads}", C.c_uint8 * (size - position)))
    cls = type(name, (C.Structure,), {"_fields_": cfields})
    problems = []
    if C.sizeof(cls) != size:
        problems.append(f"size {C.sizeof(cls)} instead of {size}")
    if fields and C.alignment(cls) != align:
        problems.append(f"alignment {C.alignment(cls)} instead of {align}")
    for field, _, offset in fields:
        if getattr(cls, field).offset != offset:
            problems.append(f"{field} at {getattr(cls, field).offset} instead of {offset}")
    if problems:
        raise ContractFileError(f"{name}: ctypes disagrees with the runtime's layout: "
                                + "; ".join(problems))
    return cls


# ---- the description ----------------------------------------------------------------------------
class Param:
    __slots__ = ("name", "type", "offset", "where")

    def __init__(self, name, type_, offset):
        self.name, self.type, self.offset = name, type_, offset
        self.where = name


class Function:
    """One contract function: its id, parameters, result and argument layout."""

    def __init__(self, contract, name, fn_id, args_size, args_align, result, params):
        self.contract, self.name, self.id = contract, name, fn_id
        self.params, self.result = params, result
        self.args_size, self.args_align = args_size, args_align
        where = f"{contract}.{name} arguments"
        self.param_names = [p.name for p in params]
        for p in params:
            p.where = f"{contract}.{name}({p.name})"
        # Calls write their arguments through a "writer" layout (the types' writer_fields: the
        # same offsets, checked against the same size); host contract thunks read them through
        # args_ctype (a field per parameter). One structure serves both unless a type splits its
        # field in the writer (StringView).
        plain = [(p.name, p.type.ctype, p.offset) for p in params]
        split = [f for p in params for f in p.type.writer_fields(p.name, p.offset)]
        self.args_ctype = build_structure(where, plain, args_size, args_align) \
            if args_size else None
        self.args_writer = self.args_ctype if split == plain else \
            build_structure(where, split, args_size, args_align)
        # The writer fields that keep an argument object alive after a call (reset by release).
        held = [f for p in params for f in p.type.held_fields(p.name)]
        self.release = _releaser(held)
        self.pack = _packer([p.type.storer(p.name, p.where, i) for i, p in enumerate(params)])
        self.read_result = result.reader() if result is not None else None
        self.signature = (f"{name}(" + ", ".join(f"{p.name}: {p.type.name}" for p in params)
                          + ")" + (f" -> {result.name}" if result is not None else ""))


def _releaser(fields):
    """release(writer): drops what the writer's `fields` hold (None when there are none)."""
    if not fields:
        return None
    if len(fields) == 1:
        (field,) = fields

        def release(writer):
            setattr(writer, field, None)
    else:
        def release(writer):
            for field in fields:
                setattr(writer, field, None)
    return release


def _packer(stores):
    """pack(writer, values, keep): the stores of a function's parameters composed into one
    closure, unrolled for the usual few parameters (no per-call loop, no per-call objects)."""
    if not stores:
        def pack(writer, values, keep):
            pass
    elif len(stores) == 1:
        (pack,) = stores
    elif len(stores) == 2:
        s0, s1 = stores

        def pack(writer, values, keep):
            s0(writer, values, keep)
            s1(writer, values, keep)
    elif len(stores) == 3:
        s0, s1, s2 = stores

        def pack(writer, values, keep):
            s0(writer, values, keep)
            s1(writer, values, keep)
            s2(writer, values, keep)
    else:
        def pack(writer, values, keep):
            for store in stores:
                store(writer, values, keep)
    return pack


class Contract:
    """A guest or host contract of a contract file."""

    def __init__(self, side, name, major, minor, patch, contract_id, singleton):
        self.side, self.name = side, name
        self.version = (major, minor, patch)
        self.id, self.singleton = contract_id, singleton
        self.functions = []
        self.by_name = {}

    @property
    def types(self):
        """The struct and enum classes of the contract file that declares this contract."""
        cached = self.__dict__.get("_types")
        if cached is None:
            cached = self.__dict__["_types"] = TypesNamespace(self.description)
        return cached

    @property
    def major(self):
        return self.version[0]

    def doc(self):
        lines = [f"{self.side} contract {self.name}@{self.major} "
                 f"(version {'.'.join(map(str, self.version))}, id 0x{self.id:016x})"]
        for fn in self.functions:
            lines.append(f"  {fn.signature}")
        return "\n".join(lines)


class Description:
    """A parsed description: enums, structs (by name, as Types) and contracts."""

    def __init__(self, text, source="<description>"):
        self.source = source
        self.enums, self.structs, self.contracts = {}, {}, []
        self._parse(text)

    def type(self, spelling, where):
        if spelling in PRIMITIVES:
            return PRIMITIVES[spelling]
        if spelling in self.enums:
            return self.enums[spelling]
        if spelling in self.structs:
            return self.structs[spelling]
        if spelling.startswith("Array<") and spelling.endswith(">"):
            inner = spelling[6:-1]
            if inner == "Void" or inner.startswith("Array<"):
                raise ContractFileError(f"{where}: {spelling} is not a valid array type")
            return ArrayType(self.type(inner, where))
        raise ContractFileError(f"{where}: unknown type {spelling!r} (declared later or not "
                                f"at all)")

    def contract(self, name, side=None):
        for c in self.contracts:
            if c.name == name and (side is None or c.side == side):
                return c
        names = ", ".join(f"{c.name} ({c.side})" for c in self.contracts) or "none"
        raise ContractFileError(f"{self.source}: no {side or ''} contract named {name!r}; it "
                                f"declares {names}")

    def _parse(self, text):
        lines = text.split("\n")
        if not lines or lines[0] != HEADER:
            raise ContractFileError(f"{self.source}: not a contract description (first line "
                                    f"{lines[0][:40]!r}, expected {HEADER!r}): the runtime may "
                                    f"be newer or older than this package")
        pos = 1

        def take(kind, count):
            nonlocal pos
            while pos < len(lines) and lines[pos] == "":
                pos += 1
            if pos >= len(lines):
                raise ContractFileError(f"{self.source}: the description ends early (expected "
                                        f"a {kind} record)")
            fields = lines[pos].split(" ")
            line_no = pos + 1
            pos += 1
            if fields[0] != kind or len(fields) != count:
                raise ContractFileError(f"{self.source}: description line {line_no}: expected "
                                        f"{kind} with {count - 1} fields, got {lines[pos - 1]!r}")
            return fields, line_no

        def num(text_value, line_no):
            try:
                return int(text_value, 0)
            except ValueError:
                raise ContractFileError(f"{self.source}: description line {line_no}: "
                                        f"{text_value!r} is not a number") from None

        while True:
            while pos < len(lines) and lines[pos] == "":
                pos += 1
            if pos >= len(lines):
                break
            kind = lines[pos].split(" ", 1)[0]
            if kind == "enum":
                f, ln = take("enum", 5)
                repr_type = PRIMITIVES.get(f[2])
                if not isinstance(repr_type, IntType) or repr_type.lo < 0:
                    raise ContractFileError(f"{self.source}: line {ln}: bad enum repr {f[2]!r}")
                variants = []
                for _ in range(num(f[4], ln)):
                    v, vln = take("variant", 3)
                    variants.append((v[1], num(v[2], vln)))
                self.enums[f[1]] = EnumType(f[1], repr_type, f[3] == "1", variants)
            elif kind == "struct":
                f, ln = take("struct", 5)
                fields = []
                for _ in range(num(f[4], ln)):
                    fl, fln = take("field", 4)
                    fields.append((fl[1], self.type(fl[2], f"{f[1]}.{fl[1]}"), num(fl[3], fln)))
                self.structs[f[1]] = StructType(f[1], num(f[2], ln), num(f[3], ln), fields)
            elif kind == "contract":
                f, ln = take("contract", 9)
                if f[1] not in ("guest", "host"):
                    raise ContractFileError(f"{self.source}: line {ln}: side {f[1]!r}")
                c = Contract(f[1], f[2], num(f[3], ln), num(f[4], ln), num(f[5], ln),
                             num(f[6], ln), f[7] == "1")
                c.description = self
                for _ in range(num(f[8], ln)):
                    fn, fnl = take("function", 7)
                    result = None if fn[5] == "Void" else self.type(fn[5], f"{c.name}.{fn[1]}")
                    params = []
                    for _ in range(num(fn[6], fnl)):
                        p, pln = take("param", 4)
                        params.append(Param(p[1], self.type(p[2], f"{c.name}.{fn[1]}.{p[1]}"),
                                            num(p[3], pln)))
                    function = Function(c.name, fn[1], num(fn[2], fnl), num(fn[3], fnl),
                                        num(fn[4], fnl), result, params)
                    c.functions.append(function)
                    c.by_name[function.name] = function
                expected = (_abi.guest_contract_id if c.side == "guest"
                            else _abi.host_contract_id)(c.name, c.major)
                if expected != c.id:
                    raise ContractFileError(f"{self.source}: contract {c.name}@{c.major} has id "
                                            f"0x{c.id:016x}, expected 0x{expected:016x}")
                self.contracts.append(c)
            else:
                raise ContractFileError(f"{self.source}: description line {pos + 1}: unknown "
                                        f"record {lines[pos]!r}")


class TypesNamespace:
    """`contract.types`: the struct classes (namedtuples) and enum classes of a contract file."""

    def __init__(self, description):
        for name, s in description.structs.items():
            setattr(self, name, s.py)
        for name, e in description.enums.items():
            setattr(self, name, e.py)

    def __repr__(self):
        return "<types " + ", ".join(sorted(vars(self))) + ">"
