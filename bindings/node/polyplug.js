// SPDX-License-Identifier: MIT
// polyplug for Node.js: a host binding over libpolyplug.so (docs/NODE_HOST.md).
//
//   const polyplug = require('polyplug');
//   const rt = new polyplug.Runtime({ hotReload: true });
//   rt.load('build/examples/bundles/c_calc');
//   const calc = rt.find('example.calc', { api: 'examples/contracts/example_calc.api.toml' });
//   calc.add(2, 40);   // 42
//   rt.close();
//
// The addon (polyplug_node.node) holds the primitives: opening libraries, the HostApi entries,
// calls through function pointers, memory reads and writes, and the C callbacks. Everything else
// is here, mirroring the Python package (bindings/python/polyplug): contract layouts come from
// the runtime's own description of a contract file (host.polyplug.Runtime@1
// DescribeContractFile), never from layout rules of our own.
'use strict';

const fs = require('fs');
const path = require('path');

// ---- errors ----------------------------------------------------------------------------------
const CODE_NAMES = {
  0: 'Ok', 1: 'Generic', 2: 'BufferTooSmall', 3: 'Panic', 4: 'NotFound', 5: 'StaleHandle',
  6: 'FunctionNotAvailable', 7: 'DuplicateProvider', 8: 'InvalidPointer', 9: 'ReentrantCall',
  100: 'HostContractNotFound', 101: 'HostContractVersionMismatch', 102: 'HostContractCallFailed',
};

function codeName(code) {
  if (code in CODE_NAMES) return CODE_NAMES[code];
  return code >= 256 ? `PluginDefined(${code})` : `Unknown(${code})`;
}

/** A polyplug failure: `.code` is the AbiErrorCode (a number), `.codeName` its name, `.message`
 *  the text (the AbiError message and/or the runtime's last_error). */
class PolyplugError extends Error {
  constructor(message, code, options) {
    super(message, options);
    this.code = code === undefined ? this.constructor.defaultCode : code;
    this.codeName = codeName(this.code);
  }

  get name() {
    return this.constructor.name;
  }
}
PolyplugError.defaultCode = 1;

const errors = { PolyplugError };
function defineError(name, code, base) {
  const cls = { [name]: class extends (base || PolyplugError) {} }[name];
  cls.defaultCode = code;
  errors[name] = cls;
  return cls;
}
const byCode = {};
for (const [name, code] of [
  ['GenericError', 1], ['BufferTooSmallError', 2], ['PanicError', 3], ['NotFoundError', 4],
  ['StaleHandleError', 5], ['FunctionNotAvailableError', 6], ['DuplicateProviderError', 7],
  ['InvalidPointerError', 8], ['ReentrantCallError', 9], ['HostContractNotFoundError', 100],
  ['HostContractVersionMismatchError', 101], ['HostContractCallFailedError', 102]]) {
  byCode[code] = defineError(name, code);
}
// Raised by this module before anything reaches the runtime.
const LibraryNotFoundError = defineError('LibraryNotFoundError', 1);
const ContractFileError = defineError('ContractFileError', 1);
const ArgumentError = defineError('ArgumentError', 1);
const OutOfRangeError = defineError('OutOfRangeError', 1, ArgumentError);
const UnknownFunctionError = defineError('UnknownFunctionError', 6);
const ClosedError = defineError('ClosedError', 8);
const CallbackError = defineError('CallbackError', 1);
// close() of a runtime (or contract object) while a call into it is in progress: from a log or
// onReload callback, or a host contract implemented in JavaScript, run inside that call.
const BusyError = defineError('BusyError', 9, errors.ReentrantCallError);

/** The PolyplugError subclass for an AbiErrorCode (PolyplugError itself for other codes). */
function errorFor(code, message) {
  const cls = byCode[code] || PolyplugError;
  return new cls(message, code);
}

// ---- the addon -------------------------------------------------------------------------------
const ADDON_ENV = 'POLYPLUG_NODE_ADDON';
function loadAddon() {
  const target = process.env[ADDON_ENV] || path.join(__dirname, 'polyplug_node.node');
  try {
    // A copy: the addon's exports object gets its 36 functions one by one from C and ends up in
    // V8's dictionary mode, where every `native.x` is a call into the load IC (about 80
    // instructions, as much as a Node-API call's own conversions); a spread copy is a fast object
    // whose loads compile to a constant.
    return { ...require(target) };
  } catch (e) {
    throw new LibraryNotFoundError(
      `cannot load the polyplug Node-API addon ${target} (from ` +
      `${process.env[ADDON_ENV] ? '$' + ADDON_ENV : 'beside polyplug.js'}): ${e.message}; build ` +
      `it with -Dnode_host=enabled, or set ${ADDON_ENV} to polyplug_node.node`);
  }
}
const native = loadAddon();
{
  const s = native.sizes();
  if (s.pointer !== 8 || s.guestInstance !== 16 || s.callArena !== 40 || s.guestInterface !== 56) {
    throw new LibraryNotFoundError(`polyplug's C ABI is defined for 64-bit targets; the addon ` +
                                   `was built with ${JSON.stringify(s)}`);
  }
}
if (!new Uint8Array(new Uint16Array([1]).buffer)[0]) {
  throw new LibraryNotFoundError("polyplug's C ABI is little-endian only");
}

// ---- ids (FNV-1a 64) -------------------------------------------------------------------------
const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = (1n << 64n) - 1n;
function fnv1a64(bytes) {
  let h = FNV_OFFSET;
  for (const b of bytes) h = ((h ^ BigInt(b)) * FNV_PRIME) & MASK64;
  return h;
}
const guestContractId = (name, major) => fnv1a64(Buffer.from(`guest_contract:${name}@${major}`));
const hostContractId = (name, major) => fnv1a64(Buffer.from(`host_contract:${name}@${major}`));
const bundleId = (name) => fnv1a64(Buffer.from(name));

// ---- memory helpers --------------------------------------------------------------------------
const TWO32 = 4294967296;
function readAddress(view, offset) {
  const lo = view.getUint32(offset, true);
  const hi = view.getUint32(offset + 4, true);
  if (hi >= 0x200000) {
    throw new errors.InvalidPointerError(`a pointer 0x${(hi * TWO32 + lo).toString(16)} beyond ` +
                                         `2^53 (not a user-space address)`);
  }
  return hi * TWO32 + lo;
}
// A size or count: a claim, bounded by the addon's readers (1 GiB) before anything is copied.
const readSize = readAddress;
// Reads at an address and length that come from a plugin or the runtime (claims, not facts):
// the addon refuses a null pointer with a length and a length over 1 GiB; those become
// InvalidPointerError here, naming what was being read.
function claimed(read, address, length, what) {
  try {
    return read(address, length);
  } catch (e) {
    throw claimFailure(e, what);
  }
}
function claimFailure(e, what) {
  if (e.code === 'EPPNULL' || e.code === 'EPPTOOBIG') {
    return new errors.InvalidPointerError(`${what}: ${e.message}`);
  }
  return e;
}
const readString = (address, length, what) => claimed(native.readString, address, length, what);
const readBytes = (address, length, what) => claimed(native.readBytes, address, length, what);

function writeAddress(view, offset, address) {
  // (not address % TWO32: on numbers beyond 2^31 that is a call to fmod, the slowest part of
  // packing a call's arguments)
  const hi = Math.floor(address / TWO32);
  view.setUint32(offset, address - hi * TWO32, true);
  view.setUint32(offset + 4, hi, true);
}
function viewOf(buf) {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}
// A Buffer with its own (never pooled, never moved) memory and its address.
function slab(size) {
  const buf = Buffer.alloc(Math.max(size, 8));
  return { buf, view: viewOf(buf), address: native.addressOf(buf) };
}
// What the arguments of native calls in progress point into (Buffers whose addresses were
// written), held from before each call until it returns. A local variable's lifetime ends at its
// last use once the function is optimised, and a callback into JavaScript during the call (a
// log, onReload or a host contract implemented in JavaScript) can run the garbage collector,
// which would free a Buffer the plugin is reading. Usage: const mark = pin(a, b); try { call }
// finally { unpin(mark); }.
// pinned is used as a stack (top: pinnedTop) and never shrunk: setting an array's length is a
// call into the V8 runtime, and rest parameters allocate; a pin costs three stores. It holds at
// most three values: a fourth throws (the check is a compare V8 folds away where pin is inlined).
const pinned = [];
let pinnedTop = 0;
function pin(a, b = null, c = null, more = undefined) {
  if (more !== undefined) throw new TypeError('polyplug: pin() holds at most three values');
  const mark = pinnedTop;
  pinned[mark] = a;
  pinned[mark + 1] = b;
  pinned[mark + 2] = c;
  pinnedTop = mark + 3;
  return mark;
}
function unpin(mark) {
  for (let i = mark; i < pinnedTop; i++) pinned[i] = null;
  pinnedTop = mark;
}

// ---- contract types --------------------------------------------------------------------------
// Each type: name, size (bytes of the field), encode(view, offset, value, keep, where) (keep: an
// ArgMemory), decode(view, offset). Sizes of the primitives are those of the C ABI (abi.h asserts them);
// struct sizes, alignments and offsets come from the runtime's description only.
function describeValue(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}`;
  if (typeof v === 'object') return v.constructor ? `${v.constructor.name} object` : 'object';
  return `${typeof v} ${String(v)}`;
}

class IntType {
  constructor(name, bits, signed) {
    this.name = name;
    this.size = bits / 8;
    this.bits = bits;
    this.signed = signed;
    this.big = bits === 64;
    this.lo = signed ? -(2n ** BigInt(bits - 1)) : 0n;
    this.hi = signed ? 2n ** BigInt(bits - 1) - 1n : 2n ** BigInt(bits) - 1n;
    this.loN = Number(this.lo);
    this.hiN = Number(this.hi);
    // One accessor pair per type, chosen once (not a switch on the name per call).
    const le = true;
    [this.write, this.read] = {
      u8: [(v, o, x) => v.setUint8(o, x), (v, o) => v.getUint8(o)],
      i8: [(v, o, x) => v.setInt8(o, x), (v, o) => v.getInt8(o)],
      u16: [(v, o, x) => v.setUint16(o, x, le), (v, o) => v.getUint16(o, le)],
      i16: [(v, o, x) => v.setInt16(o, x, le), (v, o) => v.getInt16(o, le)],
      u32: [(v, o, x) => v.setUint32(o, x, le), (v, o) => v.getUint32(o, le)],
      i32: [(v, o, x) => v.setInt32(o, x, le), (v, o) => v.getInt32(o, le)],
      u64: [(v, o, x) => v.setBigUint64(o, x, le), (v, o) => v.getBigUint64(o, le)],
      i64: [(v, o, x) => v.setBigInt64(o, x, le), (v, o) => v.getBigInt64(o, le)],
    }[name];
  }

  check(value, where) {
    if (typeof value === 'number') {
      if (!Number.isInteger(value)) {
        throw new ArgumentError(`${where}: expected an integer (${this.name}), got ${describeValue(value)}`);
      }
      if (!this.big) {
        if (value < this.loN || value > this.hiN) {
          throw new OutOfRangeError(`${where}: ${value} is outside the range of ${this.name} ` +
                                    `[${this.lo}, ${this.hi}]; nothing is truncated`);
        }
        return value;
      }
      value = BigInt(value);
    } else if (typeof value !== 'bigint') {
      throw new ArgumentError(`${where}: expected an integer (${this.name}: a number or a ` +
                              `BigInt), got ${describeValue(value)}`);
    }
    if (value < this.lo || value > this.hi) {
      throw new OutOfRangeError(`${where}: ${value} is outside the range of ${this.name} ` +
                                `[${this.lo}, ${this.hi}]; nothing is truncated`);
    }
    return this.big ? value : Number(value);
  }

  encode(view, off, value, keep, where) {
    this.write(view, off, this.check(value, where));
  }

  decode(view, off) {
    return this.read(view, off);
  }
}

const F32_MAX = 3.4028234663852886e38;
class FloatType {
  constructor(name) {
    this.name = name;
    this.size = name === 'f32' ? 4 : 8;
  }

  encode(view, off, value, keep, where) {
    if (typeof value !== 'number') {
      throw new ArgumentError(`${where}: expected a number (${this.name}), got ${describeValue(value)}`);
    }
    if (this.size === 4) {
      if (Number.isFinite(value) && !Number.isFinite(Math.fround(value))) {
        throw new OutOfRangeError(`${where}: ${value} is beyond the largest f32 (${F32_MAX}); ` +
                                  `pass Infinity explicitly if that is what you mean`);
      }
      view.setFloat32(off, value, true);
    } else {
      view.setFloat64(off, value, true);
    }
  }

  decode(view, off) {
    return this.size === 4 ? view.getFloat32(off, true) : view.getFloat64(off, true);
  }
}

const BoolType = {
  name: 'bool', size: 1,
  encode(view, off, value, keep, where) {
    if (value !== true && value !== false) {
      throw new ArgumentError(`${where}: expected a boolean, got ${describeValue(value)}`);
    }
    view.setUint8(off, value ? 1 : 0);
  },
  decode(view, off) {
    return view.getUint8(off) !== 0;
  },
};

const PtrType = {
  name: 'Ptr', size: 8,
  encode(view, off, value, keep, where) {
    if (value === null || value === undefined) {
      view.setBigUint64(off, 0n, true);
    } else if ((typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) ||
               (typeof value === 'bigint' && value >= 0n && value <= MASK64)) {
      view.setBigUint64(off, BigInt(value), true);
    } else {
      throw new ArgumentError(`${where}: expected an address (a non-negative integer or BigInt) ` +
                              `or null, got ${describeValue(value)}`);
    }
  },
  decode(view, off) {
    const v = view.getBigUint64(off, true);
    return v === 0n ? null : v;
  },
};

// The memory a call's arguments point into (encoded strings, copied bytes, array storage),
// held until the call returns; encode() gets it as `keep`. Strings and byte copies go into a
// scratch buffer allocated once and reused by every call made with the same ArgMemory (a
// contract object keeps one per function: no allocation and no addon call per argument); what
// does not fit gets a Buffer of its own, held until release() (the call returned). reset() starts
// the next call: a contract object never lets two calls in progress share one (a call made
// while another is in progress, even one made by a getter while the other's arguments are being
// encoded, gets its own).
const SCRATCH_SIZE = 1024;
// Guest contract calls pass the strings of up to this many StringView parameters to the addon
// (PP_DIRECT_MAX in polyplug_node.c).
const DIRECT_MAX = 4;
const ASCII_LOOP_MAX = 64;
class ArgMemory {
  constructor() {
    this.scratch = null; // a slab, made the first time something fits
    this.used = 0;
    this.held = [];
  }

  reset() {
    this.used = 0;
    this.release();
  }

  /** Lets go of the Buffers of their own (the call returned); the scratch memory stays. */
  release() {
    if (this.held.length !== 0) this.held.length = 0;
  }

  /** Holds value (anything the call points into) until the call returns. */
  push(value) {
    this.held.push(value);
  }

  /** Holds a Buffer of its own and writes its address at view[off] (0 when empty); returns its
   *  length. */
  hold(view, off, bytes) {
    if (bytes.length === 0) {
      writeAddress(view, off, 0);
      return 0;
    }
    this.held.push(bytes);
    writeAddress(view, off, native.addressOf(bytes));
    return bytes.length;
  }

  // The scratch offset for up to n bytes, or -1 when they do not fit.
  _room(n) {
    if (this.scratch === null) {
      if (n > SCRATCH_SIZE) return -1;
      this.scratch = slab(SCRATCH_SIZE);
    }
    return this.used + n <= SCRATCH_SIZE ? this.used : -1;
  }

  /** value as UTF-8 (lone surrogates become U+FFFD, as Buffer.from does); writes the address at
   *  view[off] and returns the length. */
  string(view, off, value) {
    if (value.length === 0) return this.hold(view, off, value);
    const at = this._room(value.length * 3); // at most 3 UTF-8 bytes per UTF-16 unit
    if (at < 0) return this.hold(view, off, Buffer.from(value, 'utf8'));
    const buf = this.scratch.buf;
    // Short ASCII strings are copied here: Buffer's write is a call into C++ that costs more
    // than the loop. Anything else (non-ASCII, longer) is encoded by write, which turns a lone
    // surrogate into U+FFFD as Buffer.from does.
    let len = 0;
    if (value.length <= ASCII_LOOP_MAX) {
      for (; len < value.length; len++) {
        const c = value.charCodeAt(len);
        if (c >= 0x80) break;
        buf[at + len] = c;
      }
    }
    if (len < value.length) len = buf.write(value, at);
    this.used = at + len;
    writeAddress(view, off, this.scratch.address + at);
    return len;
  }

  /** A copy of a Uint8Array's bytes (the callee cannot write into the caller's array). */
  copy(view, off, bytes) {
    if (bytes.length === 0) return this.hold(view, off, bytes);
    const at = this._room(bytes.length);
    if (at < 0) return this.hold(view, off, Buffer.from(bytes));
    this.scratch.buf.set(bytes, at);
    this.used = at + bytes.length;
    writeAddress(view, off, this.scratch.address + at);
    return bytes.length;
  }
}

const StringViewType = {
  name: 'StringView', size: 16,
  encode(view, off, value, keep, where) {
    let len;
    if (typeof value === 'string') {
      len = keep.string(view, off, value);
    } else if (value instanceof Uint8Array) {
      len = keep.copy(view, off, value);
    } else {
      throw new ArgumentError(`${where}: expected a string or a Uint8Array (StringView), got ` +
                              `${describeValue(value)}`);
    }
    writeAddress(view, off + 8, len);
  },
  decode(view, off) {
    const len = readSize(view, off + 8);
    return len === 0 ? '' : readString(readAddress(view, off), len, 'a StringView');
  },
};

const BufferType = {
  name: 'Buffer', size: 24,
  encode(view, off, value, keep, where) {
    if (!(value instanceof Uint8Array)) {
      throw new ArgumentError(`${where}: expected a Uint8Array or Buffer (Buffer), got ` +
                              `${describeValue(value)}`);
    }
    const len = keep.copy(view, off, value);
    writeAddress(view, off + 8, len);
    writeAddress(view, off + 16, len);
  },
  decode(view, off) {
    const len = readSize(view, off + 8);
    return len === 0 ? Buffer.alloc(0) : readBytes(readAddress(view, off), len, 'a Buffer');
  },
};

class EnumType {
  constructor(name, repr, bitflag, variants) {
    this.name = name;
    this.repr = repr;
    this.size = repr.size;
    this.bitflag = bitflag;
    // Values as the repr decodes them: numbers, or BigInts for a 64-bit repr.
    const norm = (v) => (repr.big ? BigInt(v) : Number(v));
    this.variants = new Map(variants.map(([k, v]) => [k, norm(v)]));
    this.names = new Map(variants.map(([k, v]) => [norm(v), k]));
  }

  encode(view, off, value, keep, where) {
    let number;
    if (typeof value === 'string') {
      // BigInt arithmetic: exact for every repr up to u64 (numbers' | is 32-bit).
      let bits = 0n;
      for (const raw of this.bitflag ? value.split('|') : [value]) {
        const part = raw.trim();
        if (!this.variants.has(part)) {
          throw new ArgumentError(`${where}: ${JSON.stringify(value)} is not a variant of ` +
                                  `${this.name} (${[...this.variants.keys()].join(', ')})`);
        }
        bits |= BigInt(this.variants.get(part));
      }
      number = this.repr.check(bits, `${where} (${this.name})`);
    } else {
      number = this.repr.check(value, `${where} (${this.name})`);
      if (!this.bitflag && !this.names.has(number)) {
        throw new ArgumentError(`${where}: ${number} is not a value of ${this.name} (` +
                                [...this.variants].map(([k, v]) => `${k}=${v}`).join(', ') + ')');
      }
    }
    this.repr.encode(view, off, number, keep, where);
  }

  // A known variant's name; a flag set or a value this description does not know: the number.
  decode(view, off) {
    const n = this.repr.decode(view, off);
    if (this.bitflag) return n;
    const name = this.names.get(n);
    return name === undefined ? n : name;
  }
}

class StructType {
  constructor(name, size, align, fields) {
    this.name = name;
    this.size = size;
    this.align = align;
    this.fields = fields; // [{name, type, offset}]
    this.fieldNames = fields.map((f) => f.name);
    let end = 0;
    for (const f of fields) {
      if (f.offset < end || f.offset + f.type.size > size) {
        throw new ContractFileError(`${name}.${f.name}: offset ${f.offset} (size ` +
                                    `${f.type.size}) does not fit the ${size}-byte struct ` +
                                    `after the previous field`);
      }
      end = f.offset + f.type.size;
    }
  }

  encode(view, off, value, keep, where) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new ArgumentError(`${where}: expected a ${this.name} (an object with the fields ` +
                              `${this.fieldNames.join(', ')}), got ${describeValue(value)}`);
    }
    const keys = Object.keys(value);
    const missing = this.fieldNames.filter((f) => !(f in value));
    const extra = keys.filter((k) => !this.fieldNames.includes(k));
    if (missing.length || extra.length) {
      throw new ArgumentError(`${where}: a ${this.name} needs exactly the fields ` +
                              this.fieldNames.join(', ') +
                              (missing.length ? `; missing ${missing.join(', ')}` : '') +
                              (extra.length ? `; unknown ${extra.join(', ')}` : ''));
    }
    for (const f of this.fields) {
      f.type.encode(view, off + f.offset, value[f.name], keep, `${where}.${f.name}`);
    }
  }

  decode(view, off) {
    const out = {};
    for (const f of this.fields) out[f.name] = f.type.decode(view, off + f.offset);
    return out;
  }
}

// `Array<T>` of contract functions: {const T* items; size_t len}; elements are T's size apart.
class ArrayType {
  constructor(element) {
    this.element = element;
    this.name = `Array<${element.name}>`;
    this.size = 16;
  }

  encode(view, off, value, keep, where) {
    const el = this.element;
    if (el.name === 'u8' && value instanceof Uint8Array) {
      keep.copy(view, off, value);
    } else if (Array.isArray(value)) {
      const storage = Buffer.alloc(value.length * el.size);
      const sv = viewOf(storage);
      for (let i = 0; i < value.length; i++) {
        el.encode(sv, i * el.size, value[i], keep, `${where}[${i}]`);
      }
      keep.hold(view, off, storage);
    } else {
      throw new ArgumentError(`${where}: expected an array (${this.name}), got ${describeValue(value)}`);
    }
    writeAddress(view, off + 8, value.length);
  }

  decode(view, off) {
    const len = readSize(view, off + 8);
    if (len === 0) return [];
    const el = this.element;
    if (len > (1 << 30) / el.size) {
      throw new errors.InvalidPointerError(`${this.name}: the provider claims ${len} elements, ` +
                                           `over the 1 GiB limit`);
    }
    const copy = readBytes(readAddress(view, off), len * el.size, `an ${this.name}`);
    const cv = viewOf(copy);
    const out = new Array(len);
    for (let i = 0; i < len; i++) out[i] = el.decode(cv, i * el.size);
    return out;
  }
}

const PRIMITIVES = {
  u8: new IntType('u8', 8, false), u16: new IntType('u16', 16, false),
  u32: new IntType('u32', 32, false), u64: new IntType('u64', 64, false),
  i8: new IntType('i8', 8, true), i16: new IntType('i16', 16, true),
  i32: new IntType('i32', 32, true), i64: new IntType('i64', 64, true),
  f32: new FloatType('f32'), f64: new FloatType('f64'), bool: BoolType, Ptr: PtrType,
  StringView: StringViewType, Buffer: BufferType,
};

// ---- descriptions ("polyplug-contracts 1") ---------------------------------------------------
const HEADER = 'polyplug-contracts 1';

class ContractFunction {
  constructor(contract, name, id, argsSize, argsAlign, result, params) {
    Object.assign(this, { contract, name, id, argsSize, argsAlign, result, params });
    // The indices of the first DIRECT_MAX StringView parameters: a string passed for one of
    // them is handed to the addon, which encodes it (see GuestContract._invoke).
    this.direct = [];
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      if (p.offset + p.type.size > argsSize) {
        throw new ContractFileError(`${contract}.${name}(${p.name}): offset ${p.offset} does not ` +
                                    `fit the ${argsSize}-byte argument struct`);
      }
      p.where = `${contract}.${name}(${p.name})`;
      p.direct = p.type === StringViewType && this.direct.length < DIRECT_MAX;
      if (p.direct) this.direct.push(i);
    }
    this.signature = `${name}(` + params.map((p) => `${p.name}: ${p.type.name}`).join(', ') + ')' +
      (result ? ` -> ${result.name}` : '');
    this.outSize = result ? result.size : 0;
  }
}

class Contract {
  constructor(description, side, name, version, id, singleton) {
    Object.assign(this, { description, side, name, version, id, singleton });
    this.major = version[0];
    this.functions = [];
    this.byName = new Map();
  }

  doc() {
    return [`${this.side} contract ${this.name}@${this.major} (version ${this.version.join('.')}, ` +
            `id 0x${this.id.toString(16).padStart(16, '0')})`,
            ...this.functions.map((f) => `  ${f.signature}`)].join('\n');
  }
}

/** A parsed description: enums, structs and contracts of one contract file. */
class Description {
  constructor(text, source = '<description>') {
    this.source = source;
    this.enums = new Map();
    this.structs = new Map();
    this.contracts = [];
    this.parse(text);
  }

  type(spelling, where) {
    if (Object.prototype.hasOwnProperty.call(PRIMITIVES, spelling)) return PRIMITIVES[spelling];
    if (this.enums.has(spelling)) return this.enums.get(spelling);
    if (this.structs.has(spelling)) return this.structs.get(spelling);
    if (spelling.startsWith('Array<') && spelling.endsWith('>')) {
      const inner = spelling.slice(6, -1);
      if (inner === 'Void' || inner.startsWith('Array<')) {
        throw new ContractFileError(`${where}: ${spelling} is not a valid array type`);
      }
      return new ArrayType(this.type(inner, where));
    }
    throw new ContractFileError(`${where}: unknown type ${JSON.stringify(spelling)}`);
  }

  contract(name, side) {
    const c = this.contracts.find((x) => x.name === name && (!side || x.side === side));
    if (c) return c;
    const names = this.contracts.map((x) => `${x.name} (${x.side})`).join(', ') || 'none';
    throw new ContractFileError(`${this.source}: no ${side || ''} contract named ` +
                                `${JSON.stringify(name)}; it declares ${names}`);
  }

  parse(text) {
    const lines = text.split('\n');
    if (lines[0] !== HEADER) {
      throw new ContractFileError(`${this.source}: not a contract description (first line ` +
                                  `${JSON.stringify(lines[0].slice(0, 40))}, expected ` +
                                  `${JSON.stringify(HEADER)}): the runtime may be newer or ` +
                                  `older than this module`);
    }
    let pos = 1;
    const skip = () => { while (pos < lines.length && lines[pos] === '') pos++; };
    const take = (kind, count) => {
      skip();
      if (pos >= lines.length) {
        throw new ContractFileError(`${this.source}: the description ends early (expected a ${kind} record)`);
      }
      const f = lines[pos].split(' ');
      const lineNo = ++pos;
      if (f[0] !== kind || f.length !== count) {
        throw new ContractFileError(`${this.source}: description line ${lineNo}: expected ${kind} ` +
                                    `with ${count - 1} fields, got ${JSON.stringify(lines[lineNo - 1])}`);
      }
      return [f, lineNo];
    };
    const num = (t, lineNo) => {
      if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(t)) {
        throw new ContractFileError(`${this.source}: description line ${lineNo}: ` +
                                    `${JSON.stringify(t)} is not a number`);
      }
      const v = BigInt(t);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    };
    const big = (t, lineNo) => BigInt(num(t, lineNo));
    for (skip(); pos < lines.length; skip()) {
      const kind = lines[pos].split(' ', 1)[0];
      if (kind === 'enum') {
        const [f, ln] = take('enum', 5);
        const repr = PRIMITIVES[f[2]];
        if (!(repr instanceof IntType) || repr.signed) {
          throw new ContractFileError(`${this.source}: line ${ln}: bad enum repr ${JSON.stringify(f[2])}`);
        }
        const variants = [];
        for (let i = num(f[4], ln); i > 0; i--) {
          const [v, vln] = take('variant', 3);
          variants.push([v[1], num(v[2], vln)]);
        }
        this.enums.set(f[1], new EnumType(f[1], repr, f[3] === '1', variants));
      } else if (kind === 'struct') {
        const [f, ln] = take('struct', 5);
        const fields = [];
        for (let i = num(f[4], ln); i > 0; i--) {
          const [fl, fln] = take('field', 4);
          fields.push({ name: fl[1], type: this.type(fl[2], `${f[1]}.${fl[1]}`), offset: num(fl[3], fln) });
        }
        this.structs.set(f[1], new StructType(f[1], num(f[2], ln), num(f[3], ln), fields));
      } else if (kind === 'contract') {
        const [f, ln] = take('contract', 9);
        if (f[1] !== 'guest' && f[1] !== 'host') {
          throw new ContractFileError(`${this.source}: line ${ln}: side ${JSON.stringify(f[1])}`);
        }
        const c = new Contract(this, f[1], f[2], [num(f[3], ln), num(f[4], ln), num(f[5], ln)],
                               big(f[6], ln), f[7] === '1');
        for (let i = num(f[8], ln); i > 0; i--) {
          const [fn, fnl] = take('function', 7);
          const result = fn[5] === 'Void' ? null : this.type(fn[5], `${c.name}.${fn[1]}`);
          const params = [];
          for (let j = num(fn[6], fnl); j > 0; j--) {
            const [p, pln] = take('param', 4);
            params.push({ name: p[1], type: this.type(p[2], `${c.name}.${fn[1]}.${p[1]}`),
                          offset: num(p[3], pln) });
          }
          const func = new ContractFunction(c.name, fn[1], num(fn[2], fnl), num(fn[3], fnl),
                                            num(fn[4], fnl), result, params);
          c.functions.push(func);
          c.byName.set(func.name, func);
        }
        const expected = (c.side === 'guest' ? guestContractId : hostContractId)(c.name, c.major);
        if (expected !== c.id) {
          throw new ContractFileError(`${this.source}: contract ${c.name}@${c.major} has id ` +
                                      `0x${c.id.toString(16)}, expected 0x${expected.toString(16)}`);
        }
        this.contracts.push(c);
      } else {
        throw new ContractFileError(`${this.source}: description line ${pos + 1}: unknown record ` +
                                    `${JSON.stringify(lines[pos])}`);
      }
    }
  }
}

// ---- argument packing ------------------------------------------------------------------------
// What one call of a function uses: its argument and result areas, the memory its arguments
// point into (keep), and for guest contracts the call block the addon reads (see
// GuestContract._invoke). A contract object makes one per function the first time it is called
// and reuses it; a call made while another is in progress gets a new one. The result area is
// zeroed before each call (by the addon for guest contracts: see pp_call).
// strings: for a guest contract call (guest true), the scratch memory the addon encodes direct
// string arguments into.
function callSlot(fn, guest = false) {
  return { args: fn.argsSize ? slab(fn.argsSize) : null, out: fn.outSize ? slab(fn.outSize) : null,
           keep: new ArgMemory(), block: null, generation: -1,
           strings: guest && fn.direct.length ? slab(SCRATCH_SIZE) : null };
}

// Encodes args into slot (its previous call's argument memory is released first). With direct
// (guest contract calls), a string for a direct StringView parameter is left to the addon.
function pack(fn, args, slot, direct = false) {
  const params = fn.params;
  if (args.length !== params.length) {
    throw new ArgumentError(`${fn.contract}.${fn.signature} takes ${params.length} ` +
                            `argument(s), got ${args.length}`);
  }
  const keep = slot.keep;
  keep.reset();
  if (slot.args) {
    const view = slot.args.view;
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      if (direct && p.direct && typeof args[i] === 'string') continue;
      p.type.encode(view, p.offset, args[i], keep, p.where);
    }
  }
}

function unpackResult(fn, slot) {
  return fn.result ? fn.result.decode(slot.out.view, 0) : undefined;
}

// ---- library lookup --------------------------------------------------------------------------
const SONAME = 'libpolyplug.so.0';
const LIBRARY_ENV = 'POLYPLUG_LIBRARY';
const LOADER_DIR_ENV = 'POLYPLUG_LOADER_DIR';

function openRuntimeLibrary(library) {
  const how = `pass { library: '/path/to/libpolyplug.so' } to new Runtime(), or set ` +
    `${LIBRARY_ENV} to its path, or make ${SONAME} findable by the dynamic loader ` +
    `(LD_LIBRARY_PATH, ldconfig)`;
  let source;
  let target;
  if (library !== undefined && library !== null) {
    if (typeof library !== 'string') throw new ArgumentError('library must be a path string');
    [source, target] = ['the library option', library];
  } else if (process.env[LIBRARY_ENV]) {
    [source, target] = [`$${LIBRARY_ENV}`, process.env[LIBRARY_ENV]];
  } else {
    [source, target] = ['the dynamic loader', SONAME];
  }
  try {
    const opened = native.openLibrary(target);
    let found = opened.path;
    if (found.includes('/')) found = path.resolve(found);
    return { library: opened.library, path: found };
  } catch (e) {
    if (e.code === 'EPPNOTPP') {
      throw new LibraryNotFoundError(`${JSON.stringify(target)} (from ${source}) ${e.message}: ` +
                                     `it is not libpolyplug.so`);
    }
    throw new LibraryNotFoundError(`cannot open libpolyplug (${JSON.stringify(target)}, from ` +
                                   `${source}): ${e.message}; ${how}`);
  }
}

function loaderCandidates(lang, runtimePath) {
  const name = `libpolyplug-loader-${lang}.so`;
  const out = [];
  const env = process.env[LOADER_DIR_ENV];
  if (env) out.push(path.join(env, name), path.join(env, lang, name));
  if (runtimePath && runtimePath.includes('/')) {
    const here = path.dirname(fs.realpathSync(runtimePath));
    out.push(path.join(here, name), path.join(here, 'loaders', lang, name),
             path.join(here, 'polyplug', name));
  }
  out.push(name);
  return out;
}

// ---- the runtime -----------------------------------------------------------------------------
const COMPATIBILITY = { strict: 0, relaxed: 1, yolo: 2 };
const LOG_LEVELS = { error: 1, warn: 2, info: 3, debug: 4, trace: 5 };
const LOG_LEVEL_NAMES = Object.fromEntries(Object.entries(LOG_LEVELS).map(([k, v]) => [v, k]));
const PHASE_NAMES = { 0: 'Preparing', 1: 'Reloaded', 2: 'Failed', 3: 'Unloading' };
const LANGUAGE_NAMES = { 0: 'Rust', 1: 'Cpp', 2: 'Dotnet', 3: 'Python', 4: 'Lua', 5: 'JavaScript' };
const RUNTIME_CONTRACT_ID = 0xe847ef18831f2333n;
const FN_LOAD_DIRS = 0;
const FN_UNLOAD_CASCADE = 1;
const FN_SET_UNMAP_POLICY = 2;
const FN_BUNDLE_INFO = 3;
const FN_WATCH = 4;
const FN_UNWATCH = 5;
const FN_POLL_WATCH = 6;
const FN_DESCRIBE_CONTRACT_FILE = 7;
const WATCH_MANUAL = 1;
const RUNTIME_OPTIONS = ['library', 'loaders', 'hotReload', 'compatibility', 'logLevel',
                         'onReload', 'log'];

// Directories as a C array of StringViews (their bytes pinned in keep).
function directoryViews(dirs, keep) {
  const list = typeof dirs === 'string' ? [dirs] : dirs;
  if (!Array.isArray(list) || list.some((d) => typeof d !== 'string')) {
    throw new ArgumentError('expected a directory path or an array of them');
  }
  const views = slab(16 * list.length);
  list.forEach((d, i) => StringViewType.encode(views.view, 16 * i, d, keep, 'directory'));
  keep.push(views.buf);
  return { address: list.length ? views.address : 0, count: list.length };
}

/** A polyplug runtime over libpolyplug.so.
 *
 *  new Runtime({ library, loaders: ['lua', 'js'], hotReload: false, compatibility: 'strict',
 *                logLevel: 'warn', onReload(event), log(record) })
 *
 *  onReload receives { phase, bundleId, bundleName, reason }; log { level, scope, message }.
 *  Both run on the JavaScript thread, inside the runtime operation that triggered them; an
 *  exception they throw is rethrown as CallbackError when that operation returns. */
class Runtime {
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') {
      throw new ArgumentError('new Runtime(options): options must be an object');
    }
    const unknown = Object.keys(options).filter((k) => !RUNTIME_OPTIONS.includes(k));
    if (unknown.length) {
      throw new ArgumentError(`unknown Runtime option(s) ${unknown.join(', ')}; the options are ` +
                              RUNTIME_OPTIONS.join(', '));
    }
    const { library, loaders = [], hotReload = false, compatibility = 'strict',
            logLevel = 'warn', onReload = null, log = null } = options;
    if (!(compatibility in COMPATIBILITY)) {
      throw new ArgumentError(`compatibility must be one of ${Object.keys(COMPATIBILITY).join(', ')}, ` +
                              `not ${describeValue(compatibility)}`);
    }
    if (!(logLevel in LOG_LEVELS)) {
      throw new ArgumentError(`logLevel must be one of ${Object.keys(LOG_LEVELS).join(', ')}, not ` +
                              `${describeValue(logLevel)}`);
    }
    for (const [name, cb] of [['onReload', onReload], ['log', log]]) {
      if (cb !== null && typeof cb !== 'function') {
        throw new ArgumentError(`${name} must be a function or null`);
      }
    }
    if (typeof hotReload !== 'boolean') throw new ArgumentError('hotReload must be a boolean');
    if (!Array.isArray(loaders)) throw new ArgumentError('loaders must be an array of names');
    const opened = openRuntimeLibrary(library);
    this.libraryPath = opened.path;
    this._pending = null;
    const guard = (fn) => (...a) => {
      try {
        fn(...a);
      } catch (e) {
        if (this._pending === null) this._pending = e;
      }
    };
    const reloadCb = onReload && guard((phase, id, name, reason) => onReload(
      { phase: PHASE_NAMES[phase] || `Unknown(${phase})`, bundleId: id, bundleName: name, reason }));
    const logCb = log && guard((level, scope, message) => log(
      { level: LOG_LEVEL_NAMES[level] || String(level), scope, message }));
    // The addon holds these weakly: they live as long as this object, and closures over it (the
    // guard's `this`, a user's callback using the runtime) do not keep it from being collected.
    this._callbacks = [reloadCb, logCb];
    this._rt = native.createRuntime(opened.library, COMPATIBILITY[compatibility], hotReload,
                                    LOG_LEVELS[logLevel], reloadCb, logCb);
    this._closed = false;
    this._contracts = new Set();
    this._descriptions = new Map();
    this._loaders = new Map();
    this._hostContracts = [];
    try {
      const rc = native.getHostContract(this._rt, RUNTIME_CONTRACT_ID, 1 << 16);
      if (!rc) throw new errors.HostContractNotFoundError('the runtime has no host.polyplug.Runtime@1');
      this._rtIface = new HostInterface(rc[0], rc[1]);
      for (const lang of loaders) this.addLoader(lang);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  _check() {
    if (this._closed) throw new ClosedError('the runtime is closed');
    return this._rt;
  }

  _pendingCallbackError() {
    if (this._pending !== null) {
      const e = this._pending;
      this._pending = null;
      throw new CallbackError(`a JavaScript callback threw: ${e && e.message}`, undefined, { cause: e });
    }
  }

  // A failed AbiError ([code, message]) with the runtime's last_error appended.
  _failure(result, what) {
    let message = result[1];
    const last = native.lastError(this._rt);
    if (last && !message.includes(last)) message = message ? `${message}: ${last}` : last;
    return errorFor(result[0], `${what}: ${message || 'failed (no message)'}`);
  }

  _finish(result, what) {
    if (result !== undefined) {
      const failure = this._failure(result, what);
      this._pendingCallbackError();
      throw failure;
    }
    this._pendingCallbackError();
  }

  // keep: what args points into besides itself (pinned for the call with args and out).
  _rtCall(fnId, args, out, what, keep = null) {
    const rt = this._check();
    native.clearLastError(rt);
    const entry = this._rtIface.entry(fnId);
    if (!entry) {
      throw new errors.FunctionNotAvailableError(`${what}: this libpolyplug.so's ` +
        `host.polyplug.Runtime@1 has no function ${fnId}; the runtime is older than this module`);
    }
    const mark = pin(args, out, keep); // (pin holds at most three values)
    let result;
    try {
      result = native.callHost(rt, entry, this._rtIface.data, args ? args.address : 0,
                               out ? out.address : 0);
    } finally {
      unpin(mark);
    }
    this._finish(result, what);
  }

  _free(ptr, size, align) {
    if (ptr) native.free(this._rt, ptr, size, align);
  }

  /** The address of the HostApi table. */
  get hostApi() {
    return native.hostApi(this._check());
  }

  /** The runtime's revision counter: it changes on every load, unload and reload. */
  get revision() {
    return native.revision(this._check());
  }

  /** How many log/on_reload callbacks were not delivered because they came from a thread
   *  other than the JavaScript thread (see docs/NODE_HOST.md, "Threads"). */
  get droppedCallbacks() {
    return native.droppedCallbacks(this._check());
  }

  get closed() {
    return this._closed;
  }

  /** Closes every contract object, then destroys the runtime. Idempotent. Throws BusyError,
   *  changing nothing, when called while a call into the runtime is in progress (from a log or
   *  onReload callback or a host contract implemented in JavaScript): close it after the call
   *  returns. */
  close() {
    if (this._closed) return;
    if (native.busy(this._rt) > 0) {
      throw new BusyError('close(): the runtime is busy: a call into it is in progress (this ' +
                          'is a callback or host contract run inside it); close it after the ' +
                          'call returns');
    }
    for (const c of [...this._contracts]) c.close();
    this._closed = true;
    native.destroyRuntime(this._rt);
    this._hostContracts = [];
  }

  // ---- loaders -------------------------------------------------------------------------------
  /** Opens libpolyplug-loader-<lang>.so (path, else $POLYPLUG_LOADER_DIR, else beside
   *  libpolyplug.so, else the dynamic loader) and registers its loader; returns the file. */
  addLoader(lang, file) {
    const rt = this._check();
    if (typeof lang !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(lang)) {
      throw new ArgumentError(`a loader language is a name like 'lua', not ${describeValue(lang)}`);
    }
    if (this._loaders.has(lang)) {
      throw new errors.DuplicateProviderError(`the ${lang} loader is already registered`);
    }
    const symbol = `polyplug_loader_${lang}_create`;
    const tried = file !== undefined ? [file] : loaderCandidates(lang, this.libraryPath);
    const failures = [];
    for (const candidate of tried) {
      if (candidate.includes('/') && !fs.existsSync(candidate)) {
        failures.push(`${candidate}: no such file`);
        continue;
      }
      let opened;
      try {
        opened = native.openLoader(candidate, symbol);
      } catch (e) {
        failures.push(`${candidate}: ${e.message}`);
        continue;
      }
      native.clearLastError(rt);
      this._finish(native.registerLoader(rt, opened.loader),
                   `registering the ${lang} loader from ${opened.path}`);
      this._loaders.set(lang, opened.path);
      return opened.path;
    }
    throw new LibraryNotFoundError(`no loader module for ${lang}: tried ${failures.join('; ')}. ` +
                                   `Pass the file, set ${LOADER_DIR_ENV}, or build it ` +
                                   `(-D${lang}=enabled)`);
  }

  // ---- bundles -------------------------------------------------------------------------------
  _bundleIds() {
    return native.listBundles(this._check());
  }

  _bundleId(which) {
    this._check();
    if (typeof which === 'bigint') {
      if (which < 0n || which > MASK64) throw new OutOfRangeError(`bundle id ${which} is not a u64`);
      return which;
    }
    if (which !== null && typeof which === 'object' && typeof which.id === 'bigint') return which.id;
    if (typeof which !== 'string') {
      throw new ArgumentError(`a bundle is named by id (BigInt), name (string) or bundle object, ` +
                              `not ${describeValue(which)}`);
    }
    const id = bundleId(which);
    if (!this._bundleIds().includes(id)) {
      const loaded = this.bundles().map((b) => b.name).join(', ') || 'none';
      throw new errors.NotFoundError(`no bundle named ${JSON.stringify(which)} is loaded ` +
                                     `(loaded: ${loaded})`);
    }
    return id;
  }

  /** A loaded bundle, by id (BigInt), name or bundle object:
   *  { id, name, version: [major, minor, patch], language, loader, path, contracts }. */
  bundle(which) {
    const id = this._bundleId(which);
    const args = slab(8);
    args.view.setBigUint64(0, id, true);
    const out = slab(120);
    this._rtCall(FN_BUNDLE_INFO, args, out, `bundle(${String(which)})`);
    const v = out.view;
    const text = (off) => {
      const len = readSize(v, off + 8);
      return len ? readString(readAddress(v, off), len, 'bundle info') : '';
    };
    try {
      const n = readSize(v, 104);
      const ids = n ? viewOf(readBytes(readAddress(v, 96), n * 8, 'bundle info contracts')) : null;
      const contracts = [];
      for (let i = 0; i < n; i++) contracts.push(ids.getBigUint64(8 * i, true));
      const language = v.getUint32(20, true);
      return { id: v.getBigUint64(0, true), name: text(24),
               version: [v.getUint32(8, true), v.getUint32(12, true), v.getUint32(16, true)],
               language: LANGUAGE_NAMES[language] || String(language), loader: text(72),
               path: text(48), contracts };
    } finally {
      for (const off of [24, 48, 72]) this._free(readAddress(v, off), readSize(v, off + 16), 1);
      this._free(readAddress(v, 96), readSize(v, 104) * 8, readSize(v, 112));
    }
  }

  /** Every loaded bundle. */
  bundles() {
    return this._bundleIds().map((id) => this.bundle(id));
  }

  /** Loads the bundle in directory `dir`; returns its bundle object. */
  load(dir) {
    const rt = this._check();
    if (typeof dir !== 'string') throw new ArgumentError(`load(dir): dir must be a path string`);
    const before = new Set(this._bundleIds());
    native.clearLastError(rt);
    this._finish(native.loadBundle(rt, dir), `load(${JSON.stringify(dir)})`);
    const added = this._bundleIds().filter((b) => !before.has(b));
    if (added.length !== 1) {
      throw new errors.GenericError(`load(${JSON.stringify(dir)}) succeeded but ${added.length} ` +
                                    `new bundles appeared`);
    }
    return this.bundle(added[0]);
  }

  /** Discovers and loads every bundle under these plugin directories, providers first (all or
   *  nothing). Returns { loaded, skipped, diagnostics }. */
  loadDirs(dirs) {
    this._check();
    const keep = new ArgMemory();
    const list = directoryViews(dirs, keep);
    const args = slab(16);
    writeAddress(args.view, 0, list.address);
    writeAddress(args.view, 8, list.count);
    const out = slab(32);
    this._rtCall(FN_LOAD_DIRS, args, out, `loadDirs(${JSON.stringify(dirs)})`, keep);
    const v = out.view;
    const len = readSize(v, 16);
    const ptr = readAddress(v, 8);
    try {
      return { loaded: v.getUint32(0, true), skipped: v.getUint32(4, true),
               diagnostics: len ? readString(ptr, len, 'loadDirs diagnostics') : '' };
    } finally {
      this._free(ptr, readSize(v, 24), 1);
    }
  }

  /** Reloads a bundle from its directory: a path, or a loaded bundle's name, id or object. The
   *  old version keeps serving when the new one fails (an error is thrown, phase Failed). */
  reload(which) {
    let dir;
    if (typeof which === 'string' && (which.includes('/') || isDirectory(which))) {
      dir = which;
    } else {
      dir = this.bundle(which).path;
    }
    const rt = this._check();
    native.clearLastError(rt);
    this._finish(native.reloadBundle(rt, dir), `reload(${JSON.stringify(dir)})`);
  }

  /** Unloads one bundle (by name, id or bundle object). */
  unload(which) {
    const id = this._bundleId(which);
    native.clearLastError(this._rt);
    this._finish(native.unloadBundle(this._rt, id), `unload(${String(which)})`);
  }

  /** Unloads a bundle and, first, every bundle depending on it; returns how many. */
  unloadCascade(which) {
    const id = this._bundleId(which);
    const args = slab(8);
    args.view.setBigUint64(0, id, true);
    const out = slab(4);
    this._rtCall(FN_UNLOAD_CASCADE, args, out, `unloadCascade(${String(which)})`);
    return out.view.getUint32(0, true);
  }

  /** What happens to the code of bundles unloaded from now on: kept mapped for `graceMs`, or
   *  (`never: true`) never unmapped while the runtime lives (runtime_contract.h). */
  setUnmapPolicy({ never = false, graceMs = 0 } = {}) {
    const args = slab(8);
    PRIMITIVES.u32.encode(args.view, 4, graceMs, [], 'setUnmapPolicy graceMs');
    args.view.setUint32(0, never ? 1 : 0, true);
    this._rtCall(FN_SET_UNMAP_POLICY, args, null, 'setUnmapPolicy');
  }

  /** Watches plugin directories (needs hotReload: true). manual (the default): nothing happens
   *  until pollWatch(); manual: false: a runtime thread acts, and its log and onReload callbacks
   *  are dropped (counted in droppedCallbacks), since JavaScript runs on its own thread only. */
  watch(dirs, { debounceMs = 250, manual = true } = {}) {
    this._check();
    const keep = new ArgMemory();
    const list = directoryViews(dirs, keep);
    const args = slab(24);
    writeAddress(args.view, 0, list.address);
    writeAddress(args.view, 8, list.count);
    PRIMITIVES.u32.encode(args.view, 16, debounceMs, keep, 'watch debounceMs');
    args.view.setUint32(20, manual ? WATCH_MANUAL : 0, true);
    this._rtCall(FN_WATCH, args, null, `watch(${JSON.stringify(dirs)})`, keep);
  }

  unwatch() {
    this._rtCall(FN_UNWATCH, null, null, 'unwatch');
  }

  /** Acts on watched changes now; returns how many bundles were reloaded or loaded. */
  pollWatch() {
    const out = slab(4);
    this._rtCall(FN_POLL_WATCH, null, out, 'pollWatch');
    return out.view.getUint32(0, true);
  }

  // ---- contracts -----------------------------------------------------------------------------
  /** The runtime's description of a contract file ("polyplug-contracts 1" text). */
  describeContractFileText(file) {
    this._check();
    const keep = new ArgMemory();
    const args = slab(16);
    StringViewType.encode(args.view, 0, file, keep, 'contract file');
    const out = slab(24);
    try {
      this._rtCall(FN_DESCRIBE_CONTRACT_FILE, args, out, `contract file ${file}`, keep);
    } catch (e) {
      if (e instanceof errors.FunctionNotAvailableError || !(e instanceof PolyplugError)) throw e;
      throw new ContractFileError(e.message, e.code);
    }
    const v = out.view;
    const ptr = readAddress(v, 0);
    const len = readSize(v, 8);
    try {
      return len ? readString(ptr, len, 'contract description') : '';
    } finally {
      this._free(ptr, readSize(v, 16), 1);
    }
  }

  /** The parsed description of a contract file (cached by path and modification time). */
  describeContractFile(file) {
    this._check();
    if (typeof file !== 'string') throw new ArgumentError('a contract file is a path string');
    let key = file;
    let stamp = null;
    try {
      key = fs.realpathSync(file);
      stamp = fs.statSync(key).mtimeMs;
    } catch (e) {
      stamp = null;
    }
    const cached = this._descriptions.get(key);
    if (cached && stamp !== null && cached.stamp === stamp) return cached.description;
    const description = new Description(this.describeContractFileText(file), file);
    this._descriptions.set(key, { stamp, description });
    return description;
  }

  _decl(name, options, side) {
    if (typeof name !== 'string') {
      throw new ArgumentError(`a contract is named by a string, not ${describeValue(name)}`);
    }
    const opts = options || {};
    const unknown = Object.keys(opts).filter((k) => k !== 'api' && k !== 'version');
    if (unknown.length) {
      throw new ArgumentError(`${name}: unknown option(s) ${unknown.join(', ')} (api, version)`);
    }
    if (typeof opts.api !== 'string') {
      throw new ArgumentError(`${name}: pass { api: 'path/to/file.api.toml' }, the contract file ` +
                              `that declares it (its layouts come from there)`);
    }
    const decl = this.describeContractFile(opts.api).contract(name.split('@', 1)[0], side);
    let min = decl.major;
    if (opts.version !== undefined) {
      if (!Number.isInteger(opts.version) || opts.version < 0 || opts.version > 0xffffffff) {
        throw new ArgumentError(`${name}: version must be a u32 major version, not ` +
                                `${describeValue(opts.version)}`);
      }
      min = opts.version;
    }
    return { decl, min };
  }

  /** A contract object on the first provider of `name` (declared in contract file `api`) whose
   *  major version is at least `version` (default: the file's major). It follows reloads and
   *  moves to whichever provider is registered when that one goes away. */
  find(name, options) {
    const { decl, min } = this._decl(name, options, 'guest');
    return new (contractClass(decl, GuestContract))(this, decl, null, min);
  }

  /** One contract object per provider of `name`, each pinned to its provider. */
  findAll(name, options) {
    const { decl, min } = this._decl(name, options, 'guest');
    const cls = contractClass(decl, GuestContract);
    return native.findAll(this._check(), decl.id, min).map((h) => new cls(this, decl, h, min));
  }

  /** Implements host contract `name` (declared in contract file `api`) with an object whose
   *  methods are named after the contract's functions. Registered for the runtime's life. A
   *  thrown PolyplugError reaches the plugin with its code, any other exception as Panic. */
  registerHostContract(name, options, implementation) {
    const { decl } = this._decl(name, options, 'host');
    const reg = new HostImplementation(decl, implementation);
    const rt = this._check();
    native.clearLastError(rt);
    this._finish(native.registerHostContract(rt, decl.id, decl.version[0], decl.version[1],
                                             decl.version[2], decl.singleton,
                                             decl.functions.length, reg.dispatch),
                 `registerHostContract(${decl.name})`);
    this._hostContracts.push(reg);
    return reg;
  }

  /** A client of a registered host contract (yours, another host's or the runtime's). */
  hostContract(name, options) {
    const { decl, min } = this._decl(name, options, 'host');
    return new (contractClass(decl, HostContractClient))(this, decl, null, min);
  }

  /** A record through the runtime's logger. */
  log(level, scope, message) {
    const rt = this._check();
    if (!(level in LOG_LEVELS)) {
      throw new ArgumentError(`level must be one of ${Object.keys(LOG_LEVELS).join(', ')}`);
    }
    native.log(rt, LOG_LEVELS[level], String(scope), String(message));
  }
}

function isDirectory(p) {
  try {
    return fs.statSync(p).isDirectory();
  } catch (e) {
    return false;
  }
}

// An interface's native function table, read once (the plugin's claims bounded).
const MAX_FUNCTIONS = 1 << 16;
function readTable(what, countView, countOff, ptrOff) {
  const count = countView.getUint32(countOff, true);
  if (count > MAX_FUNCTIONS) {
    throw new errors.FunctionNotAvailableError(`${what}: the provider claims ${count} functions`);
  }
  if (count === 0) return [];
  const table = viewOf(readBytes(readAddress(countView, ptrOff), count * 8, `${what}'s function table`));
  const out = new Array(count);
  for (let i = 0; i < count; i++) out[i] = readAddress(table, 8 * i);
  return out;
}

class HostInterface {
  constructor(iface, data) {
    this.iface = iface;
    this.data = data;
    this.entries = readTable('host contract', viewOf(native.readBytes(iface, 80)), 64, 72);
  }

  entry(i) {
    return i < this.entries.length ? this.entries[i] : 0;
  }
}

// ---- contract objects ------------------------------------------------------------------------
const classCache = new WeakMap();
function contractClass(decl, base) {
  let perBase = classCache.get(decl);
  if (!perBase) classCache.set(decl, perBase = new Map());
  let cls = perBase.get(base);
  if (cls) return cls;
  cls = { [decl.name.replace(/\./g, '_')]: class extends base {} }[decl.name.replace(/\./g, '_')];
  for (const fn of decl.functions) {
    if (fn.name in base.prototype || fn.name === 'constructor') continue; // use .call(name)
    Object.defineProperty(cls.prototype, fn.name, {
      value: { [fn.name](...args) { return this._invoke(fn, args); } }[fn.name],
      writable: true, configurable: true,
    });
  }
  cls.doc = decl.doc();
  perBase.set(base, cls);
  return cls;
}

class Caller {
  /** Calls a function by name (for names that clash with this object's own members). */
  call(name, ...args) {
    const fn = this._decl.byName.get(name);
    if (!fn) {
      throw new UnknownFunctionError(`contract ${this._decl.name} has no function ` +
                                     `${JSON.stringify(name)}; it has ` +
                                     this._decl.functions.map((f) => f.name).join(', '));
    }
    return this._invoke(fn, args);
  }

  /** The signatures of the contract's functions. */
  get functions() {
    return this._decl.functions.map((f) => f.signature);
  }

  get contract() {
    return this._decl;
  }

  _slot(fn) {
    let slot = this._slots[fn.id];
    if (slot === undefined) slot = this._slots[fn.id] = callSlot(fn, true);
    return slot;
  }
}

const ARENA_SIZE = 4096;
// The addon's pp_call_block: offsets, size and flags (callSlot reads it).
const CALL_BLOCK = {
  seen: 0, fn: 8, data: 16, instance: 24, args: 32, out: 40, arena: 48, fnId: 56, flags: 60,
  outSize: 64, argsSize: 68, scratch: 72, scratchSize: 80, direct: 84, directOffset: 88,
  runtime: 104, size: 112, vm: 1, stringOut: 2,
};
const ARENA_HEADER = 48; // CallArena (40 bytes), the storage after it 16-byte aligned

// callSlot with the arguments of fn's direct StringView parameters (direct: their indices):
// the addon encodes those that are strings into the slot's scratch memory itself, inside the
// one Node-API call (pp_direct_strings); anything else there pack has encoded already. One call
// site per count, so that no arguments array is built for the crossing.
function callNative(block, direct, args) {
  switch (direct.length) {
    case 0: return native.callSlot(block);
    case 1: return native.callSlot(block, args[direct[0]]);
    case 2: return native.callSlot(block, args[direct[0]], args[direct[1]]);
    case 3: return native.callSlot(block, args[direct[0]], args[direct[1]], args[direct[2]]);
    default:
      return native.callSlot(block, args[direct[0]], args[direct[1]], args[direct[2]],
                             args[direct[3]]);
  }
}

/** One instance of a guest contract's provider; its functions are methods. close() destroys
 *  the instance (the runtime's close() closes every contract object). */
class GuestContract extends Caller {
  constructor(rt, decl, handle, min) {
    super();
    this._runtime = rt;
    this._rt = rt._check();
    this._decl = decl;
    this._min = min;
    this._pinned = handle !== null;
    this._handle = handle;
    this._iface = 0;
    this._entries = null;
    this._vm = null;
    this._gone = null;
    this._closed = false;
    this._depth = 0; // calls of this object in progress (more than 1: nested calls)
    this._slots = [];
    this._generation = 0; // bumped whenever _seen or the provider's entries change
    this._instance = slab(16);
    this._arena = this._newArena();
    this._seen = native.revision(this._rt);
    this._rtAddress = native.runtimeAddress(this._rt); // for the call blocks
    const failure = this._attach();
    if (failure) throw failure;
    rt._contracts.add(this);
  }

  _newArena() {
    const a = slab(ARENA_HEADER + ARENA_SIZE);
    const base = a.address + ARENA_HEADER;
    writeAddress(a.view, 0, base);
    writeAddress(a.view, 8, base + ARENA_SIZE);
    writeAddress(a.view, 16, base);
    writeAddress(a.view, 24, native.hostApi(this._rt));
    writeAddress(a.view, 32, 0);
    return a;
  }

  /** 'native' or 'vm' (the current provider's dispatch), null when detached. */
  get dispatch() {
    if (!this._iface) return null;
    return this._vm ? 'vm' : 'native';
  }

  _attach() {
    const decl = this._decl;
    if (!this._pinned) {
      this._handle = native.find(this._rt, decl.id, this._min);
      if (this._handle === -1) {
        return new errors.NotFoundError(`${decl.name}@${this._min}: no provider is loaded`);
      }
    }
    const iface = native.resolve(this._rt, this._handle);
    if (!iface) {
      native.clearLastError(this._rt);
      return new errors.StaleHandleError(`${decl.name}@${decl.major}: the provider is gone (unloaded)`);
    }
    const view = viewOf(native.readBytes(iface, 56));
    const dispatchType = view.getUint32(20, true);
    if (dispatchType !== 0 && dispatchType !== 1) {
      return new errors.FunctionNotAvailableError(`${decl.name}: unknown dispatch type ${dispatchType}`);
    }
    native.clearLastError(this._rt);
    if (!native.createInstance(this._rt, iface, this._instance.address)) {
      const why = native.lastError(this._rt);
      return new errors.GenericError(`${decl.name}: create_guest_instance failed: ${why || 'no message'}`);
    }
    try {
      this._readEntries(view);
    } catch (e) {
      // The instance exists: destroy it, or nothing ever would.
      native.destroyInstance(this._rt, iface, this._instance.address);
      throw e;
    }
    this._iface = iface;
    this._gone = null;
    return null;
  }

  _readEntries(view) {
    this._generation++;
    if (view.getUint32(20, true) === 1) {
      const call = readAddress(view, 40);
      this._vm = call ? { call, data: readAddress(view, 48) } : null;
      this._entries = null;
      if (!call) this._gone = new errors.FunctionNotAvailableError(`${this._decl.name}: the provider's VM entry is empty`);
    } else {
      this._vm = null;
      this._entries = readTable(this._decl.name, view, 40, 48);
    }
  }

  _detach() {
    if (!this._iface) return;
    native.destroyInstance(this._rt, this._iface, this._instance.address);
    native.arenaFree(this._rt, this._arena.address);
    this._iface = 0;
    this._entries = null;
    this._vm = null;
  }

  _refresh() {
    const rt = this._rt;
    const now = this._pinned ? this._handle : native.find(rt, this._decl.id, this._min);
    if (this._iface && now === this._handle && native.resolve(rt, now) === this._iface) {
      this._seen = native.revision(rt);
      this._readEntries(viewOf(native.readBytes(this._iface, 56)));
      return;
    }
    if (this._iface && this._depth > 1) {
      // A nested call (from a host contract run inside an outer call of this object) after a
      // reload or unload: detaching would destroy the instance the outer call is running in.
      throw new BusyError(`${this._decl.name}: the provider changed while a call of this ` +
                          `contract object is in progress; call again after it returns`);
    }
    this._seen = native.revision(rt);
    this._detach();
    this._gone = this._attach();
  }

  _invoke(fn, args) {
    if (this._closed) throw new ClosedError(`${this._decl.name}: this contract object is closed`);
    if (this._runtime._closed) throw new ClosedError(`${this._decl.name}: the runtime is closed`);
    // A call made from inside a call of this object (a host contract implemented in JavaScript
    // calling back, or a getter or Proxy in this call's arguments calling while they are being
    // encoded) gets its own slot (argument and result areas, argument memory, call block) and
    // arena: the outer call's are still in use. So the depth counts this call before pack runs.
    const nested = this._depth > 0;
    const slot = nested ? callSlot(fn, true) : this._slot(fn);
    this._depth++;
    let arena = this._arena;
    // No pin(): slot (what the arguments point into: its areas, scratch memory and held
    // Buffers) and arena are used in the finally block, after the native call, so they stay
    // alive through it even where a callback into JavaScript runs the garbage collector; the
    // string arguments the addon encodes are arguments of that call.
    try {
      pack(fn, args, slot, true);
      for (let attempt = 0; ; attempt++) {
        if (!this._iface) {
          // Detached (the provider went away): look again only when something changed.
          if (native.revision(this._rt) !== this._seen) this._refresh();
          if (!this._iface) {
            throw this._gone || new errors.StaleHandleError(`${this._decl.name}: no provider`);
          }
        }
        if (slot.generation !== this._generation) {
          if (nested && this._vm && arena === this._arena) arena = this._newArena();
          this._writeBlock(fn, slot, arena);
        }
        // One addon call: the revision check, the direct string arguments, the call, and a
        // StringView result as a string (whose pointer and length are the provider's claims:
        // see claimed).
        let result;
        try {
          result = callNative(slot.block.address, fn.direct, args);
        } catch (e) {
          throw claimFailure(e, 'a StringView');
        }
        // The type first: comparing a value of any type with -1 is a call to V8's generic
        // equality; a string or undefined is the usual answer.
        if (typeof result === 'string') return result;
        if (result === undefined) return unpackResult(fn, slot);
        if (typeof result !== 'number') {
          throw errorFor(result[0], `${fn.contract}.${fn.name}: ${result[1] || 'failed'}`);
        }
        // -1: the revision moved, so nothing was called: follow the change and try again. Only
        // a runtime changing under every attempt (an automatic watch reloading in a loop) ends it.
        if (attempt === 7) {
          throw new errors.StaleHandleError(`${fn.contract}.${fn.name}: the runtime changed ` +
                                            `during each of 8 attempts to call; nothing was called`);
        }
        this._refresh();
      }
    } finally {
      this._depth--;
      slot.keep.release();
      if (arena !== this._arena) native.arenaFree(this._rt, arena.address);
    }
  }

  // Writes slot's call block (pp_call_block in polyplug_node.c; CALL_BLOCK here) for the
  // current provider. It changes only when the object (re)attaches (_generation), so a call
  // normally writes nothing and passes the addon two arguments.
  _writeBlock(fn, slot, arena) {
    let target = 0;
    let data = 0;
    let flags = fn.result === StringViewType ? CALL_BLOCK.stringOut : 0;
    if (this._vm) {
      target = this._vm.call;
      data = this._vm.data;
      flags |= CALL_BLOCK.vm;
    } else if (this._entries && fn.id < this._entries.length) {
      target = this._entries[fn.id];
    }
    if (!target) {
      throw new errors.FunctionNotAvailableError(`${fn.contract}.${fn.name}: the provider's ` +
                                                 `table has no entry ${fn.id}`);
    }
    if (slot.block === null) slot.block = slab(CALL_BLOCK.size);
    const v = slot.block.view;
    v.setFloat64(CALL_BLOCK.seen, this._seen, true);
    writeAddress(v, CALL_BLOCK.fn, target);
    writeAddress(v, CALL_BLOCK.data, data);
    writeAddress(v, CALL_BLOCK.instance, this._instance.address);
    writeAddress(v, CALL_BLOCK.args, slot.args ? slot.args.address : 0);
    writeAddress(v, CALL_BLOCK.out, slot.out ? slot.out.address : 0);
    writeAddress(v, CALL_BLOCK.arena, arena.address);
    v.setUint32(CALL_BLOCK.fnId, fn.id, true);
    v.setUint32(CALL_BLOCK.flags, flags, true);
    v.setUint32(CALL_BLOCK.outSize, slot.out ? fn.outSize : 0, true); // zeroed before each call
    v.setUint32(CALL_BLOCK.argsSize, slot.args ? fn.argsSize : 0, true);
    writeAddress(v, CALL_BLOCK.scratch, slot.strings ? slot.strings.address : 0);
    writeAddress(v, CALL_BLOCK.runtime, this._rtAddress);
    v.setUint32(CALL_BLOCK.scratchSize, slot.strings ? SCRATCH_SIZE : 0, true);
    v.setUint32(CALL_BLOCK.direct, fn.direct.length, true);
    for (let i = 0; i < fn.direct.length; i++) {
      v.setUint32(CALL_BLOCK.directOffset + 4 * i, fn.params[fn.direct[i]].offset, true);
    }
    slot.generation = this._generation;
  }

  /** Destroys the instance and frees the arena. Idempotent. Throws BusyError, changing
   *  nothing, when called while one of this object's calls is in progress. */
  close() {
    if (this._closed) return;
    if (this._depth > 0) {
      throw new BusyError(`${this._decl.name}: close(): a call of this contract object is in ` +
                          `progress; close it after the call returns`);
    }
    this._closed = true;
    if (!this._runtime._closed) this._detach();
    this._runtime._contracts.delete(this);
  }
}

/** Calls a registered host contract (native dispatch), as a plugin would. */
class HostContractClient extends Caller {
  constructor(rt, decl, _handle, min) {
    super();
    this._runtime = rt;
    this._rt = rt._check();
    this._decl = decl;
    this._closed = false;
    // Host contract versions are packed (major << 16 | minor) for these lookups.
    const found = native.getHostContract(this._rt, decl.id, (min << 16) >>> 0);
    if (!found) {
      native.clearLastError(this._rt);
      throw new errors.HostContractNotFoundError(`${decl.name}@${decl.major}: no such host ` +
                                                 `contract is registered`);
    }
    this._host = new HostInterface(found[0], found[1]);
    rt._contracts.add(this);
  }

  _invoke(fn, args) {
    if (this._closed || this._runtime._closed) throw new ClosedError(`${this._decl.name}: closed`);
    // A new slot per call (its result area zeroed by slab): host contract calls are not the
    // hot path, and a call made while another is in progress never shares one.
    const slot = callSlot(fn);
    pack(fn, args, slot);
    const entry = this._host.entry(fn.id);
    if (!entry) throw new errors.FunctionNotAvailableError(`${fn.contract}.${fn.name}: no entry ${fn.id}`);
    const mark = pin(slot); // (pin holds at most three values)
    let result;
    try {
      result = native.callHost(this._rt, entry, this._host.data, slot.args ? slot.args.address : 0,
                               slot.out ? slot.out.address : 0);
    } finally {
      unpin(mark);
      slot.keep.release();
    }
    if (result !== undefined) {
      throw errorFor(result[0], `${fn.contract}.${fn.name}: ${result[1] || 'failed'}`);
    }
    return unpackResult(fn, slot);
  }

  close() {
    this._closed = true;
    this._runtime._contracts.delete(this);
  }
}

// ---- host contracts implemented in JavaScript ------------------------------------------------
class HostImplementation {
  constructor(decl, implementation) {
    if (implementation === null || typeof implementation !== 'object') {
      throw new ArgumentError(`host contract ${decl.name}: the implementation must be an object ` +
                              `with a method per function`);
    }
    const missing = decl.functions.filter((f) => typeof implementation[f.name] !== 'function');
    if (missing.length) {
      throw new ArgumentError(`host contract ${decl.name}: the implementation lacks ` +
                              `${missing.map((f) => f.name).join(', ')} (needs: ` +
                              decl.functions.map((f) => f.signature).join(', ') + ')');
    }
    this.decl = decl;
    this.implementation = implementation;
    this.calls = 0;
    this.failures = 0;
    // Per function: the memory its last result points into (strings, copies: valid until the
    // function's next call), reused by the next result. A result encoded while another is being
    // encoded (a getter in a result calling back into a plugin that calls this contract) gets
    // memory of its own, as nested guest calls do.
    this._results = [];
    this._encoding = 0;
    this.dispatch = (index, argsAddress, outAddress) => this._dispatch(index, argsAddress, outAddress);
  }

  // Called by the addon on the JavaScript thread; returns undefined or [code, message], never
  // throws.
  _dispatch(index, argsAddress, outAddress) {
    const fn = this.decl.functions[index];
    const label = `${this.decl.name}.${fn ? fn.name : index}`;
    this.calls++;
    try {
      if (!fn) throw new errors.FunctionNotAvailableError(`${label}: no such function`);
      let values = [];
      if (fn.argsSize) {
        if (!argsAddress) throw new errors.InvalidPointerError(`${label}: called with NULL arguments`);
        const view = viewOf(readBytes(argsAddress, fn.argsSize, `${label} arguments`));
        values = fn.params.map((p) => p.type.decode(view, p.offset));
      }
      const value = this.implementation[fn.name](...values);
      if (fn.result) {
        if (!outAddress) throw new errors.InvalidPointerError(`${label}: called with a NULL result pointer`);
        let keep;
        if (this._encoding === 0) {
          keep = this._results[index] || (this._results[index] = new ArgMemory());
          keep.reset(); // the previous result's memory: its lifetime ended with this call
        } else {
          keep = new ArgMemory();
        }
        const out = Buffer.alloc(fn.result.size);
        this._encoding++;
        try {
          fn.result.encode(viewOf(out), 0, value, keep, `${label} result`);
        } catch (e) {
          // A result that does not fit the contract is the implementation's bug: Panic.
          throw new errors.PanicError(e.message);
        } finally {
          this._encoding--;
        }
        native.writeBytes(outAddress, out);
        if (keep !== this._results[index]) this._results[index] = keep;
      }
      return undefined;
    } catch (e) {
      this.failures++;
      // A PolyplugError thrown by the implementation reaches the caller with its code, when that
      // is an AbiErrorCode (an integer in [1, 2^32)); any other code is the implementation's
      // bug: Panic, saying so (never wrapped to some other code).
      const name = e && e.constructor ? e.constructor.name : 'Error';
      const text = `${name}: ${e && e.message !== undefined ? e.message : String(e)}`;
      if (!(e instanceof PolyplugError)) return [3, text];
      if (Number.isInteger(e.code) && e.code >= 1 && e.code <= 0xffffffff) return [e.code, text];
      return [3, `${label}: the implementation threw an error whose code ${describeValue(e.code)} ` +
                 `is not an AbiErrorCode (an integer in [1, 2^32)): ${text}`];
    }
  }
}

module.exports = {
  Runtime, Description, GuestContract, HostContractClient, HostImplementation,
  ...errors, LibraryNotFoundError, ContractFileError, ArgumentError, OutOfRangeError,
  UnknownFunctionError, ClosedError, CallbackError, BusyError, errorFor, codeName,
  guestContractId, hostContractId, bundleId,
  native, // the addon's primitives (for benchmarks and tools; no compatibility promise)
  version: '0.1.1',
};
