/**
 * The safetensors format (8-byte little-endian header length, a JSON header
 * of {name: {dtype, shape, data_offsets}}, then raw little-endian data), read
 * tensor by tensor so a large file never has to fit in memory at once.
 *
 * Floating dtypes (F32, F16, BF16, F64) are read into Float32Array; integer
 * dtypes (I64, I32, I16, I8, U8, BOOL) into Int32Array. We write F32, BF16,
 * F16, I32 and I64.
 *
 * @example
 * const weights = await readSafetensors("model.safetensors");
 * weights["model.norm.weight"].data; // Float32Array
 * await writeSafetensors("adapter_model.safetensors", { "lora_A": { dtype: "F32", shape: [8, 64], data } });
 */
import { type FileHandle, open, rename, rm, stat } from "node:fs/promises";
import { CheckpointError } from "../util/errors.js";
import { tempPathFor } from "../util/fs.js";

export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";
/** Dtypes {@link writeSafetensors} can write. */
export type WritableDtype = "F32" | "F16" | "BF16" | "I32" | "I64";

const ITEM_SIZE: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** A tensor as read: float dtypes as Float32Array, integer dtypes as Int32Array. */
export interface TensorRecord {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** A tensor to write: `data` is converted to `dtype` (Float32Array -> F32/F16/BF16, Int32Array -> I32/I64). */
export interface TensorToWrite {
  dtype: WritableDtype;
  shape: number[];
  /** The values, or a function giving them when the writer reaches this tensor (so a big file streams). */
  data: Float32Array | Int32Array | (() => Promise<Float32Array | Int32Array>);
}

export interface TensorHeader {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte offsets [begin, end) within the data section. */
  data_offsets: [number, number];
}

/**
 * An open safetensors file whose header has been checked (offsets inside the
 * file, sizes matching shapes, known dtypes); tensors are read one at a time.
 */
export class SafetensorsReader {
  readonly path: string;
  readonly tensors: ReadonlyMap<string, TensorHeader>;
  readonly metadata: Record<string, string>;
  private readonly handle: FileHandle;
  private readonly dataStart: number;

  private constructor(
    path: string,
    handle: FileHandle,
    tensors: Map<string, TensorHeader>,
    metadata: Record<string, string>,
    dataStart: number,
  ) {
    this.path = path;
    this.handle = handle;
    this.tensors = tensors;
    this.metadata = metadata;
    this.dataStart = dataStart;
  }

  /** Opens and validates `path`; a bad file is a {@link CheckpointError} naming it (and the tensor). */
  static async open(path: string): Promise<SafetensorsReader> {
    let handle: FileHandle;
    try {
      handle = await open(path, "r");
    } catch (err) {
      throw new CheckpointError("XA_CKPT_MISSING_FILE", "cannot open safetensors file", { file: path, hint: "check the path", cause: err });
    }
    try {
      const { size } = await handle.stat();
      const fail = (code: string, message: string, field?: string): never => {
        throw new CheckpointError(code, message, {
          file: path,
          ...(field !== undefined ? { field } : {}),
          hint: "the file is damaged or not safetensors; re-download or re-save it",
        });
      };
      if (size < 8) fail("XA_CKPT_TRUNCATED", `file is ${size} bytes, shorter than the 8-byte header length`);
      const lenBuf = new Uint8Array(8);
      await handle.read(lenBuf, 0, 8, 0);
      const headerLen = new DataView(lenBuf.buffer).getBigUint64(0, true);
      if (headerLen > BigInt(size - 8))
        fail("XA_CKPT_HEADER_LENGTH", `header length ${headerLen} runs past the end of the file (${size} bytes)`);
      const n = Number(headerLen);
      const headerBytes = new Uint8Array(n);
      await handle.read(headerBytes, 0, n, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(new TextDecoder().decode(headerBytes)) as Record<string, unknown>;
      } catch (err) {
        return fail("XA_CKPT_HEADER", `header is not valid JSON: ${(err as Error).message}`);
      }
      if (header === null || typeof header !== "object" || Array.isArray(header)) fail("XA_CKPT_HEADER", "header is not a JSON object");
      const dataStart = 8 + n;
      const dataSize = size - dataStart;
      const tensors = new Map<string, TensorHeader>();
      let metadata: Record<string, string> = {};
      for (const [name, raw] of Object.entries(header)) {
        if (name === "__metadata__") {
          metadata = (raw ?? {}) as Record<string, string>;
          continue;
        }
        const info = raw as Partial<TensorHeader>;
        const dtype = info?.dtype as SafetensorsDtype;
        if (!(dtype in ITEM_SIZE))
          fail("XA_CKPT_DTYPE", `tensor has unknown dtype "${String(info?.dtype)}" (known: ${Object.keys(ITEM_SIZE).join(", ")})`, name);
        const shape = info.shape;
        const offsets = info.data_offsets;
        if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
          fail("XA_CKPT_HEADER", "tensor has an invalid shape", name);
        if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
          fail("XA_CKPT_HEADER", "tensor has invalid data_offsets", name);
        }
        const [begin, end] = offsets as [number, number];
        const want = (shape as number[]).reduce((a, b) => a * b, 1) * ITEM_SIZE[dtype];
        if (end - begin !== want)
          fail("XA_CKPT_HEADER", `tensor's data_offsets span ${end - begin} bytes but ${dtype}[${String(shape)}] needs ${want}`, name);
        if (end > dataSize)
          fail("XA_CKPT_TRUNCATED", `file is truncated: tensor ends at byte ${dataStart + end} but the file has ${size}`, name);
        tensors.set(name, { dtype, shape: shape as number[], data_offsets: [begin, end] });
      }
      return new SafetensorsReader(path, handle, tensors, metadata, dataStart);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  /** Reads one tensor, converted (floats to Float32Array, integers to Int32Array). */
  async read(name: string): Promise<TensorRecord> {
    const info = this.tensors.get(name);
    if (!info) {
      throw new CheckpointError("XA_CKPT_MISSING_TENSOR", "tensor is not in this file", {
        file: this.path,
        field: name,
        hint: "check the tensor name",
      });
    }
    const [begin, end] = info.data_offsets;
    const bytes = new Uint8Array(end - begin);
    const { bytesRead } = await this.handle.read(bytes, 0, bytes.length, this.dataStart + begin);
    if (bytesRead !== bytes.length) {
      throw new CheckpointError("XA_CKPT_TRUNCATED", `file is truncated: read ${bytesRead} of ${bytes.length} bytes`, {
        file: this.path,
        field: name,
      });
    }
    return { dtype: info.dtype, shape: [...info.shape], data: decode(info.dtype, bytes, name, this.path) };
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Reads every tensor of a safetensors file (use {@link SafetensorsReader} to stream a big one). */
export async function readSafetensors(path: string): Promise<Record<string, TensorRecord>> {
  const reader = await SafetensorsReader.open(path);
  try {
    const out: Record<string, TensorRecord> = {};
    for (const name of reader.names()) out[name] = await reader.read(name);
    return out;
  } finally {
    await reader.close();
  }
}

/**
 * Writes a safetensors file atomically (temp file, then rename), tensors in
 * the given order, header padded to 8 bytes as the reference writer does.
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata: Record<string, string> = { format: "pt" },
): Promise<void> {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const nbytes = t.shape.reduce((a, b) => a * b, 1) * ITEM_SIZE[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + nbytes] };
    offset += nbytes;
  }
  let json = JSON.stringify(header);
  const jsonBytes = new TextEncoder().encode(json);
  json += " ".repeat((8 - (jsonBytes.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const lenBytes = new Uint8Array(8);
  new DataView(lenBytes.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  const tmp = tempPathFor(path);
  const handle = await open(tmp, "w");
  try {
    await handle.write(lenBytes);
    await handle.write(headerBytes);
    for (const [name, t] of Object.entries(tensors)) {
      const values = typeof t.data === "function" ? await t.data() : t.data;
      const size = t.shape.reduce((a, b) => a * b, 1);
      if (values.length !== size)
        throw new CheckpointError("XA_CKPT_SHAPE", `has ${values.length} values for shape [${t.shape}]`, { file: path, field: name });
      await handle.write(encode(t.dtype, values));
    }
    await handle.close();
    await rename(tmp, path);
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Size of a file in bytes, or undefined when it does not exist. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

function decode(dtype: SafetensorsDtype, bytes: Uint8Array, name: string, file: string): Float32Array | Int32Array {
  const buf = bytes.buffer;
  const n = bytes.length / ITEM_SIZE[dtype];
  switch (dtype) {
    case "F32":
      return new Float32Array(buf, 0, n);
    case "F64":
      return Float32Array.from(new Float64Array(buf, 0, n));
    case "BF16": {
      const src = new Uint16Array(buf, 0, n);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = (src[i] as number) << 16;
      return new Float32Array(out.buffer);
    }
    case "F16": {
      const src = new Uint16Array(buf, 0, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(src[i] as number);
      return out;
    }
    case "I32":
      return new Int32Array(buf, 0, n);
    case "I64": {
      const src = new BigInt64Array(buf, 0, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = src[i] as bigint;
        if (v > 2147483647n || v < -2147483648n) {
          throw new CheckpointError("XA_CKPT_RANGE", `I64 value ${v} does not fit in int32`, {
            file,
            field: name,
            hint: "store it as F32 or I32",
          });
        }
        out[i] = Number(v);
      }
      return out;
    }
    case "I16":
      return Int32Array.from(new Int16Array(buf, 0, n));
    case "I8":
      return Int32Array.from(new Int8Array(buf, 0, n));
    case "U8":
    case "BOOL":
      return Int32Array.from(bytes);
  }
}

function encode(dtype: WritableDtype, values: Float32Array | Int32Array): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case "F32": {
      const f = values instanceof Float32Array ? values : Float32Array.from(values);
      return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
    }
    case "BF16": {
      const f = values instanceof Float32Array ? values : Float32Array.from(values);
      const bits = new Uint32Array(f.buffer, f.byteOffset, n);
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = floatBitsToBf16(bits[i] as number);
      return new Uint8Array(out.buffer);
    }
    case "F16": {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = floatToHalf(values[i] as number);
      return new Uint8Array(out.buffer);
    }
    case "I32": {
      const v = values instanceof Int32Array ? values : Int32Array.from(values);
      return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    }
    case "I64": {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = BigInt(Math.trunc(values[i] as number));
      return new Uint8Array(out.buffer);
    }
  }
}

/** float32 bits -> bfloat16 bits, round to nearest even (NaN stays NaN), as torch does. */
export function floatBitsToBf16(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + rounding) >>> 16) & 0xffff;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float -> IEEE half bits, round to nearest even. */
function floatToHalf(value: number): number {
  f32[0] = value;
  const x = u32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  e = half;
  return sign | e;
}
