import { Writable } from 'node:stream';

/** A Writable that keeps what it is given, for asserting on real output. */
export class Collector extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.text += chunk.toString();
    callback();
  }
}

/** Control characters other than the line feed: none may reach a terminal. */
export const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;
