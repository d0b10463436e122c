#!/usr/bin/env node
// Generates src/gen/ from Cohort's protos with the system protoc and ts-proto (from
// node_modules), at build time; nothing generated is committed. The protos are found at
// $COHORT_PROTO_ROOT or two directories up (the repository's root).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const here = path.join(__dirname, '..');
const root = process.env.COHORT_PROTO_ROOT || path.join(here, '..', '..');
if (!fs.existsSync(path.join(root, 'protos/cohort/v1/broker.proto'))) {
  console.error(`gen.js: no protos/cohort/v1/broker.proto under ${root}: set COHORT_PROTO_ROOT`);
  process.exit(1);
}
const out = path.join(here, 'src', 'gen');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
const plugin = path.join(here, 'node_modules', '.bin', 'protoc-gen-ts_proto');
execFileSync(process.env.PROTOC || 'protoc', [
  `-I${root}`, '-I/usr/include', `--plugin=protoc-gen-ts_proto=${plugin}`, `--ts_proto_out=${out}`,
  '--ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,env=node,useDate=false,forceLong=number,' +
    'oneof=unions-value,useOptionals=none',
  ...['job', 'executor', 'broker', 'scheduler'].map((p) => `protos/cohort/v1/${p}.proto`),
], { cwd: root, stdio: 'inherit' });
