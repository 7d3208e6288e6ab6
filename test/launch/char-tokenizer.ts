/**
 * The character tokenizer of python/tests/encode_with_char_tokenizer.py, in
 * TypeScript: one id per Unicode code point, 3 + code point mod 1000 (0 pad,
 * 1 BOS, 2 EOS). Array.from walks code points, as Python's str does.
 */
import type { PromptTokenizer } from "../../src/data/encode.js";

export const charTokenizer: PromptTokenizer & { padId: number } = {
  bosId: 1,
  eosId: 2,
  padId: 0,
  encode: (text) => Array.from(text, (c) => 3 + ((c.codePointAt(0) as number) % 1000)),
};
