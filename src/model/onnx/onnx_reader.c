/*
 * onnx_reader.c — turns an ONNX ModelProto into the graph IR (graph.h): parses the model,
 * graph, nodes, initializers and the image input, then walks the nodes once in order —
 * folding constant shape arithmetic, lowering everything else to IR operators — and finally
 * drops dead operators and tensors. See onnx_reader.h for the files of the front-end.
 *
 * onnx.proto field numbers used: ModelProto{ir_version 1, graph 7, opset_import 8};
 * OperatorSetIdProto{domain 1, version 2}; GraphProto{node 1, initializer 5, input 11,
 * output 12}; NodeProto{input 1, output 2, name 3, op_type 4, attribute 5, domain 7};
 * ValueInfoProto{name 1, type 2}; TypeProto{tensor_type 1}; TypeProto.Tensor{elem_type 1,
 * shape 2}; TensorShapeProto{dim 1}; Dimension{dim_value 1, dim_param 2}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "model/onnx/onnx.h"
#include "model/onnx/onnx_reader.h"

#define CORRUPT(what) error_set(c->err, IMGSIM_E_MODEL, "corrupt ONNX file: bad %s", what)

/* ------------------------------------------------------------------ values */

/* A name from the file as a C string; control characters become '?' so that error
 * messages naming it stay on one line. */
static char *dup_buf(pb_buf s)
{
    char *r = malloc(s.len + 1);
    if (r) {
        for (size_t i = 0; i < s.len; i++)
            r[i] = s.p[i] < 0x20 || s.p[i] == 0x7f ? '?' : (char)s.p[i];
        r[s.len] = 0;
    }
    return r;
}

/* The value named `s` (created when new); -1 on failure (error set). Empty names: -2. */
static int value_of(ox_ctx *c, pb_buf s)
{
    if (s.len == 0)
        return -2;
    if (s.len > 4096 || memchr(s.p, 0, s.len)) {
        CORRUPT("value name");
        return -1;
    }
    char *name = dup_buf(s);
    if (!name) {
        ox_nomem(c);
        return -1;
    }
    long got = strmap_get(&c->names, name, 0, 0);
    if (got >= 0) {
        free(name);
        return (int)got;
    }
    if (c->nv >= OX_MAX_VALUES) {
        free(name);
        error_set(c->err, IMGSIM_E_MODEL, "ONNX model has too many values");
        return -1;
    }
    if (grow_array((void **)&c->v, &c->capv, (size_t)c->nv + 1, sizeof *c->v, 256)) {
        free(name);
        ox_nomem(c);
        return -1;
    }
    ox_value *v = &c->v[c->nv];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->rank = -1;
    v->ir = -1;
    v->ir_const = -1;
    if (strmap_get(&c->names, name, 1, c->nv) == -2) {
        free(name);
        ox_nomem(c);
        return -1;
    }
    return c->nv++;
}

/* ------------------------------------------------------------------ model structure */

/* The field's payload as a string (wire type LEN) or -1. */
static int want_len(const pb_field *f)
{
    return f->wire == PB_LEN ? 0 : -1;
}

static imgsim_status read_initializer(ox_ctx *c, pb_buf msg)
{
    pb_iter it;
    pb_field f;
    int r;
    pb_buf name = {NULL, 0};
    pb_iter_init(&it, msg);
    while ((r = pb_next(&it, &f)) > 0)
        if (f.num == 8) {
            if (want_len(&f) < 0)
                return CORRUPT("initializer name");
            name = f.b;
        }
    if (r < 0)
        return CORRUPT("initializer");
    if (name.len == 0)
        return CORRUPT("initializer without a name");
    int vi = value_of(c, name);
    if (vi < 0)
        return c->err ? c->err->code : IMGSIM_E_MODEL;
    ox_value *v = &c->v[vi];
    if (v->defined)
        return error_set(c->err, IMGSIM_E_MODEL, "ONNX model defines initializer '%s' twice",
                         v->name);
    return ox_read_tensor(c, msg, &c->v[vi], "initializer");
}

/* ValueInfoProto of the image input: element type and shape. */
static imgsim_status read_input_info(ox_ctx *c, pb_buf msg, ox_value *v)
{
    pb_iter it, ti, si;
    pb_field f;
    int r;
    pb_buf type = {NULL, 0}, tensor = {NULL, 0}, shape = {NULL, 0};
    int has_shape = 0;
    pb_iter_init(&it, msg);
    while ((r = pb_next(&it, &f)) > 0)
        if (f.num == 2 && want_len(&f) == 0)
            type = f.b;
    if (r < 0)
        return CORRUPT("input");
    pb_iter_init(&ti, type);
    while ((r = pb_next(&ti, &f)) > 0)
        if (f.num == 1 && want_len(&f) == 0)
            tensor = f.b;
    if (r < 0 || !tensor.p)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED,
                         "ONNX model input '%s' is not a tensor", v->name);
    pb_iter_init(&ti, tensor);
    while ((r = pb_next(&ti, &f)) > 0) {
        if (f.num == 1 && f.wire == PB_VARINT)
            v->dtype = (int)(int32_t)f.u;
        else if (f.num == 2 && f.wire == PB_LEN) {
            shape = f.b;
            has_shape = 1;
        }
    }
    if (r < 0)
        return CORRUPT("input type");
    if (!has_shape)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED, "ONNX model input '%s' has no shape",
                         v->name);
    int rank = 0;
    pb_iter_init(&si, shape);
    while ((r = pb_next(&si, &f)) > 0) {
        if (f.num != 1)
            continue;
        if (f.wire != PB_LEN || rank >= IR_MAX_RANK)
            return CORRUPT("input shape");
        pb_iter di;
        pb_field df;
        int64_t d = -1;
        pb_iter_init(&di, f.b);
        while ((r = pb_next(&di, &df)) > 0)
            if (df.num == 1 && df.wire == PB_VARINT)
                d = (int64_t)df.u;
        if (r < 0)
            return CORRUPT("input dimension");
        v->dims[rank++] = d; /* -1: symbolic (dim_param) or unset */
    }
    if (r < 0)
        return CORRUPT("input shape");
    v->rank = rank;
    return IMGSIM_OK;
}

/* The image input: float [N,3,H,W] (or [N,H,W,3]); a symbolic batch becomes 1. */
static imgsim_status setup_input(ox_ctx *c, int vi)
{
    ox_value *v = &c->v[vi];
    if (v->dtype != OX_FLOAT)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED,
                         "ONNX model input '%s' must be float32 (type %d)", v->name, v->dtype);
    if (v->rank != 4)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED,
                         "ONNX model input '%s' must be a 4-d image tensor (rank %d)", v->name,
                         v->rank);
    if (v->dims[0] <= 0)
        v->dims[0] = 1;
    ox_layout lay;
    if (v->dims[1] == 3)
        lay = OX_NCHW;
    else if (v->dims[3] == 3)
        lay = OX_PLAIN;
    else
        return error_set(c->err, IMGSIM_E_UNSUPPORTED,
                         "ONNX model input '%s' must have 3 colour channels", v->name);
    for (int i = 1; i < 4; i++)
        if (v->dims[i] < 1 || v->dims[i] > 16384)
            return error_set(c->err, IMGSIM_E_UNSUPPORTED,
                             "ONNX model input '%s' has a dynamic or bad size (dimension %d)",
                             v->name, i);
    if (v->dims[0] != 1)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED,
                         "ONNX model input '%s' has batch %lld (must be 1 or symbolic)",
                         v->name, (long long)v->dims[0]);
    int64_t s[4];
    ox_ir_shape(lay, 4, v->dims, s);
    int t = ox_tensor(c, v->name, NULL, IR_F32, 4, s);
    if (t < 0)
        return c->err->code;
    v->ir = t;
    v->layout = lay;
    v->defined = 1;
    c->g->input = t;
    return IMGSIM_OK;
}

static imgsim_status read_node(ox_ctx *c, pb_buf msg, ox_node *n, int idx)
{
    pb_iter it;
    pb_field f;
    int r, nin = 0, nout = 0;
    pb_buf name = {NULL, 0}, op = {NULL, 0}, domain = {NULL, 0};
    n->msg = msg;
    pb_iter_init(&it, msg);
    while ((r = pb_next(&it, &f)) > 0) {
        int bad = 0;
        switch (f.num) {
        case 1: bad = want_len(&f); nin++; break;
        case 2: bad = want_len(&f); nout++; break;
        case 3: bad = want_len(&f); name = f.b; break;
        case 4: bad = want_len(&f); op = f.b; break;
        case 7: bad = want_len(&f); domain = f.b; break;
        case 5: bad = want_len(&f); break;
        default: break;
        }
        if (bad)
            return CORRUPT("node");
    }
    if (r < 0)
        return CORRUPT("node");
    if (nin > OX_MAX_NODE_IO || nout > OX_MAX_NODE_IO || nout < 1 || op.len == 0 ||
        op.len > 256 || memchr(op.p, 0, op.len) || (name.len && memchr(name.p, 0, name.len)))
        return error_set(c->err, IMGSIM_E_MODEL, "corrupt ONNX file: node %d is malformed",
                         idx);
    n->op = dup_buf(op);
    n->in = malloc(sizeof(int) * (size_t)(nin + nout));
    if (!n->op || !n->in)
        return ox_nomem(c);
    n->out = n->in + nin;
    if (pb_eq(domain, "") || pb_eq(domain, "ai.onnx"))
        n->ms = 0;
    else if (pb_eq(domain, "com.microsoft"))
        n->ms = 1;
    else
        n->ms = -1;
    pb_iter_init(&it, msg);
    while ((r = pb_next(&it, &f)) > 0) {
        if (f.num != 1 && f.num != 2)
            continue;
        int vi = value_of(c, f.b);
        if (vi == -1)
            return c->err->code;
        if (f.num == 1)
            n->in[n->nin++] = vi < 0 ? -1 : vi;
        else
            n->out[n->nout++] = vi < 0 ? -1 : vi;
    }
    if (n->out[0] < 0)
        return error_set(c->err, IMGSIM_E_MODEL, "corrupt ONNX file: node %d has no output",
                         idx);
    n->name = name.len ? dup_buf(name) : strdup(c->v[n->out[0]].name);
    if (!n->name)
        return ox_nomem(c);
    if (n->ms < 0) {
        /* keep the domain in the op name for the error message */
        char *d = dup_buf(domain);
        char *full = d ? malloc(strlen(d) + strlen(n->op) + 2) : NULL;
        if (!full) {
            free(d);
            return ox_nomem(c);
        }
        sprintf(full, "%s.%s", d, n->op);
        free(d);
        free(n->op);
        n->op = full;
    }
    int shape = !strcmp(n->op, "Shape");
    for (int k = 0; k < n->nin; k++)
        if (n->in[k] >= 0) {
            c->v[n->in[k]].nreaders++;
            c->v[n->in[k]].shape_readers += shape;
            c->v[n->in[k]].reader = idx;
        }
    return IMGSIM_OK;
}

static imgsim_status read_graph(ox_ctx *c, pb_buf graph)
{
    pb_iter it;
    pb_field f;
    int r, nnodes = 0;
    imgsim_status st;
    pb_iter_init(&it, graph);
    while ((r = pb_next(&it, &f)) > 0) {
        if ((f.num == 1 || f.num == 5 || f.num == 11 || f.num == 12) && want_len(&f) < 0)
            return CORRUPT("graph");
        nnodes += f.num == 1;
    }
    if (r < 0)
        return CORRUPT("graph (file truncated?)");
    if (nnodes == 0 || nnodes > OX_MAX_NODES)
        return error_set(c->err, IMGSIM_E_MODEL, "ONNX graph has %d nodes", nnodes);
    c->nodes = calloc((size_t)nnodes, sizeof *c->nodes);
    if (!c->nodes)
        return ox_nomem(c);
    /* initializers first: graph inputs that are initializers are not image inputs */
    pb_iter_init(&it, graph);
    while (pb_next(&it, &f) > 0)
        if (f.num == 5 && (st = read_initializer(c, f.b)) != IMGSIM_OK)
            return st;
    int ninputs = 0, in_vi = -1;
    pb_buf in_msg = {NULL, 0};
    c->output = -1;
    pb_iter_init(&it, graph);
    while (pb_next(&it, &f) > 0) {
        if (f.num != 11 && f.num != 12)
            continue;
        pb_iter vi_it;
        pb_field vf;
        pb_buf name = {NULL, 0};
        pb_iter_init(&vi_it, f.b);
        while ((r = pb_next(&vi_it, &vf)) > 0)
            if (vf.num == 1 && vf.wire == PB_LEN)
                name = vf.b;
        if (r < 0 || name.len == 0)
            return CORRUPT(f.num == 11 ? "graph input" : "graph output");
        int vi = value_of(c, name);
        if (vi < 0)
            return c->err->code;
        if (f.num == 12) {
            c->v[vi].is_output = 1;
            c->v[vi].nreaders++;
            c->v[vi].reader = -1;
            if (c->output < 0)
                c->output = vi;
        } else if (!c->v[vi].defined) {
            ninputs++;
            in_vi = vi;
            in_msg = f.b;
        }
    }
    if (ninputs != 1)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED,
                         "ONNX model must have one image input (has %d)", ninputs);
    if (c->output < 0)
        return error_set(c->err, IMGSIM_E_MODEL, "ONNX graph has no output");
    c->input = in_vi;
    if ((st = read_input_info(c, in_msg, &c->v[in_vi])) != IMGSIM_OK ||
        (st = setup_input(c, in_vi)) != IMGSIM_OK)
        return st;
    pb_iter_init(&it, graph);
    while (pb_next(&it, &f) > 0)
        if (f.num == 1) {
            int i = c->nnodes++; /* counted first: ctx_free frees a half-read node */
            if ((st = read_node(c, f.b, &c->nodes[i], i)) != IMGSIM_OK)
                return st;
        }
    return IMGSIM_OK;
}

/* ------------------------------------------------------------------ the node walk */

static int is_unsupported_value(const ox_ctx *c, int vi)
{
    return vi >= 0 && c->v[vi].bad_node > 0;
}

static imgsim_status unsupported(ox_ctx *c, int bad_node)
{
    const ox_node *n = &c->nodes[bad_node - 1];
    return error_set(c->err, IMGSIM_E_UNSUPPORTED, "unsupported ONNX operator '%s' in node '%s'",
                     n->op, n->name);
}

static imgsim_status walk_nodes(ox_ctx *c)
{
    imgsim_status st;
    for (int i = 0; i < c->nnodes; i++) {
        ox_node *n = &c->nodes[i];
        if (n->skip)
            continue;
        int bad = 0;
        for (int k = 0; k < n->nin; k++) {
            int vi = n->in[k];
            if (vi < 0)
                continue;
            if (!c->v[vi].defined)
                return ox_fail(c, n, IMGSIM_E_MODEL,
                               "reads '%s', which no earlier node produces", c->v[vi].name);
            if (is_unsupported_value(c, vi) && !bad)
                bad = c->v[vi].bad_node;
        }
        for (int k = 0; k < n->nout; k++)
            if (n->out[k] >= 0 && c->v[n->out[k]].defined)
                return ox_fail(c, n, IMGSIM_E_MODEL, "writes '%s', which is already defined",
                               c->v[n->out[k]].name);
        int r = ox_fold(c, n, &st);
        if (r < 0)
            return st;
        if (r > 0)
            bad = 0;
        if (r == 0 && !bad) {
            int handled = 0;
            if (n->ms == 0 && (!strcmp(n->op, "Conv") || !strcmp(n->op, "QLinearConv"))) {
                st = ox_lower_conv(c, n, n->op[0] == 'Q');
                handled = 1;
            } else if (n->ms == 0 && (!strcmp(n->op, "Gemm") || !strcmp(n->op, "MatMul"))) {
                st = ox_lower_gemm(c, n, n->op[0] == 'M');
                handled = 1;
            } else if (n->ms >= 0) {
                st = ox_lower_qop(c, n, &handled);
                if (st == IMGSIM_OK && !handled && n->ms == 0)
                    st = ox_lower_op(c, n, &handled);
            } else {
                st = IMGSIM_OK;
            }
            if (st != IMGSIM_OK)
                return st;
            if (!handled)
                bad = i + 1;
        }
        for (int k = 0; k < n->nout; k++) {
            int vi = n->out[k];
            if (vi < 0)
                continue;
            if (bad) {
                c->v[vi].bad_node = bad;
                c->v[vi].defined = 1;
            } else if (!c->v[vi].defined && k == 0) {
                return ox_fail(c, n, IMGSIM_E_INTERNAL, "output '%s' was not produced",
                               c->v[vi].name);
            } else {
                c->v[vi].defined = 1; /* unused optional outputs */
            }
        }
    }
    return IMGSIM_OK;
}

/* ------------------------------------------------------------------ clean-up */

/* Drop operators whose result nobody reads, then tensors no operator mentions. */
static imgsim_status prune(ox_ctx *c)
{
    ir_graph *g = c->g;
    char *need = calloc((size_t)g->nt, 1);
    int *map = malloc(sizeof(int) * (size_t)g->nt);
    if (!need || !map) {
        free(need);
        free(map);
        return ox_nomem(c);
    }
    need[g->output] = 1;
    need[g->input] = 1;
    int nops = 0;
    for (int i = g->nops - 1; i >= 0; i--) {
        ir_op *op = &g->ops[i];
        if (!need[op->out]) {
            op->out = -1; /* dropped */
            continue;
        }
        for (int k = 0; k < op->nin; k++)
            if (op->in[k] >= 0)
                need[op->in[k]] = 1;
    }
    for (int i = 0; i < g->nops; i++)
        if (g->ops[i].out >= 0)
            g->ops[nops++] = g->ops[i];
    g->nops = nops;
    int nt = 0;
    for (int i = 0; i < g->nt; i++) {
        if (!need[i]) {
            free(g->t[i].name);
            free(g->t[i].channel_scales);
            free(g->t[i].owned);
            map[i] = -1;
            continue;
        }
        map[i] = nt;
        g->t[nt++] = g->t[i];
    }
    g->nt = nt;
    for (int i = 0; i < g->nops; i++) {
        ir_op *op = &g->ops[i];
        op->out = map[op->out];
        for (int k = 0; k < op->nin; k++)
            if (op->in[k] >= 0)
                op->in[k] = map[op->in[k]];
        op->name = g->t[op->out].name;
    }
    g->input = map[g->input];
    g->output = map[g->output];
    free(need);
    free(map);
    return IMGSIM_OK;
}

/* The output holds logits when it comes (through reshapes, dequantization and bias adds)
 * from a fully connected layer or a 1x1 convolution, not from a softmax. */
static int ends_in_logits(const ir_graph *g)
{
    const ir_tensor *y = &g->t[g->output];
    if (ir_numel(y) < 2)
        return 0;
    int t = g->output;
    for (int hops = 0; hops < 8; hops++) {
        int p = ir_producer(g, t);
        if (p < 0)
            return 0;
        const ir_op *op = &g->ops[p];
        switch (op->kind) {
        case IR_FULLY_CONNECTED:
        case IR_CONV2D:
            return 1;
        case IR_RESHAPE:
        case IR_DEQUANTIZE:
        case IR_QUANTIZE:
            t = op->in[0];
            break;
        case IR_ADD: /* bias: the activation operand */
            t = g->t[op->in[0]].data ? op->in[1] : op->in[0];
            break;
        default:
            return 0;
        }
    }
    return 0;
}

static imgsim_status finish(ox_ctx *c)
{
    ir_graph *g = c->g;
    ox_value *out = &c->v[c->output];
    if (out->bad_node)
        return unsupported(c, out->bad_node);
    if (!out->defined)
        return error_set(c->err, IMGSIM_E_MODEL, "ONNX graph output '%s' is never computed",
                         out->name);
    if (out->ir < 0 || out->is_const)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED,
                         "ONNX graph output '%s' does not depend on the input", out->name);
    if (out->layout == OX_CHW_FLAT)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED,
                         "ONNX graph output '%s' is a flattened NCHW feature map", out->name);
    g->output = out->ir;
    if (g->output == g->input || g->nops == 0)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED, "ONNX graph computes nothing");
    imgsim_status st = prune(c);
    if (st != IMGSIM_OK)
        return st;
    g->output_logits = ends_in_logits(g);
    return ir_infer_shapes(g, c->err);
}

/* ------------------------------------------------------------------ the model */

static imgsim_status read_opset(ox_ctx *c, pb_buf msg, int *have)
{
    pb_iter it;
    pb_field f;
    int r;
    pb_buf domain = {(const uint8_t *)"", 0};
    int64_t version = 0;
    pb_iter_init(&it, msg);
    while ((r = pb_next(&it, &f)) > 0) {
        if (f.num == 1 && f.wire == PB_LEN)
            domain = f.b;
        else if (f.num == 2 && f.wire == PB_VARINT)
            version = (int64_t)f.u;
    }
    if (r < 0)
        return CORRUPT("opset_import");
    if (pb_eq(domain, "") || pb_eq(domain, "ai.onnx")) {
        if (version < 7 || version > 18)
            return error_set(c->err, IMGSIM_E_UNSUPPORTED,
                             "ONNX opset %lld is not supported (7 to 18 are)", (long long)version);
        c->opset = version;
        *have = 1;
    }
    /* other domains (com.microsoft, ai.onnx.ml, ...) may be imported; a node that uses an
     * operator from a domain without support is refused when it is reached */
    return IMGSIM_OK;
}

static void ctx_free(ox_ctx *c)
{
    for (int i = 0; i < c->nv; i++) {
        free(c->v[i].name);
        free(c->v[i].owned);
    }
    free(c->v);
    strmap_free(&c->names);
    for (int i = 0; i < c->nnodes; i++) {
        free(c->nodes[i].name);
        free(c->nodes[i].op);
        free(c->nodes[i].in);
    }
    free(c->nodes);
}

static imgsim_status read_model(ox_ctx *c)
{
    pb_buf model = {c->file, c->file_len};
    pb_iter it;
    pb_field f;
    int r, have_opset = 0, ngraph = 0;
    int64_t ir_version = -1;
    pb_buf graph = {NULL, 0};
    imgsim_status st;
    if (c->file_len == 0)
        return error_set(c->err, IMGSIM_E_MODEL, "not an ONNX model (empty file)");
    pb_iter_init(&it, model);
    int nfields = 0;
    while ((r = pb_next(&it, &f)) > 0) {
        nfields++;
        if (f.num == 1) {
            if (f.wire != PB_VARINT)
                break;
            ir_version = (int64_t)f.u;
        } else if (f.num == 7) {
            if (f.wire != PB_LEN)
                break;
            graph = f.b;
            ngraph++;
        } else if (f.num == 8 && f.wire != PB_LEN) {
            break;
        }
    }
    if (r != 0 || ir_version < 0 || ngraph == 0)
        return error_set(c->err, IMGSIM_E_MODEL, nfields > 1 && ir_version >= 0
                                                       ? "corrupt ONNX file (truncated?)"
                                                       : "not an ONNX model");
    if (ngraph > 1)
        return CORRUPT("model: two graphs");
    if (ir_version < 3 || ir_version > 11)
        return error_set(c->err, IMGSIM_E_UNSUPPORTED, "ONNX IR version %lld is not supported",
                         (long long)ir_version);
    pb_iter_init(&it, model);
    while (pb_next(&it, &f) > 0)
        if (f.num == 8 && (st = read_opset(c, f.b, &have_opset)) != IMGSIM_OK)
            return st;
    if (!have_opset)
        return error_set(c->err, IMGSIM_E_MODEL, "ONNX model imports no default-domain opset");
    if ((st = read_graph(c, graph)) != IMGSIM_OK)
        return st;
    if ((st = walk_nodes(c)) != IMGSIM_OK)
        return st;
    return finish(c);
}

imgsim_status onnx_read(uint8_t *bytes, size_t len, const char *dir, ir_graph *g,
                        imgsim_error *err)
{
    memset(g, 0, sizeof *g);
    g->file = bytes;
    g->file_len = len;
    const uint16_t one = 1;
    if (*(const uint8_t *)&one != 1)
        return error_set(err, IMGSIM_E_UNSUPPORTED, "ONNX models need a little-endian CPU");
    ox_ctx c;
    memset(&c, 0, sizeof c);
    c.g = g;
    c.err = err;
    c.file = bytes;
    c.file_len = len;
    c.dir = dir;
    c.input = c.output = -1;
    c.axes_hw = -1;
    imgsim_error local = {0};
    if (!err)
        c.err = &local;
    imgsim_status st = read_model(&c);
    ctx_free(&c);
    return st;
}
