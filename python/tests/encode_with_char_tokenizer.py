"""Encodes records with xalign_train.encode_example and a character tokenizer,
for test/launch/parity.test.ts, which runs the same tokenizer through xalign's
encodeExample. Standard library only.

    python3 python/tests/encode_with_char_tokenizer.py RECORDS.json FORMAT:MAX_LENGTH... > encoded.json

prints {"FORMAT:MAX_LENGTH": [encoded record, ...], ...}.
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from xalign_train import encode_example  # noqa: E402


class CharTokenizer:
    """One id per Unicode code point: 3 + code point mod 1000 (0 pad, 1 BOS, 2 EOS).
    test/launch/char-tokenizer.ts is the same tokenizer in TypeScript."""

    bos_id, eos_id, pad_id = 1, 2, 0

    def encode(self, text):
        return [3 + ord(c) % 1000 for c in text]


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        records = json.load(f)
    tokenizer = CharTokenizer()
    out = {}
    for case in sys.argv[2:]:
        fmt, max_length = case.split(":")
        out[case] = [encode_example(r, tokenizer, int(max_length), fmt) for r in records]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
