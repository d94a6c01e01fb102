#!/usr/bin/env node
// bench/ort/ort_onnx.js — run an ONNX model in ONNX Runtime (onnxruntime-node) on raw RGB
// inputs and write chosen outputs, for checking imgsim's ONNX support against it.
//
//   node bench/ort/ort_onnx.js --model M.onnx --inputs LIST --out PREFIX
//        [--outputs NAME[,NAME...]] [--mean R,G,B] [--std R,G,B] [--size 224]
//        [--layout nchw|nhwc|auto] [--threads 2] [--batch 1]
//
// LIST has one path per line, each a file of raw interleaved RGB bytes (size x size x 3, e.g.
// what scripts/onnx_models.py `inputs` writes, or shared/models/testdata/bird.rgb). Every
// pixel becomes (p - mean[c]) / std[c], with mean/std in 0..255 units (default ImageNet:
// 123.675,116.28,103.53 / 58.395,57.12,57.375 — the same as (p/255 - 0.485)/0.229 ...),
// computed as (p - mean) * (1/std) in float32, like imgsim. The tensor is NCHW unless the
// model's input is [N,H,W,3] (auto) or --layout says otherwise.
//
// ORT can only fetch graph outputs: to read an intermediate value (the pooled embedding),
// give a copy of the model with that value added to graph.output (scripts/onnx_models.py
// writes NAME.ort.onnx; `onnx_models.py add-outputs` makes one for any model).
//
// Writes PREFIX.<output>.npy for each output (float32, one row per input, the value
// flattened; characters outside [A-Za-z0-9_.-] in the name become '_'), and prints one JSON
// line: {"outputs": {name: {"file", "dim"}}, "images", "seconds", ...}. With --json it also
// writes PREFIX.json holding the same. Exit status 2 on any error (missing onnxruntime-node
// included), so a test that depends on it fails rather than skips.
'use strict';

const fs = require('fs');
const path = require('path');

function die(msg) {
    process.stderr.write(`ort_onnx: ${msg}\n`);
    process.exit(2);
}

function parseTriple(s, what) {
    const v = s.split(',').map(Number);
    if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) die(`${what} needs three numbers R,G,B`);
    return v;
}

function parseArgs(argv) {
    const a = {
        model: null, inputs: null, out: null, outputs: null, threads: 2, batch: 1, size: 224,
        mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], layout: 'auto', json: false,
    };
    for (let i = 2; i < argv.length; i++) {
        const k = argv[i];
        const v = () => {
            if (i + 1 >= argv.length) die(`missing value for ${k}`);
            return argv[++i];
        };
        switch (k) {
        case '--model': a.model = v(); break;
        case '--inputs': a.inputs = v(); break;
        case '--out': case '-o': a.out = v(); break;
        case '--outputs': a.outputs = v().split(',').filter((s) => s.length); break;
        case '--threads': a.threads = parseInt(v(), 10); break;
        case '--batch': a.batch = parseInt(v(), 10); break;
        case '--size': a.size = parseInt(v(), 10); break;
        case '--mean': a.mean = parseTriple(v(), '--mean'); break;
        case '--std': a.std = parseTriple(v(), '--std'); break;
        case '--layout': a.layout = v(); break;
        case '--json': a.json = true; break;
        case '-h': case '--help':
            process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n')
                .filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
            process.exit(0);
            break;
        default: die(`unknown argument ${k}`);
        }
    }
    if (!a.model || !a.inputs || !a.out) die('--model, --inputs and --out are required');
    if (!['auto', 'nchw', 'nhwc'].includes(a.layout)) die('--layout must be auto, nchw or nhwc');
    if (!(a.threads >= 1) || !(a.batch >= 1) || !(a.size >= 1)) die('bad --threads/--batch/--size');
    return a;
}

let ort;
try {
    ort = require('onnxruntime-node');
} catch (e) {
    die(`cannot load onnxruntime-node (cd ${__dirname} && npm install --ignore-scripts): ${e.message}`);
}
const ORT_VERSION = (() => {
    try { return require('onnxruntime-node/package.json').version; } catch (e) { return 'unknown'; }
})();

function inputMeta(session) {
    const md = session.inputMetadata;
    let meta = null;
    if (Array.isArray(md)) meta = md[0];
    else if (md && typeof md === 'object') meta = md[session.inputNames[0]] || Object.values(md)[0];
    return meta && meta.shape ? meta.shape.slice() : null;
}

function writeNpy(file, data, rows, cols) {
    let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
    const total = 10 + header.length + 1;
    header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
    const pre = Buffer.alloc(10);
    pre.write('\x93NUMPY', 0, 'latin1');
    pre[6] = 1; pre[7] = 0;
    pre.writeUInt16LE(header.length, 8);
    const body = Buffer.from(data.buffer, data.byteOffset, rows * cols * 4);
    fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

async function main() {
    const a = parseArgs(process.argv);
    const files = fs.readFileSync(a.inputs, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l.length);
    if (!files.length) die(`${a.inputs}: no inputs`);
    const session = await ort.InferenceSession.create(a.model, {
        intraOpNumThreads: a.threads, interOpNumThreads: 1,
        graphOptimizationLevel: 'all', executionMode: 'sequential',
    });
    const shape = inputMeta(session);
    let layout = a.layout;
    if (layout === 'auto') layout = shape && shape.length === 4 && shape[3] === 3 && shape[1] !== 3 ? 'nhwc' : 'nchw';
    const fixed = shape && typeof shape[0] === 'number' && shape[0] > 0 ? shape[0] : null;
    const B = fixed || a.batch;
    const S = a.size, plane = S * S, per = 3 * plane;
    const names = a.outputs || session.outputNames;
    for (const n of names) if (!session.outputNames.includes(n)) die(`model has no output "${n}" (has: ${session.outputNames.join(', ')})`);
    const inv = a.std.map((s) => Math.fround(1 / s));
    const rows = Object.fromEntries(names.map((n) => [n, []]));
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < files.length; i += B) {
        const batch = files.slice(i, i + B);
        const n = fixed || batch.length;
        const x = new Float32Array(n * per);
        batch.forEach((f, j) => {
            const rgb = fs.readFileSync(f);
            if (rgb.length !== per) die(`${f}: ${rgb.length} bytes, expected ${per} (${S}x${S} RGB)`);
            for (let p = 0; p < plane; p++) {
                for (let c = 0; c < 3; c++) {
                    const v = Math.fround(Math.fround(rgb[p * 3 + c] - a.mean[c]) * inv[c]);
                    if (layout === 'nchw') x[j * per + c * plane + p] = v;
                    else x[j * per + p * 3 + c] = v;
                }
            }
        });
        const dims = layout === 'nchw' ? [n, 3, S, S] : [n, S, S, 3];
        const res = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, dims) }, names);
        for (const name of names) {
            const o = res[name];
            const d = o.data.length / n;
            for (let j = 0; j < batch.length; j++) rows[name].push(Float32Array.from(o.data.subarray(j * d, (j + 1) * d)));
        }
    }
    const el = Number(process.hrtime.bigint() - t0) / 1e9;
    const summary = {
        peer: 'onnxruntime-node', version: ORT_VERSION, model: path.basename(a.model), layout,
        images: files.length, batch: B, threads: a.threads, seconds: Math.round(el * 1000) / 1000, outputs: {},
    };
    for (const name of names) {
        const r = rows[name];
        const d = r[0].length;
        const all = new Float32Array(r.length * d);
        r.forEach((v, j) => all.set(v, j * d));
        const file = `${a.out}.${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.npy`;
        writeNpy(file, all, r.length, d);
        summary.outputs[name] = { file, dim: d };
    }
    const line = JSON.stringify(summary);
    if (a.json) fs.writeFileSync(`${a.out}.json`, line + '\n');
    process.stdout.write(line + '\n');
}

main().catch((e) => die(e && e.stack ? e.stack : String(e)));
