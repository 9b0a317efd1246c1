/**
 * A gzip file (RFC 1952) holding `text` in one stored (uncompressed) deflate
 * block: the same bytes on every machine and every zlib version, so a
 * generated script can carry it. For short texts only (one block holds
 * 65,535 bytes).
 */
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function littleEndian(value: number, bytes: number): number[] {
  return Array.from({ length: bytes }, (_, i) => (value >>> (8 * i)) & 0xff);
}

export function storedGzip(text: string): Uint8Array {
  const data = new TextEncoder().encode(text);
  if (data.length > 0xffff) throw new Error('storedGzip: the text is longer than one stored block');
  // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown): nothing that depends on the machine.
  const header = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
  // BFINAL=1, BTYPE=00 (stored), then LEN and its one's complement.
  const block = [0x01, ...littleEndian(data.length, 2), ...littleEndian(~data.length & 0xffff, 2)];
  return Uint8Array.from([...header, ...block, ...data, ...littleEndian(crc32(data), 4), ...littleEndian(data.length, 4)]);
}

/** `bytes` as a printf format of octal escapes (`\ooo` each): no byte is read as text, `%` or `\` included. */
export function printfOctal(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => `\\${byte.toString(8).padStart(3, '0')}`).join('');
}
