#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// ns/call of the Node.js host binding against a plain Node-API call (not a pass/fail test).
//
//   node tests/bench/host_node_bench.js --build build [--vm lua] [-n 1000000]
//   node tests/bench/host_node_bench.js --matrix --build build [--floor addon.node] [-n N]
//
// Rows: a plain Node-API call of a trivial C function in the same addon (the baseline: what any
// native call from JavaScript costs), find_guest_contract through the binding (the issue's
// figure: under 200 ns; the original's JavaScript host takes 2,200 ns), a raw call of the
// native add function pointer through the binding (argument area prepared once), and
// calc.add(2, 40) through polyplug.js on the C bundle and on one VM bundle. Each figure is the
// best of 5 runs of process.hrtime over N iterations, with its ratio to the baseline. The addon
// is $POLYPLUG_NODE_ADDON or <build>/bindings/node/polyplug_node.node.
//
// --matrix: this host's row of the host x guest matrix (one "matrix Node.js <guest> <ns>" line
// per cell, the floor first): kit.greet('world') of test.parity.Kit through polyplug.js on each
// parity guest (<build>/tests/parity/<g>, one runtime each), against the floor, the same round
// trip through a plain Node-API function (<build>/tests/bench/matrix/matrix_floor_node.node:
// Node.js has no FFI). Each cell is the best of 5 runs of N iterations, N calibrated to about
// 0.15 s per run unless -n is given.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const ROOT = path.join(__dirname, '..', '..');
const { values: opts } = parseArgs({
  options: {
    build: { type: 'string', default: path.join(ROOT, 'build') },
    vm: { type: 'string', default: 'lua' },
    n: { type: 'string', short: 'n' },
    matrix: { type: 'boolean', default: false },
    floor: { type: 'string' },
  },
});
process.env.POLYPLUG_NODE_ADDON ||= path.join(path.resolve(opts.build), 'bindings', 'node', 'polyplug_node.node');
const polyplug = require(path.join(ROOT, 'bindings', 'node', 'polyplug.js'));
const { native } = polyplug;

const API = path.join(ROOT, 'examples', 'contracts', 'example_calc.api.toml');
const N = Number(opts.n ?? 1000000);

function bestNs(fn, n, runs = 5) {
  let best = Infinity;
  for (let r = 0; r < runs; r++) {
    const start = process.hrtime.bigint();
    fn(n);
    const ns = Number(process.hrtime.bigint() - start) / n;
    if (ns < best) best = ns;
  }
  return best;
}

function main() {
  const vmDirs = { lua: 'lua_calc', js: 'js_calc', python: 'python_calc' };
  const rows = [];
  const rt = new polyplug.Runtime({ library: path.join(opts.build, 'shim', 'libpolyplug.so'),
                                    loaders: opts.vm ? [opts.vm] : [] });
  try {
    rt.load(path.join(opts.build, 'examples', 'bundles', 'c_calc'));
    const handle = rt._rt;
    const id = polyplug.guestContractId('example.calc', 1);
    const calc = rt.find('example.calc', { api: API });
    const fn = calc.contract.byName.get('add');
    const slot = calc._slot(fn);
    slot.args.view.setInt32(0, 2, true);
    slot.args.view.setInt32(4, 40, true);
    const entry = calc._entries[fn.id];
    const inst = calc._instance.address;
    let sink = 0;

    const baseline = (n) => { for (let i = 0; i < n; i++) sink += native.baseline(i); };
    const find = (n) => { for (let i = 0; i < n; i++) sink += native.find(handle, id, 1); };
    const rawAdd = (n) => {
      const seen = calc._seen;
      for (let i = 0; i < n; i++) native.callGuest(handle, seen, entry, inst, slot.args.address, slot.out.address);
    };
    const packageAdd = (c) => (n) => { for (let i = 0; i < n; i++) sink += c.add(2, 40); };
    // Warm up every path once so that the JIT has compiled them before the timed runs.
    for (const f of [baseline, find, rawAdd, packageAdd(calc)]) f(Math.min(N, 100000));
    if (native.find(handle, id, 1) === -1) throw new Error('find_guest_contract found nothing');

    const base = bestNs(baseline, N);
    rows.push(['plain Node-API call of a C function (baseline)', base]);
    rows.push(['find_guest_contract through the binding', bestNs(find, N)]);
    // The floor of that lookup: a Node-API function with find's argument conversions (an
    // external, a BigInt, a number in; a number out) and no work (tests/bench/matrix).
    const floorPath = path.resolve(opts.floor ?? path.join(opts.build, 'tests', 'bench', 'matrix', 'matrix_floor_node.node'));
    if (fs.existsSync(floorPath)) {
      const floor = require(floorPath);
      const ext = floor.external();
      const shape = (n) => { for (let i = 0; i < n; i++) sink += floor.findShape(ext, id, 1); };
      shape(Math.min(N, 100000));
      rows.push(["Node-API call with find's conversions, no work", bestNs(shape, N)]);
    } else {
      console.log(`(no row for find's conversions: ${floorPath} is not built; scripts/bench.sh builds it)`);
    }
    rows.push(['native add fn pointer through the binding', bestNs(rawAdd, N)]);
    rows.push(['calc.add(2, 40) native (polyplug.js)', bestNs(packageAdd(calc), N)]);
    if (calc.add(2, 40) !== 42) throw new Error('calc.add(2, 40) is not 42');
    if (opts.vm) {
      rt.load(path.join(opts.build, 'examples', 'scripts', vmDirs[opts.vm]));
      const vm = rt.findAll('example.calc', { api: API }).find((c) => c.dispatch === 'vm');
      packageAdd(vm)(Math.min(N, 10000));
      rows.push([`calc.add(2, 40) ${opts.vm} VM (polyplug.js)`, bestNs(packageAdd(vm), Math.max(1, N / 4))]);
    }
    if (sink === 0.5) console.log(''); // keeps the loops' results alive
  } finally {
    rt.close();
  }
  const cpu = os.cpus()[0] ? os.cpus()[0].model : 'unknown CPU';
  console.log(`node ${process.version}, ${os.cpus().length} x ${cpu}, N = ${N}`);
  console.log(`${'what'.padEnd(50)} ${'ns/call'.padStart(9)} ${'ratio'.padStart(7)}`);
  for (const [what, ns] of rows) {
    console.log(`${what.padEnd(50)} ${ns.toFixed(1).padStart(9)} ${(ns / rows[0][1]).toFixed(1).padStart(7)}`);
  }
}

const MATRIX_GUESTS = ['c', 'cpp', 'rust', 'lua', 'python', 'js'];
const VM_GUESTS = new Set(['lua', 'python', 'js']);

// N for about 0.15 s per run: doubled until a run takes 20 ms, then scaled (or -n as given).
function calibrate(fn) {
  if (opts.n !== undefined) return Number(opts.n);
  let n = 100;
  for (;;) {
    const start = process.hrtime.bigint();
    fn(n);
    const ns = Number(process.hrtime.bigint() - start);
    if (ns >= 20e6) return Math.max(1, Math.round(n * 150e6 / ns));
    n *= 2;
  }
}

// One cell: greet('world') checked once, then the best of 5 timed runs of loop (ns per round
// trip). The floor and the guests have loops of their own, so that the floor's call site is not
// made polymorphic by the guests' (closures of one literal share V8's type feedback).
function measureCell(greet, loop) {
  const got = greet('world');
  if (got !== 'hello, world!') throw new Error(`greet('world') returned ${JSON.stringify(got)}`);
  return bestNs(loop, calibrate(loop));
}

function matrix() {
  const build = path.resolve(opts.build);
  const api = path.join(ROOT, 'tests', 'parity', 'parity.api.toml');
  const floorPath = path.resolve(opts.floor ?? path.join(build, 'tests', 'bench', 'matrix', 'matrix_floor_node.node'));
  const cpu = os.cpus()[0] ? os.cpus()[0].model : 'unknown CPU';
  console.log(`node ${process.version}, ${os.cpus().length} x ${cpu}; greet('world') round trips, best of 5`);
  let failed = false;
  let sink = 0;
  const fail = (what, e) => {
    failed = true;
    console.error(`${what} failed: ${e && e.stack ? e.stack : e}`);
  };
  try {
    const floor = require(floorPath);
    const loop = (n) => { for (let i = 0; i < n; i++) sink += floor.greet('world').length; };
    console.log(`matrix Node.js floor ${measureCell(floor.greet, loop).toFixed(1)}`);
  } catch (e) {
    fail(`the floor (${floorPath})`, e);
  }
  for (const g of MATRIX_GUESTS) {
    const dir = path.join(build, 'tests', 'parity', g);
    if (!fs.existsSync(path.join(dir, 'manifest.toml'))) {
      console.log(`matrix Node.js ${g} skip ${dir} has no manifest.toml (the ${g} parity guest is not built)`);
      continue;
    }
    // One runtime per guest: all six provide the same contract.
    let rt = null;
    try {
      rt = new polyplug.Runtime({ library: path.join(build, 'shim', 'libpolyplug.so'),
                                  loaders: VM_GUESTS.has(g) ? [g] : [] });
      rt.load(dir);
      const kit = rt.find('test.parity.Kit', { api });
      const loop = (n) => { for (let i = 0; i < n; i++) sink += kit.greet('world').length; };
      console.log(`matrix Node.js ${g} ${measureCell((name) => kit.greet(name), loop).toFixed(1)}`);
    } catch (e) {
      fail(`the ${g} guest`, e);
    } finally {
      if (rt) rt.close();
    }
  }
  if (sink === 0.5) console.log(''); // keeps the loops' results alive
  if (failed) process.exitCode = 1;
}

if (opts.matrix) matrix();
else main();
