#!/usr/bin/env python3
"""scale_head.py SRC OUT LAYER HEAD FACTOR: OUT = SRC with o_proj's columns of one attention head
multiplied by FACTOR (how loudly that head writes). Session 25 uses it to raise a planted copy head
(value_surgery.py) step by step after training has adapted to the previous size. numpy only."""
import os, shutil, sys
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, '..', 's23-value'), os.path.join(HERE, '..', 's24-joint')]
import id_readout as R  # noqa: E402
import merge  # noqa: E402

if len(sys.argv) != 6:
    sys.exit(__doc__)
src, out, layer, head, factor = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
path = os.path.join(src, 'model.safetensors')
if not os.path.isfile(path):
    sys.exit(f'scale_head.py: {path}: no such file')
w = R.load(path)
name = f'model.layers.{layer}.self_attn.o_proj.weight'
if name not in w or not 0 <= head < R.H:
    sys.exit(f'scale_head.py: {path}: no {name} or head {head} outside 0..{R.H - 1}')
w[name][:, head * R.D:(head + 1) * R.D] *= factor
os.makedirs(out, exist_ok=True)
merge.write(os.path.join(out, 'model.safetensors'), w)
shutil.copy(os.path.join(src, 'config.json'), out)
print(f'{out}: {name} head {head} x {factor}')
