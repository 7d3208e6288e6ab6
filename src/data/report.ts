/**
 * What a reader read and what it skipped. With `skipInvalid`, bad records are
 * counted here (by reason) instead of raising; the counts go to the manifest.
 */
export class ReadReport {
  /** Records yielded. */
  records = 0;
  /** Records or lines skipped, by reason ("invalid UTF-8", "malformed JSON", ...). */
  readonly skipped: Record<string, number> = {};
  /** Where the first few skips were, to show the user ("train.zh:17"). */
  readonly examples: string[] = [];

  skip(reason: string, file: string, line: number | undefined, count = 1): void {
    this.skipped[reason] = (this.skipped[reason] ?? 0) + count;
    if (this.examples.length < 10) this.examples.push(`${file}${line !== undefined ? `:${line}` : ""}: ${reason}`);
  }

  get skippedTotal(): number {
    let n = 0;
    for (const v of Object.values(this.skipped)) n += v;
    return n;
  }

  toJSON(): { records: number; skipped: Record<string, number> } {
    const skipped: Record<string, number> = {};
    for (const key of Object.keys(this.skipped).sort()) skipped[key] = this.skipped[key] as number;
    return { records: this.records, skipped };
  }
}

export interface ReadOptions {
  /** Skip and count bad records instead of raising a DataError. */
  skipInvalid?: boolean;
  /** Receives the counts; one is created when absent. */
  report?: ReadReport;
  /** Called with the number of bytes read so far (for progress bars). */
  onBytes?: (bytesRead: number) => void;
}
