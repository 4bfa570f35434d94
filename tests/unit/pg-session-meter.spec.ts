import { describe, expect, it } from 'vitest';
import { messageMeter } from '../../workers/drivers/postgres/session.js';

const msg = (type: string, body: Buffer) => {
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
};

describe('the session meter follows the server\'s messages', () => {
  it('sees every message with its length, however the bytes are cut into chunks', () => {
    const stream = Buffer.concat([msg('T', Buffer.alloc(20)), msg('D', Buffer.alloc(1000)), msg('D', Buffer.alloc(3)), msg('C', Buffer.from('SELECT 2\0')), msg('Z', Buffer.from('I'))]);
    for (const size of [1, 2, 5, 7, 64, stream.length]) {
      const seen: string[] = [];
      const feed = messageMeter((type, length) => seen.push(`${String.fromCharCode(type)}${length}`));
      for (let i = 0; i < stream.length; i += size) feed(stream.subarray(i, i + size));
      expect(seen, `chunks of ${size}`).toEqual(['T24', 'D1004', 'D7', 'C13', 'Z5']);
    }
  });
});
