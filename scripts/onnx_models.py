#!/usr/bin/python3
"""onnx_models.py — random-weight ONNX models with the real architectures, exported the way
PyTorch/torchvision exports look, plus fixed inputs, for checking imgsim against ONNX Runtime.

Run with Debian's /usr/bin/python3 (python3-onnx, python3-numpy; no torch needed).

  onnx_models.py models OUTDIR [--only resnet50,vgg16,mobilenetv2,efficientnet_b0]
                 [--calib RGBFILE[,RGBFILE...]] [--external] [--nhwc] [--seed N]
      For each model NAME writes
        NAME.onnx       the model as an exporter would write it (logits the only graph output)
        NAME.ort.onnx   the same graph with the embedding value added to graph.output, for ONNX
                        Runtime (which can only fetch graph outputs)
        NAME.json       an imgsim manifest: ImageNet mean/std in 0..255 units, 224 input,
                        shorter side 256 + centre crop, "layer" = the embedding value
      and OUTDIR/models.json describing all of them (embedding value, dims, opset, ...).
      --external also writes mobilenetv2_ext.onnx (+ mobilenetv2_ext.onnx.data): the same
      MobileNetV2 with its initializers in a side file (ONNX external data); --nhwc writes
      mobilenetv2_nhwc.onnx (+ .ort.onnx, .json): the same with an NHWC input "images:0"
      [N,224,224,3] followed by a Transpose, the way tf2onnx exports (the zoo's
      efficientnet-lite4).
      --calib A.rgb[,B.rgb...]: raw 224x224 RGB files whose statistics set the
      BatchNormalization running mean/var (like a trained network's); default: a synthetic
      smooth image.

  onnx_models.py inputs OUTDIR --imgsim BIN IMAGE...
      Preprocesses each photo with `imgsim prep` (shorter side 256, centre crop 224, the
      torchvision recipe) and writes OUTDIR/NNN.rgb (raw 224x224 RGB bytes) and
      OUTDIR/inputs.txt (one .rgb path per line). imgsim and ONNX Runtime are then fed the
      very same bytes and each applies (x - mean) / std itself.

  onnx_models.py add-outputs SRC.onnx DST.onnx NAME...
      Copy a model with the named values added to graph.output. A QLinear*-quantized value
      (the int8 zoo models) is added dequantized and flattened; "pool_out" names the last
      (QLinear)GlobalAveragePool's output; "pool_in_mean" adds the float mean of the
      dequantized input of that pool, i.e. the pooled feature without the pool's own 8-bit
      rounding (how imgsim takes quantized embeddings). Prints {"outputs": [names]}.

  onnx_models.py compare A.npy B.npy [--metric relerr|cosine]
      Per row: max|a-b| / max|b| (relerr) or cosine; prints min/mean/max and one JSON line.

The architectures (layer counts, widths, strides, pads, groups) are the real ones:
  resnet50        opset 13, torch >= 1.13 naming ("/layer1/layer1.0/conv1/Conv_output_0"):
                  Conv+BatchNormalization+Relu, MaxPool with pads, bottleneck Add,
                  GlobalAveragePool, Flatten, Gemm(transB=1) 2048->1000; dynamic batch.
  vgg16           opset 12, torch 1.x naming ("33", "Conv_0"): 13 Conv+Relu, 5 MaxPool, the
                  flatten as x.view(x.size(0), -1) exported it (Shape/Gather/Unsqueeze/
                  Concat/Reshape), Gemm 25088->4096, Relu, Dropout, Gemm 4096->4096, Relu,
                  Dropout, Gemm ->1000; fixed batch 1 (like the zoo's vgg16-7).
  mobilenetv2     opset 11: Conv+BatchNormalization+Clip(0,6) with min/max as inputs (some
                  from Constant nodes, some initializers in float_data), depthwise group
                  convolutions, inverted residual Add, ReduceMean over H,W (keepdims 0, as
                  torchvision's x.mean([2, 3])), Identity nodes, Gemm; dynamic batch.
  efficientnet_b0 opset 17: Conv+BatchNormalization+SiLU (Sigmoid+Mul), depthwise 3x3 and 5x5,
                  TF-"SAME" asymmetric pads on the stride-2 depthwise convolutions (as in the
                  TF-ported B0 weights), squeeze-excite (GlobalAveragePool, Conv1x1, SiLU,
                  Conv1x1, Sigmoid, Mul broadcast), GlobalAveragePool, Flatten, Dropout
                  (ratio as an input), Gemm; fixed batch 1.
Weights: He-normal convolutions and linears, small biases; BatchNormalization gamma ~ 1,
beta ~ 0.1, running mean/var from the calibration image's real per-channel statistics (times
a random factor near 1), so activations stay in the range a trained network has and a
relative error of 1e-3 means something.
"""
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MEAN255 = [123.675, 116.28, 103.53]
STD255 = [58.395, 57.12, 57.375]

# --------------------------------------------------------------------------- numpy reference


def np_pad(x, pads, value=0.0):
    """pads = (top, left, bottom, right)"""
    t, l, b, r = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def np_conv(x, w, b, stride, pads, group):
    n, c, h, wd = x.shape
    co, ci, kh, kw = w.shape
    xp = np_pad(x, pads)
    ho = (xp.shape[2] - kh) // stride + 1
    wo = (xp.shape[3] - kw) // stride + 1
    if group == 1:
        win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
        win = win[:, :, ::stride, ::stride][:, :, :ho, :wo]          # n c ho wo kh kw
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
        y = cols @ w.reshape(co, -1).T                                # (n ho wo) co
        y = y.reshape(n, ho, wo, co).transpose(0, 3, 1, 2)
    elif group == c and ci == 1 and co == c:
        y = np.zeros((n, c, ho, wo), np.float32)
        for i in range(kh):
            for j in range(kw):
                tap = xp[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
                y += tap * w[:, 0, i, j][None, :, None, None]
    else:
        raise ValueError('grouped convolution other than depthwise')
    if b is not None:
        y = y + b[None, :, None, None]
    return np.ascontiguousarray(y, dtype=np.float32)


def np_maxpool(x, k, stride, pads):
    xp = np_pad(x, pads, value=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return win.max(axis=(4, 5)).astype(np.float32)


def sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


# --------------------------------------------------------------------------- graph builder


class Builder:
    """Builds an ONNX graph node by node; when `x` arrays are given it also evaluates every
    value in numpy (eagerly), which is how BatchNormalization gets realistic running
    statistics. `style` picks the exporter's naming: "new" (torch >= 1.13) or "old" (1.x)."""

    def __init__(self, name, opset, style, rng, eager):
        self.name, self.opset, self.style, self.rng, self.eager = name, opset, style, rng, eager
        self.nodes, self.inits, self.counter, self.vals = [], [], 0, {}
        self.used = set()

    # naming ---------------------------------------------------------------
    def _names(self, scope, op):
        if self.style == 'new':
            base = '%s/%s' % (scope, op) if scope else '/%s' % op
            n = base
            k = 1
            while n in self.used:
                n = '%s_%d' % (base, k)
                k += 1
            self.used.add(n)
            return n, n + '_output_0'
        nid = len(self.nodes)
        self.counter += 1
        return '%s_%d' % (op, nid), str(100 + self.counter)

    def init(self, name, arr, float_data=False):
        arr = np.asarray(arr)
        if float_data and arr.dtype == np.float32:
            t = helper.make_tensor(name, TensorProto.FLOAT, arr.shape, arr.flatten().tolist())
        else:
            t = numpy_helper.from_array(arr, name)
        self.inits.append(t)
        self.vals[name] = arr
        return name

    def node(self, op, inputs, scope='', val=None, **attrs):
        nname, out = self._names(scope, op)
        self.nodes.append(helper.make_node(op, inputs, [out], name=nname, **attrs))
        if val is not None:
            self.vals[out] = val
        return out

    def v(self, name):
        return self.vals.get(name)

    # layers -----------------------------------------------------------------
    def conv(self, x, scope, cin, cout, k, stride=1, pads=None, group=1, bias=False, wname=None,
             gain=2.0, identity_weight=False):
        if pads is None:
            p = (k - 1) // 2
            pads = (p, p, p, p)
        fan_in = (cin // group) * k * k
        w = self.rng.standard_normal((cout, cin // group, k, k), dtype=np.float32) * np.float32(np.sqrt(gain / fan_in))
        prefix = wname or scope.strip('/').replace('/', '.')
        wn = self.init(prefix + '.weight', w)
        if identity_weight:  # torch exports shared parameters through Identity
            wn = self.node('Identity', [wn], scope, val=w)
        ins = [x, wn]
        b = None
        if bias:
            b = (self.rng.standard_normal(cout) * 0.02).astype(np.float32)
            ins.append(self.init(prefix + '.bias', b))
        val = None
        if self.eager and self.v(x) is not None:
            val = np_conv(self.v(x), w, b, stride, pads, group)
        return self.node('Conv', ins, scope, val=val, dilations=[1, 1], group=group, kernel_shape=[k, k],
                         pads=[pads[0], pads[1], pads[2], pads[3]], strides=[stride, stride])

    def bn(self, x, scope, c, pname=None, gamma_scale=1.0):
        """BatchNormalization whose running statistics are the real per-channel statistics of
        its input on the calibration image (times a factor near 1)."""
        xv = self.v(x)
        if xv is not None:
            m = xv.mean(axis=(0, 2, 3))
            var = xv.var(axis=(0, 2, 3))
        else:
            m = np.zeros(c, np.float32)
            var = np.ones(c, np.float32)
        mean = (m + self.rng.standard_normal(c) * 0.05 * np.sqrt(var + 1e-5)).astype(np.float32)
        var = (np.maximum(var, 1e-4) * self.rng.uniform(0.8, 1.25, c)).astype(np.float32)
        gamma = (gamma_scale * (1.0 + 0.1 * self.rng.standard_normal(c))).astype(np.float32)
        beta = (0.1 * self.rng.standard_normal(c)).astype(np.float32)
        p = pname or scope.strip('/').replace('/', '.')
        names = [self.init(p + '.weight', gamma), self.init(p + '.bias', beta),
                 self.init(p + '.running_mean', mean), self.init(p + '.running_var', var)]
        val = None
        if xv is not None:
            val = ((xv - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
                   * gamma[None, :, None, None] + beta[None, :, None, None]).astype(np.float32)
        return self.node('BatchNormalization', [x] + names, scope, val=val, epsilon=1e-5, momentum=0.9)

    def relu(self, x, scope):
        xv = self.v(x)
        return self.node('Relu', [x], scope, val=None if xv is None else np.maximum(xv, 0))

    def clip6(self, x, scope, how):
        """Clip(0, 6) as opset 11+ exports it: min and max are inputs, from Constant nodes
        (torch's way) or from initializers (some stored as float_data)."""
        if how == 'const':
            lo = self.node('Constant', [], scope, val=np.float32(0),
                           value=helper.make_tensor('value', TensorProto.FLOAT, [], [0.0]))
            hi = self.node('Constant', [], scope, val=np.float32(6),
                           value=helper.make_tensor('value', TensorProto.FLOAT, [], [6.0]))
        else:
            lo = '%s.clip_min' % scope.strip('/').replace('/', '.') if self.style == 'new' else 'clip_min_%d' % len(self.inits)
            lo = self.init(lo, np.array(0.0, np.float32), float_data=True)
            hi = self.init(lo.replace('min', 'max'), np.array(6.0, np.float32), float_data=True)
        xv = self.v(x)
        return self.node('Clip', [x, lo, hi], scope, val=None if xv is None else np.clip(xv, 0, 6))

    def silu(self, x, scope):
        xv = self.v(x)
        s = self.node('Sigmoid', [x], scope, val=None if xv is None else sigmoid(xv))
        return self.node('Mul', [x, s], scope, val=None if xv is None else (xv * self.v(s)).astype(np.float32))

    def add(self, a, b, scope):
        av, bv = self.v(a), self.v(b)
        return self.node('Add', [a, b], scope, val=None if av is None or bv is None else (av + bv).astype(np.float32))

    def gap(self, x, scope):
        xv = self.v(x)
        return self.node('GlobalAveragePool', [x], scope,
                         val=None if xv is None else xv.mean(axis=(2, 3), keepdims=True).astype(np.float32))

    def gemm(self, x, scope, fin, fout, pname, gain=2.0, bias_float_data=False):
        w = self.rng.standard_normal((fout, fin), dtype=np.float32) * np.float32(np.sqrt(gain / fin))
        b = (self.rng.standard_normal(fout) * 0.02).astype(np.float32)
        wn = self.init(pname + '.weight', w)
        bn_ = self.init(pname + '.bias', b, float_data=bias_float_data)
        xv = self.v(x)
        return self.node('Gemm', [x, wn, bn_], scope, val=None if xv is None else (xv @ w.T + b).astype(np.float32),
                         alpha=1.0, beta=1.0, transB=1)

    def model(self, inp, in_shape, outputs, producer='pytorch', producer_version='2.1.0'):
        g = helper.make_graph(self.nodes, self.name, [helper.make_tensor_value_info(inp, TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, s) for o, s in outputs],
                              initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', self.opset)],
                              producer_name=producer, producer_version=producer_version)
        m.ir_version = {11: 6, 12: 7, 13: 7, 17: 8}.get(self.opset, 8)
        return m


# --------------------------------------------------------------------------- architectures


def build_resnet50(rng, x):
    B = Builder('torch_jit', 13, 'new', rng, True)
    inp = 'input'
    B.vals[inp] = x
    h = B.conv(inp, '/conv1', 3, 64, 7, 2, (3, 3, 3, 3), wname='conv1')
    h = B.bn(h, '/bn1', 64, 'bn1')
    h = B.relu(h, '/relu')
    h = B.node('MaxPool', [h], '/maxpool', val=np_maxpool(B.v(h), 3, 2, (1, 1, 1, 1)),
               ceil_mode=0, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    cin = 64
    for li, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 1):
        for bi in range(blocks):
            s = stride if bi == 0 else 1
            sc = '/layer%d/layer%d.%d' % (li, li, bi)
            pn = 'layer%d.%d' % (li, bi)
            idn = h
            y = B.conv(h, sc + '/conv1', cin, width, 1, 1, (0, 0, 0, 0), wname=pn + '.conv1')
            y = B.relu(B.bn(y, sc + '/bn1', width, pn + '.bn1'), sc + '/relu')
            y = B.conv(y, sc + '/conv2', width, width, 3, s, (1, 1, 1, 1), wname=pn + '.conv2')
            y = B.relu(B.bn(y, sc + '/bn2', width, pn + '.bn2'), sc + '/relu_1')
            y = B.conv(y, sc + '/conv3', width, width * 4, 1, 1, (0, 0, 0, 0), wname=pn + '.conv3')
            y = B.bn(y, sc + '/bn3', width * 4, pn + '.bn3', gamma_scale=0.5)
            if bi == 0:
                idn = B.conv(h, sc + '/downsample/downsample.0', cin, width * 4, 1, s, (0, 0, 0, 0), wname=pn + '.downsample.0')
                idn = B.bn(idn, sc + '/downsample/downsample.1', width * 4, pn + '.downsample.1')
            h = B.relu(B.add(y, idn, sc), sc + '/relu_2')
            cin = width * 4
    p = B.gap(h, '/avgpool')
    f = B.node('Flatten', [p], '', val=B.v(p).reshape(B.v(p).shape[0], -1), axis=1)
    out = B.gemm(f, '/fc', 2048, 1000, 'fc', gain=1.0)
    m = B.model(inp, ['batch_size', 3, 224, 224], [(out, ['batch_size', 1000])])
    return m, B, {'embedding': p, 'logits': out, 'dim': 2048}


def build_vgg16(rng, x=None):
    B = Builder('torch-jit-export', 12, 'old', rng, False)
    inp = 'input.1'
    h = inp
    cfg = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M']
    cin, idx = 3, 0
    for v in cfg:
        if v == 'M':
            h = B.node('MaxPool', [h], kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
            idx += 1
        else:
            h = B.conv(h, '', cin, v, 3, 1, (1, 1, 1, 1), bias=True, wname='features.%d' % idx)
            h = B.relu(h, '')
            cin = v
            idx += 2
    # x = x.view(x.size(0), -1), as torch 1.x exported it
    shp = B.node('Shape', [h])
    idx0 = B.init('gather_index_0', np.array(0, np.int64))
    n = B.node('Gather', [shp, idx0], axis=0)
    un = B.node('Unsqueeze', [n], axes=[0])
    minus1 = B.node('Constant', [], value=numpy_helper.from_array(np.array([-1], np.int64), 'value'))
    cat = B.node('Concat', [un, minus1], axis=0)
    h = B.node('Reshape', [h, cat])
    h = B.gemm(h, '', 25088, 4096, 'classifier.0')
    h = B.relu(h, '')
    h = B.node('Dropout', [h], ratio=0.5) if B.opset < 12 else B.node('Dropout', [h])
    h = B.gemm(h, '', 4096, 4096, 'classifier.3')
    emb = B.relu(h, '')
    h = B.node('Dropout', [emb])
    out = B.gemm(h, '', 4096, 1000, 'classifier.6', gain=1.0)
    m = B.model(inp, [1, 3, 224, 224], [(out, [1, 1000])], producer_version='1.4')
    return m, B, {'embedding': emb, 'logits': out, 'dim': 4096}


def build_mobilenetv2(rng, x):
    B = Builder('torch-jit-export', 11, 'old', rng, True)
    inp = 'input'
    B.vals[inp] = x
    k = [0]

    def clip_how():
        k[0] += 1
        return 'const' if k[0] % 2 else 'init'

    def cbr(h, cin, cout, ks, s, group, pname, act=True, idw=False):
        h = B.conv(h, '', cin, cout, ks, s, None, group=group, wname=pname + '.0', identity_weight=idw)
        h = B.bn(h, '', cout, pname + '.1')
        return B.clip6(h, '', clip_how()) if act else h

    h = cbr(inp, 3, 32, 3, 2, 1, 'features.0')
    cin, fi = 32, 1
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hid = cin * t
            pn = 'features.%d.conv' % fi
            y = h
            j = 0
            if t != 1:
                y = cbr(y, cin, hid, 1, 1, 1, '%s.%d' % (pn, j))
                j += 1
            y = cbr(y, hid, hid, 3, stride, hid, '%s.%d' % (pn, j), idw=(fi == 5))
            j += 1
            y = B.conv(y, '', hid, c, 1, 1, (0, 0, 0, 0), wname='%s.%d' % (pn, j))
            y = B.bn(y, '', c, '%s.%d' % (pn, j + 1))
            if stride == 1 and cin == c:
                y = B.add(h, y, '')
            h = y
            cin = c
            fi += 1
    h = cbr(h, 320, 1280, 1, 1, 1, 'features.18')
    h = B.node('Identity', [h], val=B.v(h))
    emb = B.node('ReduceMean', [h], val=B.v(h).mean(axis=(2, 3)).astype(np.float32), axes=[2, 3], keepdims=0)
    B.gemm(emb, '', 1280, 1000, 'classifier.1', gain=1.0, bias_float_data=True)
    m = B.model(inp, ['batch_size', 3, 224, 224], [('output', ['batch_size', 1000])], producer_version='1.4')
    # name the graph output "output" (as torch does with output_names=['output'])
    last = m.graph.node[-1]
    old = last.output[0]
    last.output[0] = 'output'
    B.vals['output'] = B.vals.pop(old)
    return m, B, {'embedding': emb, 'logits': 'output', 'dim': 1280}


def same_pads(k, s):
    """TF "SAME" padding for an even input: the extra pixel goes at the bottom/right."""
    if s == 1:
        p = (k - 1) // 2
        return (p, p, p, p)
    total = max(k - s, 0)
    lo = total // 2
    return (lo, lo, total - lo, total - lo)


def build_efficientnet_b0(rng, x):
    B = Builder('main_graph', 17, 'new', rng, True)
    inp = 'input'
    B.vals[inp] = x
    h = B.conv(inp, '/features/features.0/features.0.0', 3, 32, 3, 2, (1, 1, 1, 1), wname='features.0.0')
    h = B.bn(h, '/features/features.0/features.0.1', 32, 'features.0.1')
    h = B.silu(h, '/features/features.0/features.0.2')
    cin = 32
    stage = 1
    for t, k, s, c, n in [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            sc = '/features/features.%d/features.%d.%d/block' % (stage, stage, i)
            pn = 'features.%d.%d.block' % (stage, i)
            hid = cin * t
            y = h
            j = 0
            if t != 1:
                y = B.conv(y, '%s/block.%d/block.%d.0' % (sc, j, j), cin, hid, 1, 1, (0, 0, 0, 0), wname='%s.%d.0' % (pn, j))
                y = B.bn(y, '%s/block.%d/block.%d.1' % (sc, j, j), hid, '%s.%d.1' % (pn, j))
                y = B.silu(y, '%s/block.%d/block.%d.2' % (sc, j, j))
                j += 1
            pads = same_pads(k, stride)
            y = B.conv(y, '%s/block.%d/block.%d.0' % (sc, j, j), hid, hid, k, stride, pads, group=hid, wname='%s.%d.0' % (pn, j))
            y = B.bn(y, '%s/block.%d/block.%d.1' % (sc, j, j), hid, '%s.%d.1' % (pn, j))
            y = B.silu(y, '%s/block.%d/block.%d.2' % (sc, j, j))
            j += 1
            # squeeze-excite
            sq = max(1, cin // 4)
            se = '%s/block.%d' % (sc, j)
            p = B.gap(y, se + '/avgpool')
            z = B.conv(p, se + '/fc1', hid, sq, 1, 1, (0, 0, 0, 0), bias=True, wname='%s.%d.fc1' % (pn, j))
            z = B.silu(z, se + '/activation')
            z = B.conv(z, se + '/fc2', sq, hid, 1, 1, (0, 0, 0, 0), bias=True, wname='%s.%d.fc2' % (pn, j), gain=1.0)
            z = B.node('Sigmoid', [z], se + '/scale_activation', val=sigmoid(B.v(z)))
            y = B.node('Mul', [z, y], se, val=(B.v(z) * B.v(y)).astype(np.float32))
            j += 1
            y = B.conv(y, '%s/block.%d/block.%d.0' % (sc, j, j), hid, c, 1, 1, (0, 0, 0, 0), wname='%s.%d.0' % (pn, j))
            y = B.bn(y, '%s/block.%d/block.%d.1' % (sc, j, j), c, '%s.%d.1' % (pn, j), gamma_scale=0.5 if stride == 1 and cin == c else 1.0)
            if stride == 1 and cin == c:
                y = B.add(y, h, '/features/features.%d/features.%d.%d' % (stage, stage, i))
            h = y
            cin = c
        stage += 1
    h = B.conv(h, '/features/features.8/features.8.0', 320, 1280, 1, 1, (0, 0, 0, 0), wname='features.8.0')
    h = B.bn(h, '/features/features.8/features.8.1', 1280, 'features.8.1')
    h = B.silu(h, '/features/features.8/features.8.2')
    emb = B.gap(h, '/avgpool')
    f = B.node('Flatten', [emb], '', val=B.v(emb).reshape(B.v(emb).shape[0], -1), axis=1)
    ratio = B.init('dropout_ratio', np.array(0.2, np.float32))
    f = B.node('Dropout', [f, ratio], '/classifier/classifier.0', val=B.v(f))
    out = B.gemm(f, '/classifier/classifier.1', 1280, 1000, 'classifier.1', gain=1.0)
    m = B.model(inp, [1, 3, 224, 224], [(out, [1, 1000])])
    return m, B, {'embedding': emb, 'logits': out, 'dim': 1280}


BUILDERS = {'resnet50': build_resnet50, 'vgg16': build_vgg16, 'mobilenetv2': build_mobilenetv2,
            'efficientnet_b0': build_efficientnet_b0}
SEEDS = {'resnet50': 50, 'vgg16': 16, 'mobilenetv2': 2, 'efficientnet_b0': 0}

# --------------------------------------------------------------------------- inputs


def read_png_rgb(path):
    """Minimal PNG reader for 8-bit RGB/RGBA, non-interlaced (what libvips writes)."""
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('%s: not a PNG' % path)
    pos, idat, w = 8, [], None
    while pos < len(data):
        ln, typ = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + ln]
        pos += 12 + ln
        if typ == b'IHDR':
            w, h, depth, ctype, _, _, inter = struct.unpack('>IIBBBBB', body)
            if depth != 8 or ctype not in (2, 6) or inter:
                raise ValueError('%s: unsupported PNG (depth %d, colour type %d)' % (path, depth, ctype))
            bpp = 3 if ctype == 2 else 4
        elif typ == b'IDAT':
            idat.append(body)
        elif typ == b'IEND':
            break
    raw = zlib.decompress(b''.join(idat))
    stride = w * bpp
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.int32)
    p = 0
    for y in range(h):
        f = raw[p]
        line = np.frombuffer(raw, np.uint8, stride, p + 1).astype(np.int32)
        p += 1 + stride
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:
            cur = np.zeros(stride, np.int32)
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                if f == 1:
                    pr = a
                elif f == 3:
                    pr = (a + b) >> 1
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (line[i] + pr) & 255
        out[y] = cur
        prev = cur
    img = out.reshape(h, w, bpp)
    return np.ascontiguousarray(img[:, :, :3])


def cmd_inputs(args):
    out = args[0]
    if '--imgsim' not in args:
        sys.exit('inputs: --imgsim BIN is required')
    i = args.index('--imgsim')
    binp = args[i + 1]
    images = args[1:i] + args[i + 2:]
    os.makedirs(out, exist_ok=True)
    paths = []
    for k, img in enumerate(images):
        png = os.path.join(out, '%03d.png' % k)
        r = subprocess.run([binp, 'prep', img, '-o', png, '--size', '224', '--resize', 'shorter',
                            '--shorter', '256'], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit('inputs: imgsim prep %s failed: %s' % (img, r.stderr.strip()))
        rgb = read_png_rgb(png)
        if rgb.shape != (224, 224, 3):
            sys.exit('inputs: %s: prep gave %s' % (img, rgb.shape))
        dst = os.path.join(out, '%03d.rgb' % k)
        rgb.tofile(dst)
        os.unlink(png)
        paths.append(os.path.abspath(dst))
    with open(os.path.join(out, 'inputs.txt'), 'w') as f:
        f.write(''.join(p + '\n' for p in paths))
    with open(os.path.join(out, 'sources.txt'), 'w') as f:
        f.write(''.join(p + '\n' for p in images))
    print('inputs: %d images -> %s' % (len(paths), out))


def load_rgb_nchw(path):
    a = np.fromfile(path, np.uint8).reshape(224, 224, 3).astype(np.float32)
    a = (a - np.array(MEAN255, np.float32)) / np.array(STD255, np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None])


def synthetic_calib(rng):
    """A smooth 224x224 image with photo-like low-frequency structure."""
    base = rng.standard_normal((3, 14, 14)).astype(np.float32)
    img = np.kron(base, np.ones((16, 16), np.float32))
    img += 0.3 * rng.standard_normal((3, 224, 224)).astype(np.float32)
    return img[None]


# --------------------------------------------------------------------------- models


def add_outputs(model, names):
    g = model.graph
    have = {o.name for o in g.output}
    for n in names:
        if n not in have:
            g.output.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, None))
    return model


def manifest(name, desc, layer):
    return {'name': name, 'file': name + '.onnx', 'sha256': '', 'url': '', 'labels': '',
            'layer': layer, 'description': desc, 'size': 224, 'resize_shorter': 256,
            'resize': 'shorter_crop', 'mean': MEAN255, 'std': STD255, 'label_offset': 0, 'parts': ''}


def cmd_models(args):
    out = args[0]
    only = list(BUILDERS)
    calib = None
    external = False
    nhwc = False
    seed_off = 0
    i = 1
    while i < len(args):
        if args[i] == '--only':
            only = args[i + 1].split(',')
            i += 2
        elif args[i] == '--calib':
            calib = args[i + 1]
            i += 2
        elif args[i] == '--external':
            external = True
            i += 1
        elif args[i] == '--nhwc':
            nhwc = True
            i += 1
        elif args[i] == '--seed':
            seed_off = int(args[i + 1])
            i += 2
        else:
            sys.exit('models: unknown argument %s' % args[i])
    os.makedirs(out, exist_ok=True)
    info = {}
    ip = os.path.join(out, 'models.json')
    if os.path.exists(ip):
        info = json.load(open(ip))
    for name in only:
        if name not in BUILDERS:
            sys.exit('models: unknown model %s (have %s)' % (name, ', '.join(BUILDERS)))
        rng = np.random.default_rng(SEEDS[name] + seed_off)
        if calib:
            x = np.concatenate([load_rgb_nchw(f) for f in calib.split(',')])
        else:
            x = synthetic_calib(np.random.default_rng(7))
        m, B, meta = BUILDERS[name](rng, x)
        onnx.checker.check_model(m)
        path = os.path.join(out, name + '.onnx')
        onnx.save(m, path)
        stats = {}
        ev = B.v(meta['embedding'])
        if ev is not None:
            stats = {'calib_embedding_absmax': float(np.abs(ev).max()), 'calib_embedding_mean': float(ev.mean())}
        add_outputs(m, [meta['embedding'], meta['logits']])
        onnx.save(m, os.path.join(out, name + '.ort.onnx'))
        json.dump(manifest(name, 'random-weight %s (scripts/onnx_models.py)' % name, meta['embedding']),
                  open(os.path.join(out, name + '.json'), 'w'), indent=2)
        ops = sorted({n.op_type for n in m.graph.node})
        info[name] = {'file': name + '.onnx', 'ort_file': name + '.ort.onnx', 'embedding': meta['embedding'],
                      'logits': meta['logits'], 'dim': meta['dim'], 'opset': B.opset,
                      'nodes': len(m.graph.node), 'ops': ops, 'bytes': os.path.getsize(path), **stats}
        print('models: %-16s opset %d, %4d nodes, %7.1f MB, embedding %s (%d-d)%s'
              % (name, B.opset, len(m.graph.node), os.path.getsize(path) / 1e6, meta['embedding'], meta['dim'],
                 ', calib |emb| max %.3g' % stats['calib_embedding_absmax'] if stats else ''))
        if name == 'mobilenetv2' and nhwc:
            # the tf2onnx way: an NHWC image input, then a Transpose to NCHW (as in the zoo's
            # efficientnet-lite4-11.onnx, input "images:0" [1,224,224,3])
            m3 = onnx.load(path)
            g = m3.graph
            old_in = g.input[0].name
            g.input[0].CopyFrom(helper.make_tensor_value_info('images:0', TensorProto.FLOAT, ['batch_size', 224, 224, 3]))
            g.node.insert(0, helper.make_node('Transpose', ['images:0'], [old_in], name='input_nhwc_to_nchw', perm=[0, 3, 1, 2]))
            nh = 'mobilenetv2_nhwc'
            onnx.checker.check_model(m3)
            onnx.save(m3, os.path.join(out, nh + '.onnx'))
            add_outputs(m3, [meta['embedding'], meta['logits']])
            onnx.save(m3, os.path.join(out, nh + '.ort.onnx'))
            json.dump(manifest(nh, 'random-weight mobilenetv2, NHWC input + Transpose', meta['embedding']),
                      open(os.path.join(out, nh + '.json'), 'w'), indent=2)
            info[nh] = dict(info[name], file=nh + '.onnx', ort_file=nh + '.ort.onnx', layout='nhwc')
            print('models: %-16s the same with an NHWC input and a Transpose' % nh)
        if name == 'mobilenetv2' and external:
            m2 = onnx.load(path)
            ext = 'mobilenetv2_ext'
            for f in (ext + '.onnx', ext + '.onnx.data'):
                if os.path.exists(os.path.join(out, f)):
                    os.unlink(os.path.join(out, f))
            onnx.save_model(m2, os.path.join(out, ext + '.onnx'), save_as_external_data=True,
                            all_tensors_to_one_file=True, location=ext + '.onnx.data', size_threshold=1024)
            mf = manifest(ext, 'random-weight mobilenetv2, external data', meta['embedding'])
            json.dump(mf, open(os.path.join(out, ext + '.json'), 'w'), indent=2)
            info[ext] = dict(info[name], file=ext + '.onnx', external_data=ext + '.onnx.data')
            print('models: %-16s the same with external data (%s)' % (ext, ext + '.onnx.data'))
        del m, B
    json.dump(info, open(ip, 'w'), indent=2)


# --------------------------------------------------------------------------- add-outputs for real models


def cmd_add_outputs(args):
    src, dst, names = args[0], args[1], args[2:]
    m = onnx.load(src)
    g = m.graph
    prod = {o: n for n in g.node for o in n.output}
    new_nodes, outs = [], []
    pools = [n for n in g.node if n.op_type in ('GlobalAveragePool', 'QLinearGlobalAveragePool')]
    for name in names:
        if name == 'pool_out':  # the last global pool's own output (dequantized if quantized)
            if not pools:
                sys.exit('add-outputs: no global average pool')
            p = pools[-1]
            t = p.output[0]
            if p.op_type == 'QLinearGlobalAveragePool':
                new_nodes.append(helper.make_node('DequantizeLinear', [t, p.input[3], p.input[4]], ['pool_out_deq'],
                                                  name='pool_out_DequantizeLinear'))
                t = 'pool_out_deq'
            new_nodes.append(helper.make_node('Flatten', [t], ['pool_out'], name='pool_out_Flatten', axis=1))
            outs.append('pool_out')
            continue
        if name == 'pool_in_mean':
            if not pools:
                sys.exit('add-outputs: no global average pool')
            p = pools[-1]
            t = p.input[0]
            if p.op_type == 'QLinearGlobalAveragePool':
                new_nodes.append(helper.make_node('DequantizeLinear', [t, p.input[1], p.input[2]], ['pool_in_deq'],
                                                  name='pool_in_DequantizeLinear'))
                t = 'pool_in_deq'
            new_nodes.append(helper.make_node('ReduceMean', [t], ['pool_in_mean'], name='pool_in_ReduceMean',
                                              axes=[2, 3], keepdims=0))
            outs.append('pool_in_mean')
            continue
        if name not in prod and name not in {i.name for i in g.initializer}:
            sys.exit('add-outputs: no value named %s' % name)
        n = prod.get(name)
        if n is not None and n.op_type.startswith('QLinear'):
            # the output scale / zero point of QLinear ops: inputs 3,4 for the pool, 6,7 for conv/add/matmul
            si = {'QLinearGlobalAveragePool': 3}.get(n.op_type, len(n.input) - 2)
            if n.op_type == 'QLinearConv':
                si = 6
            dq = name + '_dequantized'
            new_nodes.append(helper.make_node('DequantizeLinear', [name, n.input[si], n.input[si + 1]], [dq]))
            flat = dq + '_flat'
            new_nodes.append(helper.make_node('Flatten', [dq], [flat], axis=1))
            outs.append(flat)
        else:
            outs.append(name)
    g.node.extend(new_nodes)
    add_outputs(m, outs)
    onnx.save(m, dst)
    print(json.dumps({'outputs': outs}))


def cmd_compare(args):
    a = np.load(args[0]).astype(np.float64)
    b = np.load(args[1]).astype(np.float64)
    metric = 'relerr'
    if '--metric' in args:
        metric = args[args.index('--metric') + 1]
    a = a.reshape(a.shape[0], -1)
    b = b.reshape(b.shape[0], -1)
    if a.shape != b.shape:
        sys.exit('compare: shapes differ %s vs %s' % (a.shape, b.shape))
    if metric == 'relerr':
        v = np.abs(a - b).max(axis=1) / np.maximum(np.abs(b).max(axis=1), 1e-30)
    else:
        v = (a * b).sum(axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    print(json.dumps({'metric': metric, 'n': int(len(v)), 'min': float(v.min()), 'mean': float(v.mean()),
                      'max': float(v.max()), 'per_row': [float(t) for t in v]}))


def main():
    if len(sys.argv) < 3 or sys.argv[1] in ('-h', '--help'):
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 else 2)
    cmd, args = sys.argv[1], sys.argv[2:]
    {'models': cmd_models, 'inputs': cmd_inputs, 'add-outputs': cmd_add_outputs,
     'compare': cmd_compare}.get(cmd, lambda a: sys.exit('unknown command %s' % cmd))(args)


if __name__ == '__main__':
    main()
