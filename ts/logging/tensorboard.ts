import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { crc32c } from '@node-rs/crc32';
import { ensureDir } from '../util/fs';
import { makeGrid, type GridOptions, type ImageBatch } from './grid';
import { encodePixelImage, pngInfo, type PixelImage } from './png';

// The subset of TensorFlow's event.proto and summary.proto that scalars and images need; field
// numbers are those of the upstream files, so TensorBoard reads the records as its own.
const PROTO = `
syntax = "proto3";
package tensorboard;

message Summary {
  message Image {
    int32 height = 1;
    int32 width = 2;
    int32 colorspace = 3;
    bytes encoded_image_string = 4;
  }
  message Value {
    string node_name = 7;
    string tag = 1;
    oneof value {
      float simple_value = 2;
      Image image = 4;
    }
  }
  repeated Value value = 1;
}

message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
  }
}
`;

let eventType: protobuf.Type | undefined;
function eventMessage(): protobuf.Type {
  if (!eventType) eventType = protobuf.parse(PROTO).root.lookupType('tensorboard.Event');
  return eventType;
}

/** TFRecord's CRC: CRC32C rotated right by 15 bits plus a constant, modulo 2^32. */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data) >>> 0;
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: uint64 length (LE), masked CRC32C of those 8 bytes, data, masked CRC32C of data. */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(data.length + 16);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** A PNG (bytes) or 8-bit pixels to encode as one. */
export type ImageInput = Uint8Array | PixelImage;

export interface SummaryWriterOptions {
  /** Appended to the event file's name (torch's `filename_suffix`). */
  filenameSuffix?: string;
  /** Events kept in memory before they are written. Default 10 (torch's `max_queue`). */
  maxQueue?: number;
  /**
   * Milliseconds after which pending events are written even if the queue is not full; the timer
   * is unref'd, so it never keeps the process alive. Default 2000. 0 writes every event at once.
   */
  flushMillis?: number;
}

let fileCounter = 0;

/**
 * Writes TensorBoard event files like torch.utils.tensorboard.SummaryWriter: scalars and images
 * that `tensorboard --logdir <logDir>` shows. Events are queued and appended synchronously to
 * `<logDir>/events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n><suffix>`; close() writes
 * everything that is pending, so the file is complete once it returns.
 */
export class SummaryWriter {
  readonly logDir: string;
  /** Full path of the event file. */
  readonly filePath: string;
  private fd: number | null;
  private queue: Buffer[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly maxQueue: number;
  private readonly flushMillis: number;

  constructor(logDir: string, opts: SummaryWriterOptions = {}) {
    this.logDir = logDir;
    this.maxQueue = Math.max(1, opts.maxQueue ?? 10);
    this.flushMillis = Math.max(0, opts.flushMillis ?? 2000);
    ensureDir(logDir, 'log folder');
    const seconds = String(Math.floor(Date.now() / 1000)).padStart(10, '0');
    const host = os.hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'localhost';
    const name = `events.out.tfevents.${seconds}.${host}.${process.pid}.${fileCounter++}${opts.filenameSuffix ?? ''}`;
    this.filePath = path.join(logDir, name);
    this.fd = fs.openSync(this.filePath, 'wx');
    // the version record first, written at once so that the file is valid from the start
    this.writeRecords([this.record({ wallTime: Date.now() / 1000, step: 0, fileVersion: 'brain.Event:2' })]);
  }

  /** Logs one scalar (stored as float32, like torch's add_scalar). */
  addScalar(tag: string, value: number, step: number, wallTime?: number): void {
    checkStep(step);
    this.push(step, wallTime, { tag, simpleValue: value });
  }

  /**
   * Logs one image: PNG bytes as they are, or 8-bit pixels (e.g. from makeGrid) that are encoded
   * as PNG. Stored as a Summary.Image with the PNG's height, width and colorspace
   * (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
   */
  addImage(tag: string, image: ImageInput, step: number, wallTime?: number): void {
    checkStep(step);
    const png = isPixelImage(image) ? encodePixelImage(image) : image;
    const { width, height, channels } = pngInfo(png);
    this.push(step, wallTime, { tag, image: { height, width, colorspace: channels, encodedImageString: png } });
  }

  /** Logs a batch of images as one grid (makeGrid), like torch's add_images. */
  addImageGrid(tag: string, images: ImageBatch, step: number, opts?: GridOptions, wallTime?: number): void {
    this.addImage(tag, makeGrid(images, opts), step, wallTime);
  }

  /** Writes pending events to the file. */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.queue.length === 0 || this.fd === null) return;
    const pending = this.queue;
    this.queue = [];
    this.writeRecords(pending);
  }

  /** Writes pending events and closes the file. Further add* calls throw; close() again does nothing. */
  close(): void {
    if (this.fd === null) return;
    this.flush();
    fs.closeSync(this.fd);
    this.fd = null;
  }

  get closed(): boolean {
    return this.fd === null;
  }

  private push(step: number, wallTime: number | undefined, value: Record<string, unknown>): void {
    if (this.fd === null) throw new Error('SummaryWriter is closed');
    this.queue.push(this.record({ wallTime: wallTime ?? Date.now() / 1000, step, summary: { value: [value] } }));
    if (this.queue.length >= this.maxQueue || this.flushMillis === 0) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.flushMillis);
      this.timer.unref();
    }
  }

  private record(event: Record<string, unknown>): Buffer {
    const Event = eventMessage();
    return tfRecord(Event.encode(Event.fromObject(event)).finish());
  }

  private writeRecords(records: Buffer[]): void {
    const buf = records.length === 1 ? records[0] : Buffer.concat(records);
    let off = 0;
    while (off < buf.length) off += fs.writeSync(this.fd!, buf, off, buf.length - off);
  }
}

function isPixelImage(image: ImageInput): image is PixelImage {
  return typeof (image as PixelImage).width === 'number' && (image as PixelImage).pixels !== undefined;
}

function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`step must be a non-negative integer, got ${step}`);
}
