# onnx_seeds.py SRC OUT — small seed models for fuzz/fuzz_onnx.c (scripts/fuzz.sh), cut from the
# int8 zoo model and built with onnx.helper.
import sys, onnx, numpy as np
from onnx import helper, numpy_helper, TensorProto as T
src, out = sys.argv[1], sys.argv[2]
m = onnx.load(src)
g = m.graph
init = {t.name: t for t in g.initializer}
def save(name, nodes, inits, outname, opsets, dims=(1, 3, 16, 16)):
    x = helper.make_tensor_value_info('input', T.FLOAT, ['N'] + list(dims[1:]))
    y = helper.make_tensor_value_info(outname, T.FLOAT, None)
    graph = helper.make_graph(nodes, name, [x], [y], inits)
    mm = helper.make_model(graph, opset_imports=opsets)
    mm.ir_version = 7
    open(f'{out}/{name}.onnx', 'wb').write(mm.SerializeToString())
ops_q = [helper.make_opsetid('', 12), helper.make_opsetid('com.microsoft', 1)]
# 1. the int8 model's stem and head, joined: quantize, conv, global pool, the folded Shape
#    chain, a small classifier (QLinearMatMul + QLinearAdd bias) and the dequantized output
n = list(g.node)
stem = n[:3]
last = stem[-1].output[0]                      # 477_quantized, 32 channels
sc, zp = last.replace('_quantized', '_scale'), last.replace('_quantized', '_zero_point')
gap = helper.make_node('QLinearGlobalAveragePool', [last, sc, zp, sc, zp], ['pool_q'], domain='com.microsoft', channels_last=0)
dq = helper.make_node('DequantizeLinear', [last, sc, zp], ['f'])
shape = [helper.make_node('Shape', ['f'], ['s']), helper.make_node('Gather', ['s', '466'], ['s0'], axis=0),
         helper.make_node('Unsqueeze', ['s0'], ['s1'], axes=[0]), helper.make_node('Concat', ['s1', '630'], ['tgt'], axis=0),
         helper.make_node('Reshape', ['pool_q', 'tgt'], ['flat'])]
w = numpy_helper.to_array(init['classifier.1.weight_quantized'])[:32, :10].copy()
ws = numpy_helper.to_array(init['classifier.1.weight_scale'])[:10].copy()
wz = numpy_helper.to_array(init['classifier.1.weight_zero_point'])[:10].copy()
b = numpy_helper.to_array(init['classifier.1.bias_quantized'])[:10].copy()
mm = helper.make_node('QLinearMatMul', ['flat', sc, zp, 'w', 'ws', 'wz', 'output_MatMul_scale', 'output_MatMul_zero_point'], ['mm'])
add = helper.make_node('QLinearAdd', ['mm', 'output_MatMul_scale', 'output_MatMul_zero_point', 'b', 'classifier.1.bias_scale', 'classifier.1.bias_zero_point', 'output_scale', 'output_zero_point'], ['out_q'], domain='com.microsoft')
deq = helper.make_node('DequantizeLinear', ['out_q', 'output_scale', 'output_zero_point'], ['output'])
nodes = stem + [gap, dq] + shape + [mm, add, deq]
names = {i for nd in nodes for i in nd.input}
inits = [init[k] for k in names if k in init] + [numpy_helper.from_array(a, k) for k, a in (('w', w), ('ws', ws), ('wz', wz), ('b', b))]
save('int8_stem_head', nodes, inits, 'output', ops_q)
# 2. a float network: Conv+BN+Relu, depthwise Conv + Clip(0,6) (opset 11 inputs), SE-style
#    Mul broadcast, MaxPool with pads, Flatten of a 2x2 map into Gemm, Softmax
rng = np.random.default_rng(1)
f = lambda *s: rng.standard_normal(s).astype(np.float32)
fi = [numpy_helper.from_array(a, k) for k, a in (
    ('w1', f(8, 3, 3, 3)), ('b1', f(8)), ('g', f(8) + 2), ('be', f(8)), ('mu', f(8)), ('var', np.abs(f(8)) + 1),
    ('w2', f(8, 1, 3, 3)), ('lo', np.array(0, np.float32)), ('hi', np.array(6, np.float32)),
    ('se', f(1, 8, 1, 1)), ('fc', f(10, 32)), ('fcb', f(10)))]
fn = [helper.make_node('Conv', ['input', 'w1', 'b1'], ['c1'], pads=[1, 1, 1, 1], strides=[2, 2]),
      helper.make_node('BatchNormalization', ['c1', 'g', 'be', 'mu', 'var'], ['bn']),
      helper.make_node('Relu', ['bn'], ['r1']),
      helper.make_node('Conv', ['r1', 'w2'], ['c2'], group=8, auto_pad='SAME_UPPER'),
      helper.make_node('Clip', ['c2', 'lo', 'hi'], ['r2']),
      helper.make_node('Mul', ['r2', 'se'], ['m']),
      helper.make_node('MaxPool', ['m'], ['p'], kernel_shape=[3, 3], strides=[4, 4], pads=[1, 1, 1, 1]),
      helper.make_node('Flatten', ['p'], ['fl']),
      helper.make_node('Gemm', ['fl', 'fc', 'fcb'], ['logits'], transB=1),
      helper.make_node('Softmax', ['logits'], ['output'], axis=1)]
save('float_net', fn, fi, 'output', [helper.make_opsetid('', 13)])
# 3. the same inputs through ReduceMean, HardSigmoid, HardSwish, LeakyRelu, Sub/Div, Concat
fn3 = [helper.make_node('Conv', ['input', 'w1'], ['c1'], pads=[0, 0, 1, 1]),
       helper.make_node('HardSwish', ['c1'], ['h1']),
       helper.make_node('HardSigmoid', ['c1'], ['h2']),
       helper.make_node('LeakyRelu', ['c1'], ['h3'], alpha=0.1),
       helper.make_node('Sub', ['h1', 'se'], ['s1']),
       helper.make_node('Div', ['h2', 'se'], ['d1']),
       helper.make_node('Concat', ['s1', 'd1', 'h3'], ['cat'], axis=1),
       helper.make_node('ReduceMean', ['cat'], ['output'], axes=[2, 3], keepdims=0)]
save('float_misc', fn3, [fi[0], fi[9]], 'output', [helper.make_opsetid('', 14)])
