# How many tokenizer pieces a person's name takes, in pretraining and in the English probes (issue 16, deviation 12),
# on a world exported by bench/export-world.ts. A name is a capitalised Latin piece after a space (question words
# and "The" excluded) with the pieces that continue it; non-Latin documents add long runs, reported as "5+".
#
#   /usr/bin/python3 bench/name_pieces.py /tmp/proto/x4 [pretraining documents to scan, 20000]
import collections, json, sys
import numpy as np

out, scan = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20000
meta = json.load(open(f"{out}/meta.json"))
piece = {i: s for s, i in meta["vocab"].items()}
SKIP = {"The", "What", "Who", "When", "Where", "How", "Which"}

def name_lengths(ids):
    toks = [piece[int(t)] for t in ids]
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.startswith("▁") and len(t) > 1 and t[1].isupper() and t[1:] not in SKIP:
            j = i + 1
            while j < len(toks) and not toks[j].startswith("▁") and toks[j] not in (".", "?", ",", "</s>"):
                j += 1
            yield j - i
            i = j
        else:
            i += 1

def shares(lengths):
    c = collections.Counter(min(n, 5) for n in lengths)
    total = sum(c.values())
    return {("5+" if n == 5 else n): f"{c[n] / total:.0%}" for n in sorted(c)}, total

for name in ["xquad.en.jsonl", "counterfactual.en.jsonl"]:
    items = [json.loads(l) for l in open(f"{out}/{name}")]
    print(name, *shares(n for it in items for n in name_lengths(it["ids"])))
flat = np.fromfile(f"{out}/docs.bin", dtype=np.int32)
lens = np.fromfile(f"{out}/lens.bin", dtype=np.int32)
offsets = np.concatenate([[0], np.cumsum(lens)])
print(f"pretraining (first {scan} documents)", *shares(n for d in range(scan) for n in name_lengths(flat[offsets[d]:offsets[d + 1]])))
