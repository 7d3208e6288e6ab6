/**
 * Where JSON text first goes wrong. V8's JSON.parse messages only sometimes
 * carry a position ("Unexpected token '}', ...") so, on the error path, a
 * small validating scanner finds it, for a line number in the message.
 */

/** Offset of the first syntax error in `text`, or undefined if it is valid JSON. */
export function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 9 || c === 10 || c === 13) i++;
      else break;
    }
  };
  class Bad extends Error {}
  const bad = (): never => {
    throw new Bad();
  };
  const string = () => {
    if (text[i] !== '"') bad();
    i++;
    while (i < text.length) {
      const c = text[i] as string;
      if (c === '"') {
        i++;
        return;
      }
      if (c === "\\") {
        const e = text[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            i += 2;
            bad();
          }
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else {
          i++;
          bad();
        }
      } else if (c.charCodeAt(0) < 0x20) bad();
      else i++;
    }
    bad();
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ":") bad();
        i++;
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return;
        } else bad();
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") {
          i++;
          return;
        } else bad();
      }
    }
    if (c === '"') {
      string();
      return;
    }
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) bad();
    i += (m as RegExpExecArray)[0].length;
  };
  try {
    value();
    ws();
    if (i < text.length) bad();
    return undefined;
  } catch (err) {
    if (err instanceof Bad) return Math.min(i, text.length);
    throw err;
  }
}

/** 1-based line of an offset in text. */
export function lineOfOffset(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
