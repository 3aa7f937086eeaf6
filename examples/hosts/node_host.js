#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// A Node.js host on libpolyplug.so through the polyplug binding (bindings/node): discovers the
// example bundles of every language that is built, calls each provider of example.calc@1,
// implements host.example.Log@1 (which the C bundle calls on every add), and hot-reloads the C
// bundle, printing the phases.
//
//   POLYPLUG_NODE_ADDON=build/bindings/node/polyplug_node.node node examples/hosts/node_host.js \
//       --library build/shim/libpolyplug.so --bundles build/examples/bundles \
//       --scripts build/examples/scripts --loaders lua,python,js
'use strict';

const path = require('node:path');
const { parseArgs } = require('node:util');

const polyplug = require(path.join(__dirname, '..', '..', 'bindings', 'node', 'polyplug.js'));

const API = path.join(__dirname, '..', 'contracts', 'example_calc.api.toml');

function main() {
  const { values: opts } = parseArgs({
    options: {
      library: { type: 'string' }, bundles: { type: 'string' }, scripts: { type: 'string' },
      loaders: { type: 'string', default: '' },
    },
  });
  if (!opts.bundles) {
    console.error('usage: node_host.js --bundles DIR [--library SO] [--scripts DIR] [--loaders lua,js]');
    return 2;
  }
  const loaders = opts.loaders.split(',').filter(Boolean);
  const phases = [];
  const pluginLines = [];
  let failures = 0;

  const rt = new polyplug.Runtime({
    library: opts.library, loaders, hotReload: true,
    onReload(event) {
      phases.push(event.phase);
      console.log(`  [reload] ${event.phase} ${event.bundleName}${event.reason ? ': ' + event.reason : ''}`);
    },
    log(record) {
      console.error(`  [runtime ${record.level}] ${record.scope}: ${record.message}`);
    },
  });
  try {
    // host.example.Log@1, implemented here.
    rt.registerHostContract('host.example.Log', { api: API }, {
      write(line) {
        pluginLines.push(line);
        console.log(`  [plugin log] ${line}`);
      },
    });
    const dirs = [opts.bundles, ...(opts.scripts && loaders.length ? [opts.scripts] : [])];
    const found = rt.loadDirs(dirs);
    console.log(`discovered and loaded ${found.loaded} bundle(s), skipped ${found.skipped}`);
    if (found.skipped) {
      console.error(found.diagnostics);
      failures++;
    }
    for (const b of rt.bundles()) {
      console.log(`bundle ${b.name} ${b.version.join('.')} (loader ${b.loader})`);
    }

    const providers = rt.findAll('example.calc', { api: API });
    for (const calc of providers) {
      const total = calc.add(2, 40);
      console.log(`${calc.dispatch.padEnd(6)} provider: add(2, 40) = ${total}, describe() = ${JSON.stringify(calc.describe())}`);
      if (total !== 42) failures++;
      calc.close();
    }
    const seen = new Set(rt.bundles().map((b) => b.loader));
    for (const lang of loaders) {
      if (!seen.has(lang)) {
        console.error(`no ${lang} bundle was loaded`);
        failures++;
      }
    }
    if (!pluginLines.length) {
      console.error('c-calc never called host.example.Log');
      failures++;
    }

    // Hot reload: a contract object found before keeps working afterwards.
    const calc = rt.find('example.calc', { api: API });
    rt.reload('c-calc');
    if (phases.slice(-2).join() !== 'Preparing,Reloaded') {
      console.error(`reload phases: ${phases}`);
      failures++;
    }
    console.log(`after the reload: add(2, 40) = ${calc.add(2, 40)}`);
    if (calc.add(2, 40) !== 42) failures++;

    // An error path: a typed refusal before any call is made.
    try {
      calc.add(2 ** 31, 0);
      failures++;
    } catch (e) {
      if (!(e instanceof polyplug.OutOfRangeError)) throw e;
      console.log(`expected: ${e.name}: ${e.message}`);
    }
    console.log(`${providers.length} providers called, ${failures} failures`);
  } finally {
    rt.close();
  }
  return failures ? 1 : 0;
}

process.exitCode = main();
