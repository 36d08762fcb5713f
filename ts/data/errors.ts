/** What went wrong, machine-readable; the message says it for people (and names the file). */
export type DataErrorCode =
  | 'IO' // a file could not be read
  | 'BAD_MAGIC' // first bytes are not an IDX magic number
  | 'UNSUPPORTED_DTYPE' // IDX data-type byte other than 0x08 (unsigned byte)
  | 'BAD_DIMS' // wrong number of dimensions, or dimensions of the wrong size
  | 'TRUNCATED' // fewer bytes than the header's dimensions need
  | 'TRAILING_DATA' // more bytes than the header's dimensions need
  | 'COUNT_MISMATCH' // images and labels disagree on the number of items
  | 'BAD_LABELS' // a label outside the dataset's classes
  | 'CORRUPT_GZIP' // gzip magic present but the stream does not decompress
  | 'CHECKSUM_MISMATCH' // decompressed bytes do not have the expected SHA-256
  | 'NOT_FOUND' // no source holds the dataset and downloading was not allowed
  | 'DOWNLOAD_FAILED' // every mirror failed
  | 'NO_IMAGES' // an image folder, or one of its class subfolders, holds no .png/.jpg/.jpeg files
  | 'BAD_LAYOUT' // an image folder holds both image files and class subfolders at its top
  | 'TOO_MANY_CLASSES' // more class subfolders than uint8 labels can number (256)
  | 'NO_READABLE_IMAGES' // no file of an image folder could be read and decoded
  | 'DECODER_UNAVAILABLE'; // the image decoder (sharp) could not be loaded

/** One mirror that was tried and why it was given up on. */
export interface MirrorFailure {
  url: string;
  reason: string;
}

/** Every error thrown by ts/data for bad, missing or unobtainable data. */
export class DataError extends Error {
  override readonly name = 'DataError';
  readonly code: DataErrorCode;
  /** The file (path or URL) the error is about, when there is one. */
  readonly file?: string;
  /** For DOWNLOAD_FAILED: each mirror tried and its reason. */
  readonly failures?: readonly MirrorFailure[];

  constructor(code: DataErrorCode, message: string, opts: { file?: string; failures?: readonly MirrorFailure[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    if (opts.file !== undefined) this.file = opts.file;
    if (opts.failures !== undefined) this.failures = opts.failures;
  }
}

/**
 * Message of an unknown thrown value, including a fetch error's `cause` (e.g. "connect
 * ECONNREFUSED 127.0.0.1:80"). Duck-typed: errors from another realm fail `instanceof Error`.
 */
export function describeError(err: unknown): string {
  const msgOf = (e: unknown): string => {
    if (typeof e === 'object' && e !== null) {
      const o = e as { message?: unknown; code?: unknown; name?: unknown; errors?: unknown };
      // AggregateError (e.g. connection refused on both IPv4 and IPv6) has an empty message
      if (!o.message && Array.isArray(o.errors) && o.errors.length > 0) return msgOf(o.errors[0]);
      let m = typeof o.message === 'string' && o.message ? o.message : typeof o.name === 'string' ? o.name : String(e);
      if (typeof o.code === 'string' && !m.includes(o.code)) m = `${o.code}: ${m}`;
      return m;
    }
    return String(e);
  };
  let msg = msgOf(err);
  const cause = typeof err === 'object' && err !== null ? (err as { cause?: unknown }).cause : undefined;
  if (cause !== undefined && cause !== null) {
    const c = msgOf(cause);
    if (c && !msg.includes(c)) msg += ` (${c})`;
  }
  return msg;
}
