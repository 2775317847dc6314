#!/usr/bin/env python3
"""merge.py A B ALPHA OUT [REGEX]: OUT/model.safetensors = (1 - ALPHA) * A + ALPHA * B, tensor by
tensor; with REGEX, only the tensors whose names match it (re.search), the rest are A's.

A and B are checkpoint folders of the same architecture (model.safetensors, F32). OUT gets A's
config.json and trainer_state.json, so it can be a train config's init_from. Interpolating two
fine-tunes of one ancestor (here the shipped model and a copy-trained descendant) is a cheap way to
look for weights that keep some of both skills."""
import json, os, re, shutil, struct, sys
import numpy as np

def read(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == '__metadata__': continue
        if v['dtype'] != 'F32': sys.exit(f'merge.py: {path}: {k} is {v["dtype"]}, only F32 is supported')
        a, b = v['data_offsets']
        out[k] = np.frombuffer(data[a:b], dtype='<f4').reshape(v['shape'])
    return out

def write(path, tensors):
    header, blobs, off = {'__metadata__': {'format': 'pt'}}, [], 0
    for k in sorted(tensors):
        b = np.ascontiguousarray(tensors[k], dtype='<f4').tobytes()
        header[k] = {'dtype': 'F32', 'shape': list(tensors[k].shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h)
        for b in blobs: f.write(b)
    os.replace(tmp, path)

def main():
    if len(sys.argv) not in (5, 6): sys.exit(__doc__)
    a_dir, b_dir, alpha, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    only = re.compile(sys.argv[5] if len(sys.argv) == 6 else '')
    A, B = read(os.path.join(a_dir, 'model.safetensors')), read(os.path.join(b_dir, 'model.safetensors'))
    if A.keys() != B.keys() or any(A[k].shape != B[k].shape for k in A):
        sys.exit(f'merge.py: {a_dir} and {b_dir} hold different tensors')
    os.makedirs(out, exist_ok=True)
    for f in ('config.json', 'trainer_state.json'): shutil.copy(os.path.join(a_dir, f), out)
    write(os.path.join(out, 'model.safetensors'), {k: (1 - alpha) * A[k] + alpha * B[k] if only.search(k) else A[k] for k in A})
    print(f'{out}: (1 - {alpha}) * {a_dir} + {alpha} * {b_dir}' + (f' for /{only.pattern}/, {a_dir} elsewhere' if only.pattern else ''))


if __name__ == '__main__':
    main()
