#!/usr/bin/env python3
"""niah_misses.py DIR...: sorts each NIAH cell's queries (msabench run -o DIR, one cell per DIR) by
what the model did: answered (RULER string match), named a wrong document first (`retrieved`, in
naming order), named the gold document first and wrote another document's id as well (the msa
backend's `detail.predicted_doc_ids`: every memory id in the response, well-formed step or not; NIAH
never needs a second), other."""
import glob, json, sys

if len(sys.argv) < 2:
    sys.exit(__doc__)
print('cell answered wrong_document second_id other recall@1 router_recall')
for d in sys.argv[1:]:
    cells = glob.glob(d + '/cells/*.json')
    if len(cells) != 1:
        sys.exit(f'niah_misses.py: {d}: expected one cell in cells/, found {len(cells)}')
    c = json.load(open(cells[0]))
    n = {'answered': 0, 'wrong': 0, 'second': 0, 'other': 0}
    for r in c['records']:
        if r['metrics'].get('ruler_string_match_all') == 1:
            n['answered'] += 1
        elif not r['retrieved'] or r['retrieved'][0]['id'] != r['gold_doc_ids'][0]:
            n['wrong'] += 1
        elif len(set(r['detail']['predicted_doc_ids'])) >= 2:
            n['second'] += 1
        else:
            n['other'] += 1
    a = c['aggregates']
    print(d.rstrip('/').split('/')[-1], n['answered'], n['wrong'], n['second'], n['other'],
          '%.3f' % a['recall@1'], '%.3f' % a['router_recall'])
