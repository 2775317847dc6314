#!/usr/bin/env python3
"""Hop counts and the interleave sign test of a synth_pointer result directory.

usage: pointer_cells.py RESULT_DIR...   (a directory `msabench run` wrote, with cells/*.json)

Per cell, from each record's `retrieved` (the documents the model named, in naming order, as the msa
backend records them): hop 1 = the first named document is the pointer document; hop 2 = the target
document is named after it; answers = RULER string match. (`retrieved` holds at most the cell's k, 10.)
For a directory with an interleave=1 and an interleave=0 cell of the same queries it also prints the
discordant memories and the exact one-sided sign test (binomial, p = 1/2) that interleave helps.
"""
import glob
import json
import math
import sys


def cell_summary(records):
    hop1 = hop2 = 0
    answered = {}
    for r in records:
        hops = r['meta']['hops']
        named = [d['id'] for d in r['retrieved']]
        hop1 += bool(named) and named[0] == hops[0]['doc_id']
        hop2 += hops[1]['doc_id'] in named[1:]
        answered[r['query_id']] = r['metrics']['ruler_string_match_all'] > 0
    return hop1, hop2, answered


def sign_test(wins, losses):
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n if n else 1.0


for directory in sys.argv[1:]:
    cells = {}
    for path in sorted(glob.glob(directory + '/cells/*.json')):
        cell = json.load(open(path))
        spec = cell['backend']['spec'].split(':', 1)[1].split(',')  # the harness's own record of the run
        mode = 'off' if 'interleave=0' in spec else 'on'
        if mode in cells:
            sys.exit(f'pointer_cells.py: {directory} holds more than one interleave={mode} cell')
        cells[mode] = cell_summary(cell['records'])
        h1, h2, ans = cells[mode]
        print(f'{directory} interleave {mode}: memories {len(ans)} hop1 {h1} hop2 {h2} answers {sum(ans.values())}')
    if set(cells) == {'on', 'off'}:
        on, off = cells['on'][2], cells['off'][2]
        wins = sum(on[q] and not off[q] for q in on)
        losses = sum(off[q] and not on[q] for q in on)
        print(f'{directory} answered only with interleave {wins}, only without {losses}, '
              f'one-sided sign test p = {sign_test(wins, losses):.2g}')
