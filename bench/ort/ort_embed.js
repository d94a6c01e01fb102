#!/usr/bin/env node
// bench/ort/ort_embed.js — ONNX Runtime (onnxruntime-node) peer for bench/embed and the
// quality report.
//
// Install once (the package's postinstall tries to download extras and fails offline; the
// linux-x64 libonnxruntime.so ships inside the npm package, so it is not needed):
//   cd bench/ort && npm install --ignore-scripts
//
// Speed mode (model-only inference on random-but-fixed input, one JSON line on stdout):
//   node bench/ort/ort_embed.js --model M.onnx [--threads 2] [--batch 1] [--seconds 10]
//        [--warmup-seconds 2]
//   If the model's input has a fixed batch dimension of 1 and --batch B > 1, a "batch" of B is
//   measured as B sequential runs ("batch_mode":"sequential" in the output); otherwise one
//   run with an NCHW tensor of B images ("batch_mode":"native").
//
// Embedding mode (the "seed-style" reference pipeline for quality):
//   node bench/ort/ort_embed.js --model M.onnx --embed-images LIST --out X.npy
//        [--threads 2] [--batch 16] [--output NAME|logits] [--cache-dir DIR]
//   LIST has one image path per line. Each JPEG is decoded with jpeg-js (pure JS), resized
//   so its shorter side is 256 (bilinear, PIL-style triangle filter, antialiased when
//   shrinking), centre-cropped to 224x224, scaled to [0,1], normalised with the ImageNet
//   mean/std and laid out NCHW. Writes X.npy (float32, N x D, rows in list order) and
//   X.npy.paths (one path per row). Images that fail to decode are reported on stderr and
//   skipped (so N may be smaller than the list).
//   The vector is the global-average-pool output feeding the classifier (1280-d for
//   MobileNetV2). That tensor is not a graph output of the model zoo file, so the model is
//   copied once with /usr/bin/python3 + Debian's python3-onnx into --cache-dir (default
//   <repo>/build/ort) with an extra float graph output "embedding" = DequantizeLinear of the
//   flattened QLinearGlobalAveragePool output (same scale / zero point the classifier's
//   QLinearMatMul reads). If that is not possible the script falls back to the model's
//   logits and says so on stderr and in the "output" field of the summary line.
//   "--output logits" forces the model's own output.
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

function die(msg) {
    process.stderr.write(`ort_embed: ${msg}\n`);
    process.exit(2);
}

function parseArgs(argv) {
    const a = {
        model: null, threads: 2, batch: null, seconds: 10, warmupSeconds: 2,
        embedImages: null, out: null, output: null, cacheDir: null,
    };
    for (let i = 2; i < argv.length; i++) {
        const k = argv[i];
        const v = () => {
            if (i + 1 >= argv.length) die(`missing value for ${k}`);
            return argv[++i];
        };
        switch (k) {
        case '--model': a.model = v(); break;
        case '--threads': a.threads = parseInt(v(), 10); break;
        case '--batch': a.batch = parseInt(v(), 10); break;
        case '--seconds': a.seconds = parseFloat(v()); break;
        case '--warmup-seconds': a.warmupSeconds = parseFloat(v()); break;
        case '--embed-images': a.embedImages = v(); break;
        case '--out': case '-o': a.out = v(); break;
        case '--output': a.output = v(); break;
        case '--cache-dir': a.cacheDir = v(); break;
        case '-h': case '--help':
            process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n')
                .filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
            process.exit(0);
            break;
        default: die(`unknown argument ${k}`);
        }
    }
    if (!a.model) die('--model is required');
    if (!(a.threads >= 1)) die('--threads must be >= 1');
    if (a.embedImages && !a.out) die('--embed-images needs --out X.npy');
    if (a.batch === null) a.batch = a.embedImages ? 16 : 1;
    if (!(a.batch >= 1)) die('--batch must be >= 1');
    return a;
}

let ort;
try {
    ort = require('onnxruntime-node');
} catch (e) {
    die(`cannot load onnxruntime-node (run: cd ${__dirname} && npm install --ignore-scripts): ${e.message}`);
}
const ORT_VERSION = (() => {
    try { return require('onnxruntime-node/package.json').version; } catch (e) { return null; }
})() || (ort.env && ort.env.versions && ort.env.versions.node) || 'unknown';

async function openSession(modelPath, threads) {
    return ort.InferenceSession.create(modelPath, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
    });
}

// Shape of the (single) input: [batch, 3, H, W]; batch is a number if fixed, else a string.
function inputShape(session) {
    const md = session.inputMetadata;
    let meta = null;
    if (Array.isArray(md)) meta = md[0];
    else if (md && typeof md === 'object') meta = md[session.inputNames[0]] || Object.values(md)[0];
    const shape = meta && meta.shape ? meta.shape.slice() : ['batch', 3, 224, 224];
    for (let i = 1; i < 4; i++) if (typeof shape[i] !== 'number' || shape[i] <= 0) shape[i] = i === 1 ? 3 : 224;
    return shape;
}

// ---- speed mode ---------------------------------------------------------------------------

function mulberry32(seed) {
    return function () {
        seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
        let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

async function speed(a) {
    const session = await openSession(a.model, a.threads);
    const shape = inputShape(session);
    const fixedBatch = typeof shape[0] === 'number' && shape[0] > 0 ? shape[0] : null;
    let runBatch = a.batch, runsPerIter = 1, mode = 'native';
    if (fixedBatch !== null && fixedBatch !== a.batch) {
        if (fixedBatch !== 1) die(`model input has fixed batch ${fixedBatch}; use --batch ${fixedBatch}`);
        runBatch = 1; runsPerIter = a.batch; mode = 'sequential';
    }
    const per = shape[1] * shape[2] * shape[3];
    const data = new Float32Array(runBatch * per);
    const rnd = mulberry32(12345);
    // Roughly the range of ImageNet-normalised pixels: ((u in [0,1]) - 0.45) / 0.225.
    for (let i = 0; i < data.length; i++) data[i] = (rnd() - 0.45) / 0.225;
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [runBatch, shape[1], shape[2], shape[3]]) };

    const iter = async () => {
        for (let r = 0; r < runsPerIter; r++) await session.run(feeds);
    };
    const t0w = process.hrtime.bigint();
    let w = 0;
    do { await iter(); w++; } while (w < 3 || Number(process.hrtime.bigint() - t0w) / 1e9 < a.warmupSeconds);

    let n = 0;
    const t0 = process.hrtime.bigint();
    let el = 0;
    do {
        await iter();
        n++;
        el = Number(process.hrtime.bigint() - t0) / 1e9;
    } while (el < a.seconds);
    const images = n * a.batch;
    const ips = images / el;
    const out = {
        peer: 'onnxruntime-node', version: ORT_VERSION, model: path.basename(a.model),
        threads: a.threads, batch: a.batch,
        images_per_s: Math.round(ips * 100) / 100,
        ms_per_image: Math.round((1000 / ips) * 1000) / 1000,
        batch_mode: mode, iterations: n, seconds: Math.round(el * 1000) / 1000,
    };
    if (mode === 'sequential') out.note = `model input batch is fixed to 1: batch ${a.batch} measured as ${a.batch} sequential runs`;
    process.stdout.write(JSON.stringify(out) + '\n');
}

// ---- embedding mode -------------------------------------------------------------------------

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

// PIL-style separable resampling coefficients with the triangle (bilinear) filter.
function coeffs(inSize, outSize) {
    const scale = inSize / outSize;
    const fscale = Math.max(scale, 1.0);
    const support = 1.0 * fscale;
    const ks = Math.ceil(support) * 2 + 1;
    const bounds = new Int32Array(outSize * 2);
    const k = new Float32Array(outSize * ks);
    for (let xx = 0; xx < outSize; xx++) {
        const center = (xx + 0.5) * scale;
        let xmin = Math.trunc(center - support + 0.5); if (xmin < 0) xmin = 0;
        let xmax = Math.trunc(center + support + 0.5); if (xmax > inSize) xmax = inSize;
        xmax -= xmin;
        let ww = 0;
        for (let x = 0; x < xmax; x++) {
            const t = Math.abs((x + xmin - center + 0.5) / fscale);
            const w = t < 1 ? 1 - t : 0;
            k[xx * ks + x] = w; ww += w;
        }
        if (ww !== 0) for (let x = 0; x < xmax; x++) k[xx * ks + x] /= ww;
        bounds[xx * 2] = xmin; bounds[xx * 2 + 1] = xmax;
    }
    return { bounds, k, ks };
}

// RGB uint8 (w x h x 3) -> float RGB (ow x oh x 3), values kept in 0..255 (no rounding).
function resizeRGB(src, w, h, ow, oh) {
    const cx = coeffs(w, ow), cy = coeffs(h, oh);
    const tmp = new Float32Array(ow * h * 3);
    for (let y = 0; y < h; y++) {
        for (let xx = 0; xx < ow; xx++) {
            const xmin = cx.bounds[xx * 2], xn = cx.bounds[xx * 2 + 1];
            let r = 0, g = 0, b = 0;
            for (let x = 0; x < xn; x++) {
                const wgt = cx.k[xx * cx.ks + x], p = (y * w + xmin + x) * 3;
                r += wgt * src[p]; g += wgt * src[p + 1]; b += wgt * src[p + 2];
            }
            const q = (y * ow + xx) * 3;
            tmp[q] = r; tmp[q + 1] = g; tmp[q + 2] = b;
        }
    }
    const dst = new Float32Array(ow * oh * 3);
    for (let yy = 0; yy < oh; yy++) {
        const ymin = cy.bounds[yy * 2], yn = cy.bounds[yy * 2 + 1];
        for (let xx = 0; xx < ow; xx++) {
            let r = 0, g = 0, b = 0;
            for (let y = 0; y < yn; y++) {
                const wgt = cy.k[yy * cy.ks + y], p = ((ymin + y) * ow + xx) * 3;
                r += wgt * tmp[p]; g += wgt * tmp[p + 1]; b += wgt * tmp[p + 2];
            }
            const q = (yy * ow + xx) * 3;
            // PIL rounds and clips to uint8 after each pass; we keep floats, clipped.
            dst[q] = Math.min(255, Math.max(0, r));
            dst[q + 1] = Math.min(255, Math.max(0, g));
            dst[q + 2] = Math.min(255, Math.max(0, b));
        }
    }
    return dst;
}

function pyRound(x) { // Python 3 round(): half to even
    const f = Math.floor(x), d = x - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f;
    return f % 2 === 0 ? f : f + 1;
}

// Decode + resize shorter side to 256 + centre crop 224 + normalise, into dst (NCHW slot).
function preprocess(file, jpeg, H, W, dst, off) {
    const buf = fs.readFileSync(file);
    const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
    const w = img.width, h = img.height;
    if (!w || !h) throw new Error('empty image');
    let rgb = img.data;
    if (rgb.length === w * h * 4) { // decoder returned RGBA anyway
        const t = new Uint8Array(w * h * 3);
        for (let i = 0, j = 0; i < w * h; i++, j += 4) { t[i * 3] = rgb[j]; t[i * 3 + 1] = rgb[j + 1]; t[i * 3 + 2] = rgb[j + 2]; }
        rgb = t;
    } else if (rgb.length === w * h) {
        const t = new Uint8Array(w * h * 3);
        for (let i = 0; i < w * h; i++) t[i * 3] = t[i * 3 + 1] = t[i * 3 + 2] = rgb[i];
        rgb = t;
    }
    const S = 256;
    let nw, nh; // torchvision Resize(256): shorter side 256, longer side int(256 * long / short)
    if (w <= h) { nw = S; nh = Math.trunc(S * h / w); } else { nh = S; nw = Math.trunc(S * w / h); }
    let px, pw = nw;
    if (nw === w && nh === h) {
        px = rgb; // no resampling needed
    } else {
        px = resizeRGB(rgb, w, h, nw, nh);
    }
    if (nw < W || nh < H) throw new Error(`resized image ${nw}x${nh} smaller than crop`);
    const top = pyRound((nh - H) / 2), left = pyRound((nw - W) / 2);
    const plane = H * W;
    for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
            const p = ((top + y) * pw + (left + x)) * 3;
            const q = y * W + x;
            for (let c = 0; c < 3; c++) dst[off + c * plane + q] = (px[p + c] / 255 - MEAN[c]) / STD[c];
        }
    }
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

// Python (Debian python3-onnx) snippet: add graph output "embedding" = dequantized, flattened
// global-average-pool output, i.e. the tensor the classifier's first node reads.
const ADD_POOL_OUTPUT_PY = String.raw`
import sys, onnx
from onnx import helper, TensorProto
src, dst = sys.argv[1], sys.argv[2]
m = onnx.load(src)
g = m.graph
prod = {o: n for n in g.node for o in n.output}
cons = {}
for n in g.node:
    for i in n.input:
        cons.setdefault(i, []).append(n)
pools = [n for n in g.node if n.op_type in ('GlobalAveragePool', 'QLinearGlobalAveragePool')]
if not pools:
    sys.exit('no GlobalAveragePool node')
pool = pools[-1]
t = pool.output[0]
# follow Flatten/Reshape/Squeeze to the classifier input
while True:
    nxt = [n for n in cons.get(t, []) if n.op_type in ('Flatten', 'Reshape', 'Squeeze')]
    if not nxt:
        break
    t = nxt[0].output[0]
new_nodes = []
if pool.op_type == 'QLinearGlobalAveragePool':
    # outputs y_scale, y_zero_point are inputs 3 and 4
    new_nodes.append(helper.make_node('DequantizeLinear', [t, pool.input[3], pool.input[4]],
                                      ['embedding_deq'], name='embedding_DequantizeLinear'))
    t = 'embedding_deq'
new_nodes.append(helper.make_node('Flatten', [t], ['embedding'], name='embedding_Flatten', axis=1))
g.node.extend(new_nodes)
g.output.append(helper.make_tensor_value_info('embedding', TensorProto.FLOAT, None))
onnx.save(m, dst)
print(pool.name, '->', 'embedding')
`;

function embedModelPath(a) {
    const cacheDir = a.cacheDir || path.resolve(__dirname, '..', '..', 'build', 'ort');
    const base = path.basename(a.model).replace(/\.onnx$/, '');
    const out = path.join(cacheDir, `${base}.embed.onnx`);
    try {
        if (fs.statSync(out).mtimeMs >= fs.statSync(a.model).mtimeMs) return out;
    } catch (e) { /* build it */ }
    fs.mkdirSync(cacheDir, { recursive: true });
    const py = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const tmp = `${out}.tmp${process.pid}`;
    const r = spawnSync(py, ['-c', ADD_POOL_OUTPUT_PY, a.model, tmp], { encoding: 'utf8' });
    if (r.status !== 0) {
        try { fs.unlinkSync(tmp); } catch (e) { /* ignore */ }
        process.stderr.write(`ort_embed: could not add the pool output with ${py} + onnx: ${(r.stderr || r.error || '').toString().trim()}\n`);
        return null;
    }
    fs.renameSync(tmp, out);
    process.stderr.write(`ort_embed: wrote ${out} (pool ${r.stdout.trim()})\n`);
    return out;
}

async function embed(a) {
    let jpeg;
    try { jpeg = require('jpeg-js'); } catch (e) { die(`cannot load jpeg-js (cd ${__dirname} && npm install --ignore-scripts): ${e.message}`); }
    const files = fs.readFileSync(a.embedImages, 'utf8').split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.length > 0);

    let modelPath = a.model, outName = null;
    if (a.output !== 'logits') {
        const em = a.output ? null : embedModelPath(a);
        if (em) { modelPath = em; outName = 'embedding'; }
    }
    const session = await openSession(modelPath, a.threads);
    if (a.output && a.output !== 'logits') {
        if (!session.outputNames.includes(a.output)) die(`model has no output ${a.output} (has: ${session.outputNames.join(', ')})`);
        outName = a.output;
    }
    if (!outName) {
        outName = session.outputNames[0];
        process.stderr.write(`ort_embed: WARNING: using the model output "${outName}" (logits), not the pool features\n`);
    }
    const shape = inputShape(session);
    const fixed = typeof shape[0] === 'number' && shape[0] > 0 ? shape[0] : null;
    const B = fixed || a.batch;
    const [, C, H, W] = shape;
    const per = C * H * W;

    const rows = [], kept = [];
    let D = 0, failed = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < files.length;) {
        const batchFiles = [];
        const data = new Float32Array(B * per);
        while (batchFiles.length < B && i < files.length) {
            const f = files[i++];
            try {
                preprocess(f, jpeg, H, W, data, batchFiles.length * per);
                batchFiles.push(f);
            } catch (e) {
                failed++;
                process.stderr.write(`ort_embed: ${f}: ${e.message}\n`);
            }
        }
        if (!batchFiles.length) continue;
        const n = fixed ? B : batchFiles.length;
        const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data.subarray(0, n * per), [n, C, H, W]) };
        const res = await session.run(feeds, [outName]);
        const o = res[outName];
        const d = o.data.length / n;
        if (D && d !== D) die(`output size changed ${D} -> ${d}`);
        D = d;
        for (let j = 0; j < batchFiles.length; j++) {
            rows.push(Float32Array.from(o.data.subarray(j * d, (j + 1) * d)));
            kept.push(batchFiles[j]);
        }
    }
    const el = Number(process.hrtime.bigint() - t0) / 1e9;
    const all = new Float32Array(rows.length * D);
    rows.forEach((r, j) => all.set(r, j * D));
    writeNpy(a.out, all, rows.length, D);
    fs.writeFileSync(`${a.out}.paths`, kept.map((f) => f + '\n').join(''));
    process.stdout.write(JSON.stringify({
        peer: 'onnxruntime-node', version: ORT_VERSION, model: path.basename(a.model),
        output: outName === 'embedding' ? 'global_average_pool' : `${outName} (logits)`,
        threads: a.threads, batch: B, images: rows.length, failed, dim: D,
        seconds: Math.round(el * 1000) / 1000, images_per_s: Math.round((rows.length / el) * 100) / 100,
        out: a.out,
    }) + '\n');
}

const args = parseArgs(process.argv);
(args.embedImages ? embed(args) : speed(args)).catch((e) => die(e && e.stack ? e.stack : String(e)));
