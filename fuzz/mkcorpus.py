#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the hand-made seeds of the np fuzz corpora (fuzz/corpus/).

The valid-*.gguf seeds come from nptool model mkgguf (fuzz/ci.sh --seeds regenerates
them); this script writes the edge cases next to them: hand-built GGUF
files (every value type, nested arrays, each tensor type, each way a file
can be broken) and structured inputs for the compile, emu and card
harnesses (their byte formats are documented in the harness sources).
Deterministic: running it again rewrites identical files.

usage: fuzz/mkcorpus.py [corpus dir, default: the directory next to this]
"""
import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0 = 0, 1, 2, 8


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(b)) + b


SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
          F32: "<f", BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}


def val(t, v):
    if t == STR:
        return s(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(
            val(et, i) for i in items)
    return struct.pack(SCALAR[t], v)


def kv(key, t, v):
    return s(key) + struct.pack("<I", t) + val(t, v)


def gguf(kvs, tensors=(), version=3, align=32, n_kv=None, n_t=None):
    """tensors: (name, dims, type, data bytes)"""
    head = b"GGUF" + struct.pack("<IQQ", version,
                                 len(tensors) if n_t is None else n_t,
                                 len(kvs) if n_kv is None else n_kv)
    body = b"".join(kvs)
    infos, data = b"", b""
    for name, dims, ttype, raw in tensors:
        off = len(data)
        infos += s(name) + struct.pack("<I", len(dims)) + b"".join(
            struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ttype,
                                                             off)
        data += raw + b"\0" * (-len(raw) % align)
    out = head + body + infos
    out += b"\0" * (-len(out) % align)
    return out + data


def f16(x):
    return struct.pack("<e", x)


def q8_0_block(scale, q):
    return f16(scale) + bytes(v & 0xff for v in q)


def q4_0_block(scale, q):
    return f16(scale) + bytes((q[j] & 15) | (q[j + 16] & 15) << 4
                              for j in range(16))


def gguf_seeds():
    every_type = [
        kv("general.architecture", STR, "np-fuzz"),
        kv("general.alignment", U32, 64),
        kv("t.u8", U8, 200), kv("t.i8", I8, -5), kv("t.u16", U16, 60000),
        kv("t.i16", I16, -3000), kv("t.u32", U32, 4000000000),
        kv("t.i32", I32, -7), kv("t.f32", F32, 1.5), kv("t.bool", BOOL, 1),
        kv("t.u64", U64, 1 << 40), kv("t.i64", I64, -(1 << 40)),
        kv("t.f64", F64, 2.25),
        kv("t.arr_str", ARR, (STR, ["a", "", "\u00e9t\u00e9"])),
        kv("t.arr_f32", ARR, (F32, [0.5, -1.0])),
        kv("t.nested", ARR, (ARR, [(U8, [1, 2]), (STR, ["x"])])),
        kv("t.empty", ARR, (I32, [])),
    ]
    f32 = struct.pack("<32f", *[i / 8 for i in range(32)])
    tensors = [
        ("f32", [8, 4], GGML_F32, f32),
        ("f16", [16, 2], GGML_F16, b"".join(f16(i / 4) for i in range(32))),
        ("q8_0", [32, 2], GGML_Q8_0,
         q8_0_block(0.5, range(-16, 16)) + q8_0_block(-1, range(32))),
        ("q4_0", [64], GGML_Q4_0,
         q4_0_block(0.25, [i % 16 for i in range(32)]) * 2),
        ("four_d", [32, 1, 1, 1], GGML_F32, struct.pack("<32f", *[1.0] * 32)),
    ]
    out = {
        "empty-v3.gguf": gguf([]),
        "empty-v2.gguf": gguf([], version=2),
        "every-type.gguf": gguf(every_type, tensors, align=64),
        "bad-magic.gguf": b"GGUG" + gguf([])[4:],
        "version-1.gguf": gguf([], version=1),
        "too-short.gguf": b"GGU",
        "header-only.gguf": gguf([])[:20],
        "kv-count-huge.gguf": gguf([], n_kv=1 << 40),
        "tensor-count-huge.gguf": gguf([], n_t=1 << 40),
        "string-len-huge.gguf": b"GGUF" + struct.pack("<IQQ", 3, 0, 1) +
        struct.pack("<Q", 1 << 62) + b"key" + b"\0" * 16,
        "array-count-huge.gguf": gguf([s("a") + struct.pack("<IIQ", ARR, U32,
                                                             1 << 61)]),
        "nested-deep.gguf": gguf([kv("d", ARR, (ARR, [(ARR, [(ARR, [
            (ARR, [(U8, [1])])])])]))]),
        "bad-value-type.gguf": gguf([s("k") + struct.pack("<II", 13, 0)]),
        "duplicate-key.gguf": gguf([kv("k", U8, 1), kv("k", U8, 2)]),
        "alignment-bad.gguf": gguf([kv("general.alignment", U32, 48)]),
        "alignment-type.gguf": gguf([kv("general.alignment", U64, 64)]),
        "tensor-type-bad.gguf": gguf([], [("t", [32], 77, f32[:128])]),
        "tensor-dims-0.gguf": gguf([], [("t", [0], GGML_F32, b"")]),
        "tensor-dims-5.gguf": gguf([], [("t", [1, 1, 1, 1, 1], GGML_F32,
                                         b"\0" * 4)]),
        "tensor-huge.gguf": gguf([], [("t", [1 << 40, 1 << 20], GGML_F32,
                                       b"")]),
        "tensor-block.gguf": gguf([], [("t", [31], GGML_Q8_0, b"\0" * 34)]),
        "tensor-truncated.gguf": gguf([], [("t", [8, 4], GGML_F32, f32)])[:-16],
        "tensor-duplicate.gguf": gguf([], [("t", [8], GGML_F32, f32[:32]),
                                           ("t", [8], GGML_F32, f32[:32])]),
    }
    # llama metadata without a single tensor, and a tokenizer whose arrays
    # disagree in length
    llama = [
        kv("general.architecture", STR, "llama"),
        kv("llama.block_count", U32, 1),
        kv("llama.embedding_length", U32, 32),
        kv("llama.feed_forward_length", U32, 32),
        kv("llama.attention.head_count", U32, 2),
        kv("llama.attention.head_count_kv", U32, 1),
        kv("llama.rope.freq_base", F32, 10000.0),
        kv("llama.attention.layer_norm_rms_epsilon", F32, 1e-5),
        kv("tokenizer.ggml.model", STR, "llama"),
        kv("tokenizer.ggml.tokens", ARR, (STR, ["<unk>", "<s>", "</s>", "a",
                                               "\u2581b"])),
        kv("tokenizer.ggml.scores", ARR, (F32, [0.0, 0.0, 0.0, -1.0])),
        kv("tokenizer.ggml.token_type", ARR, (I32, [2, 3, 3, 1, 1])),
        kv("tokenizer.ggml.bos_token_id", U32, 1),
        kv("tokenizer.ggml.eos_token_id", U32, 9),
    ]
    out["llama-no-tensors.gguf"] = gguf(llama)
    gpt2 = [
        kv("tokenizer.ggml.model", STR, "gpt2"),
        kv("tokenizer.ggml.tokens", ARR, (STR, ["a", "b", "ab", "\u0120"])),
        kv("tokenizer.ggml.merges", ARR, (STR, ["a b", "zz q", "x"])),
    ]
    out["gpt2-small-vocab.gguf"] = gguf(gpt2)
    return out


def shape(layers, dim, heads, kv_heads, ffn, vocab, cards=0, batch=0,
          seq=0, out_cards=0):
    """compile harness input: each dimension as a selector byte
    (< 0x80: small value times the unit) or 0x80 then a raw u32."""
    def d(v, unit):
        if v % unit == 0 and v // unit < 0x80:
            return bytes([v // unit])
        return b"\x80" + struct.pack("<I", v)
    return (d(layers, 1) + d(dim, 32) + d(heads, 1) + d(kv_heads, 1) +
            d(ffn, 32) + d(vocab, 16) + struct.pack("<I", 2048) +
            b"\0\0" + d(cards, 1) + d(batch, 1) + d(seq, 16) +
            d(out_cards, 1) + struct.pack("<Q", 7) + b"\x01\x05\0\0\0\x40\0")


def compile_seeds():
    return {
        "tiny-render.bin": shape(2, 64, 4, 2, 64, 256, cards=3, batch=1,
                                 seq=16),
        "tiny-default-opts.bin": shape(1, 32, 2, 1, 32, 64),
        "demo-shape.bin": shape(14, 256, 8, 2, 704, 4096),
        "granite3b.bin": shape(14, 4096, 32, 8, 14336, 49152),
        "too-big.bin": shape(1024, 65536, 64, 8, 1 << 20, 1 << 22),
        "bad-heads.bin": shape(1, 96, 5, 1, 32, 64),
        "cards-1.bin": shape(1, 32, 2, 1, 32, 64, cards=1),
    }


def emu_seeds():
    """emu harness input: op byte (mod 9) then its arguments."""
    def desc(slot, op, flags, ln, src, dst):
        # addr selector 0: host + off, 1: SRAM + off, 2: FB + off
        def a(kind, off):
            return bytes([kind]) + struct.pack("<H", off)
        return (b"\x03" + struct.pack("<H", slot) + b"\0" +
                bytes([op, flags, 0, 0]) + bytes([ln // 16, ln % 16]) +
                a(*src) + a(*dst) + struct.pack("<Q", slot))
    prog = (desc(0, 1, 0, 256, (0, 0x2000), (1, 0)) +
            desc(1, 2, 1, 256, (1, 0), (0, 0x3000)) +
            desc(2, 4, 4, 128, (1, 0), (2, 0x40)))
    queue = b"\x04\x00\x03" + b"\x04\x00\x00" + b"\x00\x00\x7f" + \
        b"\x00\xe8\x03"  # engine 0, 8 entries, ring host+0, wb host+0x7f00
    tail = b"\x05\x00\x03"
    wait = b"\x06\x1f" * 4
    return {
        "round-trip.bin": prog + queue + tail + wait,
        "regs.bin": b"\x00\x00\x38\x78\x56\x34\x12" + b"\x01\x00\x00" +
        b"\x01\x01\x0a" + b"\x00\x02\x01\x05\0\0\0",
        "reset-busy.bin": prog + queue + tail + b"\x07\x40\x07\x45" + wait,
        "fault.bin": b"\x07\x0a\x07\x0b\x07\x0c" + b"\x06\x10",
        "fb.bin": b"\x08\x10\x00\xaa",
    }


def card_seeds():
    """card harness input: op byte (mod 9), xfer slot, engine, args."""
    return {
        "fence-then-bad-record.bin":
            b"\x00\x00\x00" + b"\x00\x01\x05\x01" +  # fence on engine 0
            b"\x01\x00\x00\x02" + struct.pack("<I", 1000) +  # completed
            b"\x03\x00\x00" + b"\x05\x00\x00\x05\x01" + b"\x04\x00\x00\x05",
        "lying-registers.bin":
            b"\x02\x00\x00\x04" + struct.pack("<4I", 8, 0xffffffff, 9, 1) +
            b"\x00\x01\x00" + b"\x01\x01\x00\x00\x10\x00\x00\x01" +
            b"\x04\x01\x00\x05",
        "reset-into-garbage.bin":
            b"\x00\x00\x00" + b"\x00\x01\x05\x01" +
            b"\x82\x00\x00\x03" + struct.pack("<3I", 0, 0x4e500100, 1) +
            b"\x08\x00\x00" + b"\x00\x01\x00\x01\x00\x00",
        "orphan.bin":
            b"\x00\x02\x01" + b"\x00\x02\x09\x03" + b"\x06\x02\x00" +
            b"\x05\x00\x00\x09\x03" + b"\x07\x00\x00",
    }


# the types np reads, in id order: the quant harness's first byte picks one
READABLE = (("f32", 4), ("f16", 2), ("q4_0", 18), ("q4_1", 20),
            ("q5_0", 22), ("q5_1", 24), ("q8_0", 34), ("q2_k", 84),
            ("q3_k", 110), ("q4_k", 144), ("q5_k", 176), ("q6_k", 210),
            ("iq4_nl", 18), ("bf16", 2))


def quant_seeds():
    """pick, blocks - 1, mode (0 decode, 1 encode), then block bytes or
    floats (fuzz/quant.c)"""
    out = {}
    lcg = 1

    def noise(n):
        nonlocal lcg
        b = bytearray()
        for _ in range(n):
            lcg = (lcg * 1103515245 + 12345) & 0x7fffffff
            b.append(lcg >> 16 & 0xff)
        return bytes(b)

    for i, (name, size) in enumerate(READABLE):
        out["decode-%s.bin" % name] = bytes([i, 1, 0]) + noise(2 * size)
    ramp = b"".join(struct.pack("<f", (j - 128) / 64.0) for j in range(256))
    out["encode-ramp.bin"] = bytes([0, 0, 1]) + ramp
    odd = [float("nan"), float("inf"), -float("inf"), 3.4e38, -3.4e38,
           1e-45, 0.0, -0.0]
    out["encode-nonfinite.bin"] = bytes([0, 0, 1]) + b"".join(
        struct.pack("<f", odd[j % len(odd)]) for j in range(256))
    out["encode-zero.bin"] = bytes([0, 1, 1]) + bytes(4 * 512)
    return out
PRES = ["gpt-2", "mpt", "llama-bpe", "qwen2", "starcoder", "refact",
        "deepseek-llm", "deepseek-coder", "falcon", "default", "command-r",
        "smaug-bpe", "spm"]  # fuzz/tok.c's order


def tok_seeds():
    """byte 0: tokenizer, byte 1 bit 0: parse special tokens, then text"""
    text = ("Hello world 12345 it's IT'S\n\n  x\r\n\ta+b=3,1234; `q` "
            "\u00e9t\u00e9 \u65e5\u672c\u8a9e \uac00\u3000\u3002 "
            "\U0001f600 xyz<|im_start|>hell \u0120! ").encode()
    seeds = {}
    for i, name in enumerate(PRES):
        seeds["%s.bin" % name] = bytes([i, 0]) + text
        seeds["%s-special.bin" % name] = bytes([i, 1]) + text
    seeds["invalid-utf8.bin"] = b"\x00\x00\xff\xfe\xc3 \xe6\x97 \x80x"
    seeds["spaces-end.bin"] = bytes([6, 0]) + b"a   \n   "
    return seeds


def chat_seeds():
    """byte 0: family, byte 1 bit 0: generation prompt, then NUL-split
    template, role, content, role, content, ..."""
    conv = [b"system", b"You are a helpful assistant", b"user", b"Hello",
            b"assistant", b"Hi there", b"user", b"Who are you",
            b"assistant", b"   I am an assistant   ", b"user",
            b"Another question"]
    tmpls = {
        "chatml": b"{{'<|im_start|>' + message['role']}}",
        "llama2-sys": b"[INST] <<SYS>>",
        "mistral-v1": b"' [INST] ' + system_message",
        "mistral-v3-tekken": b'[AVAILABLE_TOOLS]"[INST]"',
        "mistral-v7": b"[SYSTEM_PROMPT][INST]",
        "llama3": b"<|start_header_id|><|end_header_id|>",
        "granite": b"<|start_of_role|>",
        "phi3": b"<|assistant|><|end|>",
        "unknown": b"{{ messages }}",
    }
    seeds = {}
    for i, (name, t) in enumerate(tmpls.items()):
        seeds["%s.bin" % name] = bytes([i, 1]) + b"\0".join([t] + conv)
    seeds["empty.bin"] = b""
    return seeds


def http_seeds():
    """fuzz/http.c: method, path, flags (bits 0-1 auth, 2 a lying
    Content-Length, 3 chunked), then the body."""
    GET, POST, PUT, HEAD = 0, 1, 2, 4
    COMPL, CHAT, MODELS, HEALTH, METRICS, CARDS, RAW = 0, 1, 2, 3, 4, 5, 8
    KEY, BADKEY, NOBEARER, LIE, CHUNKED = 1, 2, 3, 4, 8

    def req(method, path, flags, body=b""):
        return bytes([method, path, flags]) + body

    seeds = {
        "health.bin": req(GET, HEALTH, 0),
        "metrics.bin": req(GET, METRICS, 0),
        "models.bin": req(GET, MODELS, 0),
        "cards.bin": req(GET, CARDS, 0),
        "post-cards.bin": req(POST, CARDS, KEY, b"{}"),
        "head-health.bin": req(HEAD, HEALTH, 0),
        "raw-path.bin": req(GET, RAW, 0, b"v1/models/\xc3\0"),
        "put-completions.bin": req(PUT, COMPL, KEY, b"{}"),
        "post-health.bin": req(POST, HEALTH, KEY, b"{}"),
        "no-key.bin": req(POST, COMPL, 0, b'{"prompt":"a"}'),
        "wrong-key.bin": req(POST, COMPL, BADKEY, b'{"prompt":"a"}'),
        "no-bearer.bin": req(POST, COMPL, NOBEARER, b'{"prompt":"a"}'),
        "too-big-header.bin": req(POST, COMPL, KEY | LIE, b'{"prompt":"a"}'),
        "too-big-chunked.bin": req(POST, CHAT, KEY | CHUNKED,
                                   b'{"prompt":"' + b"x" * 2100 + b'"}'),
        "completion.bin": req(POST, COMPL, KEY,
                              b'{"prompt":"Hello","max_tokens":3,'
                              b'"temperature":0}'),
        "completion-ids.bin": req(POST, COMPL, KEY,
                                  b'{"prompt":[1,2,3],"max_tokens":2,'
                                  b'"logprobs":2,"seed":7}'),
        "completion-stream.bin": req(POST, COMPL, KEY | CHUNKED,
                                     b'{"prompt":["Hi"],"stream":true,'
                                     b'"max_tokens":2,"stop":["x","\\n"],'
                                     b'"stream_options":'
                                     b'{"include_usage":true}}'),
        "chat.bin": req(POST, CHAT, KEY,
                        b'{"messages":[{"role":"system","content":"Be '
                        b'brief."},{"role":"user","content":[{"type":'
                        b'"text","text":"Hi"}]}],"max_completion_tokens":2,'
                        b'"logprobs":true,"top_logprobs":3,"top_p":0.5,'
                        b'"top_k":4}'),
        "chat-stream.bin": req(POST, CHAT, KEY,
                               b'{"messages":[{"role":"developer","content":'
                               b'"x"},{"role":"user","content":"y"}],'
                               b'"stream":true,"max_tokens":2}'),
        "bad-json.bin": req(POST, COMPL, KEY, b'{"prompt":"a",'),
        "bad-utf8.bin": req(POST, COMPL, KEY, b'{"prompt":"\xff\xfe"}'),
        "bad-field.bin": req(POST, CHAT, KEY,
                             b'{"messages":[{"role":"tool","content":1}],'
                             b'"temperature":"hot","n":2}'),
        "long-prompt.bin": req(POST, COMPL, KEY,
                               b'{"prompt":"' + b"word " * 80 + b'"}'),
        "empty.bin": b"",
    }
    return seeds


def link_seeds():
    """fuzz/link.c: messages from a head to a member, each a 14-byte
    record (type | 16 for a template payload, epoch or template hello
    overlay offset / 4, k, a, b, payload length) and its payload."""
    import struct
    HELLO, REPLY, FRAME, CREDIT, HB, RESET, FAULT, BYE = range(1, 9)
    T = 16

    def msg(t, e=1, k=0, a=0, b=0, payload=b""):
        return struct.pack("<BBHIIH", t, e, k, a, b, len(payload)) + payload

    def u32(v):
        return struct.pack("<I", v)

    load = msg(HELLO | T, 0)
    frames = b"".join(msg(FRAME | T, 1, k, 1 + k % 2, 4 * (k % 2))
                      for k in range(3))
    seeds = {
        "hello.bin": load,
        "hello-frames.bin": load + frames + msg(CREDIT, 1, 0) + msg(HB, 1),
        "hello-frames-full-logits.bin": load + msg(FRAME | T, 1, 0, 2, 0),
        "hello-bad-proto.bin": msg(HELLO | T, 0, payload=u32(2)),
        "hello-bad-abi.bin": msg(HELLO | T, 1, payload=u32(0xffffffff)),
        "hello-bad-model-hash.bin": msg(HELLO | T, 2, payload=b"\x55" * 8),
        "hello-bad-plan-hash.bin": msg(HELLO | T, 4, payload=b"\x55" * 8),
        "hello-bad-precision.bin": msg(HELLO | T, 6, payload=u32(77)),
        "hello-bad-cards.bin": msg(HELLO | T, 7, payload=u32(0) + u32(9)),
        "hello-too-many-cards.bin": msg(HELLO | T, 13, payload=u32(99)),
        "hello-first-past-end.bin": msg(HELLO | T, 12,
                                        payload=u32(5) + u32(2)),
        "hello-spare.bin": msg(HELLO | T, 13, payload=u32(0)),
        "hello-calib.bin": msg(HELLO | T, 17,
                               payload=u32(5) + b"\0" * 64 + b"Hello"),
        "hello-calib-len-huge.bin": msg(HELLO | T, 17,
                                        payload=u32(0xffffffff)),
        "hello-next-unterminated.bin": msg(HELLO | T, 18, payload=b"A" * 64),
        "reset-next-unterminated.bin": load + msg(RESET | T, 18,
                                                  payload=b"1" * 64),
        "hello-short.bin": msg(HELLO, 1, payload=b"\1" * 100),
        "reset-unloaded.bin": msg(RESET | T, 0),
        "reset.bin": load + frames + msg(RESET | T, 0) + frames,
        "frame-unloaded.bin": msg(FRAME | T, 1, 0, 1),
        "frame-bad-size.bin": load + msg(FRAME, 1, 0, payload=b"\1" * 100),
        "frame-too-many-tokens.bin": load + msg(
            FRAME, 1, 0, payload=u32(99) + u32(0) + b"\0" * 64),
        "frame-old-epoch.bin": load + msg(FRAME | T, 0, 0, 1),
        "frame-slot-busy.bin": load + msg(FRAME | T, 1, 0, 1) +
        msg(FRAME | T, 1, 8, 1),
        "frame-out-of-order.bin": load + msg(FRAME | T, 1, 5, 1),
        "frame-topk-huge.bin": load + msg(FRAME | T, 1, 0, 1, 0xff),
        "credits.bin": load + msg(CREDIT, 1) * 12,
        "fault-heartbeat-reply.bin": load + msg(FAULT, 1, 0, 0xfffffffb, 1) +
        msg(HB, 1) + msg(REPLY, 1, payload=b"\0" * 32),
        "unknown.bin": msg(12, 3, 7, 1, 2, b"x") + msg(0, 0),
        "bye.bin": load + msg(BYE, 1) + msg(FRAME | T, 1, 0, 1),
        "empty.bin": b"",
    }
    return seeds


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    for harness, seeds in (("gguf", gguf_seeds()),
                           ("compile", compile_seeds()),
                           ("emu", emu_seeds()), ("card", card_seeds()),
                           ("quant", quant_seeds()),
                           ("tok", tok_seeds()), ("chat", chat_seeds()),
                           ("http", http_seeds()),
                           ("link", link_seeds())):
        os.makedirs(os.path.join(root, harness), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(root, harness, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
