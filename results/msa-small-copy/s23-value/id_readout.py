#!/usr/bin/env python3
"""Where msa-small keeps an id token's identity, layer by layer (session 23).

usage: id_readout.py MODEL.safetensors [...]   (numpy only; one thread: OPENBLAS_NUM_THREADS=1)

For each model, a plain float64 re-implementation of the msa-small forward (4 Qwen3 layers, RoPE
theta 1e6, q/k RMSNorm, 4 query / 2 KV heads of 32, SwiGLU, tied LM head; positions 0..L-1, no
memory) runs short copy_ids-like lines ("w w w [a]x[j][b]q\\n") and prints:
  - the input of each layer at the [j] position, read back as j by a ridge-regression map onto the
    embedding (fit on every id in one random context, tested on 300 ids in new contexts): full rank
    and truncated to rank 16/32/64 (one KV head's value width is 32);
  - for a repeated line, the rank of the copied id among the 2064 ids at the copy row, and layer 2
    head 0's attention share on its source.
The first block of output checks the re-implementation: the repeated NIAH-like line is copied.
"""
import json, struct, sys
import numpy as np

IDS, FIRST_ID, H, KV, D, THETA = 2064, 262, 4, 2, 32, 1e6
WORDS = [b'apple', b'river', b'stone', b'cloud', b'green', b'house', b'music', b'light', b'table', b'water',
         b'north', b'paper']


def load(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header, base, out = json.loads(raw[8:8 + n]), 8 + n, {}
    for name, v in header.items():
        if name == '__metadata__':
            continue
        s, e = v['data_offsets']
        if v['dtype'] == 'BF16':
            a = (np.frombuffer(raw[base + s:base + e], dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif v['dtype'] == 'F32':
            a = np.frombuffer(raw[base + s:base + e], dtype=np.float32)
        else:
            sys.exit(f'{path}: tensor {name} has dtype {v["dtype"]}; only F32 and BF16 are read')
        out[name] = a.reshape(v['shape']).astype(np.float64)
    return out


def rms(x, g, eps=1e-6):
    return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + eps) * g


def rope(x, pos):
    inv = 1.0 / (THETA ** (np.arange(0, D, 2) / D))
    f = np.outer(pos, inv)
    c, s = np.cos(f), np.sin(f)
    a, b = x[..., :D // 2], x[..., D // 2:]
    return np.concatenate([a * c - b * s, b * c + a * s], -1)


def forward(w, toks):
    """Logits and, per layer l, its input 'in{l}' and attention 'att{l}' [H, L, L]."""
    L = len(toks)
    pos = np.arange(L)
    h = w['model.embed_tokens.weight'][toks]
    acts = {}
    for l in range(4):
        p = f'model.layers.{l}.'
        acts[f'in{l}'] = h
        x = rms(h, w[p + 'input_layernorm.weight'])
        q = rms((x @ w[p + 'self_attn.q_proj.weight'].T).reshape(L, H, D), w[p + 'self_attn.q_norm.weight'])
        k = rms((x @ w[p + 'self_attn.k_proj.weight'].T).reshape(L, KV, D), w[p + 'self_attn.k_norm.weight'])
        v = (x @ w[p + 'self_attn.v_proj.weight'].T).reshape(L, KV, D).transpose(1, 0, 2)
        q, k = rope(q.transpose(1, 0, 2), pos), rope(k.transpose(1, 0, 2), pos)
        heads, att = [], []
        for hh in range(H):
            kv = hh // (H // KV)
            sc = q[hh] @ k[kv].T / np.sqrt(D) + np.triu(np.full((L, L), -1e30), 1)
            a = np.exp(sc - sc.max(1, keepdims=True))
            a /= a.sum(1, keepdims=True)
            att.append(a)
            heads.append(a @ v[kv])
        acts[f'att{l}'] = np.stack(att)
        h = h + np.concatenate(heads, -1) @ w[p + 'self_attn.o_proj.weight'].T
        x = rms(h, w[p + 'post_attention_layernorm.weight'])
        g, u = x @ w[p + 'mlp.gate_proj.weight'].T, x @ w[p + 'mlp.up_proj.weight'].T
        h = h + ((g / (1 + np.exp(-g))) * u) @ w[p + 'mlp.down_proj.weight'].T
    acts['in4'] = h
    return rms(h, w['model.norm.weight']) @ w['model.embed_tokens.weight'].T, acts


def words(rng, n):
    return list(b' '.join(rng.choice(WORDS, size=n))) + [32]


def line(rng, j):
    a, b = FIRST_ID + rng.choice(IDS, size=2)
    return [a, ord('x'), FIRST_ID + j, b, ord('q')]


def report(path):
    w = load(path)
    E = w['model.embed_tokens.weight'][FIRST_ID:FIRST_ID + IDS]
    rng = np.random.default_rng(1)
    text = (b'The special magic number for sturdy-candle is: 7069878. Some filler text here.\n'
            b'The special magic number for sturdy-candle is: 7069878')
    t = np.frombuffer(text, dtype=np.uint8).astype(int)
    logits, _ = forward(w, t)
    print(f'{path}\n  check: repeated line copied, {(logits.argmax(-1)[-61:-1] == t[-60:]).mean():.2f} of its last 60 bytes')

    def residuals(ids):
        out = {l: [] for l in range(5)}
        for j in ids:
            toks = words(rng, 3) + line(rng, j) + [10]
            _, acts = forward(w, np.array(toks))
            at = toks.index(FIRST_ID + j)
            for l in range(5):
                out[l].append(acts[f'in{l}'][at])
        return {l: np.array(v) for l, v in out.items()}

    train_ids, test_ids = np.arange(IDS), rng.choice(IDS, size=300, replace=False)
    A, B = residuals(train_ids), residuals(test_ids)
    Ec = E - E.mean(0)
    for l in range(5):
        mu, sd = A[l].mean(0), A[l].std(0) + 1e-6
        Xa, Xb = (A[l] - mu) / sd, (B[l] - mu) / sd
        W = np.linalg.solve(Xa.T @ Xa + np.eye(Xa.shape[1]), Xa.T @ Ec[train_ids])
        U, S, Vt = np.linalg.svd(W)
        accs = [((Xb @ ((U[:, :r] * S[:r]) @ Vt[:r]) @ Ec.T).argmax(1) == test_ids).mean() for r in (16, 32, 64, 128)]
        where = f'input of layer {l}' if l < 4 else 'final hidden state'
        print(f'  {where}: id read back in {accs[3]:.2f} of held-out contexts '
              f'(rank 16/32/64: {accs[0]:.2f}/{accs[1]:.2f}/{accs[2]:.2f})')
    ranks, share = [], []
    for j in rng.choice(IDS, size=100, replace=False):
        ln = line(rng, j)
        toks = words(rng, 4) + ln + [10] + words(rng, 4) + ln[:2]
        logits, acts = forward(w, np.array(toks))
        row = len(toks) - 1
        ranks.append((logits[row, FIRST_ID:FIRST_ID + IDS] > logits[row, FIRST_ID + j]).sum())
        share.append(acts['att2'][0, row, toks.index(FIRST_ID + j)])
    print(f'  copy rows (100 repeated lines): the id ranks {np.median(ranks):.0f} of {IDS} (median), '
          f'first in {(np.array(ranks) == 0).mean():.2f}; layer 2 head 0 share on the source {np.mean(share):.2f}')


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        report(p)
