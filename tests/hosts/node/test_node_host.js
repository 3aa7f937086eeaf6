// SPDX-License-Identifier: MIT
// The Node.js host binding (bindings/node) against the real libpolyplug.so, with Node's own test
// runner: the parity table in every built language, marshalling refusals, reloads, a host
// contract implemented in JavaScript and called by the kitchen plugin, the error paths. Run by
// Meson (tests/hosts/node/meson.build), which passes every path in the environment:
//
//   POLYPLUG_LIBRARY         libpolyplug.so          POLYPLUG_NODE_ADDON  polyplug_node.node
//   NODEHOST_SOURCE          the source tree         NODEHOST_KITCHEN     the kitchen bundle dir
//   NODEHOST_EXAMPLE_BUNDLES native example bundles  NODEHOST_EXAMPLE_SCRIPTS  script bundles
//   NODEHOST_PARITY_DIR      build/tests/parity
//   NODEHOST_LANGUAGES       parity languages built, comma-separated (c,cpp,rust,lua,python,js)
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ENV = process.env;
const REQUIRED = ['POLYPLUG_LIBRARY', 'POLYPLUG_NODE_ADDON', 'NODEHOST_SOURCE', 'NODEHOST_KITCHEN',
                  'NODEHOST_EXAMPLE_BUNDLES', 'NODEHOST_EXAMPLE_SCRIPTS', 'NODEHOST_PARITY_DIR',
                  'NODEHOST_LANGUAGES'];
const missing = REQUIRED.filter((n) => !ENV[n]);
if (missing.length) {
  // Not 77: node --test reports any non-zero exit of a test file as a failure.
  console.log(`skipped: run through meson (missing ${missing.join(', ')})`);
  process.exit(0);
}

const polyplug = require(path.join(ENV.NODEHOST_SOURCE, 'bindings', 'node', 'polyplug.js'));

const LANGS = ENV.NODEHOST_LANGUAGES.split(',').filter(Boolean);
const SCRIPT_LANGS = LANGS.filter((l) => ['lua', 'python', 'js'].includes(l));
const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;
const src = (...p) => path.join(ENV.NODEHOST_SOURCE, ...p);
const CALC_API = src('examples', 'contracts', 'example_calc.api.toml');
const PARITY_API = src('tests', 'parity', 'parity.api.toml');
const KITCHEN_API = src('tests', 'cli', 'kitchen.api.toml');
const bundles = (...p) => path.join(ENV.NODEHOST_EXAMPLE_BUNDLES, ...p);

function runtime(options = {}) {
  return new polyplug.Runtime({ loaders: SCRIPT_LANGS, ...options });
}

// f32 rounding as the callee sees it, then x * 2 + y in double precision.
const f32 = (x) => Math.fround(x);
const sameDouble = (a, b) => Object.is(a, b);

test('library lookup names all three ways and refuses other libraries', () => {
  assert.throws(() => new polyplug.Runtime({ library: '/nonexistent/libpolyplug.so' }), (e) => {
    assert.ok(e instanceof polyplug.LibraryNotFoundError);
    assert.ok(e instanceof polyplug.PolyplugError);
    for (const needle of ['/nonexistent/libpolyplug.so', 'POLYPLUG_LIBRARY', 'libpolyplug.so.0',
                          'library']) {
      assert.ok(e.message.includes(needle), `${needle} in ${e.message}`);
    }
    return true;
  });
  assert.throws(() => new polyplug.Runtime({ library: 'libc.so.6' }),
                (e) => e instanceof polyplug.LibraryNotFoundError &&
                       e.message.includes('polyplug_runtime_create'));
  const rt = new polyplug.Runtime();
  try {
    assert.throws(() => rt.addLoader('cobol'),
                  (e) => e instanceof polyplug.LibraryNotFoundError &&
                         e.message.includes('libpolyplug-loader-cobol.so'));
    assert.throws(() => rt.addLoader('../evil'), polyplug.ArgumentError);
  } finally {
    rt.close();
  }
});

test('bad options are refused before anything is created', () => {
  assert.throws(() => new polyplug.Runtime({ compatibility: 'lenient' }), polyplug.ArgumentError);
  assert.throws(() => new polyplug.Runtime({ logLevel: 'loud' }), polyplug.ArgumentError);
  assert.throws(() => new polyplug.Runtime({ hot_reload: true }),
                (e) => e instanceof polyplug.ArgumentError && e.message.includes('hotReload'));
  assert.throws(() => new polyplug.Runtime({ onReload: 42 }), polyplug.ArgumentError);
});

test('every example bundle, native and VM', () => {
  const rt = runtime();
  try {
    const result = rt.loadDirs([ENV.NODEHOST_EXAMPLE_BUNDLES, ENV.NODEHOST_EXAMPLE_SCRIPTS]);
    assert.ok(result.loaded >= 4 + SCRIPT_LANGS.length, JSON.stringify(result));
    assert.equal(result.skipped, 0, result.diagnostics);
    assert.equal(result.diagnostics, '');
    const providers = rt.findAll('example.calc', { api: CALC_API });
    const calcId = polyplug.guestContractId('example.calc', 1);
    assert.equal(providers.length, rt.bundles().filter((b) => b.contracts.includes(calcId)).length);
    const kinds = new Set();
    for (const p of providers) {
      assert.equal(p.add(2, 40), 42);
      assert.equal(p.add(I32_MAX, 1), I32_MIN); // wraps, as documented
      const text = p.describe();
      assert.equal(typeof text, 'string');
      assert.ok(text.length > 0);
      kinds.add(p.dispatch);
      p.close();
    }
    assert.deepEqual([...kinds].sort(), SCRIPT_LANGS.length ? ['native', 'vm'] : ['native']);
    const loaders = new Set(rt.bundles().map((b) => b.loader));
    assert.ok(loaders.has('native'));
    for (const lang of SCRIPT_LANGS) assert.ok(loaders.has(lang), lang);
  } finally {
    rt.close();
  }
});

test('load returns the bundle and find follows it', () => {
  const rt = runtime({ loaders: [] });
  try {
    const b = rt.load(bundles('c_calc'));
    assert.equal(b.name, 'c-calc');
    assert.equal(b.id, polyplug.bundleId('c-calc'));
    assert.equal(b.loader, 'native');
    assert.deepEqual(b.version, [1, 0, 0]);
    assert.equal(fs.realpathSync(b.path), fs.realpathSync(bundles('c_calc')));
    assert.deepEqual(b.contracts, [polyplug.guestContractId('example.calc', 1)]);
    const calc = rt.find('example.calc', { api: CALC_API });
    assert.equal(calc.add(2, 40), 42);
    assert.deepEqual(calc.functions, ['add(a: i32, b: i32) -> i32', 'describe() -> StringView']);
    assert.equal(calc.call('add', 1, 2), 3);
    assert.ok(calc.constructor.doc.includes('add(a: i32, b: i32) -> i32'));
  } finally {
    rt.close();
  }
});

// tests/parity/parity.cpp's table, through the binding, in one language.
function checkLanguage(rt, lang) {
  const dir = path.join(ENV.NODEHOST_PARITY_DIR, lang);
  assert.ok(fs.existsSync(path.join(dir, 'manifest.toml')), `${lang} is listed as built but ${dir} has no manifest`);
  const bundle = rt.load(dir);
  const kits = rt.findAll('test.parity.Kit', { api: PARITY_API });
  const kit = kits.pop();
  for (const other of kits) other.close();
  const name = { c: 'C', cpp: 'C++', rust: 'Rust', lua: 'Lua', python: 'Python', js: 'JavaScript' }[lang];
  for (const [a, b, s] of [[2, 40, 42], [I32_MAX, 1, I32_MIN], [I32_MIN, -1, I32_MAX], [-7, 7, 0]]) {
    assert.equal(kit.add_i32(a, b), s);
  }
  const minimum = { a: -128, b: 0, c: -32768, d: 0, e: I32_MIN, f: 0, g: -(2n ** 63n), h: 0n };
  const maximum = { a: 127, b: 255, c: 32767, d: 65535, e: I32_MAX, f: 2 ** 32 - 1,
                    g: 2n ** 63n - 1n, h: 2n ** 64n - 1n };
  const safe = { a: -1, b: 200, c: -300, d: 60000, e: -70000, f: 4000000000, g: -(2n ** 53n), h: 2n ** 53n };
  for (const [label, v, refusers] of [['minimum', minimum, ['JavaScript']],
                                      ['maximum', maximum, ['JavaScript', 'Lua']],
                                      ['2^53', safe, []]]) {
    if (refusers.includes(name)) {
      assert.throws(() => kit.echo_ints(v), polyplug.PanicError, `${lang} echo ${label}`);
    } else {
      assert.deepEqual(kit.echo_ints(v), v, `${lang} echo ${label}`);
    }
  }
  // 64-bit fields also take safe-integer numbers, and come back as BigInt.
  assert.deepEqual(kit.echo_ints({ ...safe, g: -5, h: 7 }), { ...safe, g: -5n, h: 7n });
  for (const [x, y] of [[1.5, 0.25], [-0, -0], [3.4028235e38, 1e308], [1e-45, -2.5]]) {
    assert.ok(sameDouble(kit.scale(x, y), f32(x) * 2 + y), `${lang} scale(${x}, ${y})`);
  }
  for (const a of [false, true]) {
    for (const b of [false, true]) assert.equal(kit.differ(a, b), a !== b);
  }
  for (const text of ['world', '', 'nul\0in', 'gr\u00fc\u00df \u20ac \u{1f50c}']) {
    assert.equal(kit.greet(text), `hello, ${text}!`);
    assert.equal(kit.greet(Buffer.from(text)), `hello, ${text}!`);
  }
  for (const data of [[], [1, 0, 0xff], [0x61, 0x62, 0x63]]) {
    const got = kit.reverse(Uint8Array.from(data));
    assert.ok(Buffer.isBuffer(got));
    assert.deepEqual([...got], [...data].reverse());
  }
  const pts = [{ x: 1, y: 2 }, { x: I32_MAX, y: -3 }, { x: 1, y: I32_MIN }];
  assert.deepEqual(kit.total(pts), { x: I32_MIN + 1, y: I32_MAX });
  assert.deepEqual(kit.total([]), { x: 0, y: 0 });
  assert.deepEqual(kit.describe({ tag: 255, weight: 1.25, color: 'Blue', label: '\u00e9t\u00e9' }),
                   { tag: 0, weight: 2.5, color: 'Red', label: '\u00e9t\u00e9!' });
  assert.equal(kit.describe({ tag: 255, weight: 1.25, color: 256, label: 'x' }).label, 'x!');
  assert.deepEqual(kit.colors(0), []);
  assert.deepEqual(kit.colors(2), ['Red', 'Green']);
  assert.deepEqual(kit.colors(3), ['Red', 'Green', 'Blue']);
  assert.throws(() => kit.colors(4), (e) => {
    assert.ok(e instanceof polyplug.PanicError);
    assert.equal(e.code, 3);
    assert.equal(e.codeName, 'Panic');
    assert.ok(e.message.includes('n too large'), e.message);
    return true;
  });
  assert.throws(() => kit.fail(-7), (e) => e instanceof polyplug.PanicError &&
                                          e.message.includes('parity failure -7'));
  assert.equal(kit.add_i32(1, 1), 2); // still serving after the errors
  kit.close();
  rt.unload(bundle.id);
}

test('parity table in every built language', async (t) => {
  assert.ok(LANGS.length > 0);
  const rt = runtime();
  try {
    for (const lang of LANGS) {
      await t.test(lang, () => checkLanguage(rt, lang));
    }
    assert.deepEqual(rt.bundles(), []);
  } finally {
    rt.close();
  }
});

test('marshalling refuses what does not fit, before any call', async (t) => {
  const rt = runtime({ loaders: [] });
  rt.load(path.join(ENV.NODEHOST_PARITY_DIR, 'c'));
  const k = rt.find('test.parity.Kit', { api: PARITY_API });
  try {
    await t.test('integer ranges never truncate', () => {
      for (const bad of [2 ** 31, I32_MIN - 1, 2 ** 40, 2n ** 31n]) {
        assert.throws(() => k.add_i32(bad, 0), (e) => e instanceof polyplug.OutOfRangeError &&
                      e instanceof polyplug.ArgumentError && e.message.includes(String(bad)) &&
                      e.message.includes('i32'));
      }
      const ints = { a: 0, b: 0, c: 0, d: 0, e: 0, f: 0, g: 0, h: 0 };
      for (const [field, bad] of [['a', 128], ['b', -1], ['b', 256], ['d', 65536], ['f', 2 ** 32],
                                  ['g', 2n ** 63n], ['h', -1], ['h', 2n ** 64n]]) {
        assert.throws(() => k.echo_ints({ ...ints, [field]: bad }), polyplug.OutOfRangeError,
                      `${field} = ${bad}`);
      }
    });
    await t.test('wrong types', () => {
      for (const call of [() => k.add_i32('2', 40), () => k.add_i32(2.5, 40),
                          () => k.add_i32(true, 1), () => k.differ(1, 0), () => k.greet(42),
                          () => k.reverse('text'), () => k.total([[1, 2]]),
                          () => k.total('points'), () => k.scale('1', 2.0),
                          () => k.colors(null), () => k.add_i32(1), () => k.add_i32(1, 2, 3)]) {
        assert.throws(call, polyplug.ArgumentError, call.toString());
      }
      assert.throws(() => k.echo_ints({ a: 1 }), (e) => e.message.includes('missing'));
      assert.throws(() => k.total([{ x: 1, y: 2, z: 3 }]), (e) => e.message.includes('unknown z'));
      assert.throws(() => k.describe({ tag: 1, weight: 1.0, color: 'Purple', label: '' }),
                    (e) => e instanceof polyplug.ArgumentError && e.message.includes('Purple'));
      assert.throws(() => k.describe({ tag: 1, weight: 1.0, color: 3, label: '' }),
                    polyplug.ArgumentError);
      assert.throws(() => k.scale(1e39, 0.0), polyplug.OutOfRangeError);
      assert.equal(k.scale(Infinity, 0), Infinity); // explicit infinity passes
      assert.equal(k.add_i32(2, 40), 42); // nothing changed by the refusals
    });
    await t.test('unknown function and contract', () => {
      assert.equal(k.nope, undefined);
      assert.throws(() => k.call('nope'), (e) => e instanceof polyplug.UnknownFunctionError &&
                    e.message.includes('add_i32'));
      assert.throws(() => rt.find('test.parity.Nope', { api: PARITY_API }),
                    (e) => e instanceof polyplug.ContractFileError && e.message.includes('test.parity.Kit'));
      assert.throws(() => rt.find('example.calc', { api: CALC_API }),
                    (e) => e instanceof polyplug.NotFoundError && e.codeName === 'NotFound' && e.code === 4);
      assert.throws(() => rt.find('test.parity.Kit'), polyplug.ArgumentError);
      assert.throws(() => rt.find('test.parity.Kit', { api: PARITY_API, min: 1 }), polyplug.ArgumentError);
    });
    await t.test("a provider's pointers and lengths are claims, checked before reading", () => {
      const kitDecl = new polyplug.Description(rt.describeContractFileText(PARITY_API)).contract('test.parity.Kit');
      const cell = new DataView(new ArrayBuffer(16));
      const refused = (type, ptr, len, needle) => {
        cell.setBigUint64(0, ptr, true);
        cell.setBigUint64(8, len, true);
        assert.throws(() => type.decode(cell, 0), (e) => e instanceof polyplug.InvalidPointerError &&
                      e.message.includes(needle), `${type.name} {${ptr}, ${len}}`);
      };
      const sv = kitDecl.byName.get('greet').result;
      refused(sv, 0n, 5n, 'null pointer');
      refused(sv, 4096n, 2n ** 31n, 'limit');
      refused(sv, 2n ** 60n, 1n, 'beyond 2^53');
      refused(sv, 4096n, 2n ** 60n, 'beyond 2^53');
      refused(kitDecl.byName.get('reverse').result, 0n, 3n, 'null pointer');
      refused(kitDecl.byName.get('colors').result, 4096n, 2n ** 40n, '1 GiB');
      refused(kitDecl.byName.get('colors').result, 0n, 2n, 'null pointer');
      cell.setBigUint64(0, 0n, true);
      cell.setBigUint64(8, 0n, true);
      assert.equal(sv.decode(cell, 0), ''); // a null, empty view is the empty string
    });
    await t.test('bad contract files', () => {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'polyplug-nodehost-'));
      try {
        const bad = path.join(tmp, 'bad.api.toml');
        fs.writeFileSync(bad, '[[guest_contract]]\nname = "x.y"\nversion = "1.0"\n\n' +
                              '[[guest_contract.functions]]\nname = "f"\nreturn = "Nope"\n');
        assert.throws(() => rt.find('x.y', { api: bad }), (e) =>
          e instanceof polyplug.ContractFileError && e.message.includes(bad) && e.code !== 0);
        fs.writeFileSync(bad, 'this is = = not toml\n');
        assert.throws(() => rt.describeContractFile(bad), polyplug.ContractFileError);
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
      assert.throws(() => rt.describeContractFile('/nonexistent/x.api.toml'), polyplug.ContractFileError);
      assert.throws(() => new polyplug.Description('polyplug-contracts 2\n'), polyplug.ContractFileError);
      assert.throws(() => new polyplug.Description('polyplug-contracts 1\nstruct P 8 4 1\nfield x i32 6\n'),
                    polyplug.ContractFileError);
      const d = new polyplug.Description(rt.describeContractFileText(PARITY_API));
      const shape = d.structs.get('Shape');
      assert.deepEqual([shape.size, shape.align], [40, 8]);
      assert.deepEqual(shape.fields.map((f) => [f.name, f.type.name, f.offset]),
                       [['tag', 'u8', 0], ['weight', 'f64', 8], ['color', 'Color', 16], ['label', 'StringView', 24]]);
      assert.equal(d.contract('test.parity.Kit').id, polyplug.guestContractId('test.parity.Kit', 1));
      // A u64 bit-flag enum keeps its 64th bit (numbers' | would stop at 32).
      const big = new polyplug.Description('polyplug-contracts 1\nenum Big u64 1 2\nvariant Low 1\n' +
                                           'variant High 0x8000000000000000\n').enums.get('Big');
      const cell = new DataView(new ArrayBuffer(8));
      big.encode(cell, 0, 'Low|High', [], 'flags');
      assert.equal(cell.getBigUint64(0, true), 0x8000000000000001n);
      assert.equal(big.decode(cell, 0), 0x8000000000000001n);
      assert.throws(() => big.encode(cell, 0, 2n ** 64n, [], 'flags'), polyplug.OutOfRangeError);
      assert.equal(k.add_i32(1, 2), 3);
    });
  } finally {
    rt.close();
  }
});

test('reload', async (t) => {
  await t.test('native reload in place; unload; a new provider is followed', () => {
    const events = [];
    const rt = runtime({ loaders: [], hotReload: true, onReload: (e) => events.push(e) });
    try {
      rt.load(bundles('c_calc'));
      const calc = rt.find('example.calc', { api: CALC_API });
      assert.equal(calc.add(2, 40), 42);
      const before = rt.revision;
      rt.reload('c-calc');
      assert.notEqual(rt.revision, before);
      assert.deepEqual(events.map((e) => e.phase), ['Preparing', 'Reloaded']);
      assert.deepEqual([...new Set(events.map((e) => e.bundleName))], ['c-calc']);
      assert.equal(events[0].bundleId, polyplug.bundleId('c-calc'));
      assert.equal(calc.add(2, 40), 42);
      rt.unload('c-calc');
      assert.throws(() => calc.add(1, 1), (e) => ['NotFound', 'StaleHandle'].includes(e.codeName));
      rt.load(bundles('c_calc'));
      assert.equal(calc.add(1, 1), 2);
    } finally {
      rt.close();
    }
  });
  await t.test('script reload, and a failed reload keeps the old version', { skip: !SCRIPT_LANGS.includes('lua') && 'the Lua loader is not built' }, () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'polyplug-nodehost-'));
    const events = [];
    const rt = runtime({ loaders: ['lua'], hotReload: true, onReload: (e) => events.push(e) });
    try {
      const dir = path.join(tmp, 'lua_calc');
      fs.cpSync(path.join(ENV.NODEHOST_EXAMPLE_SCRIPTS, 'lua_calc'), dir, { recursive: true, dereference: true });
      const script = path.join(dir, 'calc.lua');
      rt.load(dir);
      const calc = rt.find('example.calc', { api: CALC_API });
      assert.equal(calc.add(2, 40), 42);
      fs.writeFileSync(script, 'local Calc = {}\nfunction Calc:add(a, b) return a + b + 1000 end\n' +
                               'function Calc:describe() return "Lua calc v2" end\n' +
                               'contracts = { ["example.calc"] = Calc }\n');
      rt.reload('lua-calc');
      assert.deepEqual(events.map((e) => e.phase), ['Preparing', 'Reloaded']);
      assert.equal(calc.add(2, 40), 1042);
      assert.equal(calc.describe(), 'Lua calc v2');
      events.length = 0;
      fs.writeFileSync(script, 'this is not lua (\n');
      assert.throws(() => rt.reload(dir), (e) => e instanceof polyplug.PolyplugError && e.message.includes('calc.lua'));
      assert.equal(events[0].phase, 'Preparing');
      const failed = events.find((e) => e.phase === 'Failed');
      assert.ok(failed && failed.reason.length > 0);
      assert.equal(calc.add(2, 40), 1042);
    } finally {
      rt.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
  await t.test('a watched directory: a new bundle is loaded on pollWatch', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'polyplug-nodehost-'));
    const events = [];
    const rt = runtime({ loaders: [], hotReload: true, onReload: (e) => events.push(e) });
    try {
      rt.watch(tmp, { debounceMs: 0 });
      assert.equal(rt.pollWatch(), 0);
      fs.cpSync(bundles('c_calc'), path.join(tmp, 'c_calc'), { recursive: true, dereference: true });
      // The copy's events are queued by the kernel as it writes; allow 5 s for a busy machine.
      let acted = 0;
      const sleeper = new Int32Array(new SharedArrayBuffer(4));
      for (const deadline = Date.now() + 5000; acted === 0 && Date.now() < deadline;) {
        acted = rt.pollWatch();
        if (acted === 0) Atomics.wait(sleeper, 0, 0, 10);
      }
      assert.equal(acted, 1);
      assert.deepEqual(rt.bundles().map((b) => b.name), ['c-calc']);
      assert.equal(rt.find('example.calc', { api: CALC_API }).add(2, 40), 42);
      rt.unwatch();
      assert.throws(() => rt.watch(tmp, { debounceMs: -1 }), polyplug.OutOfRangeError);
    } finally {
      rt.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
  await t.test("an automatic watch's callbacks come from its thread: dropped and counted", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'polyplug-nodehost-'));
    const events = [];
    const rt = runtime({ loaders: [], hotReload: true, logLevel: 'trace', onReload: (e) => events.push(e),
                         log: () => {} });
    try {
      const dir = path.join(tmp, 'c_calc');
      fs.cpSync(bundles('c_calc'), dir, { recursive: true, dereference: true });
      rt.load(dir);
      assert.equal(rt.droppedCallbacks, 0);
      rt.watch(tmp, { manual: false, debounceMs: 0 });
      const before = rt.revision;
      // A new artifact renamed into place: the runtime's watch thread reloads the bundle.
      fs.copyFileSync(path.join(dir, 'libc_calc.so'), path.join(dir, 'libc_calc.so.new'));
      fs.renameSync(path.join(dir, 'libc_calc.so.new'), path.join(dir, 'libc_calc.so'));
      const sleeper = new Int32Array(new SharedArrayBuffer(4));
      for (const deadline = Date.now() + 5000; rt.revision === before && Date.now() < deadline;) {
        Atomics.wait(sleeper, 0, 0, 10);
      }
      assert.notEqual(rt.revision, before, 'the watch thread reloaded the bundle');
      rt.unwatch(); // joins the watch thread: its callbacks are all counted now
      assert.ok(rt.droppedCallbacks >= 2, `dropped ${rt.droppedCallbacks}`); // Preparing, Reloaded
      assert.deepEqual(events, []); // none reached JavaScript
      assert.equal(rt.find('example.calc', { api: CALC_API }).add(2, 40), 42);
    } finally {
      rt.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
  await t.test('a pinned provider goes stale', () => {
    const rt = runtime({ loaders: [] });
    try {
      rt.load(bundles('c_calc'));
      const [calc] = rt.findAll('example.calc', { api: CALC_API });
      rt.unload('c-calc');
      assert.throws(() => calc.add(1, 1), (e) => e instanceof polyplug.StaleHandleError && e.code === 5);
    } finally {
      rt.close();
    }
  });
  await t.test('refused without hotReload', () => {
    const rt = runtime({ loaders: [] });
    try {
      rt.load(bundles('c_calc'));
      assert.throws(() => rt.reload('c-calc'), (e) => e.message.includes('hot_reload'));
    } finally {
      rt.close();
    }
  });
  await t.test('a callback exception surfaces as CallbackError', () => {
    const rt = runtime({ loaders: [], hotReload: true, onReload: () => { throw new RangeError('callback says no'); } });
    try {
      rt.load(bundles('c_calc'));
      assert.throws(() => rt.reload('c-calc'), (e) => e instanceof polyplug.CallbackError &&
                    e.cause instanceof RangeError);
      assert.equal(rt.bundles().length, 1);
    } finally {
      rt.close();
    }
  });
});

test('errors', async (t) => {
  await t.test('bad paths and ids', () => {
    const logs = [];
    const rt = runtime({ loaders: [], log: (r) => logs.push(r), logLevel: 'debug' });
    try {
      assert.throws(() => rt.load('/nonexistent/polyplug-bundle'), (e) =>
        e instanceof polyplug.PolyplugError && e.code !== 0 && e.message.includes('/nonexistent/polyplug-bundle'));
      assert.throws(() => rt.unload('no-such-bundle'), polyplug.NotFoundError);
      assert.throws(() => rt.unload(42n), polyplug.PolyplugError);
      assert.throws(() => rt.unload(4.2), polyplug.ArgumentError);
      assert.throws(() => rt.load(42), polyplug.ArgumentError);
      assert.deepEqual(rt.bundles(), []);
      assert.ok(logs.length > 0, 'log level debug: the runtime\'s failure records arrive');
      assert.deepEqual(Object.keys(logs[0]).sort(), ['level', 'message', 'scope']);
    } finally {
      rt.close();
    }
  });
  await t.test('loadDirs skips with diagnostics', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'polyplug-nodehost-'));
    const rt = runtime({ loaders: [] });
    try {
      fs.mkdirSync(path.join(tmp, 'broken'));
      fs.writeFileSync(path.join(tmp, 'broken', 'manifest.toml'), 'name = \n');
      const result = rt.loadDirs(tmp);
      assert.deepEqual([result.loaded, result.skipped], [0, 1]);
      assert.ok(result.diagnostics.includes('broken'));
    } finally {
      rt.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
  await t.test('after close', () => {
    const rt = runtime({ loaders: [] });
    rt.load(bundles('c_calc'));
    const calc = rt.find('example.calc', { api: CALC_API });
    const other = rt.find('example.calc', { api: CALC_API });
    other.close();
    other.close();
    assert.throws(() => other.add(1, 2), polyplug.ClosedError);
    assert.equal(calc.add(1, 2), 3);
    rt.close();
    rt.close();
    assert.ok(rt.closed);
    for (const call of [() => calc.add(1, 2), () => rt.bundles(), () => rt.load('x'),
                        () => rt.find('example.calc', { api: CALC_API }), () => rt.revision]) {
      assert.throws(call, polyplug.ClosedError);
    }
    // The addon itself refuses a closed runtime's handle, and anything that is not a handle.
    const id = polyplug.guestContractId('example.calc', 1);
    assert.throws(() => polyplug.native.find(rt._rt, id, 1), (e) => e.code === 'EPPCLOSED');
    for (const bogus of [{}, 42, null, Buffer.alloc(8)]) {
      assert.throws(() => polyplug.native.find(bogus, id, 1), (e) => e.code === 'EPPARGS');
    }
  });
});

test('host contracts implemented in JavaScript', async (t) => {
  await t.test('the kitchen plugin calls a JavaScript host contract', () => {
    const lines = [];
    const rt = runtime({ loaders: [] });
    try {
      const reg = rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API }, {
        write(level, message) { lines.push([level, message]); return true; },
      });
      rt.load(ENV.NODEHOST_KITCHEN);
      const k = rt.find('test.cli.Kitchen', { api: KITCHEN_API });
      const text = 'a\0b \u00fc\u{1f50c}';
      assert.equal(k.echo(text), `v1:${text}`);
      assert.deepEqual(lines, [[3, `v1:${text}`]]);
      assert.equal(reg.calls, 1);
      // i64 results are BigInts, always.
      assert.equal(k.mix(-1, 2, -3, 4, 1.5, 0.25, true, 'Blue'), BigInt(-1 + 2 - 3 + 4 + 3 + 1 + 1000 + 256));
      assert.equal(k.checksum(Buffer.from([1, 2, 3])), BigInt(1 + 4 + 9));
      assert.deepEqual(k.scale({ tag: 7, value: 1.5, small: 3 }, 2), { tag: 7, value: 3.0, small: 6 });
      assert.equal(k.lists(Buffer.from('ab'), ['x', 'yz'], ['Red', 256], [null, 8], [true, false, true],
                           [Buffer.from('123'), Uint8Array.from([4])]),
                   2 + 3 + 257 + 1 + 2 + 4);
      assert.deepEqual(k.sum_points([{ x: 1, y: 2 }, { x: 3, y: 4 }]), { x: 4, y: 6 });
      const rec = k.describe({ flag: false, inner: { a: 1, b: 2, c: 3 }, label: 'lbl',
                               points: [{ x: 5, y: 6 }], color: 'Red', payload: Buffer.from('xyz'),
                               opaque: null, half: -7 });
      assert.deepEqual({ ...rec, payload: rec.payload.toString() },
                       { flag: true, inner: { a: 2, b: 3, c: 4 }, label: 'v1:lbl', points: [{ x: 5, y: 6 }],
                         color: 'Blue', payload: 'xyz', opaque: null, half: 7 });
      assert.equal(k.grant('Write|Exec', 0x1000), 7);
      assert.throws(() => k.grant('Read', null), (e) => e instanceof polyplug.PanicError &&
                    e.message.includes('nichts zu tun'));
      assert.equal(k.reset(), undefined);
      const log = rt.hostContract('host.test.cli.Log', { api: KITCHEN_API });
      assert.equal(log.write(1, 'direct'), true);
      assert.deepEqual(lines.at(-1), [1, 'direct']);
      assert.throws(() => rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API },
                                                  { write() { return true; } }),
                    (e) => e instanceof polyplug.PolyplugError && e.message.includes('duplicate'));
      assert.equal(k.echo('again'), 'v1:again');
    } finally {
      rt.close();
    }
  });
  await t.test('exceptions become Panic; a PolyplugError keeps its code', () => {
    const rt = runtime({ loaders: [] });
    try {
      const reg = rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API }, {
        write(level, message) {
          if (level === 3) throw new RangeError(`refusing '${message}'`);
          if (level === 2) throw new polyplug.NotFoundError('no such log');
          return 'not a bool';
        },
      });
      rt.load(ENV.NODEHOST_KITCHEN);
      const k = rt.find('test.cli.Kitchen', { api: KITCHEN_API });
      assert.throws(() => k.echo('hi'), (e) => e instanceof polyplug.PanicError &&
                    e.message.includes("RangeError: refusing 'v1:hi'"));
      assert.equal(reg.failures, 1);
      const log = rt.hostContract('host.test.cli.Log', { api: KITCHEN_API });
      assert.throws(() => log.write(3, 'boom'), (e) => e instanceof polyplug.PanicError && e.code === 3 &&
                    e.message.includes("RangeError: refusing 'boom'"));
      assert.throws(() => log.write(2, 'x'), (e) => e instanceof polyplug.NotFoundError &&
                    e.message.includes('no such log'));
      assert.throws(() => log.write(1, 'x'), (e) => e instanceof polyplug.PanicError && e.message.includes('boolean'));
      assert.equal(reg.failures, 4);
    } finally {
      rt.close();
    }
  });
  await t.test('a call from another thread is refused without touching JavaScript', async () => {
    const { Worker } = require('node:worker_threads');
    const rt = runtime({ loaders: [] });
    try {
      const reg = rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API }, {
        write() { return true; },
      });
      const log = rt.hostContract('host.test.cli.Log', { api: KITCHEN_API });
      // The worker calls the registered table entry directly, as a plugin thread would.
      const worker = new Worker(`
        const { parentPort, workerData } = require('node:worker_threads');
        const polyplug = require(workerData.module);
        const other = new polyplug.Runtime({ loaders: [] });
        const result = polyplug.native.callHost(other._rt, workerData.entry, workerData.data, 0, 0);
        other.close();
        parentPort.postMessage(result);`,
      { eval: true, workerData: { module: require.resolve(path.join(ENV.NODEHOST_SOURCE, 'bindings', 'node', 'polyplug.js')),
                                  entry: log._host.entries[0], data: log._host.data } });
      const result = await new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      assert.equal(result[0], 102);
      assert.ok(result[1].includes('not the JavaScript thread'), result[1]);
      assert.equal(reg.calls, 0);
      assert.equal(log.write(1, 'main thread'), true);
      assert.equal(reg.calls, 1);
    } finally {
      rt.close();
    }
  });
  await t.test('an incomplete implementation is refused', () => {
    const rt = runtime({ loaders: [] });
    try {
      assert.throws(() => rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API }, {}),
                    (e) => e instanceof polyplug.ArgumentError && e.message.includes('write'));
      assert.throws(() => rt.registerHostContract('test.cli.Kitchen', { api: KITCHEN_API }, {}),
                    polyplug.ContractFileError);
    } finally {
      rt.close();
    }
  });
});

test('lifetimes: close() during a call, the garbage collector, failed construction', async (t) => {
  await t.test('close() from a host contract run inside a call is refused: BusyError', () => {
    const rt = runtime({ loaders: [] });
    const refused = [];
    let k;
    try {
      rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API }, {
        write(level, message) {
          for (const target of [rt, k]) {
            try {
              target.close();
            } catch (e) {
              refused.push(e);
            }
          }
          return true;
        },
      });
      rt.load(ENV.NODEHOST_KITCHEN);
      k = rt.find('test.cli.Kitchen', { api: KITCHEN_API });
      // Before the guard this destroyed the runtime under the plugin's feet (ASan: use after free).
      assert.equal(k.echo('hi'), 'v1:hi');
      assert.equal(refused.length, 2);
      for (const e of refused) {
        assert.ok(e instanceof polyplug.BusyError, String(e));
        assert.ok(e instanceof polyplug.ReentrantCallError);
        assert.equal(e.code, 9);
        assert.ok(e.message.includes('close it after the call returns'), e.message);
      }
      assert.equal(rt.closed, false);
      assert.equal(polyplug.native.busy(rt._rt), 0);
      assert.equal(k.echo('again'), 'v1:again');
      k.close();
    } finally {
      rt.close();
    }
    assert.equal(rt.closed, true);
  });
  await t.test('close() from log and onReload callbacks is refused; the operation completes', () => {
    const refused = [];
    let rt = null;
    const tryClose = () => {
      try {
        rt.close();
      } catch (e) {
        refused.push(e);
        throw e;
      }
    };
    rt = runtime({ loaders: [], hotReload: true, logLevel: 'trace', log: tryClose, onReload: tryClose });
    try {
      assert.throws(() => rt.load(bundles('c_calc')), (e) => e instanceof polyplug.CallbackError &&
                    e.cause instanceof polyplug.BusyError);
      const logged = refused.length;
      assert.ok(logged >= 1, 'a log record during load');
      assert.equal(rt.closed, false);
      assert.equal(rt.find('example.calc', { api: CALC_API }).add(2, 40), 42);
      assert.throws(() => rt.reload('c-calc'), (e) => e instanceof polyplug.CallbackError &&
                    e.cause instanceof polyplug.BusyError);
      assert.ok(refused.length > logged);
      assert.ok(refused.every((e) => e instanceof polyplug.BusyError));
      assert.equal(rt.closed, false);
      assert.equal(rt.find('example.calc', { api: CALC_API }).add(1, 1), 2);
    } finally {
      rt.close();
    }
    assert.equal(rt.closed, true);
  });
  await t.test('a nested call after an unload does not destroy the running instance', () => {
    const rt = runtime({ loaders: [] });
    const inner = [];
    let k;
    let unloadInside = false;
    try {
      rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API }, {
        write() {
          if (unloadInside) {
            unloadInside = false;
            rt.unload('kitchen');
            try {
              inner.push(k.checksum(Buffer.from([2])));
            } catch (e) {
              inner.push(e);
            }
          }
          return true;
        },
      });
      rt.load(ENV.NODEHOST_KITCHEN);
      k = rt.find('test.cli.Kitchen', { api: KITCHEN_API });
      const revision = rt.revision;
      unloadInside = true;
      // Before the guard the nested call detached k, destroying the instance echo ran in.
      assert.equal(k.echo('outer'), 'v1:outer');
      assert.notEqual(rt.revision, revision);
      assert.equal(inner.length, 1);
      assert.ok(inner[0] instanceof polyplug.BusyError, String(inner[0]));
      assert.ok(inner[0].message.includes('provider changed'), inner[0].message);
      // Once the outer call returned, the object follows the unload and a new load as usual.
      assert.throws(() => k.checksum(Buffer.from([3])), (e) => ['NotFound', 'StaleHandle'].includes(e.codeName));
      rt.load(ENV.NODEHOST_KITCHEN);
      assert.equal(k.checksum(Buffer.from([3])), 3n); // sum of byte * (index + 1)
      assert.equal(k.echo('after'), 'v1:after');
    } finally {
      rt.close();
    }
  });
  await t.test('arguments stay alive through a call that runs the garbage collector', () => {
    assert.equal(typeof global.gc, 'function', 'meson runs this file with --expose-gc');
    const rt = runtime({ loaders: [] });
    try {
      let collect = false;
      rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API }, {
        write() {
          if (collect) global.gc();
          return true;
        },
      });
      rt.load(ENV.NODEHOST_KITCHEN);
      const k = rt.find('test.cli.Kitchen', { api: KITCHEN_API });
      const run = (i) => k.echo(`text ${i} `.repeat(8));
      for (let i = 0; i < 3000; i++) run(i); // optimised by now
      collect = true;
      for (let i = 0; i < 50; i++) assert.equal(run(i), `v1:${`text ${i} `.repeat(8)}`);
    } finally {
      rt.close();
    }
  });
  await t.test('a runtime dropped without close() is collected, callbacks and host contracts too', async () => {
    assert.equal(typeof global.gc, 'function', 'meson runs this file with --expose-gc');
    const native = polyplug.native;
    const before = native.liveRuntimes();
    let collected = 0;
    const registry = new FinalizationRegistry(() => { collected++; });
    (() => {
      // Every callback closes over the runtime: strong references to them would make it a root.
      const rt = runtime({ loaders: [], hotReload: true, log: () => rt.closed,
                           onReload: () => rt.closed, logLevel: 'trace' });
      rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API }, {
        write() { return !rt.closed; },
      });
      rt.load(ENV.NODEHOST_KITCHEN);
      assert.equal(rt.find('test.cli.Kitchen', { api: KITCHEN_API }).echo('x'), 'v1:x');
      registry.register(rt, 'runtime');
      assert.equal(native.liveRuntimes(), before + 1);
    })();
    for (let i = 0; i < 100 && (collected === 0 || native.liveRuntimes() > before); i++) {
      global.gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(collected, 1, 'the Runtime object was collected');
    assert.equal(native.liveRuntimes(), before, 'its finalizer destroyed the native runtime');
  });
  await t.test('a contract object that fails after its instance was created destroys it', () => {
    const rt = runtime({ loaders: [] });
    const native = polyplug.native;
    const saved = { createInstance: native.createInstance, destroyInstance: native.destroyInstance,
                    readBytes: native.readBytes };
    let created = 0;
    let destroyed = 0;
    let failNextRead = false;
    try {
      rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API }, { write: () => true });
      rt.load(ENV.NODEHOST_KITCHEN);
      native.createInstance = (...a) => {
        const ok = saved.createInstance(...a);
        if (ok) {
          created++;
          failNextRead = true; // the function table is read next
        }
        return ok;
      };
      native.destroyInstance = (...a) => {
        destroyed++;
        return saved.destroyInstance(...a);
      };
      native.readBytes = (address, length) => {
        if (failNextRead) {
          failNextRead = false;
          throw Object.assign(new Error('injected: the table is unreadable'), { code: 'EPPTOOBIG' });
        }
        return saved.readBytes(address, length);
      };
      assert.throws(() => rt.find('test.cli.Kitchen', { api: KITCHEN_API }),
                    (e) => e instanceof polyplug.InvalidPointerError && e.message.includes('injected'));
      assert.equal(created, 1);
      assert.equal(destroyed, 1, 'the instance created before the failure was destroyed');
    } finally {
      Object.assign(native, saved);
      rt.close();
    }
  });
});

test('host contract error codes outside [1, 2^32) become Panic, never wrapped', () => {
  const rt = runtime({ loaders: [] });
  try {
    let code;
    rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API }, {
      write() { throw new polyplug.NotFoundError('custom', code); },
    });
    const log = rt.hostContract('host.test.cli.Log', { api: KITCHEN_API });
    for (const bad of [2 ** 32 + 4, 2 ** 32, 1.5, -4, 0, 'four', 4n]) {
      code = bad;
      assert.throws(() => log.write(1, 'x'), (e) => e instanceof polyplug.PanicError && e.code === 3 &&
                    e.message.includes('not an AbiErrorCode') && e.message.includes('custom'),
                    `code ${String(bad)}`);
    }
    for (const good of [4, 256, 2 ** 32 - 1]) {
      code = good;
      assert.throws(() => log.write(1, 'x'), (e) => e.code === good && e.message.includes('custom'));
    }
  } finally {
    rt.close();
  }
});

test('the reused call storage: nested calls get their own, strings of every shape', async (t) => {
  // A contract object reuses, per function, its argument and result areas, the scratch memory
  // strings are encoded into and the call block the addon reads. A call made while another call
  // of the same object is running (a JavaScript host contract calling back) must not write into
  // the running call's storage: the plugin may still read its arguments after the callback.
  await t.test('a host contract calling back into the same object leaves the outer call alone', () => {
    const rt = runtime({ loaders: [] });
    try {
      const inner = [];
      let k;
      let echo;
      let nest = false;
      // The outer call's storage as the plugin sees it: its argument area's bytes, and the text
      // its StringView argument points at.
      const outerStorage = () => {
        const slot = k._slots[echo.id];
        const view = slot.args.view;
        const len = view.getUint32(8, true);
        const address = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
        return { args: Buffer.from(slot.args.buf), text: polyplug.native.readString(address, len) };
      };
      rt.registerHostContract('host.test.cli.Log', { api: KITCHEN_API }, {
        write() {
          if (nest) {
            nest = false;
            const before = outerStorage();
            assert.equal(before.text, 'outer \u00fc text');
            // The same function (its slot is the running call's) and other functions.
            inner.push(k.echo('inner text, longer than the outer one'));
            inner.push(k.checksum(Buffer.from([1, 2, 3])));
            inner.push(k.lists(Buffer.from('ab'), ['x', 'yz'], [], [], [], []));
            assert.deepEqual(outerStorage(), before, 'the nested calls wrote into the outer call');
          }
          return true;
        },
      });
      rt.load(ENV.NODEHOST_KITCHEN);
      k = rt.find('test.cli.Kitchen', { api: KITCHEN_API });
      echo = k.contract.byName.get('echo');
      assert.equal(k.echo('warm'), 'v1:warm'); // the echo slot exists before the nested call
      nest = true;
      k.echo('outer \u00fc text'); // (its result is the plugin's last echo: the inner one)
      assert.deepEqual(inner, ['v1:inner text, longer than the outer one', 14n, 2 + 3]);
      // The reused storage still serves the next calls.
      assert.equal(k.echo('after'), 'v1:after');
      assert.equal(k.checksum(Buffer.from([3])), 3n);
    } finally {
      rt.close();
    }
  });
  await t.test('a getter calling the same function while the arguments are encoded', () => {
    // The inner call runs before the outer call's arguments are complete: it must get storage
    // of its own, not rewind the outer call's scratch memory or drop the Buffers it holds.
    const rt = runtime({ loaders: [] });
    try {
      rt.load(ENV.NODEHOST_KITCHEN);
      const k = rt.find('test.cli.Kitchen', { api: KITCHEN_API });
      const record = (label) => ({ flag: false, inner: { a: 1, b: 2, c: 3 }, label, points: [],
                                   color: 'Red', payload: Buffer.alloc(0), opaque: null, half: 1 });
      assert.equal(k.describe(record('warm')).label, 'v1:warm'); // the slot exists already
      const inner = [];
      const outer = record('OUTER-LABEL');
      Object.defineProperty(outer, 'points', { enumerable: true, get() {
        if (inner.length === 0) inner.push(k.describe(record('inner label, longer')).label);
        return [];
      } });
      assert.equal(k.describe(outer).label, 'v1:OUTER-LABEL');
      assert.deepEqual(inner, ['v1:inner label, longer']);
      // An array element's getter: the outer call's own Buffers (beyond the scratch memory) must
      // survive the inner call and a collection.
      const big = 'B'.repeat(5000);
      const words = [big, 'x'];
      let once = true;
      Object.defineProperty(words, 1, { get() {
        if (once) {
          once = false;
          inner.push(k.lists(Buffer.from('zz'), ['q'.repeat(3000)], [], [], [], []));
          global.gc();
        }
        return 'x';
      } });
      assert.equal(k.lists(Buffer.from('ab'), words, [], [], [], []), 2 + 5000 + 1);
      assert.equal(inner[1], 2 + 3000);
      assert.equal(k.describe(record('after')).label, 'v1:after');
      // callSlot refuses a StringView result without a result area (the block is JavaScript's
      // memory), and zeroes the result area before the call.
      assert.equal(k.echo('z'), 'v1:z');
      const slot = k._slots[k.contract.byName.get('echo').id];
      const block = Buffer.from(slot.block.buf);
      block.fill(0, 40, 48); // out
      block.writeUInt32LE(0, 64); // its size
      assert.throws(() => polyplug.native.callSlot(polyplug.native.addressOf(block)),
                    (e) => e.code === 'EPPADDR');
      block.writeUInt32LE(8, 64); // a result area too small for a StringView
      Buffer.from(slot.block.buf).copy(block, 40, 40, 48);
      assert.throws(() => polyplug.native.callSlot(polyplug.native.addressOf(block)),
                    (e) => e.code === 'EPPADDR');
    } finally {
      rt.close();
    }
  });
  await t.test('string arguments: ASCII, UTF-8, lone surrogates, beyond the scratch memory', () => {
    const rt = runtime({ loaders: [] });
    try {
      rt.load(ENV.NODEHOST_KITCHEN);
      const k = rt.find('test.cli.Kitchen', { api: KITCHEN_API });
      const texts = ['world', '', 'a'.repeat(64), 'a'.repeat(65), 'abc\u00e9', 'x'.repeat(70) + '\u20ac',
                     '\ud800 lone', 'lone \udc00', 'nul\0in', 'y'.repeat(5000), '\u{1f50c}'.repeat(400)];
      for (const text of texts) {
        const expected = `v1:${Buffer.from(text, 'utf8').toString('utf8')}`; // lone surrogates: U+FFFD
        assert.equal(k.echo(text), expected, JSON.stringify(text.slice(0, 20)));
        assert.equal(k.echo(Buffer.from(text)), expected);
      }
      // Several strings in one call: the scratch memory fills, the rest get buffers of their own.
      const words = ['p'.repeat(600), 'q'.repeat(600), '\u00fc'.repeat(300), 'r'];
      assert.equal(k.lists(Buffer.from('ab'), words, [], [], [], [Buffer.alloc(700), Buffer.alloc(5)]),
                   2 + 600 + 600 + 600 + 1 + 700 + 5);
    } finally {
      rt.close();
    }
  });
  await t.test('string arguments the addon encodes: at the edge of the scratch memory, several', () => {
    // A string passed for a StringView parameter is encoded by the addon (callSlot), into 1 KiB
    // of scratch memory; V8 stops at the last whole character that fits, so a string whose
    // UTF-8 ends near that edge must be noticed as cut and given a buffer of its own.
    const rt = runtime({ loaders: [] });
    try {
      rt.load(ENV.NODEHOST_KITCHEN);
      const k = rt.find('test.cli.Kitchen', { api: KITCHEN_API });
      for (let n = 1012; n <= 1026; n++) {
        for (const tail of ['', '\u00e9', '\u20ac', '\u{1f50c}', '\ud800', '\udc00x', '\u00e9\u{1f50c}']) {
          const text = 'a'.repeat(n) + tail;
          assert.equal(k.echo(text), `v1:${Buffer.from(text, 'utf8').toString('utf8')}`,
                       `${n} + ${JSON.stringify(tail)}`);
        }
      }
      assert.equal(k.echo('short again'), 'v1:short again'); // the scratch memory is reused
      // Several strings in one call (no kitchen function takes two, so the echo's call block is
      // copied and given a second StringView parameter at the same offset: the guest sees the
      // second string): the first fills the scratch memory, the second gets a buffer of its own;
      // a value that is not a string is left to polyplug.js.
      const fn = k.contract.byName.get('echo');
      const slot = k._slots[fn.id];
      const block = Buffer.from(slot.block.buf);
      assert.equal(block.readUInt32LE(84), 1); // one direct string parameter
      block.writeUInt32LE(2, 84);
      block.writeUInt32LE(0, 92);
      const address = polyplug.native.addressOf(block);
      const { callSlot } = polyplug.native;
      assert.equal(callSlot(address, 'f'.repeat(1000), 'second'), 'v1:second');
      assert.equal(callSlot(address, 'f'.repeat(1000), 'g'.repeat(30)), `v1:${'g'.repeat(30)}`);
      assert.equal(callSlot(address, 'f'.repeat(2000), '\u00fc'.repeat(700)), `v1:${'\u00fc'.repeat(700)}`);
      // The buffers of strings of their own are freed after the call: no pointer to them stays.
      const args = slot.args.view;
      assert.equal(args.getUint32(0, true) + args.getUint32(4, true) + args.getUint32(8, true), 0);
      assert.equal(callSlot(address, 'third', new Uint8Array(2)), 'v1:third');
      // A direct parameter's StringView must lie inside the argument area.
      block.writeUInt32LE(8, 92);
      assert.throws(() => callSlot(address, 'x', 'y'), (e) => e.code === 'EPPADDR');
      block.writeUInt32LE(5, 84);
      assert.throws(() => callSlot(address, 'x'), (e) => e.code === 'EPPADDR');
      // The block names its runtime, checked like a handle.
      block.writeUInt32LE(1, 84);
      block.writeUInt32LE(block.readUInt32LE(104) + 8, 104);
      assert.throws(() => callSlot(address, 'x'), (e) => e.code === 'EPPARGS');
      assert.equal(k.echo('after'), 'v1:after');
    } finally {
      rt.close();
    }
  });
});

test('readString refuses strings V8 cannot hold, by name', () => {
  const MAX_STRING = 2 ** 28; // the addon's cap (256 MiB), below V8's ~2^29 characters
  assert.equal(polyplug.native.sizes().maxString, MAX_STRING);
  const big = Buffer.alloc(MAX_STRING + 1); // calloc'd: its pages are never touched
  const address = polyplug.native.addressOf(big);
  assert.throws(() => polyplug.native.readString(address, MAX_STRING + 1),
                (e) => e.code === 'EPPTOOBIG' && e.message.includes('string'));
  assert.equal(polyplug.native.readString(address, 3), '\0\0\0');
});

test('memory: host-allocated results are freed', {
  skip: ENV.POLYPLUG_TEST_SANITIZED && 'under AddressSanitizer RSS measures its quarantine of freed memory, not leaks; the plain build checks the bound',
}, () => {
  const rt = runtime();
  try {
    rt.loadDirs([ENV.NODEHOST_EXAMPLE_BUNDLES, ENV.NODEHOST_EXAMPLE_SCRIPTS]);
    rt.load(path.join(ENV.NODEHOST_PARITY_DIR, 'c'));
    if (LANGS.includes('lua')) rt.load(path.join(ENV.NODEHOST_PARITY_DIR, 'lua'));
    const kits = rt.findAll('test.parity.Kit', { api: PARITY_API });
    // VM results this size overflow the 4 KiB arena into host-allocated blocks.
    const big = kits.map((kit) => 'x'.repeat(kit.dispatch === 'vm' ? 10000 : 100));
    const roundTrip = () => {
      for (const p of rt.findAll('example.calc', { api: CALC_API })) p.close();
      rt.bundles();
      kits.forEach((kit, i) => {
        assert.equal(kit.greet(big[i]).length, big[i].length + 8);
        kit.colors(3);
      });
      rt.describeContractFileText(CALC_API);
    };
    assert.equal(typeof global.gc, 'function', 'meson runs this file with --expose-gc');
    // Every host-allocated result the binding reads goes back through native.free: count them.
    const native = polyplug.native;
    const free = native.free;
    let frees = 0;
    native.free = (rtHandle, ptr, size, align) => {
      if (ptr) frees++;
      return free(rtHandle, ptr, size, align);
    };
    const perRound = [];
    const rounds = (n) => {
      for (let i = 0; i < n; i++) {
        const before = frees;
        roundTrip();
        perRound.push(frees - before);
        // Collected often, so RSS measures what is kept, not garbage awaiting a collection.
        if (i % 100 === 99) global.gc();
      }
    };
    try {
      rounds(1000);
      global.gc();
      const start = process.memoryUsage.rss();
      rounds(5000);
      global.gc();
      const grown = (process.memoryUsage.rss() - start) / 1024;
      // One leaked 10,000-byte VM result per round would be 48 MiB.
      assert.ok(grown < 16 * 1024, `RSS grew by ${grown} KiB over 5,000 rounds`);
    } finally {
      native.free = free;
    }
    // A bundle's info owns at least its name; the contract description is one more.
    const bundleCount = rt.bundles().length;
    const measured = perRound.slice(1000); // after the warm-up (first calls set things up)
    assert.ok(measured[0] >= bundleCount + 1, `${measured[0]} frees in a round, ${bundleCount} bundles`);
    assert.ok(measured.every((n) => n === measured[0]),
              `the same results are freed every round: ${[...new Set(measured)].join(', ')} ` +
              `(warm-up: ${[...new Set(perRound.slice(0, 1000))].join(', ')})`);
  } finally {
    rt.close();
  }
});
