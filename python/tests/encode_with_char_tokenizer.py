"""Encodes records with xalign_train.encode_example and a character tokenizer,
for test/launch/parity.test.ts, which runs the same tokenizer through xalign's
encodeExample. Standard library only.

    python3 python/tests/encode_with_char_tokenizer.py RECORDS.json MAX_LENGTH FORMAT > encoded.jsonl
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from xalign_train import encode_example  # noqa: E402


class CharTokenizer:
    """One id per Unicode code point: 3 + code point mod 1000 (0 pad, 1 BOS, 2 EOS).
    test/launch/char-tokenizer.ts is the same tokenizer in TypeScript."""

    bos_id, eos_id, pad_id = 1, 2, 0

    def encode(self, text):
        return [3 + ord(c) % 1000 for c in text]


def main():
    records_path, max_length, fmt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(records_path, encoding="utf-8") as f:
        records = json.load(f)
    tokenizer = CharTokenizer()
    for record in records:
        print(json.dumps(encode_example(record, tokenizer, max_length, fmt)))


if __name__ == "__main__":
    main()
