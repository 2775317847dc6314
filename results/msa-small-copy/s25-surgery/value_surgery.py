#!/usr/bin/env python3
"""value_surgery.py SRC OUT [--keep RB] [--scale C] [--beta B] [--samples N]   (numpy only, one thread)

Writes into the hop-2 copy head's value path an id code, fitted in closed form instead of learnt.

Session 24's joint runs taught a layer-2 head to look at the pointed-to [j] (attention share 1.0),
but its value (v_proj, shared with a sibling head under GQA) carries no id: a linear map reads j
back from the attended values in under 7% of contexts, while the layer-2 input at [j] holds it in
93%. The copy-value loss did not move that path in 1,400 steps. This script:

1. runs SRC (float64 re-implementation of ../s23-value/id_readout.py) on hop-2 transcripts
   ("[i]<|object_ref_end|>[i]. ...kept in document [j] under code N...<|object_ref_end|>") and
   finds the layer-2 head that looks at [j] from the row that must write it;
2. takes that head's KV head's values over non-id tokens and keeps their top-RB principal
   directions (RB=12 holds 99.5% of their energy in session 24's q34): what the sibling head's
   byte copy (NIAH's digits) reads is left as it was;
3. fits, by Adam on a cross-entropy over the 2,064 ids through the tied LM head, a rank-(32-RB)
   code K (layer-2 input -> the free value dims) and its read-out P, with a penalty BETA on the
   code's norm over non-id tokens relative to ids (what the copy head adds where it looks at text);
4. writes v_proj = keep-part of the old values + the code, the sibling heads' o_proj without the
   code dims, and the copy head's o_proj = its old keep-part + SCALE * the read-out.

Prints the code's held-out read-back accuracy, the non-id/id norm ratio, and the numpy hop-2 argmax
accuracy of the written model (no memory; the trainer's teacher_forced.sh gives the real figure).
OUT gets SRC's config.json, so it can be a train config's init_from.
"""
import argparse, os, shutil, sys
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, '..', 's23-value'), os.path.join(HERE, '..', 's24-joint')]
import id_readout as R  # noqa: E402  (forward, rms, load)
import merge  # noqa: E402  (write: F32 safetensors, atomically)

FIRST_ID, IDS, IM_START, IM_END, ORE = 262, 2064, 257, 258, 260
H, KV, D = R.H, R.KV, R.D
KEYWORDS = ['sturdy', 'candle', 'brave', 'river', 'silent', 'garden', 'amber', 'falcon', 'quiet', 'meadow', 'crisp',
            'lantern']
FILLER = [b'The rain fell on the old town.', b'Nobody knew where the road went.', b'He wrote letters every night.',
          b'A small boat drifted past the pier.', b'The market opened before dawn.', b'Her garden was full of herbs.']


def enc(s):
    return list(s.encode() if isinstance(s, str) else s)


def transcript(rng, i, j):
    """Query side up to the hop-2 row (msa-reference §9, synth_pointer's sentence), and [j]'s position."""
    key = f'{rng.choice(KEYWORDS)}-{rng.choice(KEYWORDS)}'
    code = ''.join(str(x) for x in rng.integers(0, 10, 7))
    question = f'What is the special magic word for {key} mentioned in the provided text?'
    sentences = [bytes(rng.choice(FILLER)) for _ in range(4)]
    at = rng.integers(0, 5)
    fact = enc(f'The special magic word for {key} is kept in document ') + [FIRST_ID + j] + enc(f' under code {code}.')
    body = []
    for k, sentence in enumerate(sentences):
        if k == at:
            body += fact + [32]
        body += enc(sentence) + [32]
    if at == 4:
        body += fact + [32]
    toks = [IM_START] + enc('user\n') + enc('\nPlease answer the question based on the above historical document '
                                            'information\n\n' + question + '\nPlease return all documents related '
                                            'to the question\n') + [IM_END] + enc('\n') + [IM_START]
    toks += [FIRST_ID + i, ORE, FIRST_ID + i] + enc('. ') + body + enc('\n') + [ORE]
    return np.array(toks), len(toks) - 1 - toks[::-1].index(FIRST_ID + j)


def transcripts(w, n, seed):
    """n forwards over fresh transcripts: yields (rng, toks, [j]'s position, j, logits, acts). The
    caller may draw from rng between items; the next transcript follows its draws."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        i, j = rng.choice(IDS, 2, replace=False)
        toks, src = transcript(rng, i, j)
        logits, acts = R.forward(w, toks)
        yield rng, toks, src, j, logits, acts


def collect_ids(w, n, seed):
    """Layer-2 normed inputs at [j], with j, and each head's attention share on [j] from the hop-2 row."""
    ln = w['model.layers.2.input_layernorm.weight']
    xs, js, shares = [], [], []
    for _, _, src, j, _, acts in transcripts(w, n, seed):
        xs.append(R.rms(acts['in2'][src], ln)); js.append(j)
        shares.append(acts['att2'][:, -1, src])
    return np.array(xs), np.array(js), np.array(shares)


def collect_text(w, n, seed, per=20):
    """Layer-2 normed inputs at `per` random non-id positions of each of n transcripts."""
    ln = w['model.layers.2.input_layernorm.weight']
    return np.concatenate([R.rms(acts['in2'], ln)[rng.choice(np.where(toks < FIRST_ID)[0], per, replace=False)]
                           for rng, toks, _, _, _, acts in transcripts(w, n, seed)])


def hop2_accuracy(w, n=60, seed=7):
    return float(np.mean([logits[-1, FIRST_ID:FIRST_ID + IDS].argmax() == j
                          for _, _, _, j, logits, _ in transcripts(w, n, seed)]))


def fit_code(Xa, Ja, Xn, E, rank, beta, steps=1200, lr=3e-3, temp=3.0):
    """K [128, rank], P [rank, 128]: ids read back as argmax of (x K P) . E; Adam on CE + beta * non-id/id norm²."""
    T = E[Ja]
    ridge = np.linalg.solve(Xa.T @ Xa + 1e-3 * np.eye(Xa.shape[1]), Xa.T @ T)
    _, _, Vt = np.linalg.svd(Xa @ ridge, full_matrices=False)
    K, P = ridge @ Vt[:rank].T, Vt[:rank].copy()  # start: the ridge fit truncated to its top directions
    params = [K, P]
    m1, m2 = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    rows = np.arange(len(Ja))
    for it in range(1, steps + 1):
        Z = Xa @ K
        logits = temp * (Z @ P) @ E.T
        logits -= logits.max(1, keepdims=True)
        G = np.exp(logits)
        G /= G.sum(1, keepdims=True)
        G[rows, Ja] -= 1
        G *= temp / len(Ja)
        gO = G @ E
        gK, gP = Xa.T @ (gO @ P.T), Z.T @ gO
        A, B = (np.linalg.norm(Xn @ K, axis=1) ** 2).mean(), (np.linalg.norm(Z, axis=1) ** 2).mean()
        gK += beta * (2 * Xn.T @ (Xn @ K) / len(Xn) * B - A * 2 * Xa.T @ Z / len(Xa)) / B ** 2
        for q, g in enumerate((gK, gP)):
            m1[q] = 0.9 * m1[q] + 0.1 * g
            m2[q] = 0.999 * m2[q] + 0.001 * g * g
            params[q] -= lr * (m1[q] / (1 - 0.9 ** it)) / (np.sqrt(m2[q] / (1 - 0.999 ** it)) + 1e-8)
    return K, P


def diagnose(Xa, Ja, Xb, Jb, Xn, Wv, E):
    """Held-out ridge read-back of j from the layer-2 input and from each KV head's values; the
    input map truncated to rank 32 by PCA; the energy of the non-id values in their top dims."""
    def ridge(A, B):
        W = np.linalg.solve(A.T @ A + 1e-2 * np.eye(A.shape[1]), A.T @ E[Ja])
        return W, float(((B @ W @ E.T).argmax(1) == Jb).mean())
    W, full = ridge(Xa, Xb)
    _, _, Vt = np.linalg.svd(Xa @ W, full_matrices=False)
    pca = float(((Xb @ W @ Vt[:D].T @ Vt[:D] @ E.T).argmax(1) == Jb).mean())
    print(f'  j read back (ridge, held out): layer-2 input {full:.3f} (rank {D} by PCA: {pca:.3f})', end='')
    for kv in range(KV):
        rows = slice(kv * D, (kv + 1) * D)
        print(f'; KV head {kv} values {ridge(Xa @ Wv[rows].T, Xb @ Wv[rows].T)[1]:.3f}', end='')
        s = np.linalg.svd(Xn @ Wv[rows].T, compute_uv=False) ** 2
        print(f' (non-id energy in top 8/12/16 dims {s[:8].sum() / s.sum():.4f}/{s[:12].sum() / s.sum():.4f}/'
              f'{s[:16].sum() / s.sum():.4f})', end='')
    print(f'; all values {ridge(Xa @ Wv.T, Xb @ Wv.T)[1]:.3f}')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('src')
    ap.add_argument('out')
    ap.add_argument('--keep', type=int, default=12, help='value dims kept for the sibling heads (default 12)')
    ap.add_argument('--scale', type=float, default=2.0, help='read-out scale in the copy head (default 2)')
    ap.add_argument('--beta', type=float, default=1.0, help='penalty on the code over non-id tokens (default 1)')
    ap.add_argument('--samples', type=int, default=1500, help='fit transcripts (default 1500; 300 more are held out)')
    ap.add_argument('--diagnose', action='store_true', help='also print where the id is readable (ridge maps)')
    a = ap.parse_args()
    path = os.path.join(a.src, 'model.safetensors')
    if not os.path.isfile(path):
        sys.exit(f'value_surgery.py: {path}: no such file')
    if not 0 <= a.keep < D:
        sys.exit(f'value_surgery.py: --keep must be in 0..{D - 1}')
    w = R.load(path)
    Xa, Ja, shares = collect_ids(w, a.samples, 1)
    Xb, Jb, _ = collect_ids(w, 300, 2)
    Xn = collect_text(w, 400, 21)  # 8,000 positions: the last 1,000 are held out of the penalty
    head = int(shares.mean(0).argmax())
    if shares.mean(0)[head] < 0.5:
        sys.exit(f'value_surgery.py: {a.src}: no layer-2 head looks at [j] from the hop-2 row '
                 f'(shares {np.round(shares.mean(0), 3)}); train the copy attention first (copy_attention_weight)')
    kv, group = head // (H // KV), H // KV
    p = 'model.layers.2.self_attn.'
    Wv, Wo = w[p + 'v_proj.weight'].copy(), w[p + 'o_proj.weight'].copy()
    vr, hc = slice(kv * D, (kv + 1) * D), slice(head * D, (head + 1) * D)
    _, _, Vt = np.linalg.svd(Xn @ Wv[vr].T, full_matrices=False)
    Ub, Uc = Vt[:a.keep].T, Vt[a.keep:].T
    E = w['model.embed_tokens.weight'][FIRST_ID:FIRST_ID + IDS] * w['model.norm.weight']
    if a.diagnose:
        diagnose(Xa, Ja, Xb, Jb, Xn, Wv, E)
    K, P = fit_code(Xa, Ja, Xn[:-1000], E, D - a.keep, a.beta)
    read_back = float(((Xb @ K @ P @ E.T).argmax(1) == Jb).mean())
    ratio = (np.linalg.norm(Xn[-1000:] @ K, axis=1) ** 2).mean() / (np.linalg.norm(Xa @ K, axis=1) ** 2).mean()
    k = np.linalg.norm(Xa @ Wv[vr].T, axis=1).mean() / np.linalg.norm(Xa @ K, axis=1).mean()
    K, P = K * k, P / k  # the code at the old values' size on ids: --scale is relative to the head's usual output
    Wv[vr] = Ub @ Ub.T @ Wv[vr] + Uc @ K.T
    for h in range(kv * group, (kv + 1) * group):
        cols = slice(h * D, (h + 1) * D)
        Wo[:, cols] = Wo[:, cols] @ Ub @ Ub.T
    Wo[:, hc] += a.scale * P.T @ Uc.T
    w[p + 'v_proj.weight'], w[p + 'o_proj.weight'] = Wv, Wo
    print(f'{a.src}: copy head {head} (KV head {kv}), share on [j] {shares.mean(0)[head]:.3f}; kept {a.keep} value dims; '
          f'code read back in {read_back:.3f} of held-out contexts; non-id/id code norm² {ratio:.3f}')
    os.makedirs(a.out, exist_ok=True)
    merge.write(os.path.join(a.out, 'model.safetensors'), w)
    shutil.copy(os.path.join(a.src, 'config.json'), a.out)
    print(f'{a.out}: written (scale {a.scale}); numpy hop-2 argmax without memory {hop2_accuracy(w):.3f}')


if __name__ == '__main__':
    main()
