#!/usr/bin/env python3
"""rows.py A B LO HI OUT: OUT is checkpoint A with rows [LO, HI) of model.embed_tokens.weight taken
from checkpoint B (same architecture, F32). With the bytes+ids tokenizer the id tokens [0]..[N-1]
are rows 264..264+N-1, so "264 4360" swaps every id-token embedding (tied: input and output).

Session 29 used it to ask whether j's weak naming from memory sits in its id embeddings alone.
OUT gets A's config.json and trainer_state.json, so it can be held_out.sh's or init_from's input."""
import os, shutil, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 's24-joint'))
from merge import read, write  # noqa: E402  (session 24's safetensors reader and writer)

if len(sys.argv) != 6:
    sys.exit(__doc__)
a, b, lo, hi, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
A, B = read(a + '/model.safetensors'), read(b + '/model.safetensors')
k = 'model.embed_tokens.weight'
if A[k].shape != B[k].shape or not 0 <= lo < hi <= A[k].shape[0]:
    sys.exit(f'rows.py: {k} shapes {A[k].shape} / {B[k].shape}, rows [{lo}, {hi}) out of range')
E = A[k].copy()
E[lo:hi] = B[k][lo:hi]
A[k] = E
os.makedirs(out, exist_ok=True)
write(out + '/model.safetensors', A)
for f in ('config.json', 'trainer_state.json'):
    shutil.copy(os.path.join(a, f), out)
print(f'{out}: {k} rows [{lo}, {hi}) from {b}')
