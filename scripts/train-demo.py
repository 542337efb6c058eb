#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Train np's demo model: a small llama-architecture decoder, in PyTorch.

scripts/train-demo.sh runs the stages in order; data/models/README.md
describes the result.

  corpus OUTDIR        the training text and the held-out text, from the
                       shipped sample text and Debian packages (see SOURCES)
  train IDS HELDOUT_IDS OUTDIR [--minutes M] [--bos ID] [--init WEIGHTS]
        [--lr PEAK] [--batch B]
                       train on np's token ids (nptool model tokenize
                       --ids-out), write OUTDIR/weights.f32 in the order
                       nptool model mkgguf --weights reads, and
                       OUTDIR/train.json (hyper-parameters, loss, time)
  record WEIGHTS NPTOOL GGUF OUT
                       PyTorch's greedy continuations of PROMPTS to OUT,
                       compared with np's float reference on the GGUF
  greedy WEIGHTS IDS N greedy continuation of the prompt ids, as ids

The model is written in ggml's layout directly: RoPE rotates adjacent
pairs (2i, 2i + 1) of each head, as llama.cpp's LLAMA_ROPE_TYPE_NORM and
np's float reference do, so no Q/K permutation is needed on export.
RMSNorm is x / sqrt(mean(x^2) + eps) * w, GQA head h reads KV head
h / (n_heads / n_kv_heads), the output matrix is tied to the embedding.
"""
import html.parser
import json
import math
import os
import random
import re
import struct
import subprocess
import sys
import time

SEED = 1234

# The model; nptool model mkgguf --layers .. --vocab takes the same
SHAPE = dict(n_layers=4, dim=256, n_heads=8, n_kv_heads=2, ffn=512,
             vocab=2048, ctx=2048, rope_base=10000.0, norm_eps=1e-5)

# Debian packages the text comes from (package, what, license)
SOURCES = [
    ("np", "data/sample-multilingual.txt", "MIT (this project)"),
    ("bible-kjv-text", "/usr/lib/bible.data, read by bible -l9999 (bible-kjv)",
     "public domain (King James Version, 1611)"),
    ("debian-reference-en", "/usr/share/debian-reference/*.en.html",
     "GPL-2+"),
    ("debian-reference-de", "/usr/share/debian-reference/*.de.html",
     "GPL-2+"),
    ("debian-reference-fr", "/usr/share/debian-reference/*.fr.html",
     "GPL-2+"),
    ("debian-reference-es", "/usr/share/debian-reference/*.es.html",
     "GPL-2+"),
]
SAMPLE_REPEAT = 8  # the shipped sample: the prompts of the main job
HELDOUT_EVERY = 40  # every 40th paragraph of each Debian source


class _Paragraphs(html.parser.HTMLParser):
    """The text of the <p> elements of an HTML page: its prose."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.cur = []
        self.out = []

    def handle_starttag(self, tag, attrs):
        if tag == "p":
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "p" and self.depth:
            self.depth -= 1
            t = re.sub(r"\s+", " ", "".join(self.cur)).strip()
            self.cur = []
            if len(t) > 80:
                self.out.append(t)

    def handle_data(self, data):
        if self.depth:
            self.cur.append(data)


def _kjv():
    """One paragraph per chapter of the King James Version."""
    out = subprocess.run(["bible", "-l9999", "gen1:1-rev22:21"], check=True,
                         capture_output=True, text=True).stdout
    paras, verses = [], []
    for line in out.splitlines():
        m = re.match(r"^\s+\d+ (.*)$", line)
        if m:
            verses.append(m.group(1).strip())
        elif line.strip():  # "Genesis 2": a new chapter
            if verses:
                paras.append(" ".join(verses))
            verses = []
    if verses:
        paras.append(" ".join(verses))
    # chapters are long: split them in paragraphs of about 600 bytes
    res = []
    for p in paras:
        words, cur = p.split(" "), []
        for w in words:
            cur.append(w)
            if len(" ".join(cur)) > 600 and w.endswith((".", ":", ";")):
                res.append(" ".join(cur))
                cur = []
        if cur:
            res.append(" ".join(cur))
    return res


def _reference(lang):
    d = "/usr/share/debian-reference"
    paras = []
    for f in sorted(os.listdir(d)):
        if f.endswith("." + lang + ".html"):
            p = _Paragraphs()
            with open(os.path.join(d, f), encoding="utf-8") as fh:
                p.feed(fh.read())
            paras += p.out
    return paras


def corpus(outdir):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "data/sample-multilingual.txt"),
              encoding="utf-8") as fh:
        sample = fh.read().strip()
    train, held = [], []
    stats = []
    for name, paras in [("bible-kjv-text", _kjv())] + [
            ("debian-reference-" + lang, _reference(lang))
            for lang in ("en", "de", "fr", "es")]:
        tr = [p for i, p in enumerate(paras) if i % HELDOUT_EVERY != 7]
        he = [p for i, p in enumerate(paras) if i % HELDOUT_EVERY == 7]
        train += tr
        held += he
        stats.append(dict(source=name, paragraphs=len(paras),
                          train_bytes=sum(len(p.encode()) + 2 for p in tr),
                          heldout_bytes=sum(len(p.encode()) + 2
                                            for p in he)))
    random.Random(SEED).shuffle(train)
    # the sample text, SAMPLE_REPEAT times, spread through the corpus
    step = len(train) // SAMPLE_REPEAT
    for k in range(SAMPLE_REPEAT):
        train.insert(k * (step + 1), sample)
    stats.append(dict(source="np data/sample-multilingual.txt",
                      repeats=SAMPLE_REPEAT,
                      train_bytes=SAMPLE_REPEAT * (len(sample.encode()) + 2),
                      heldout_bytes=0))
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "train.txt"), "w", encoding="utf-8") as fh:
        fh.write("\n\n".join(train) + "\n")
    with open(os.path.join(outdir, "heldout.txt"), "w",
              encoding="utf-8") as fh:
        fh.write("\n\n".join(held) + "\n")
    with open(os.path.join(outdir, "corpus.json"), "w") as fh:
        json.dump(stats, fh, indent=1)
    for s in stats:
        print(s)


# ---------------------------------------------------------------- model

def _torch():
    import torch
    return torch


def build_model(torch, s):
    nn = torch.nn
    F = torch.nn.functional
    hd = s["dim"] // s["n_heads"]
    kvd = hd * s["n_kv_heads"]

    class RMSNorm(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(n))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) +
                                   s["norm_eps"]) * self.weight

    # ggml's rope: theta_i = base^(-2i/hd), pairs (2i, 2i + 1)
    inv = s["rope_base"] ** (-torch.arange(0, hd, 2, dtype=torch.float64) /
                             hd)

    def rope_tables(T):
        ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
        return ang.cos().float(), ang.sin().float()

    def rope(x, cos, sin):  # x: B, H, T, hd
        x0, x1 = x[..., 0::2], x[..., 1::2]
        r0 = x0 * cos - x1 * sin
        r1 = x0 * sin + x1 * cos
        return torch.stack((r0, r1), dim=-1).flatten(-2)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            d = s["dim"]
            self.attn_norm = RMSNorm(d)
            self.q = nn.Linear(d, d, bias=False)
            self.k = nn.Linear(d, kvd, bias=False)
            self.v = nn.Linear(d, kvd, bias=False)
            self.o = nn.Linear(d, d, bias=False)
            self.ffn_norm = RMSNorm(d)
            self.gate = nn.Linear(d, s["ffn"], bias=False)
            self.up = nn.Linear(d, s["ffn"], bias=False)
            self.down = nn.Linear(s["ffn"], d, bias=False)

        def forward(self, x, cos, sin, mask):
            B, T, _ = x.shape
            H, KV = s["n_heads"], s["n_kv_heads"]
            h = self.attn_norm(x)
            q = self.q(h).view(B, T, H, hd).transpose(1, 2)
            k = self.k(h).view(B, T, KV, hd).transpose(1, 2)
            v = self.v(h).view(B, T, KV, hd).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            # head h reads KV head h // (H / KV), as np and llama.cpp do
            k = k.repeat_interleave(H // KV, dim=1)
            v = v.repeat_interleave(H // KV, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            att = att.masked_fill(mask[:T, :T], float("-inf")).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, H * hd)
            x = x + self.o(y)
            h = self.ffn_norm(x)
            return x + self.down(F.silu(self.gate(h)) * self.up(h))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(s["vocab"], s["dim"])
            self.blocks = nn.ModuleList(Block() for _ in range(s["n_layers"]))
            self.norm = RMSNorm(s["dim"])
            self.mask = None
            self.rope = None

        def forward(self, idx):
            T = idx.shape[1]
            if self.rope is None or self.rope[0].shape[0] < T:
                self.rope = rope_tables(max(T, 256))
                self.mask = torch.triu(torch.ones(max(T, 256), max(T, 256),
                                                  dtype=torch.bool), 1)
            cos, sin = self.rope[0][:T], self.rope[1][:T]
            x = self.tok(idx)
            for b in self.blocks:
                x = b(x, cos, sin, self.mask)
            return self.norm(x) @ self.tok.weight.t()  # tied output

    m = Model()
    # GPT-2 style init: N(0, 0.02), residual projections scaled down
    for name, p in m.named_parameters():
        if p.dim() == 2:
            std = 0.02
            if name.endswith(("o.weight", "down.weight")):
                std /= math.sqrt(2 * s["n_layers"])
            torch.nn.init.normal_(p, 0.0, std)
    return m


def export(m, s, path):
    """Floats in the order nptool model mkgguf --weights reads: token
    embedding, then per layer attn_norm, q, k, v, o, ffn_norm, gate, up,
    down ([rows x cols] as torch stores them), output_norm, output."""
    ts = [m.tok.weight]
    for b in m.blocks:
        ts += [b.attn_norm.weight, b.q.weight, b.k.weight, b.v.weight,
               b.o.weight, b.ffn_norm.weight, b.gate.weight, b.up.weight,
               b.down.weight]
    ts += [m.norm.weight, m.tok.weight]
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        for t in ts:
            fh.write(t.detach().float().contiguous().numpy().astype(
                "<f4").tobytes())
    os.replace(tmp, path)


def load_weights(torch, m, path):
    import numpy as np
    w = np.fromfile(path, dtype="<f4")
    off = 0

    def take(p):
        nonlocal off
        n = p.numel()
        p.data.copy_(torch.from_numpy(w[off:off + n].copy()).view_as(p))
        off += n
    take(m.tok.weight)
    for b in m.blocks:
        for p in (b.attn_norm.weight, b.q.weight, b.k.weight, b.v.weight,
                  b.o.weight, b.ffn_norm.weight, b.gate.weight, b.up.weight,
                  b.down.weight):
            take(p)
    take(m.norm.weight)
    off += m.tok.weight.numel()  # the tied output
    assert off == w.size, (off, w.size)


def read_ids(path):
    import numpy as np
    return np.fromfile(path, dtype="<i4").astype("int64")


def greedy_ids(torch, m, prompt, n):
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            logits = m(torch.tensor([ids]))[0, -1]
            ids.append(int(logits.argmax()))
    return ids[len(prompt):]


def train(ids_path, held_path, outdir, minutes, bos_id, init=None,
          lr_peak=3e-3, batch=24):
    torch = _torch()
    import numpy as np
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(int(os.environ.get("NP_TRAIN_THREADS", "2")))
    s = SHAPE
    data = torch.from_numpy(read_ids(ids_path))
    held = torch.from_numpy(read_ids(held_path))
    bos = torch.tensor([bos_id])
    m = build_model(torch, s)
    if init:  # continue from weights.f32 of an earlier run
        load_weights(torch, m, init)
    n_params = sum(p.numel() for p in m.parameters())
    T, B = 128, batch
    lr_max, lr_min, warm = lr_peak, lr_peak / 10, 30
    decay = [p for p in m.parameters() if p.dim() == 2]
    other = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=0.1),
                             dict(params=other, weight_decay=0.0)],
                            lr=lr_max, betas=(0.9, 0.95))
    # a continued run draws other batches than the first
    gen = torch.Generator().manual_seed(SEED + (1 if init else 0))
    budget = minutes * 60.0
    t0 = time.time()
    step, log = 0, []
    last_save = t0
    os.makedirs(outdir, exist_ok=True)

    def held_loss():
        m.eval()
        with torch.no_grad():
            n = min(held.numel(), 64 * (T - 1)) // (T - 1)
            y = held[:n * (T - 1)].view(n, T - 1)
            x = torch.cat((bos.expand(n, 1), y[:, :-1]), dim=1)
            loss = torch.nn.functional.cross_entropy(
                m(x).view(-1, s["vocab"]), y.reshape(-1)).item()
        m.train()
        return loss

    def save(final):
        export(m, s, os.path.join(outdir, "weights.f32"))
        info = dict(shape=s, params=n_params, seq=T, batch=B,
                    lr_max=lr_max, lr_min=lr_min, warmup=warm,
                    weight_decay=0.1, betas=[0.9, 0.95], seed=SEED,
                    steps=step, tokens=step * B * T,
                    train_tokens_available=int(data.numel()),
                    heldout_tokens=int(held.numel()), bos=bos_id,
                    seconds=round(time.time() - t0, 1),
                    threads=torch.get_num_threads(),
                    torch=torch.__version__, init=init, final=final,
                    log=log)
        with open(os.path.join(outdir, "train.json"), "w") as fh:
            json.dump(info, fh, indent=1)

    loss_avg = None
    while True:
        el = time.time() - t0
        if el >= budget:
            break
        # cosine schedule over the time budget
        frac = el / budget
        lr = lr_max * min(1.0, (step + 1) / warm)
        lr = lr_min + (lr - lr_min) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        # BOS, then T - 1 tokens from anywhere: np's prompts start so
        ix = torch.randint(0, data.numel() - T, (B,), generator=gen)
        x = torch.stack([torch.cat((bos, data[i:i + T - 1])) for i in ix])
        y = torch.stack([data[i:i + T] for i in ix])
        loss = torch.nn.functional.cross_entropy(
            m(x).view(-1, s["vocab"]), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        step += 1
        loss_avg = loss.item() if loss_avg is None else \
            0.98 * loss_avg + 0.02 * loss.item()
        if step % 50 == 0:
            rec = dict(step=step, seconds=round(time.time() - t0, 1),
                       lr=round(lr, 6), train_loss=round(loss_avg, 4))
            if step % 200 == 0:
                rec["heldout_loss"] = round(held_loss(), 4)
            log.append(rec)
            print(json.dumps(rec), flush=True)
        if time.time() - last_save > 300:
            save(False)
            last_save = time.time()
    log.append(dict(step=step, seconds=round(time.time() - t0, 1),
                    train_loss=round(loss_avg, 4),
                    heldout_loss=round(held_loss(), 4)))
    print(json.dumps(log[-1]), flush=True)
    save(True)


def load_model(weights, f16):
    """The trained model; f16: its weights rounded to float16 as the
    GGUF stores them (np reads them back to float exactly)."""
    torch = _torch()
    m = build_model(torch, SHAPE)
    load_weights(torch, m, weights)
    if f16:
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(p.half().float())
    m.eval()
    return torch, m


def greedy(weights, prompt_ids, n):
    torch, m = load_model(weights, True)
    return greedy_ids(torch, m, prompt_ids, n)


# The prompts whose PyTorch continuations are recorded beside the model:
# the main job's sample text (English, German) and the KJV's first words
PROMPTS = ["The lighthouse at the end of the harbour",
           "Der Zug nach Norden",
           "In the beginning"]
RECORD_TOKENS = 32


def record(weights, nptool, gguf, out):
    """PyTorch's greedy continuations of PROMPTS with the GGUF's weights
    (F16), prompt ids from np's tokenizer, to out (np-demo.greedy, read
    by tests/model/check_demo.c); np's float reference beside them."""
    torch, m = load_model(weights, True)
    lines = ["# Greedy continuations of %s by PyTorch %s (F16 weights)," %
             (os.path.basename(gguf), torch.__version__),
             "# written by scripts/train-demo.py record; "
             "tests/model/check_demo.c",
             "# checks np's float reference against them. Per prompt:",
             "# prompt TEXT / prompt_ids (BOS first) / ids (%d)" %
             RECORD_TOKENS]
    report = []
    for p in PROMPTS:
        tok = json.loads(subprocess.run(
            [nptool, "--json", "model", "tokenize", "--bos", gguf, p],
            check=True, capture_output=True, text=True).stdout)
        pids = tok["ids"]
        ids = greedy_ids(torch, m, pids, RECORD_TOKENS)
        ref = json.loads(subprocess.run(
            [nptool, "--json", "model", "greedy", "-n",
             str(RECORD_TOKENS), gguf, p],
            check=True, capture_output=True, text=True).stdout)
        same = 0
        while same < len(ids) and ids[same] == ref["ids"][same]:
            same += 1
        lines += ["prompt " + p,
                  "prompt_ids " + " ".join(map(str, pids)),
                  "ids " + " ".join(map(str, ids))]
        report.append(dict(prompt=p, torch_text=subprocess.run(
            [nptool, "model", "detokenize", gguf] + [str(i) for i in ids],
            check=True, capture_output=True, text=True,
            errors="replace").stdout.strip(),
            np_float_text=ref["text"], same_first=same))
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    for r in report:
        print(json.dumps(r, ensure_ascii=False))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "corpus" and len(a) == 2:
        corpus(a[1])
    elif a and a[0] == "train" and len(a) >= 4:
        mins = float(a[a.index("--minutes") + 1]) if "--minutes" in a else 35
        bos = int(a[a.index("--bos") + 1]) if "--bos" in a else 1
        init = a[a.index("--init") + 1] if "--init" in a else None
        lr = float(a[a.index("--lr") + 1]) if "--lr" in a else 3e-3
        b = int(a[a.index("--batch") + 1]) if "--batch" in a else 24
        train(a[1], a[2], a[3], mins, bos, init, lr, b)
    elif a and a[0] == "record" and len(a) == 5:
        record(a[1], a[2], a[3], a[4])
    elif a and a[0] == "greedy" and len(a) == 4:
        ids = [int(x) for x in a[2].replace(",", " ").split()]
        print(" ".join(str(i) for i in greedy(a[1], ids, int(a[3]))))
    else:
        sys.exit(__doc__)
